//! Scripted faults: the next N requests matching a method and a path fragment are answered
//! late, with an error, not at all (connection dropped), or start an operation that will fail.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};

use super::error::ArmError;
use super::{ArmErrorBody, Fault};

struct ArmedFault {
    fault: Fault,
    /// `None`: matches forever (`times: 0`).
    remaining: Option<u32>,
}

#[derive(Default)]
pub(crate) struct FaultBook {
    armed: Mutex<Vec<ArmedFault>>,
    /// Lets the hot path skip the lock when no fault is armed.
    any: AtomicBool,
}

impl FaultBook {
    pub(crate) fn add(&self, fault: Fault) {
        let remaining = match fault.times.unwrap_or(1) {
            0 => None,
            times => Some(times),
        };
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        armed.push(ArmedFault { fault, remaining });
        self.any.store(true, Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        armed.clear();
        self.any.store(false, Ordering::Release);
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        let armed = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        armed.iter().map(|armed| armed.fault.clone()).collect()
    }

    /// The first armed fault matching the request, counting it as used.
    pub(crate) fn take(&self, method: &Method, path_and_query: &str) -> Option<Fault> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = armed
            .iter()
            .position(|armed| matches(&armed.fault, method, path_and_query))?;
        let fault = armed[index].fault.clone();
        if let Some(remaining) = &mut armed[index].remaining {
            *remaining -= 1;
            if *remaining == 0 {
                armed.remove(index);
            }
        }
        self.any.store(!armed.is_empty(), Ordering::Release);
        Some(fault)
    }
}

fn matches(fault: &Fault, method: &Method, path_and_query: &str) -> bool {
    let method_matches = fault
        .method
        .as_deref()
        .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method.as_str()));
    let path_matches = fault
        .path_contains
        .as_deref()
        .is_none_or(|fragment| path_and_query.contains(fragment));
    method_matches && path_matches
}

/// The error a fault answers with instead of the resource provider, if it scripts one.
pub(crate) fn injected_error(fault: &Fault) -> Option<ArmError> {
    let status = fault.status?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = fault
        .code
        .clone()
        .unwrap_or_else(|| default_code(status).to_string());
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| format!("Injected fault: {status}."));
    Some(ArmError::Scripted {
        status,
        body: ArmErrorBody { code, message },
        retry_after: fault.retry_after,
    })
}

fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "SubscriptionRequestsThrottled",
        409 => "Conflict",
        404 => "NotFound",
        400 => "BadRequest",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InternalServerError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(method: &str, path: &str, times: Option<u32>) -> Fault {
        Fault {
            method: Some(method.into()),
            path_contains: Some(path.into()),
            status: Some(500),
            code: None,
            message: None,
            retry_after: None,
            times,
            delay_ms: None,
            drop: None,
            drop_after_handling: None,
            operation_error: None,
        }
    }

    #[test]
    fn fault_matches_its_times_then_disarms() {
        let book = FaultBook::default();
        book.add(fault("get", "accounts/x", Some(2)));
        assert!(book.take(&Method::PUT, "/accounts/x").is_none());
        assert!(book.take(&Method::GET, "/accounts/y").is_none());
        assert!(book.take(&Method::GET, "/accounts/x").is_some());
        assert!(book.take(&Method::GET, "/accounts/x").is_some());
        assert!(book.take(&Method::GET, "/accounts/x").is_none());
    }

    #[test]
    fn zero_times_matches_forever() {
        let book = FaultBook::default();
        book.add(fault("GET", "a", Some(0)));
        for _ in 0..5 {
            assert!(book.take(&Method::GET, "/a").is_some());
        }
    }
}
