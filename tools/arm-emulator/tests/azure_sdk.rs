//! The Azure SDK for Go against the emulator: `azsdk-lifecycle` (tools/azsdk, armcognitiveservices
//! v1.8.0 with azidentity's managed-identity credential) runs an account and deployment lifecycle
//! over TLS. A client Microsoft wrote judges every answer with its own pollers and decoders, so
//! a shape azcore rejects fails here even where our own client would accept it.
//!
//! The program is Go, built by `tools/k8s/build.sh` into the assets folder; `bash tools/test.sh`
//! builds it and runs this ignored test with `KUBEBUILDER_ASSETS` pointing there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arm_emulator::{Emulator, EmulatorConfig, Profile, RecordedRequest, TlsConfig, TokenRequest};
use serde_json::Value;

const SUBSCRIPTION: &str = "5f0e2c1a-3b4d-4e6f-8a9b-0c1d2e3f4a5b";
const CLIENT_ID: &str = "7a1c9e2b-4d3f-4b6a-9c8d-1e2f3a4b5c6d";
const PRINCIPAL_ID: &str = "2b8d4f6a-1c3e-4a5b-8d7c-9e0f1a2b3c4d";
const IDENTITY_HEADER: &str = "azsdk-identity-header-secret";
const GROUP: &str = "azsdk-lifecycle";
const ACCOUNT: &str = "azsdk-lifecycle-openai";

/// The api-version of every Microsoft.CognitiveServices call armcognitiveservices v1.8.0 makes.
const COGNITIVE_SERVICES_API: &str = "api-version=2025-06-01";
/// The api-version of armresources v1.2.0's resource-group calls.
const RESOURCE_GROUPS_API: &str = "api-version=2021-04-01";

/// The steps the program prints, in order, when every answer is as it expects.
const STEPS: &[&str] = &[
    "token",
    "group.create",
    "account.create",
    "account.get",
    "account.listKeys",
    "account.update",
    "deployment.create",
    "deployment.update",
    "deployment.get",
    "deployment.delete",
    "deployment.getDeleted",
    "account.delete",
    "deletedAccount.get",
    "deletedAccount.purge",
    "group.delete",
    "done",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Go SDK program: bash tools/test.sh"]
async fn the_go_sdk_runs_a_lifecycle_over_tls_as_a_managed_identity() {
    let program = lifecycle_program();
    let emulator = start_emulator().await;
    let ca = write_ca(&emulator);

    let output = run_lifecycle(program, &emulator, &ca).await;
    let _ = std::fs::remove_file(&ca);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Shown by the test harness when an assertion below fails.
    println!("azsdk-lifecycle:\n{stdout}");
    assert!(
        output.status.success(),
        "azsdk-lifecycle failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let steps = parse_steps(&stdout);
    let names: Vec<&str> = steps
        .iter()
        .map(|line| line["step"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, STEPS, "the program's steps:\n{stdout}");

    assert_recorded_forms(&steps, &stdout);
    let requests = emulator.requests();
    for request in &requests {
        println!(
            "{} {}?{} -> {}",
            request.method, request.path, request.query, request.status
        );
    }
    assert_one_managed_identity_login(&emulator.token_requests());
    assert_every_call_is_the_managed_identity(&requests);
    assert_api_versions(&requests);
    assert_statuses(&requests);
}

/// `azsdk-lifecycle` in the assets folder `tools/test.sh` exports.
fn lifecycle_program() -> PathBuf {
    let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS") else {
        panic!(
            "KUBEBUILDER_ASSETS is not set: this test runs the Go program azsdk-lifecycle, which \
             `bash tools/test.sh` builds (tools/k8s/build.sh) and points KUBEBUILDER_ASSETS at"
        );
    };
    let program = Path::new(&assets).join("azsdk-lifecycle");
    assert!(
        program.is_file(),
        "{} is missing: build it with `bash tools/k8s/build.sh` (or run `bash tools/test.sh`)",
        program.display()
    );
    program
}

/// The recorded profile, TLS, one managed identity behind a header secret, and only tokens the
/// emulator minted accepted: the program must log in through the identity endpoint.
async fn start_emulator() -> Emulator {
    let config = EmulatorConfig {
        tls: Some(TlsConfig::generated()),
        profile: Profile::Recorded,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("start the emulator");
    // A system-assigned identity first: an SDK that dropped the client id would get its token.
    emulator.add_managed_identity("00000000-0000-0000-0000-0000000000b0", None);
    emulator.add_managed_identity(CLIENT_ID, Some(PRINCIPAL_ID));
    emulator.set_identity_header(IDENTITY_HEADER);
    emulator.require_issued_tokens(true);
    emulator
}

fn write_ca(emulator: &Emulator) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("azure-sdk-ca-{}.pem", emulator.addr().port()));
    let ca = emulator.ca_pem().expect("the emulator has a TLS listener");
    std::fs::write(&path, ca).expect("write the emulator's CA");
    path
}

/// Runs the program with nothing of this process's environment (an `MSI_ENDPOINT` or
/// `IMDS_ENDPOINT` would change the credential it picks), trusting only the emulator's CA on top
/// of the system's, and with a dead proxy for anything that is not loopback.
async fn run_lifecycle(program: PathBuf, emulator: &Emulator, ca: &Path) -> Output {
    let base = emulator
        .tls_base_url()
        .expect("the emulator has a TLS listener");
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("IDENTITY_ENDPOINT", format!("{base}/_emulator/msi/token"))
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env("SSL_CERT_FILE", ca)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AZSDK_ENDPOINT", &base)
        .env("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .args(["-resource-group", GROUP, "-account", ACCOUNT]);
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the program's task")
        .expect("start azsdk-lifecycle")
}

fn parse_steps(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line:?}: {error}")))
        .collect()
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|line| line["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// The answer forms of the recordings, as azcore saw them: the account create a long-running
/// operation behind Azure-AsyncOperation, the deployment writes and the deletes done at once.
fn assert_recorded_forms(steps: &[Value], stdout: &str) {
    let create = step(steps, "account.create");
    assert_eq!(create["status"], 201, "{stdout}");
    assert_eq!(create["azureAsyncOperation"], true, "{stdout}");
    for name in [
        "deployment.create",
        "deployment.update",
        "deployment.delete",
        "account.delete",
    ] {
        let line = step(steps, name);
        assert_eq!(line["doneAtOnce"], true, "{name} needed polling:\n{stdout}");
        assert_eq!(line["azureAsyncOperation"], false, "{name}:\n{stdout}");
        assert_eq!(line["location"], false, "{name}:\n{stdout}");
    }
    assert_eq!(step(steps, "deployment.create")["status"], 201, "{stdout}");
    assert_eq!(step(steps, "deployment.update")["status"], 200, "{stdout}");
    assert_eq!(
        step(steps, "deployment.get")["modelVersion"],
        "2024-11-20",
        "{stdout}"
    );
    let gone = step(steps, "deployment.getDeleted");
    assert_eq!(gone["status"], 404, "{stdout}");
}

/// azidentity asks the identity endpoint once, for the user-assigned client id, and its cache
/// serves every call after that.
fn assert_one_managed_identity_login(logins: &[TokenRequest]) {
    let [login] = logins else {
        panic!("expected one token request: {logins:#?}");
    };
    assert_eq!(login.endpoint, "managedIdentity", "{login:?}");
    assert_eq!(login.client_id.as_deref(), Some(CLIENT_ID), "{login:?}");
    assert_eq!(login.status, 200, "{login:?}");
}

fn assert_every_call_is_the_managed_identity(requests: &[RecordedRequest]) {
    assert!(!requests.is_empty(), "the emulator recorded no request");
    for request in requests {
        let caller = request
            .caller
            .as_ref()
            .unwrap_or_else(|| panic!("{} {} has no caller", request.method, request.path));
        assert_eq!(caller.client_id, CLIENT_ID, "{request:?}");
        assert_eq!(caller.object_id, PRINCIPAL_ID, "{request:?}");
        assert_eq!(caller.grant, "managed_identity", "{request:?}");
    }
}

/// A resource-group call, as opposed to a poll of its deletion's operation URL.
fn is_group_call(request: &RecordedRequest) -> bool {
    request.path.eq_ignore_ascii_case(&format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
    ))
}

/// A Microsoft.CognitiveServices call the SDK made from its own URL templates; the polls follow
/// the operation URLs the emulator handed out, with whatever api-version those carry.
fn is_cognitive_services_call(request: &RecordedRequest) -> bool {
    let path = request.path.to_ascii_lowercase();
    path.contains("/providers/microsoft.cognitiveservices/")
        && !path.contains("/operationresults/")
        && !path.contains("/operationstatuses/")
}

fn assert_api_versions(requests: &[RecordedRequest]) {
    let mut groups = 0;
    let mut cognitive_services = 0;
    for request in requests {
        let query = format!("&{}&", request.query);
        if is_group_call(request) {
            groups += 1;
            assert!(
                query.contains(&format!("&{RESOURCE_GROUPS_API}&")),
                "{request:?}"
            );
        } else if is_cognitive_services_call(request) {
            cognitive_services += 1;
            assert!(
                query.contains(&format!("&{COGNITIVE_SERVICES_API}&")),
                "{request:?}"
            );
        }
    }
    assert_eq!(groups, 2, "a PUT and a DELETE of the group: {requests:#?}");
    // The program's own 13 (azcore may add a final GET after a poll).
    assert!(cognitive_services >= 13, "{requests:#?}");
}

/// The statuses of the writes, as the recordings show Azure answering them.
fn assert_statuses(requests: &[RecordedRequest]) {
    let statuses = |method: &str, suffix: &str| -> Vec<u16> {
        requests
            .iter()
            .filter(|request| request.method == method)
            .filter(|request| {
                request
                    .path
                    .to_ascii_lowercase()
                    .ends_with(&suffix.to_ascii_lowercase())
            })
            .map(|request| request.status)
            .collect()
    };
    let account =
        format!("/resourceGroups/{GROUP}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}");
    let deployment = format!("{account}/deployments/chat");
    assert_eq!(statuses("PUT", &format!("/resourceGroups/{GROUP}")), [201]);
    assert_eq!(statuses("PUT", &account), [201]);
    assert_eq!(statuses("PUT", &deployment), [201, 200]);
    assert_eq!(statuses("DELETE", &deployment), [200]);
    assert_eq!(statuses("GET", &deployment), [200, 404]);
    assert_eq!(statuses("DELETE", &account), [200]);
    assert_eq!(
        statuses("DELETE", &format!("/resourceGroups/{GROUP}")),
        [202]
    );
}
