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
    assert_eq!(
        text.matches("1 GET, 0 writes").count(),
        4,
        "steady state:\n{text}"
    );
    assert_eq!(text.matches("finalizer can be removed").count(), 4);
    assert!(text.contains("0 writes in steady state"));
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
    assert_eq!(entries.len(), 4);
    let openai = entries.iter().find(|e| e["name"] == "docs-openai").unwrap();
    assert_eq!(openai["actions"][0]["action"], "Create");
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
    let connect = [
        "--arm-endpoint",
        emulator.url.as_str(),
        "--credential",
        "static-token",
        "--static-token",
        "t",
    ];
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

#[test]
fn every_subcommand_has_help() {
    for command in ["run", "crd", "plan", "apply", "demo", "emulator"] {
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
    let committed = std::fs::read_to_string(repo(
        "crds/cognitiveservicesaccounts.cognitive-operator.dev.yaml",
    ))
    .unwrap();
    assert_eq!(stdout(&output), committed);
}
