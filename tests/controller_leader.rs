//! Leader election: two candidates sharing one Lease on a fake API server never lead at the
//! same time. Time is a manual clock moved by the test; nothing sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cognitive_operator::controller::leader::{LeaseElector, LeaseTiming, ManualClock};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_fake_client::{ClientBuilder, interceptor};
use serde_json::Value;

const LEASE: &str = "cognitive-operator";
const NS: &str = "operators";

fn elector(client: &kube::Client, identity: &str, clock: &ManualClock) -> LeaseElector {
    LeaseElector::new(
        Api::namespaced(client.clone(), NS),
        LEASE,
        identity,
        LeaseTiming::default(),
        Arc::new(clock.clone()),
    )
}

async fn fake_api() -> kube::Client {
    ClientBuilder::new().build().await.expect("fake API")
}

fn assert_at_most_one_leader(a: &LeaseElector, b: &LeaseElector) {
    assert!(
        !(a.is_leader() && b.is_leader()),
        "{} and {} both lead",
        a.identity(),
        b.identity()
    );
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    leases.get(LEASE).await.unwrap().spec?.holder_identity
}

#[tokio::test]
async fn two_candidates_never_lead_at_the_same_time_and_the_standby_takes_over() {
    let client = fake_api().await;
    let clock = ManualClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let mut a = elector(&client, "pod-a", &clock);
    let mut b = elector(&client, "pod-b", &clock);

    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "the first candidate creates the lease"
    );
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert_at_most_one_leader(&a, &b);

    // A renews every 5s; B keeps standing by however long this goes on.
    for _ in 0..10 {
        clock.advance(Duration::from_secs(5));
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap());
        assert_at_most_one_leader(&a, &b);
    }

    // A stops renewing (hung or partitioned). Each second, B looks again.
    let mut took_over_after = None;
    for second in 1..=30 {
        clock.advance(Duration::from_secs(1));
        b.try_acquire_or_renew().await.unwrap();
        assert_at_most_one_leader(&a, &b);
        if b.is_leader() {
            took_over_after = Some(second);
            break;
        }
    }
    let took_over_after = took_over_after.expect("the standby takes over");
    assert!(
        (15..=16).contains(&took_over_after),
        "B waits one lease duration after the last renewal it saw, took {took_over_after}s"
    );
    assert!(
        !a.is_leader(),
        "A stopped at its renew deadline, before B started"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("pod-b"));

    // A comes back: it finds B's lease fresh and stands by.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    assert_at_most_one_leader(&a, &b);
}

#[tokio::test]
async fn the_leader_stops_acting_at_its_renew_deadline_even_without_an_api_answer() {
    let client = fake_api().await;
    let clock = ManualClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let mut a = elector(&client, "pod-a", &clock);
    assert!(a.try_acquire_or_renew().await.unwrap());

    clock.advance(Duration::from_secs(9));
    assert!(a.is_leader());
    clock.advance(Duration::from_secs(1));
    assert!(!a.is_leader(), "10s without a renewal ends the leadership");
}

#[tokio::test]
async fn of_two_candidates_racing_for_an_expired_lease_exactly_one_wins() {
    // Both candidates read the same version of the lease (a get interceptor serves a frozen
    // copy), as when their reads cross in flight; the resourceVersion decides.
    let frozen: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    let served = frozen.clone();
    let client = ClientBuilder::new()
        .with_interceptor_funcs(
            interceptor::Funcs::new()
                .get(move |ctx| Ok(served.lock().unwrap().clone().filter(|_| ctx.name == LEASE))),
        )
        .build()
        .await
        .unwrap();
    let clock = ManualClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let mut gone = elector(&client, "pod-gone", &clock);
    let mut a = elector(&client, "pod-a", &clock);
    let mut b = elector(&client, "pod-b", &clock);
    assert!(gone.try_acquire_or_renew().await.unwrap());
    assert!(!a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());

    clock.advance(Duration::from_secs(16));
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let stale = leases.get(LEASE).await.unwrap();
    *frozen.lock().unwrap() = Some(serde_json::to_value(&stale).unwrap());

    let a_won = a.try_acquire_or_renew().await.unwrap();
    let b_won = b.try_acquire_or_renew().await.unwrap();

    assert!(a_won, "the first write with the read version wins");
    assert!(
        !b_won,
        "the second write carries a stale resourceVersion and loses"
    );
    assert!(!(a.is_leader() && b.is_leader()));
    *frozen.lock().unwrap() = None;
    assert_eq!(holder(&client).await.as_deref(), Some("pod-a"));
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let client = fake_api().await;
    let clock = ManualClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let mut a = elector(&client, "pod-a", &clock);
    let mut b = elector(&client, "pod-b", &clock);
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());

    a.release().await.unwrap();
    assert!(!a.is_leader());
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "no wait for expiry after a release"
    );
    assert_at_most_one_leader(&a, &b);
}

#[tokio::test]
async fn the_election_loop_publishes_leadership_and_releases_the_lease_on_stop() {
    use cognitive_operator::controller::leader::LeaseState;
    use tokio::sync::watch;

    let client = fake_api().await;
    let clock = ManualClock::new(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let (state_tx, mut state) = watch::channel(LeaseState::default());
    let (stop_tx, stop) = watch::channel(false);
    let running = tokio::spawn(elector(&client, "pod-a", &clock).run(state_tx, stop));

    state.wait_for(|s| s.leading && s.reachable).await.unwrap();
    assert_eq!(holder(&client).await.as_deref(), Some("pod-a"));

    stop_tx.send(true).unwrap();
    running.await.unwrap();
    assert!(!state.borrow().leading);
    assert_eq!(
        holder(&client).await,
        None,
        "the lease is released on shutdown"
    );
}
