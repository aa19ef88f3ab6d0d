//! The billing meter of a deployment: capacity-hours of provisioned throughput on the emulator
//! clock. Computed lazily from timestamps (no timer): what accrued before the last capacity change
//! plus the current capacity times the hours since, up to now or to when the meter stopped.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::catalogue::SkuRange;

#[derive(Clone, Debug)]
pub(crate) struct Meter {
    /// ARM id of the deployment it meters.
    pub id: String,
    pub sku: String,
    pub capacity: u32,
    /// Capacity-hours accrued before `since`.
    accrued_before: f64,
    since: Timestamp,
    stopped_at: Option<Timestamp>,
}

impl Meter {
    pub(crate) fn start(id: String, sku: &str, capacity: u32, now: Timestamp) -> Self {
        Self {
            id,
            sku: sku.to_string(),
            capacity,
            accrued_before: 0.0,
            since: now,
            stopped_at: None,
        }
    }

    fn bills(&self) -> bool {
        SkuRange::bills_hourly(&self.sku)
    }

    /// Whether the meter is running now (a provisioned SKU, deployment not deleted or purged).
    pub(crate) fn billing(&self) -> bool {
        self.bills() && self.stopped_at.is_none()
    }

    pub(crate) fn accrued(&self, now: Timestamp) -> f64 {
        if !self.bills() {
            return 0.0;
        }
        let until = self.stopped_at.unwrap_or(now);
        self.accrued_before + f64::from(self.capacity) * hours_between(self.since, until)
    }

    /// From `now` on the meter counts `capacity`.
    pub(crate) fn set_capacity(&mut self, capacity: u32, now: Timestamp) {
        if self.stopped_at.is_some() || capacity == self.capacity {
            return;
        }
        self.accrued_before = self.accrued(now);
        self.since = now;
        self.capacity = capacity;
    }

    pub(crate) fn stop(&mut self, at: Timestamp) {
        if self.stopped_at.is_none() {
            self.stopped_at = Some(at.max(self.since));
        }
    }

    /// One entry of `GET /_emulator/billing`.
    pub(crate) fn report(&self, now: Timestamp, account_soft_deleted: bool) -> Value {
        json!({
            "id": self.id,
            "sku": self.sku,
            "capacity": self.capacity,
            "accruedCapacityHours": self.accrued(now),
            "billing": self.billing(),
            "accountSoftDeleted": account_soft_deleted,
            "deleted": self.stopped_at.is_some(),
        })
    }
}

fn hours_between(from: Timestamp, until: Timestamp) -> f64 {
    (until.duration_since(from).as_secs_f64() / 3600.0).max(0.0)
}

/// The whole `GET /_emulator/billing` document from every meter's entry.
pub(crate) fn summary(entries: Vec<Value>) -> Value {
    let billing_capacity: u64 = entries
        .iter()
        .filter(|entry| entry["billing"] == true)
        .filter_map(|entry| entry["capacity"].as_u64())
        .sum();
    let accrued: f64 = entries
        .iter()
        .filter_map(|entry| entry["accruedCapacityHours"].as_f64())
        .sum();
    json!({
        "billingCapacity": billing_capacity,
        "accruedCapacityHours": accrued,
        "deployments": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn accrues_capacity_hours_across_a_capacity_change_and_stops() {
        let start = Timestamp::now();
        let hour = SignedDuration::from_hours(1);
        let mut meter = Meter::start("d".into(), "ProvisionedManaged", 20, start);
        meter.set_capacity(50, start + hour);
        assert!((meter.accrued(start + hour * 2) - 70.0).abs() < 1e-9);
        meter.stop(start + hour * 2);
        assert!(!meter.billing());
        assert!((meter.accrued(start + hour * 10) - 70.0).abs() < 1e-9);
    }

    #[test]
    fn standard_never_bills() {
        let start = Timestamp::now();
        let meter = Meter::start("d".into(), "Standard", 20, start);
        assert!(!meter.billing());
        assert_eq!(meter.accrued(start + SignedDuration::from_hours(5)), 0.0);
    }
}
