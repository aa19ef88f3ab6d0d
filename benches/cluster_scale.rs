//! N accounts applied at once on the real control plane (etcd + kube-apiserver built by
//! tools/k8s/build.sh), reconciled by the real `cognitive-operator run` process against the
//! `cognitive-operator emulator` process: time until all are Ready, API server requests per
//! account (its `/metrics` `apiserver_request_total`), and status writes per account over three
//! resyncs at rest.
//!
//! `cargo bench --bench cluster_scale -- [--accounts 200] [--concurrency 8] [--time-scale 1]
//! [--resync-secs 60]`

#[path = "../tests/support/control_plane.rs"]
mod control_plane;
mod support;

#[path = "../tests/support/e2e.rs"]
mod e2e;
#[path = "../tests/support/identities.rs"]
mod identities;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Cluster, account_manifest};
use serde_json::{Value, json};

const NAMESPACE: &str = "scale";

/// `apiserver_request_total` by (resource/subresource, verb), from the metrics text.
fn requests_by_kind(plane: &control_plane::ControlPlane) -> BTreeMap<String, f64> {
    let metrics = plane.kubectl(&["get", "--raw", "/metrics"]);
    let mut counts = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |key: &str| {
            series
                .split(&format!("{key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        let mut resource = label("resource");
        if !label("subresource").is_empty() {
            resource = format!("{resource}/{}", label("subresource"));
        }
        let key = format!("{} {}", label("verb"), resource);
        *counts.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    counts
}

fn difference(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(key, value)| (key.clone(), value - before.get(key).copied().unwrap_or(0.0)))
        .filter(|(_, delta)| *delta > 0.0)
        .collect()
}

fn main() {
    let args = support::Args::from_env();
    let accounts: usize = args.value("--accounts", 200);
    let concurrency: u32 = args.value("--concurrency", 8);
    // Azure's own refill rates by default: the operator's client limiter assumes them, and a
    // faster emulator would only hide what the client waits for.
    let scale: f64 = args.value("--time-scale", 1.0);
    // Every account reads once per resync: 200 at 60 s is 3.3 of the 25 reads/s Azure refills.
    let resync_secs: u64 = args.value("--resync-secs", 60);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let scale = scale.to_string();
        let cluster = Cluster::start_with(&["--time-scale", &scale]).await;
        cluster.create_namespace(NAMESPACE);
        let concurrency = concurrency.to_string();
        let _operator =
            cluster.start_operator("operator", &["--no-leader-election", "--concurrency", &concurrency]);
        let items: Vec<Value> = (0..accounts)
            .map(|i| {
                let manifest = account_manifest(
                    NAMESPACE,
                    &format!("acct-{i:04}"),
                    json!({"resyncInterval": format!("{resync_secs}s")}),
                );
                serde_json::from_str(&manifest).unwrap()
            })
            .collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();

        let before = requests_by_kind(&cluster.plane);
        let started = Instant::now();
        let created = cluster.plane.kubectl_stdin(&["create", "-f", "-"], &list);
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        cluster.plane.kubectl(&[
            "wait", "--for=condition=Ready", "csa", "--all", "--namespace", NAMESPACE, "--timeout=900s",
        ]);
        let converged = started.elapsed();
        let during = difference(&requests_by_kind(&cluster.plane), &before);

        // Three resyncs at rest: one GET of each account per resync in the emulator's log.
        let gets = |log: &[arm_emulator::RecordedRequest]| {
            log.iter()
                .filter(|r| r.method == "GET" && r.path.contains("/accounts/acct-"))
                .count()
        };
        let resting = requests_by_kind(&cluster.plane);
        let gets_before = gets(&cluster.emulator.requests().await);
        cluster
            .emulator
            .wait_for_within(Duration::from_secs(5 * resync_secs + 60), "three resyncs of every account", |log| {
                gets(log) >= gets_before + 3 * accounts
            })
            .await;
        let at_rest = difference(&requests_by_kind(&cluster.plane), &resting);
        let status_writes: f64 = at_rest
            .iter()
            .filter(|(key, _)| key.ends_with("cognitiveservicesaccounts/status"))
            .map(|(_, n)| n)
            .sum::<f64>()
            + 0.0; // an empty f64 sum is -0.0
        let total: f64 = during.values().sum();
        println!("cluster_scale: {accounts} accounts, operator concurrency {concurrency}, ARM refill x{scale}");
        println!("  all Ready after          {:.1} s", converged.as_secs_f64());
        println!(
            "  API server requests      {total:.0} while converging ({:.2} per account, the test's own included)",
            total / accounts as f64
        );
        for (key, n) in &during {
            println!("    {key:<48} {n:>6.0}  ({:.2} per account)", n / accounts as f64);
        }
        println!(
            "  status writes at rest    {status_writes:.0} over 3 resyncs ({:.3} per account)",
            status_writes / accounts as f64
        );
        for (key, n) in &at_rest {
            println!("    {key:<48} {n:>6.0}");
        }
    });
}
