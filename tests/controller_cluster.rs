//! The whole binary against a real cluster and the ARM emulator. Needs a cluster in
//! KUBECONFIG where the current user may install CRDs and create namespaces; run with
//!
//! ```text
//! cargo test --test controller_cluster -- --ignored
//! ```
//!
//! Each test starts `cognitive-operator emulator` and `cognitive-operator run` as child
//! processes on loopback, works in a namespace of its own, and deletes it at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cognitive_operator::api::{CognitiveServicesAccount, FINALIZER};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, CustomResourceExt, ResourceExt};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_cognitive-operator");
const SUB: &str = "00000000-0000-0000-0000-0000000000c1";
const RG: &str = "rg-cluster-test";
const WAIT: Duration = Duration::from_secs(180);

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the emulator on a free port and returns it with its base URL (from the
/// `listening on http://ADDR` line it prints).
fn start_emulator() -> (Process, String) {
    let mut child = Command::new(BINARY)
        .args(["emulator", "--listen", "127.0.0.1:0", "--resource-group"])
        .arg(format!("{SUB}/{RG}@westus"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the emulator");
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_once("listening on ")
                .map(|(_, url)| url.trim().to_string())
        })
        .expect("the emulator prints its address");
    // Keep draining its output, so that a later line never meets a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (process, url)
}

fn start_operator(arm_endpoint: &str, namespace: &str) -> Process {
    let child = Command::new(BINARY)
        .args([
            "run",
            "--arm-endpoint",
            arm_endpoint,
            "--credential",
            "static-token",
            "--static-token",
            "cluster-test",
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .spawn()
        .expect("start the operator");
    Process(child)
}

async fn install_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = CognitiveServicesAccount::crd();
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("controller-cluster-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the CRD");
    tokio::time::timeout(
        WAIT,
        await_condition(crds, &crd.name_any(), conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established in time")
    .unwrap();
}

async fn create_namespace(client: &kube::Client) -> String {
    let name = format!("cognitive-operator-test-{}", fastrand::u32(..));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    name
}

fn resource(namespace: &str) -> CognitiveServicesAccount {
    serde_json::from_value(json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesAccount",
        "metadata": {"name": "cluster-docs", "namespace": namespace},
        "spec": {
            "subscriptionId": SUB,
            "resourceGroup": RG,
            "location": "westus",
            "kind": "OpenAI",
            "sku": {"name": "S0"},
            "connectionSecret": {"name": "cluster-docs-conn"}
        }
    }))
    .unwrap()
}

fn is_ready() -> impl kube::runtime::wait::Condition<CognitiveServicesAccount> {
    |object: Option<&CognitiveServicesAccount>| {
        object.and_then(|o| o.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster in KUBECONFIG"]
async fn a_resource_becomes_ready_and_its_finalizer_clears_on_delete() {
    cognitive_operator::install_crypto_provider();
    let client = kube::Client::try_default()
        .await
        .expect("a cluster in KUBECONFIG");
    install_crd(&client).await;
    let namespace = create_namespace(&client).await;
    let (_emulator, arm_endpoint) = start_emulator();
    let _operator = start_operator(&arm_endpoint, &namespace);

    let accounts: Api<CognitiveServicesAccount> = Api::namespaced(client.clone(), &namespace);
    accounts
        .create(&PostParams::default(), &resource(&namespace))
        .await
        .unwrap();
    let ready = tokio::time::timeout(
        WAIT,
        await_condition(accounts.clone(), "cluster-docs", is_ready()),
    )
    .await
    .expect("Ready in time")
    .unwrap()
    .expect("the resource exists");
    assert!(ready.finalizers().iter().any(|f| f == FINALIZER));
    let status = ready.status.unwrap();
    assert_eq!(status.observed_generation, ready.metadata.generation);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &namespace);
    let conn = tokio::time::timeout(
        WAIT,
        await_condition(
            secrets,
            "cluster-docs-conn",
            |s: Option<&k8s_openapi::api::core::v1::Secret>| s.is_some(),
        ),
    )
    .await
    .expect("the connection Secret appears in time")
    .unwrap()
    .unwrap();
    let data = conn.data.unwrap();
    assert!(
        data.contains_key("endpoint") && data.contains_key("key1") && data.contains_key("key2")
    );

    let uid = ready.metadata.uid.clone().unwrap();
    accounts
        .delete("cluster-docs", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(accounts, "cluster-docs", conditions::is_deleted(&uid)),
    )
    .await
    .expect("the finalizer clears and the resource goes")
    .unwrap();

    let namespaces: Api<Namespace> = Api::all(client);
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}
