//! The command line as a user runs it: the demo, `plan` exit codes and output, `apply`, and the
//! GitOps loop plan → apply → plan against a separately running `cognitive-operator emulator`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cognitive-operator");

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_manifest(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cognitive-operator-cli-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const ACCOUNT: &str = "apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesAccount
metadata: {name: gitops-openai, namespace: team-a}
spec:
  subscriptionId: 22222222-2222-2222-2222-222222222222
  resourceGroup: rg-gitops
  location: westus
  kind: OpenAI
  sku: {name: S0}
  tags: {team: a}
  properties: {customSubDomainName: gitops-openai}
";

#[test]
fn the_demo_runs_the_whole_job_and_exits_zero() {
    let output = run(&["demo"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    assert!(
        text.contains("restored at"),
        "a soft-deleted account is restored:\n{text}"
    );
    assert!(
        text.contains("purged a soft-deleted copy"),
        "a copy is purged:\n{text}"
    );
    assert!(
        text.contains("Ready=False Drifted"),
        "the Observe example reports drift:\n{text}"
    );
    // Accounts: one GET, and a list of deployments for the one that has deployments and the
    // one just restored (a restore brings deployments back); their deployments: none (the
    // list answers).
    assert_eq!(
        text.matches("    1 GET, 0 writes").count(),
        3,
        "steady state:\n{text}"
    );
    assert_eq!(
        text.matches("    2 GET, 0 writes").count(),
        2,
        "steady state:\n{text}"
    );
    assert_eq!(text.matches("    0 GET, 0 writes").count(), 2, "{text}");
    let scaled = text
        .split("== 2b.")
        .nth(1)
        .unwrap()
        .split("== 3.")
        .next()
        .unwrap();
    assert_eq!(
        scaled.matches("PATCH").count(),
        2,
        "one PATCH (and the heading):\n{scaled}"
    );
    assert_eq!(scaled.matches("    PUT").count(), 0, "{scaled}");
    let imported = text
        .split("== 2c.")
        .nth(1)
        .unwrap()
        .split("== 3.")
        .next()
        .unwrap();
    assert!(
        imported.contains("|   name: legacy-speech")
            && imported.contains("|   adoptionPolicy: Adopt"),
        "the hand-made account is imported:\n{imported}"
    );
    assert!(
        imported.contains("plan legacy-speech: ~ patch tags (adoption: the owner tag), no drift"),
        "{imported}"
    );
    assert!(imported.contains("0 writes"), "{imported}");
    let deletion = text.split("== 3.").nth(1).unwrap();
    let first_deployment_delete = deletion
        .find("DELETE resourceGroups/rg-ai/accounts/chat-openai/deployments/")
        .unwrap();
    let account_delete = deletion
        .find("DELETE resourceGroups/rg-ai/accounts/chat-openai ")
        .unwrap();
    assert!(
        first_deployment_delete < account_delete,
        "deployments go first:\n{deletion}"
    );
    assert!(
        deletion.contains("deployments/batch-ptu"),
        "also the unmanaged one:\n{deletion}"
    );
    assert_eq!(text.matches("finalizer can be removed").count(), 7);
    assert!(text.contains("0 writes in steady state"));
    assert!(
        text.contains("0 capacity-hours billed after deletion"),
        "{text}"
    );
}

#[test]
fn plan_against_an_embedded_emulator_reports_changes_with_exit_2() {
    let output = run(&[
        "plan",
        "-f",
        repo("deploy/examples").to_str().unwrap(),
        "--emulator",
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = report.as_array().unwrap();
    assert_eq!(entries.len(), 7, "five accounts and two deployments");
    // The deployment is previewed as apply will create it, after its account.
    let chat = entries.iter().find(|e| e["name"] == "chat").unwrap();
    assert_eq!(chat["kind"], "deployment");
    assert_eq!(chat["actions"][0]["action"], "Create", "{chat}");
    assert_eq!(
        chat["actions"][0]["description"],
        "create deployment chat: gpt-4o 2024-11-20, GlobalStandard × 10"
    );
    assert_eq!(chat["actions"][0]["sends"]["sku"]["capacity"], 10, "{chat}");
    let openai = entries.iter().find(|e| e["name"] == "docs-openai").unwrap();
    assert_eq!(openai["actions"][0]["action"], "Create");
    assert_eq!(openai["actions"][0]["sends"]["kind"], "OpenAI", "{openai}");
    assert!(
        openai["actions"][0]["fields"]
            .as_array()
            .unwrap()
            .contains(&"sku".into())
    );
    assert_eq!(openai["changes"], true);
    let observe = entries
        .iter()
        .find(|e| e["name"] == "legacy-speech")
        .unwrap();
    assert_eq!(observe["verdict"]["reason"], "NotFound");
    assert_eq!(observe["changes"], false, "Observe never changes anything");
}

#[test]
fn invalid_manifests_fail_with_file_document_and_field() {
    let dir = scratch_dir("invalid");
    let bad = ACCOUNT.replace(
        "sku: {name: S0}",
        "sku: {name: S0}\n  deletionPolicy: Sometimes",
    );
    let file = write_manifest(
        &dir,
        "bad.yaml",
        &format!("{ACCOUNT}---\n{}", bad.replace("gitops-openai", "second")),
    );
    let output = run(&["plan", "-f", file.to_str().unwrap(), "--emulator"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("bad.yaml#2"), "{message}");
    assert!(message.contains("spec.deletionPolicy"), "{message}");

    let file = write_manifest(
        &dir,
        "name.yaml",
        &ACCOUNT.replace("name: gitops-openai,", "name: x,"),
    );
    let output = run(&["apply", "-f", file.to_str().unwrap(), "--emulator"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("metadata.name"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn apply_on_an_embedded_emulator_prints_ready_resources() {
    let file = repo("deploy/examples/openai-network-rules.yaml");
    let output = run(&[
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--emulator",
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let resources: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let resource = &resources[0];
    assert_eq!(resource["apiVersion"], "cognitive-operator.dev/v1alpha1");
    assert_eq!(resource["kind"], "CognitiveServicesAccount");
    assert_eq!(resource["metadata"]["name"], "docs-openai");
    let ready = resource["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(
        resource["status"]["endpoint"],
        "https://docs-openai.openai.azure.com/"
    );
}

#[test]
fn apply_exits_3_when_a_resource_cannot_become_ready() {
    let file = repo("deploy/examples/observe-only.yaml");
    let output = run(&["apply", "-f", file.to_str().unwrap(), "--emulator"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("legacy-speech is not Ready"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("reason: NotFound"),
        "YAML output:\n{}",
        stdout(&output)
    );
}

/// A `cognitive-operator emulator` process, killed on drop.
struct EmulatorProcess {
    child: Child,
    url: String,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EmulatorProcess {
    /// The ARM flags of a `plan`/`apply`/`import` against this emulator. Its operations end at
    /// their second poll: no need for the 5 s Azure gets when it names no Retry-After (as it
    /// names none with an account create).
    fn connection(&self) -> [&str; 8] {
        [
            "--arm-endpoint",
            self.url.as_str(),
            "--credential",
            "static-token",
            "--static-token",
            "t",
            "--default-poll-seconds",
            "0",
        ]
    }
}

fn start_emulator_process() -> EmulatorProcess {
    let mut child = Command::new(BIN)
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--resource-group",
            "22222222-2222-2222-2222-222222222222/rg-gitops",
            "--retry-after",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split("listening on ")
        .nth(1)
        .expect("it says where it listens")
        .trim()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    EmulatorProcess { child, url }
}

#[test]
fn gitops_loop_plan_apply_plan_against_a_running_emulator() {
    let emulator = start_emulator_process();
    let dir = scratch_dir("gitops");
    let file = write_manifest(&dir, "account.yaml", ACCOUNT);
    let connect = emulator.connection();
    let with = |command: &str| {
        let mut args = vec![command, "-f", file.to_str().unwrap()];
        args.extend(connect);
        run(&args)
    };

    let plan = with("plan");
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(
        stdout(&plan).contains("+ create the account"),
        "{}",
        stdout(&plan)
    );

    let apply = with("apply");
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));

    let again = with("plan");
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert!(stdout(&again).contains("= no changes"));

    std::fs::write(&file, ACCOUNT.replace("tags: {team: a}", "tags: {team: b}")).unwrap();
    let drift = with("plan");
    assert_eq!(drift.status.code(), Some(2));
    assert!(
        stdout(&drift).contains("~ patch tags"),
        "{}",
        stdout(&drift)
    );
    assert!(stdout(&drift).contains(r#"tags: {"cognitive-operator-owner":"team-a/gitops-openai","team":"a"} → {"cognitive-operator-owner":"team-a/gitops-openai","team":"b"}"#), "{}", stdout(&drift));
}

const DEPLOYMENT: &str = "apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesDeployment
metadata: {name: chat, namespace: team-a}
spec:
  accountRef: {name: gitops-openai}
  model: {format: OpenAI, name: gpt-4o, version: \"2024-11-20\"}
  sku: {name: GlobalStandard, capacity: 10}
";

#[test]
fn deployments_are_planned_applied_and_deleted_before_their_account() {
    let emulator = start_emulator_process();
    let dir = scratch_dir("deployments");
    let purge = ACCOUNT.replace(
        "  tags: {team: a}",
        "  tags: {team: a}\n  deletionPolicy: DeleteAndPurge",
    );
    let file = write_manifest(&dir, "both.yaml", &format!("{purge}---\n{DEPLOYMENT}"));
    let with = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "-f", file.to_str().unwrap()];
        args.extend(emulator.connection());
        args.extend(extra);
        run(&args)
    };
    let plan = with("plan", &[]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(
        stdout(&plan).contains("+ create deployment chat: gpt-4o 2024-11-20, GlobalStandard × 10"),
        "{}",
        stdout(&plan)
    );

    let apply = with("apply", &["-o", "json"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let applied: serde_json::Value = serde_json::from_slice(&apply.stdout).unwrap();
    let deployment = &applied[1];
    assert_eq!(deployment["kind"], "CognitiveServicesDeployment");
    assert_eq!(deployment["status"]["modelVersion"], "2024-11-20");
    assert_eq!(deployment["status"]["capacity"], 10);
    assert_eq!(with("plan", &[]).status.code(), Some(0));

    let delete = with("delete", &[]);
    assert_eq!(
        delete.status.code(),
        Some(0),
        "{}{}",
        stdout(&delete),
        stderr(&delete)
    );
    let text = stdout(&delete);
    let deployment_deleted = text
        .find("deployment chat: delete the deployment")
        .expect(&text);
    let account_deleted = text
        .find("account gitops-openai: delete the account")
        .expect(&text);
    assert!(deployment_deleted < account_deleted, "{text}");
    assert!(text.contains("purge the soft-deleted copy"), "{text}");
    // Nothing left: deleting again calls for no write and is done at once.
    let again = with("delete", &["-o", "json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["deleted"] == true && r["armCalls"].as_array().unwrap().is_empty()),
        "{report}"
    );
}

/// What a Terraform user expects of `plan` on the example, against an empty Azure: the create's
/// fields, the deployments the create is followed by, and, without a subscription, the
/// deployments blamed on their invalid account rather than on a missing one.
#[test]
fn plan_previews_the_whole_stack_and_blames_an_invalid_account() {
    let example = repo("deploy/examples/openai-deployments.yaml");
    let plan = run(&["plan", "-f", example.to_str().unwrap(), "--emulator"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    for line in [
        "  + create the account\n      kind = \"OpenAI\"\n      sku = {\"name\":\"S0\"}\n      location = \"swedencentral\"",
        "      properties.customSubDomainName = \"chat-openai\"",
        "  + create deployment chat: gpt-4o 2024-11-20, GlobalStandard × 10",
        "  + create deployment embeddings: text-embedding-3-small 1, Standard × 20",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    assert!(!text.contains("AccountNotReady"), "{text}");

    let emulator = start_emulator_process();
    let unscoped = run(&[
        "plan",
        "-f",
        example.to_str().unwrap(),
        "--arm-endpoint",
        emulator.url.as_str(),
        "--credential",
        "static-token",
        "--static-token",
        "t",
    ]);
    assert_eq!(unscoped.status.code(), Some(1));
    let text = stdout(&unscoped);
    assert!(!text.contains("AccountNotFound"), "{text}");
    assert!(
        text.contains("CognitiveServicesAccount chat-openai (")
            && text.contains("cannot be planned, so neither can its deployments: invalid spec: spec.subscriptionId"),
        "the deployments name their account and why it is invalid: {text}"
    );
    assert!(
        !text.lines().any(|l| l.trim_end() == "deployment:"),
        "no empty deployment line: {text}"
    );
}

/// `import` against a running emulator: a file per account with its deployments with
/// `--out-dir`, in the namespace asked for, never with the owner tag; accounts another resource
/// manages skipped, with a note naming it, unless `--include-owned`. (The round trip through
/// `plan` is tests/import_roundtrip.rs.)
#[test]
fn import_writes_a_file_per_account_and_skips_owned_ones() {
    let emulator = start_emulator_process();
    let dir = scratch_dir("import");
    let file = write_manifest(&dir, "account.yaml", &format!("{ACCOUNT}---\n{DEPLOYMENT}"));
    let connect = emulator.connection();
    let mut apply = vec!["apply", "-f", file.to_str().unwrap()];
    apply.extend(connect);
    assert_eq!(run(&apply).status.code(), Some(0));
    let out = dir.join("imported");
    let mut import = vec![
        "import",
        "--subscription",
        "22222222-2222-2222-2222-222222222222",
        "--resource-group",
        "rg-gitops",
        "--namespace",
        "team-b",
        "--include-owned",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    import.extend(connect);
    let imported = run(&import);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let text = std::fs::read_to_string(out.join("gitops-openai.yaml")).unwrap();
    for field in [
        "namespace: team-b",
        "adoptionPolicy: Adopt",
        "deletionPolicy: Orphan",
        "customSubDomainName: gitops-openai",
        "kind: CognitiveServicesDeployment",
        "team: a",
    ] {
        assert!(text.contains(field), "{field} missing in:\n{text}");
    }
    assert!(!text.contains("cognitive-operator-owner"), "{text}");

    let mut listed = vec![
        "import",
        "--subscription",
        "22222222-2222-2222-2222-222222222222",
        "-o",
        "json",
    ];
    listed.extend(connect);
    let owned = run(&listed);
    assert_eq!(owned.status.code(), Some(0), "{}", stderr(&owned));
    let list: serde_json::Value = serde_json::from_slice(&owned.stdout).unwrap();
    assert_eq!(
        list["items"],
        serde_json::json!([]),
        "owned by team-a: skipped"
    );
    assert!(
        stderr(&owned).contains("managed by team-a/gitops-openai"),
        "{}",
        stderr(&owned)
    );
}

#[test]
fn manifests_are_strict_like_an_api_server() {
    let dir = scratch_dir("strict");
    for (name, text, expected) in [
        (
            "typo.yaml",
            ACCOUNT.replace("  kind: OpenAI", "  kind: OpenAI\n  bogusField: 1"),
            "typo.yaml#1: spec.bogusField: unknown field",
        ),
        (
            "kind.yaml",
            ACCOUNT.replace(
                "kind: CognitiveServicesAccount",
                "kind: CognitiveServicesAcount",
            ),
            "kind.yaml#1: kind: CognitiveServicesAcount is not a kind of cognitive-operator.dev",
        ),
        (
            "orphan.yaml",
            DEPLOYMENT.to_string(),
            "spec.accountRef.name (chat): no CognitiveServicesAccount gitops-openai",
        ),
    ] {
        let file = write_manifest(&dir, name, &text);
        let output = run(&["plan", "-f", file.to_str().unwrap(), "--emulator"]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stdout(&output));
        assert!(
            stderr(&output).contains(expected),
            "{name}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    for command in [
        "run", "crd", "plan", "apply", "delete", "import", "demo", "emulator",
    ] {
        let output = run(&[command, "--help"]);
        assert!(output.status.success(), "{command} --help");
        assert!(stdout(&output).contains("Usage:"), "{command}");
    }
    let run_help = stdout(&run(&["run", "--help"]));
    for flag in [
        "--arm-endpoint",
        "--cloud",
        "--subscription-id",
        "--credential",
        "--concurrency",
        "--namespace",
        "--label-selector",
        "--http-addr",
        "--leader-election",
        "--log-format",
    ] {
        assert!(run_help.contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn the_crd_command_prints_what_crds_holds() {
    let output = run(&["crd"]);
    let committed = [
        "crds/cognitiveservicesaccounts.cognitive-operator.dev.yaml",
        "crds/cognitiveservicesdeployments.cognitive-operator.dev.yaml",
    ]
    .map(|file| std::fs::read_to_string(repo(file)).unwrap())
    .join("---\n");
    assert_eq!(stdout(&output), committed);
}
