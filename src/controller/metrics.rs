//! The controller's Prometheus metrics. One registry holds the reconcile counters, the ARM
//! client counters ([`ArmMetrics`], shared by every ARM client) and gauges computed at scrape
//! time from the watch cache, so they cover every watched resource, reconciled yet or not.

use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::{CognitiveServicesAccount, CognitiveServicesAccountStatus};
use crate::arm::ArmMetrics;
use crate::planner::status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: String,
    status: String,
}

/// How a reconcile ended, for `cognitive_operator_reconciles_total{result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    Ready,
    Progressing,
    Stalled,
    /// Neither ready nor working: Observe findings, Pause.
    Idle,
    /// The deletion policy ran to the end and the finalizer is gone.
    Deleted,
    /// The reconcile itself failed (Kubernetes API, key calls); retried with backoff.
    Error,
}

impl ReconcileResult {
    fn label(self) -> &'static str {
        match self {
            ReconcileResult::Ready => "ready",
            ReconcileResult::Progressing => "progressing",
            ReconcileResult::Stalled => "stalled",
            ReconcileResult::Idle => "idle",
            ReconcileResult::Deleted => "deleted",
            ReconcileResult::Error => "error",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    duration: Histogram,
    resources: Family<ConditionLabels, Gauge>,
    pending_operations: Gauge,
    arm: ArmMetrics,
    /// The current leader's watch cache; `None` while not reconciling.
    store: Mutex<Option<Store<CognitiveServicesAccount>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(ArmMetrics::default())
    }
}

impl Metrics {
    pub fn new(arm: ArmMetrics) -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "cognitive_operator_reconciles",
            "Reconciles by result (ready, progressing, stalled, idle, deleted, error)",
            reconciles.clone(),
        );
        // 10 ms to ~80 s: a reconcile is a few ARM calls, or a wait for the rate limiter.
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "cognitive_operator_reconcile_duration_seconds",
            "Time spent in one reconcile",
            duration.clone(),
        );
        let resources = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "cognitive_operator_resources",
            "Watched resources by condition (Ready, Stalled) and its status (True, False, Unknown)",
            resources.clone(),
        );
        let pending_operations = Gauge::default();
        registry.register(
            "cognitive_operator_pending_operations",
            "Resources with a long-running ARM operation in flight",
            pending_operations.clone(),
        );
        arm.register(&mut registry);
        Metrics {
            registry,
            reconciles,
            duration,
            resources,
            pending_operations,
            arm,
            store: Mutex::new(None),
        }
    }

    /// The counters every ARM client adds to.
    pub fn arm(&self) -> &ArmMetrics {
        &self.arm
    }

    pub fn record_reconcile(&self, result: ReconcileResult, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.label().into(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn reconciles(&self, result: ReconcileResult) -> u64 {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.label().into(),
            })
            .get()
    }

    /// Points the resource gauges at a watch cache (`None`: this replica is not reconciling).
    pub fn set_store(&self, store: Option<Store<CognitiveServicesAccount>>) {
        *self.store.lock().expect("metrics lock") = store;
    }

    /// The Prometheus text exposition, with the resource gauges brought up to date.
    pub fn encode(&self) -> String {
        let store = self.store.lock().expect("metrics lock").clone();
        let objects = store.map(|s| s.state()).unwrap_or_default();
        self.count_resources(objects.iter().map(|o| o.as_ref()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Sets the resource gauges from the objects' statuses.
    pub fn count_resources<'a>(&self, objects: impl Iterator<Item = &'a CognitiveServicesAccount>) {
        self.resources.clear();
        let mut pending = 0;
        for condition in [status::READY, status::STALLED] {
            for state in ["True", "False", "Unknown"] {
                self.resources
                    .get_or_create(&ConditionLabels {
                        condition: condition.into(),
                        status: state.into(),
                    })
                    .set(0);
            }
        }
        // A resource without a status (or a malformed one's placeholder whose status did not
        // parse) counts as Unknown.
        let none = CognitiveServicesAccountStatus::default();
        for object in objects {
            let status = object.status.as_ref().unwrap_or(&none);
            pending += i64::from(status.pending_operation.is_some());
            for condition in [status::READY, status::STALLED] {
                let state = status::find(&status.conditions, condition)
                    .map(|c| c.status.clone())
                    .unwrap_or_else(|| "Unknown".into());
                self.resources
                    .get_or_create(&ConditionLabels {
                        condition: condition.into(),
                        status: state,
                    })
                    .inc();
            }
        }
        self.pending_operations.set(pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(status: serde_json::Value) -> CognitiveServicesAccount {
        CognitiveServicesAccount {
            metadata: kube::api::ObjectMeta {
                name: Some("x".into()),
                ..Default::default()
            },
            spec: Default::default(),
            status: serde_json::from_value(status).expect("a valid status"),
        }
    }

    #[test]
    fn exposition_has_every_metric_family() {
        let metrics = Metrics::default();
        metrics.record_reconcile(ReconcileResult::Ready, Duration::from_millis(20));
        let labels = crate::arm::client::RequestLabels {
            operation: "GetAccount".into(),
            status: "200".into(),
        };
        metrics.arm().requests.get_or_create(&labels).inc();
        let text = metrics.encode();
        for name in [
            "cognitive_operator_reconciles_total{result=\"ready\"} 1",
            "cognitive_operator_reconcile_duration_seconds_count 1",
            "cognitive_operator_resources{condition=\"Ready\",status=\"True\"} 0",
            "cognitive_operator_pending_operations 0",
            "cognitive_operator_arm_requests_total{operation=\"GetAccount\",status=\"200\"} 1",
            "cognitive_operator_arm_throttle_waits_total",
            "cognitive_operator_arm_throttled_total",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn resources_are_counted_by_condition() {
        let metrics = Metrics::default();
        let ready = object(json!({"conditions": [
            {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "", "lastTransitionTime": "t"},
            {"type": "Stalled", "status": "False", "reason": "StalledCleared", "message": "", "lastTransitionTime": "t"}
        ]}));
        let creating = object(json!({
            "conditions": [{"type": "Ready", "status": "False", "reason": "Creating", "message": "", "lastTransitionTime": "t"}],
            "pendingOperation": {"kind": "Create", "poll": "Location", "url": "u", "resourceId": "r", "startedAt": "t"}
        }));
        let fresh = object(json!(null));
        metrics.count_resources([&ready, &creating, &fresh].into_iter());
        let text = metrics.encode_without_store();
        assert!(
            text.contains("cognitive_operator_resources{condition=\"Ready\",status=\"True\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cognitive_operator_resources{condition=\"Ready\",status=\"False\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "cognitive_operator_resources{condition=\"Stalled\",status=\"Unknown\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("cognitive_operator_pending_operations 1"),
            "{text}"
        );
    }

    impl Metrics {
        fn encode_without_store(&self) -> String {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
            text
        }
    }
}
