//! The pieces of an end-to-end test: a real control plane, the `cognitive-operator emulator`
//! process, and `cognitive-operator run` processes that act with the chart's own RBAC.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arm_emulator::{RecordedRequest, TokenRequest};
use cognitive_operator::api::CognitiveServicesAccount;
use kube::Api;
use kube::runtime::wait::{Condition, await_condition, conditions};
use serde_json::{Value, json};

use super::control_plane::{ControlPlane, Process, kubectl_stdin, pipe};
use super::identities::OperatorIdentity;

/// The path of a resource group's list of accounts.
const RESOURCE_GROUP_LIST: &str = "/providers/Microsoft.CognitiveServices/accounts";

pub const BINARY: &str = env!("CARGO_BIN_EXE_cognitive-operator");
pub const SUB: &str = "00000000-0000-0000-0000-0000000000e2";
pub const RG: &str = "rg-ai";
pub const LOCATION: &str = "swedencentral";
/// Where the chart is installed, and the operator's Lease lives.
pub const OPERATOR_NAMESPACE: &str = "cognitive-operator";
pub const WAIT: Duration = Duration::from_secs(120);
/// The discard port on loopback, where nothing listens in these tests.
const CLOSED_LOOPBACK_PROXY: &str = "http://127.0.0.1:9";
pub const CRD_NAME: &str = "cognitiveservicesaccounts.cognitive-operator.dev";
pub const DEPLOYMENT_CRD_NAME: &str = "cognitiveservicesdeployments.cognitive-operator.dev";

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `cognitive-operator emulator` as its own process, driven over its admin API.
pub struct EmulatorProcess {
    /// The plain listener: the admin API, and ARM for static-token operators.
    pub url: String,
    /// With [`EmulatorProcess::start_tls`]: the https listener (ARM and Entra ID for Azure
    /// identities) and the CA file its clients trust.
    pub tls_url: Option<String>,
    pub ca_path: Option<PathBuf>,
    http: reqwest::Client,
    process: Process,
}

impl EmulatorProcess {
    pub fn start(dir: &Path, extra: &[&str]) -> EmulatorProcess {
        let process = Process::spawn(
            "emulator",
            emulator_command(extra),
            dir.join("emulator.log"),
        );
        let url = wait_for_line(&process, "listening on ").trim().to_string();
        cognitive_operator::install_crypto_provider();
        EmulatorProcess {
            url,
            tls_url: None,
            ca_path: None,
            http: reqwest::Client::new(),
            process,
        }
    }

    /// Also an https listener with a generated CA written to `{dir}/emulator-ca.pem`, and
    /// only tokens its own Entra ID or managed-identity endpoint minted are taken: `extra`
    /// registers the identities. The admin client stays on plain http.
    pub fn start_tls(dir: &Path, extra: &[&str]) -> EmulatorProcess {
        let ca_path = dir.join("emulator-ca.pem");
        let mut command = emulator_command(extra);
        command
            .args(["--tls-listen", "127.0.0.1:0", "--tls-ca-out"])
            .arg(&ca_path)
            .arg("--require-issued-tokens");
        let process = Process::spawn("emulator", command, dir.join("emulator.log"));
        let url = format!(
            "http://{}",
            wait_for_line(&process, "listening on http://").trim()
        );
        // Printed once the CA file is written.
        let tls_url = wait_for_line(&process, "TLS listening on ")
            .trim()
            .to_string();
        cognitive_operator::install_crypto_provider();
        EmulatorProcess {
            url,
            tls_url: Some(tls_url),
            ca_path: Some(ca_path),
            http: reqwest::Client::new(),
            process,
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the emulator answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "emulator {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn requests(&self) -> Vec<RecordedRequest> {
        let log = self
            .admin(reqwest::Method::GET, "/_emulator/requests", None)
            .await;
        serde_json::from_value(log).unwrap()
    }

    /// `GET /_emulator/tokens`: every request to the token endpoints, oldest first.
    pub async fn token_requests(&self) -> Vec<TokenRequest> {
        let log = self
            .admin(reqwest::Method::GET, "/_emulator/tokens", None)
            .await;
        serde_json::from_value(log).unwrap()
    }

    /// `METHOD path` of every request that is not a read.
    pub async fn writes(&self) -> Vec<String> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// How many requests of `method` went to a path ending in `suffix`.
    pub async fn count(&self, method: &str, suffix: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }

    pub async fn fault(&self, fault: Value) {
        self.admin(reqwest::Method::POST, "/_emulator/faults", Some(fault))
            .await;
    }

    pub async fn allow_purge(&self, allowed: bool) {
        self.admin(
            reqwest::Method::POST,
            "/_emulator/permissions",
            Some(json!({"purge": allowed})),
        )
        .await;
    }

    pub async fn advance_clock(&self, seconds: f64) {
        self.admin(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            Some(json!({"seconds": seconds})),
        )
        .await;
    }

    /// `GET /_emulator/billing`: what the provisioned deployments bill (`billingCapacity` is
    /// the capacity still billing now).
    pub async fn billing(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_emulator/billing", None)
            .await
    }

    /// Seeds an account (or, with `soft_deleted`, a soft-deleted copy) made outside the operator.
    pub async fn seed(&self, name: &str, account: Value, soft_deleted: bool) {
        let path = if soft_deleted {
            "/_emulator/deletedAccounts"
        } else {
            "/_emulator/accounts"
        };
        let seed =
            json!({"subscriptionId": SUB, "resourceGroup": RG, "name": name, "account": account});
        self.admin(reqwest::Method::POST, path, Some(seed)).await;
    }

    /// Waits until `enough` holds of the request log (polling the log, which is the emulator's
    /// record of what happened, not a guess at how long it takes).
    pub async fn wait_for(
        &self,
        what: &str,
        enough: impl Fn(&[RecordedRequest]) -> bool,
    ) -> Vec<RecordedRequest> {
        self.wait_for_within(WAIT, what, enough).await
    }

    pub async fn wait_for_within(
        &self,
        within: Duration,
        what: &str,
        enough: impl Fn(&[RecordedRequest]) -> bool,
    ) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + within;
        loop {
            let log = self.requests().await;
            if enough(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for `resyncs` more reads of the account `name` from now (a resync at rest is one
    /// read: a GET of the account, or the list of its resource group, here the only account in
    /// it).
    pub async fn wait_for_resyncs(&self, name: &str, resyncs: usize) {
        let path = format!("/accounts/{name}");
        let reads = |log: &[RecordedRequest]| {
            log.iter()
                .filter(|r| r.method == "GET")
                .filter(|r| r.path.ends_with(&path) || r.path.ends_with(RESOURCE_GROUP_LIST))
                .count()
        };
        let before = reads(&self.requests().await);
        self.wait_for(&format!("{resyncs} resyncs of {name}"), |log| {
            reads(log) >= before + resyncs
        })
        .await;
    }

    pub fn output(&self) -> String {
        self.process.output()
    }
}

/// `cognitive-operator emulator` on a free loopback port with the e2e resource group.
fn emulator_command(extra: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["emulator", "--listen", "127.0.0.1:0", "--retry-after", "0"])
        .arg(format!("--resource-group={SUB}/{RG}@{LOCATION}"))
        .args(extra);
    command
}

/// Waits until a line of the process's log contains `marker` and returns what follows it.
pub fn wait_for_line(process: &Process, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(rest) = process
            .output()
            .lines()
            .find_map(|line| line.split_once(marker).map(|(_, rest)| rest.to_string()))
        {
            return rest;
        }
        assert!(
            Instant::now() < deadline,
            "{} never printed {marker:?}",
            process.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A control plane with the CRD installed, the chart's RBAC applied, and the emulator.
pub struct Cluster {
    pub emulator: EmulatorProcess,
    pub plane: ControlPlane,
    pub client: kube::Client,
    /// A kubeconfig with a token of the chart's ServiceAccount: what the operator runs as.
    pub operator_kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(&[]).await
    }

    /// `emulator_flags` go to `cognitive-operator emulator`.
    pub async fn start_with(emulator_flags: &[&str]) -> Cluster {
        let plane = ControlPlane::start();
        let emulator = EmulatorProcess::start(plane.dir(), emulator_flags);
        Cluster::around(plane, emulator).await
    }

    /// The emulator with its TLS listener, taking only tokens it minted; `identity_flags`
    /// registers the identities, given the control plane's service-account issuer (the
    /// issuer of federated credentials for the operator's ServiceAccount).
    pub async fn start_with_tls(identity_flags: impl FnOnce(&str) -> Vec<String>) -> Cluster {
        let plane = ControlPlane::start();
        let flags = identity_flags(&plane.service_account_issuer());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let emulator = EmulatorProcess::start_tls(plane.dir(), &flags);
        Cluster::around(plane, emulator).await
    }

    async fn around(plane: ControlPlane, emulator: EmulatorProcess) -> Cluster {
        let client = plane.client().await;
        let operator_kubeconfig = plane.dir().join("operator.kubeconfig");
        let cluster = Cluster {
            emulator,
            plane,
            client,
            operator_kubeconfig,
        };
        cluster.install_crd();
        cluster.create_namespace(OPERATOR_NAMESPACE);
        cluster.install_chart_rbac(&[]);
        cluster
    }

    pub fn install_crd(&self) {
        let crd = repo_path("crds").display().to_string();
        self.plane.kubectl(&["apply", "--server-side", "-f", &crd]);
        self.plane.kubectl(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{CRD_NAME}"),
            &format!("crd/{DEPLOYMENT_CRD_NAME}"),
            "--timeout=60s",
        ]);
        // Established is not yet served discovery (envtest polls discovery the same way).
        let deadline = Instant::now() + WAIT;
        while !self.discovered(&[CRD_NAME, DEPLOYMENT_CRD_NAME]) {
            assert!(Instant::now() < deadline, "the CRD never reaches discovery");
            std::thread::sleep(Duration::from_millis(200));
        }
        // Nor is its schema published yet: the API server does that asynchronously, and
        // kubectl explain reads it.
        let published = |kind: &str| {
            let schema = ["explain", kind];
            self.plane.kubectl_output(&schema).status.success()
        };
        while !published("cognitiveservicesaccounts.spec")
            || !published("cognitiveservicesdeployments.spec")
        {
            assert!(
                Instant::now() < deadline,
                "the CRD's schema is never published"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn discovered(&self, crds: &[&str]) -> bool {
        let names = self.plane.kubectl(&[
            "api-resources",
            "--api-group=cognitive-operator.dev",
            "-o",
            "name",
        ]);
        crds.iter().all(|crd| names.contains(crd))
    }

    pub fn create_namespace(&self, name: &str) {
        self.plane.kubectl(&["create", "namespace", name]);
    }

    /// `helm template` of the chart with `sets`.
    pub fn helm_template(&self, sets: &[&str]) -> String {
        let chart = repo_path("charts/cognitive-operator");
        let mut command = Command::new(self.plane.binary("helm"));
        command
            .args(["template", "cognitive-operator"])
            .arg(&chart)
            .args(["--namespace", OPERATOR_NAMESPACE]);
        for set in sets {
            command.args(["--set", set]);
        }
        let output = command.output().expect("run helm");
        assert!(
            output.status.success(),
            "helm template failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Applies the ServiceAccount, roles and bindings the chart renders (a Deployment cannot
    /// run here: no kubelet) and writes a kubeconfig with a token of that ServiceAccount.
    pub fn install_chart_rbac(&self, sets: &[&str]) {
        let rendered = self.helm_template(sets);
        let rbac: Vec<&str> = rendered
            .split("\n---")
            .filter(|document| {
                [
                    "ServiceAccount",
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "Role",
                    "RoleBinding",
                ]
                .iter()
                .any(|kind| document.contains(&format!("\nkind: {kind}\n")))
            })
            .collect();
        assert!(rbac.len() >= 5, "the chart renders its RBAC:\n{rendered}");
        let output = self
            .plane
            .kubectl_stdin(&["apply", "-f", "-"], &rbac.join("\n---\n"));
        assert!(
            output.status.success(),
            "apply the chart's RBAC: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = self.plane.kubectl(&[
            "create",
            "token",
            "cognitive-operator",
            "--namespace",
            OPERATOR_NAMESPACE,
            "--duration=2h",
        ]);
        self.plane
            .write_kubeconfig(&self.operator_kubeconfig, token.trim());
    }

    /// `cognitive-operator run` as the chart's ServiceAccount against the emulator, with the
    /// static token.
    pub fn start_operator(&self, name: &str, extra: &[&str]) -> Process {
        self.start_operator_as(name, &OperatorIdentity::Static, extra)
    }

    /// `cognitive-operator run` as the chart's ServiceAccount, authenticating to the emulator
    /// as `identity`.
    pub fn start_operator_as(
        &self,
        name: &str,
        identity: &OperatorIdentity,
        extra: &[&str],
    ) -> Process {
        let mut command = Command::new(BINARY);
        command
            .env("KUBECONFIG", &self.operator_kubeconfig)
            .env("POD_NAME", name)
            // Nothing may leave the machine: any HTTP request not for loopback (an Entra ID
            // token request for a resource's own service principal, say) meets a closed
            // loopback port instead of the network. ALL_PROXY, which reqwest reads and kube
            // does not (kube would refuse HTTPS_PROXY without its http-proxy feature).
            .env("ALL_PROXY", CLOSED_LOOPBACK_PROXY)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .arg("run");
        identity.configure(&mut command, &self.emulator);
        command
            .args(["--subscription-id", SUB, "--http-addr", "127.0.0.1:0"])
            // The emulator names no Retry-After with an account create, as Azure does; its
            // operations end in seconds, not the minutes the 5 s default is paced for.
            .args(["--default-poll-seconds", "1"])
            .args([
                "--lease-namespace",
                OPERATOR_NAMESPACE,
                "--log-format",
                "json",
            ])
            .args(extra);
        // One tenant, unless the test grants scopes itself.
        if !extra.iter().any(|arg| arg.starts_with("--default-scopes")) {
            command.arg("--default-scopes=*");
        }
        let log = self.plane.dir().join(format!("{name}.log"));
        Process::spawn(name, command, log)
    }

    pub fn accounts(&self, namespace: &str) -> Api<CognitiveServicesAccount> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// `kubectl apply -f -` of `manifest` as the admin; returns the output or the refusal.
    pub fn apply(&self, manifest: &str) -> Result<String, String> {
        let output = kubectl_stdin(
            &self.plane.binary("kubectl"),
            &self.plane.kubeconfig,
            &["apply", "-f", "-"],
            manifest,
        );
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(stderr)
        }
    }

    /// `kubectl wait --for=condition=Ready csd --all`.
    pub fn wait_deployments_ready(&self, namespace: &str) {
        self.plane.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "csd",
            "--all",
            "--namespace",
            namespace,
            &format!("--timeout={}s", WAIT.as_secs()),
        ]);
    }

    /// `kubectl wait --for=condition=Ready csa/NAME`.
    pub fn wait_ready(&self, namespace: &str, name: &str) {
        self.plane.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("csa/{name}"),
            "--namespace",
            namespace,
            &format!("--timeout={}s", WAIT.as_secs()),
        ]);
    }

    /// Waits until `condition` holds of the resource (a watch, not a poll).
    pub async fn wait_for(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        condition: impl Condition<CognitiveServicesAccount>,
    ) -> Option<CognitiveServicesAccount> {
        tokio::time::timeout(
            WAIT,
            await_condition(self.accounts(namespace), name, condition),
        )
        .await
        .unwrap_or_else(|_| panic!("{namespace}/{name}: waited {WAIT:?} for {what}"))
        .unwrap()
    }

    /// The kstatus verdict (cli-utils, as Flux computes it) of each resource of `kind`.
    pub fn kstatus(&self, namespace: &str, kind: &str) -> Vec<String> {
        let objects = self
            .plane
            .kubectl(&["get", kind, "--namespace", namespace, "-o", "json"]);
        let output = pipe(&self.plane.binary("kstatus-judge"), &[], &objects);
        assert!(
            output.status.success(),
            "kstatus-judge failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// events.k8s.io/v1 events in `namespace`, as `reason` strings.
    pub fn event_reasons(&self, namespace: &str) -> Vec<String> {
        self.events(namespace)
            .iter()
            .map(|event| event["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The events.k8s.io/v1 events in `namespace`.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        let events: Value = serde_json::from_str(&self.plane.kubectl(&[
            "get",
            "events.events.k8s.io",
            "--namespace",
            namespace,
            "-o",
            "json",
        ]))
        .unwrap();
        events["items"].as_array().cloned().unwrap_or_default()
    }
}

/// A Ready=True condition whose observedGeneration is the object's generation.
pub fn is_ready() -> impl Condition<CognitiveServicesAccount> {
    |object: Option<&CognitiveServicesAccount>| {
        object.is_some_and(|o| {
            o.status.as_ref().is_some_and(|s| {
                s.observed_generation == o.metadata.generation
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
    }
}

/// Ready (as [`is_ready`]) at `generation`: the operator has seen the spec change.
pub fn is_ready_at(generation: i64) -> impl Condition<CognitiveServicesAccount> {
    move |object: Option<&CognitiveServicesAccount>| {
        is_ready().matches_object(object)
            && object.is_some_and(|o| o.metadata.generation == Some(generation))
    }
}

/// The condition `type_` is True with `reason`.
pub fn has_condition(
    type_: &'static str,
    reason: &'static str,
) -> impl Condition<CognitiveServicesAccount> {
    move |object: Option<&CognitiveServicesAccount>| {
        object.and_then(|o| o.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True" && c.reason == reason)
        })
    }
}

/// A minimal account manifest in `namespace`; `spec_extra` is merged into the spec.
pub fn account_manifest(namespace: &str, name: &str, spec_extra: Value) -> String {
    let mut spec = json!({
        "resourceGroup": RG,
        "location": LOCATION,
        "kind": "OpenAI",
        "sku": {"name": "S0"},
        "resyncInterval": "2s",
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesAccount",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
    .to_string()
}

/// Waits (a watch) until the object `name` with `uid` is gone; panics with `what` after WAIT.
pub async fn wait_deleted<K>(api: Api<K>, name: &str, uid: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::time::timeout(
        WAIT,
        await_condition(api, name, conditions::is_deleted(uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: not gone after {}s", WAIT.as_secs()))
    .unwrap();
}
