//! Leader election through a `coordination.k8s.io/v1` Lease, so that two replicas never write
//! to ARM for the same resource at the same time.
//!
//! The rules are client-go's: a candidate takes the Lease when nobody holds it, or when the
//! record has not changed for `lease_duration` *as measured on the candidate's own clock* (so
//! clock skew between pods does not matter); every update is conditional on the resourceVersion
//! read, so of two candidates racing for an expired Lease exactly one wins. The leader counts
//! itself leader only until `renew_deadline` after its last successful renewal, which is shorter
//! than `lease_duration`: it stops before anyone else may start.
//!
//! Time comes from an injectable [`Clock`], so tests drive expiry without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;

use super::error::{is_conflict, is_not_found};

/// The time source of an elector.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += SignedDuration::try_from(by).expect("a test duration fits");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// The Lease's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a record must stay unchanged before another candidate may take the Lease.
    pub lease_duration: Duration,
    /// How long after its last successful renewal the leader keeps acting.
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(5),
        }
    }
}

/// What the election loop publishes after each round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseState {
    /// This replica may reconcile.
    pub leading: bool,
    /// The last round reached the Lease (a follower that can see it stands by correctly).
    pub reachable: bool,
}

/// What a candidate last saw of the Lease, and when (on its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Observation {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    transitions: i32,
    seen_at: Timestamp,
}

/// One candidate for one Lease.
pub struct LeaseElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    clock: Arc<dyn Clock>,
    observed: Option<Observation>,
    /// The last successful acquisition or renewal, on our clock.
    renewed_at: Option<Timestamp>,
}

impl std::fmt::Debug for LeaseElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeaseElector({} as {})", self.name, self.identity)
    }
}

/// `{hostname}-{random}`: the pod name says who leads, the suffix tells a restarted pod apart
/// from its previous life (which may still hold the Lease).
pub fn holder_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cognitive-operator".into());
    let suffix: String = (0..6)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("{host}-{suffix}")
}

impl LeaseElector {
    pub fn new(
        api: Api<Lease>,
        name: impl Into<String>,
        identity: impl Into<String>,
        timing: LeaseTiming,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LeaseElector {
            api,
            name: name.into(),
            identity: identity.into(),
            timing,
            clock,
            observed: None,
            renewed_at: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Whether this candidate may act now: it renewed less than `renew_deadline` ago.
    pub fn is_leader(&self) -> bool {
        let deadline = signed(self.timing.renew_deadline);
        self.renewed_at
            .is_some_and(|at| self.clock.now() < at + deadline)
    }

    /// One round: create the Lease, renew it, take it over when expired, or stand by.
    /// Returns whether this candidate leads afterwards. An API error leaves the leadership
    /// to run out at its deadline (a blip does not drop it; a partition does).
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = self.clock.now();
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            return self.create(now).await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(&spec, now);
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        if holder == Some(self.identity.as_str()) {
            return self.write(lease, now, false).await;
        }
        if holder.is_none() || self.observed_expired(&spec, now) {
            return self.write(lease, now, true).await;
        }
        self.renewed_at = None;
        Ok(false)
    }

    /// Gives the Lease up (shutdown): followers may take it at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        if !self.is_leader() {
            return Ok(());
        }
        self.renewed_at = None;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(self.clock.now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    /// Runs rounds every `retry_period`, publishing the outcome on `state`, until `stop` turns
    /// true; then releases the Lease if held.
    ///
    /// A round never outlasts `retry_period`, and the wait after it ends no later than the renew
    /// deadline, so a leader that cannot renew announces the end of its leadership at the
    /// deadline itself — `lease_duration - renew_deadline` before anyone may take over.
    pub async fn run(mut self, state: watch::Sender<LeaseState>, mut stop: watch::Receiver<bool>) {
        loop {
            let round =
                tokio::time::timeout(self.timing.retry_period, self.try_acquire_or_renew()).await;
            let reachable = match round {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, error = %e, "leader election: lease request failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "leader election: lease request timed out");
                    false
                }
            };
            self.publish(&state, reachable);
            let pause = self
                .time_to_deadline()
                .map_or(self.timing.retry_period, |left| {
                    left.min(self.timing.retry_period)
                });
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            // The deadline may have passed while waiting.
            self.publish(&state, reachable);
        }
        state.send_replace(LeaseState::default());
        if let Err(e) = self.release().await {
            tracing::warn!(lease = %self.name, error = %e, "could not release the lease; it expires by itself");
        }
    }

    fn publish(&self, state: &watch::Sender<LeaseState>, reachable: bool) {
        let now = LeaseState {
            leading: self.is_leader(),
            reachable,
        };
        state.send_if_modified(|was| {
            if was.leading != now.leading {
                tracing::info!(lease = %self.name, identity = %self.identity, leading = now.leading, "leadership changed");
            }
            std::mem::replace(was, now) != now
        });
    }

    /// While leading: the time left before the renew deadline.
    fn time_to_deadline(&self) -> Option<Duration> {
        let deadline = self.renewed_at? + signed(self.timing.renew_deadline);
        let left = self.clock.now().duration_until(deadline);
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }

    fn observe(&mut self, spec: &LeaseSpec, now: Timestamp) {
        let record = Observation {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
            seen_at: now,
        };
        let changed = self.observed.as_ref().is_none_or(|seen| {
            (&seen.holder, seen.renew_time, seen.transitions)
                != (&record.holder, record.renew_time, record.transitions)
        });
        if changed {
            self.observed = Some(record);
        }
    }

    /// The record has stayed the same for the Lease's duration on our clock.
    fn observed_expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let duration = spec
            .lease_duration_seconds
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(self.timing.lease_duration);
        self.observed
            .as_ref()
            .is_some_and(|seen| now >= seen.seen_at + signed(duration))
    }

    async fn create(&mut self, now: Timestamp) -> Result<bool, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(self.spec(now, now, 0)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(self.won(now)),
            Err(e) if is_conflict(&e) => Ok(self.lost()),
            Err(e) => Err(e),
        }
    }

    /// Renews (or, with `takeover`, acquires) the Lease read as `lease`; its resourceVersion
    /// makes the update fail if anyone wrote in between.
    async fn write(
        &mut self,
        lease: Lease,
        now: Timestamp,
        takeover: bool,
    ) -> Result<bool, kube::Error> {
        let old = lease.spec.clone().unwrap_or_default();
        let (acquired, transitions) = if takeover {
            (now, old.lease_transitions.unwrap_or(0) + 1)
        } else {
            let acquired = old.acquire_time.map(|t| t.0).unwrap_or(now);
            (acquired, old.lease_transitions.unwrap_or(0))
        };
        let mut updated = lease;
        updated.spec = Some(self.spec(acquired, now, transitions));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(written) => {
                if let Some(spec) = &written.spec {
                    self.observe(spec, now);
                }
                Ok(self.won(now))
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(self.lost()),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    fn won(&mut self, now: Timestamp) -> bool {
        self.renewed_at = Some(now);
        true
    }

    /// Someone else wrote the Lease first: stop acting at once.
    fn lost(&mut self) -> bool {
        self.renewed_at = None;
        false
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}
