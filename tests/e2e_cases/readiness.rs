//! `/readyz`, what the chart's readiness probe and `kubectl rollout status` wait for: ready once
//! the watch has synced, with leader election or without.

use std::time::{Duration, Instant};

use crate::support::control_plane::Process;
use crate::support::e2e::*;

/// The address the operator serves its probes on, from its log line.
fn probe_address(operator: &Process) -> String {
    let rest = wait_for_line(operator, "serving /metrics, /healthz and /readyz");
    let (_, after) = rest
        .split_once(r#""addr":""#)
        .expect("the line names its address");
    after.split('"').next().unwrap().to_string()
}

/// Polls `/readyz` of a real process until it answers 200 or 30 s pass; the status it last saw.
async fn readiness_within_30_s(address: &str) -> u16 {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = match http.get(format!("http://{address}/readyz")).send().await {
            Ok(answer) => answer.status().as_u16(),
            Err(_) => 0,
        };
        if status == 200 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_operator_turns_ready_once_its_watch_has_synced() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let alone = cluster.start_operator("alone", &["--no-leader-election"]);
    assert_eq!(
        readiness_within_30_s(&probe_address(&alone)).await,
        200,
        "a single replica, no resources yet"
    );
    drop(alone);
    let elected = cluster.start_operator("elected", &["--namespace", "team-a"]);
    assert_eq!(
        readiness_within_30_s(&probe_address(&elected)).await,
        200,
        "the leader, watching one namespace"
    );
}
