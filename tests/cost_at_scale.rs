//! What the engine spends of ARM's budgets: resyncs at rest answered by one list per resource
//! group, and creates behind a long line of writes coming back for their turn instead of
//! holding a worker. The figures at scale are benchmarks (`cargo bench --bench converge`).

mod common;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use arm_emulator::RecordedRequest;
use cognitive_operator::api::CognitiveServicesAccount;
use cognitive_operator::arm::{
    AccountRef, ArmClient, ArmClientConfig, BucketShape, Credential, RateLimits,
};
use cognitive_operator::cli::converge::converge;
use cognitive_operator::engine::{Engine, Next, Outcome};
use common::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);
const OTHER_RG: &str = "rg-other";
const LIST: &str = "/providers/Microsoft.CognitiveServices/accounts";

fn resource(name: &str, resource_group: &str) -> CognitiveServicesAccount {
    let place = fixtures::Place {
        subscription: SUB,
        resource_group,
        location: LOCATION,
        namespace: "team-a",
    };
    let mut resource = fixtures::account(name, &place, &[("team", "a")]);
    // As stored by the API server: the status names the generation it met.
    resource.metadata.generation = Some(1);
    resource
}

fn reads(requests: &[RecordedRequest]) -> Vec<&str> {
    requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.as_str())
        .collect()
}

fn reason(outcome: &Outcome, type_: &str) -> String {
    condition(&outcome.status.conditions, type_).reason.clone()
}

#[tokio::test]
async fn resyncs_at_rest_cost_one_list_per_resource_group_and_drift_is_read_before_it_is_fixed() {
    let emulator = emulator_with(1).await;
    emulator.seed_resource_group(SUB, OTHER_RG, LOCATION);
    let client = client(&emulator);
    let engine = Engine::default();
    let mut resources = Vec::new();
    for (i, group) in [RG, RG, RG, OTHER_RG, OTHER_RG, OTHER_RG]
        .iter()
        .enumerate()
    {
        let mut r = resource(&format!("acct-{i}"), group);
        assert!(
            converge(&engine, &client, &mut r, false, TIMEOUT, |_| {})
                .await
                .ready()
        );
        resources.push(r);
    }

    // One resync of each: a list of each resource group, no GET of any account, no write.
    emulator.clear_requests();
    let now = jiff::Timestamp::now();
    for r in &mut resources {
        let outcome = engine.reconcile(&client, r, false, now).await;
        assert!(outcome.ready(), "{:?}", outcome.status.conditions);
        assert_eq!(outcome.next, Next::Resync);
        r.status = Some(outcome.status);
    }
    let requests = emulator.requests();
    let listed = reads(&requests);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|path| path.ends_with(LIST)), "{listed:?}");
    assert!(writes(&requests).is_empty());

    // Someone changes acct-1 by hand. At the next resync (the lists now stale) the list shows
    // the drift, and the account itself is read before it is patched.
    let by_hand = json!({"tags": {"team": "a", "added-by-hand": "x"}});
    let target = AccountRef::new(SUB, RG, "acct-1");
    let written = client.update_account(&target, &by_hand).await.unwrap();
    if let Some(operation) = written.operation {
        client.wait(&operation, TIMEOUT).await.unwrap();
    }
    emulator.clear_requests();
    let later = now + jiff::SignedDuration::from_mins(20);
    for r in &resources {
        engine.reconcile(&client, r, false, later).await;
    }
    let requests = emulator.requests();
    let account_reads: Vec<_> = reads(&requests)
        .into_iter()
        .filter(|p| !p.ends_with(LIST))
        .collect();
    // (A synchronous PATCH is read back once more, as after any write.)
    assert!(!account_reads.is_empty(), "{requests:?}");
    assert!(
        account_reads.iter().all(|p| *p == target.id()),
        "{requests:?}"
    );
    assert_eq!(writes(&requests), vec![format!("PATCH {}", target.id())]);
    let get = requests
        .iter()
        .position(|r| r.method == "GET" && r.path == target.id());
    let patch = requests.iter().position(|r| r.method == "PATCH");
    assert!(get < patch, "read before it is written: {requests:?}");

    // A spec change is never answered from a list, however fresh: the account is read first.
    emulator.clear_requests();
    let changed = &mut resources[4];
    changed.metadata.generation = Some(2);
    changed
        .spec
        .tags
        .as_mut()
        .unwrap()
        .insert("env".into(), "prod".into());
    engine.reconcile(&client, changed, false, later).await;
    let requests = emulator.requests();
    let first = &requests[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", &*AccountRef::new(SUB, OTHER_RG, "acct-4").id())
    );
    assert_eq!(writes(&requests).len(), 1, "{requests:?}");
}

#[tokio::test]
async fn a_create_behind_a_long_line_of_writes_books_its_turn_and_reads_only_when_it_comes_back() {
    let emulator = emulator_with(1).await;
    let roomy = BucketShape {
        capacity: 1000.0,
        refill_per_sec: 1000.0,
    };
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.rate_limits = Some(RateLimits {
        reads: roomy,
        writes: BucketShape {
            capacity: 1.0,
            refill_per_sec: 50.0,
        },
        deletes: roomy,
    });
    let client = ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap();
    // Writes of other reconciles wait for a token: more than a worker should wait behind.
    let mut others = tokio::task::JoinSet::new();
    for i in 0..12 {
        let client = client.clone();
        let body = json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}});
        let body: cognitive_operator::arm::Account = serde_json::from_value(body).unwrap();
        let target = AccountRef::new(SUB, RG, &format!("other-{i}"));
        others.spawn(async move { client.create_account(&target, &body).await.is_ok() });
    }
    while client.writes_queued(SUB) <= 9.0 {
        tokio::task::yield_now().await;
    }
    let engine = Engine::default();
    let mut r = resource("late", RG);

    let outcome = engine
        .reconcile(&client, &r, false, jiff::Timestamp::now())
        .await;
    assert_eq!(reason(&outcome, "Reconciling"), "WaitingForWriteTurn");
    assert!(
        matches!(outcome.next, Next::After(wait) if wait > Duration::ZERO),
        "{:?}",
        outcome.next
    );
    let of_late = |emulator: &arm_emulator::Emulator| -> Vec<RecordedRequest> {
        let requests = emulator.requests().into_iter();
        requests.filter(|q| q.path.ends_with("/late")).collect()
    };
    assert!(of_late(&emulator).is_empty(), "no ARM call while it waits");
    r.status = Some(outcome.status.clone());

    // Coming back early (another event) keeps its turn and still calls nothing.
    let early = engine
        .reconcile(&client, &r, false, jiff::Timestamp::now())
        .await;
    assert_eq!(reason(&early, "Reconciling"), "WaitingForWriteTurn");
    assert!(of_late(&emulator).is_empty());
    assert_eq!(
        early.status, outcome.status,
        "waiting again writes no new status"
    );
    r.status = Some(early.status);

    // At its turn it reads once, creates, and reads the account to see it done.
    let outcome = converge(&engine, &client, &mut r, false, TIMEOUT, |_| {}).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    let requests = of_late(&emulator);
    let calls: Vec<_> = requests.iter().map(|q| q.method.as_str()).collect();
    assert_eq!(calls, vec!["GET", "PUT", "GET"], "{requests:?}");
    while let Some(created) = others.join_next().await {
        assert!(created.unwrap());
    }
}
