//! kstatus conditions from a verdict: `Ready`, `Reconciling` and `Stalled`, each with the
//! generation it describes and a transition time that moves only when its status changes.

use crate::api::{Condition, FieldDrift};

use super::{FieldDiff, Verdict};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// The three conditions' (status, reason, message), before timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub ready: (bool, String, String),
    pub reconciling: Option<(String, String)>,
    pub stalled: Option<(String, String)>,
}

impl Summary {
    pub fn ready() -> Self {
        Summary::ready_with("the account matches the spec")
    }

    pub fn ready_with(message: &str) -> Self {
        Summary {
            ready: (true, "Succeeded".into(), message.into()),
            reconciling: None,
            stalled: None,
        }
    }

    pub fn progressing(reason: &str, message: &str) -> Self {
        Summary {
            ready: (false, reason.into(), message.into()),
            reconciling: Some((reason.into(), message.into())),
            stalled: None,
        }
    }

    pub fn stalled(reason: &str, message: &str) -> Self {
        Summary {
            ready: (false, reason.into(), message.into()),
            reconciling: None,
            stalled: Some((reason.into(), message.into())),
        }
    }

    /// Not ready, but neither working nor stuck (Observe mode's findings, Pause).
    pub fn idle(reason: &str, message: &str) -> Self {
        Summary {
            ready: (false, reason.into(), message.into()),
            reconciling: None,
            stalled: None,
        }
    }

    pub fn from_verdict(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Ready => Summary::ready(),
            Verdict::Progressing { reason, message } => Summary::progressing(reason, message),
            Verdict::Stalled { reason, message } => Summary::stalled(reason, message),
            Verdict::Observed { reason, message } => Summary::idle(reason, message),
            Verdict::Paused => {
                Summary::idle("Paused", "reconcilePolicy is Pause: no ARM calls are made")
            }
            Verdict::Deleted { message } => Summary::progressing("Deleted", message),
        }
    }
}

/// Builds the conditions, keeping `lastTransitionTime` of a condition whose status is unchanged.
pub fn conditions(
    summary: &Summary,
    generation: Option<i64>,
    previous: &[Condition],
    now: &str,
) -> Vec<Condition> {
    let flag = |on: bool| if on { "True" } else { "False" };
    let (ready, ready_reason, ready_message) = &summary.ready;
    let entries = [
        (
            READY,
            flag(*ready),
            ready_reason.clone(),
            ready_message.clone(),
        ),
        condition_entry(RECONCILING, &summary.reconciling),
        condition_entry(STALLED, &summary.stalled),
    ];
    entries
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let since = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string());
            Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

fn condition_entry(
    type_: &'static str,
    value: &Option<(String, String)>,
) -> (&'static str, &'static str, String, String) {
    match value {
        Some((reason, message)) => (type_, "True", reason.clone(), message.clone()),
        None => (type_, "False", type_.to_string() + "Cleared", String::new()),
    }
}

/// The status form of a drift list.
pub fn drift_entries(drift: &[FieldDiff]) -> Vec<FieldDrift> {
    drift
        .iter()
        .map(|d| FieldDrift {
            field: d.path.clone(),
            desired: d.desired.to_string(),
            observed: d.observed.to_string(),
        })
        .collect()
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = conditions(&Summary::progressing("Creating", "m"), Some(1), &[], "t1");
        assert_eq!(find(&first, READY).unwrap().status, "False");
        assert_eq!(find(&first, RECONCILING).unwrap().status, "True");
        let same = conditions(
            &Summary::progressing("Updating", "m2"),
            Some(2),
            &first,
            "t2",
        );
        assert!(same.iter().all(|c| c.last_transition_time == "t1"));
        assert_eq!(find(&same, READY).unwrap().reason, "Updating");
        let ready = conditions(&Summary::ready(), Some(2), &same, "t3");
        assert_eq!(find(&ready, READY).unwrap().last_transition_time, "t3");
        assert_eq!(find(&ready, STALLED).unwrap().last_transition_time, "t1");
        assert!(ready.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn stalled_is_not_reconciling() {
        let c = conditions(&Summary::stalled("AlreadyExists", "m"), None, &[], "t");
        assert_eq!(find(&c, STALLED).unwrap().status, "True");
        assert_eq!(find(&c, RECONCILING).unwrap().status, "False");
        assert_eq!(find(&c, READY).unwrap().reason, "AlreadyExists");
    }
}
