//! One ARM write at a time per account.
//!
//! ARM answers 409 `RequestConflict` ("Another operation is being performed on the parent
//! resource") to a write on an account, or on any of its deployments, while another write
//! there is in flight. Rather than provoking that, every write this process starts on an
//! account — the account's own and its deployments' — first enters the account's gate, and
//! the writer holds it until its long-running operation ends. A writer that finds the gate
//! taken waits (Reconciling) and is told when it frees.
//!
//! The holder's operation is kept with it: a reconcile that starts from an object cached
//! before its status recorded the operation still resumes it (rather than losing the handle and
//! blocking the account until the lease ends).
//!
//! The gate lives in memory: after a restart, resumed operations take it again as they are
//! polled, and a conflict with an operation nobody here knows of (another tool's, or a lost
//! process's) still gets ARM's 409, which is retried with backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::broadcast;

use crate::arm::lro::PendingOperation;

/// How long a holder keeps the gate without showing up (each poll of its operation renews
/// it): a holder whose resource vanished must not block the account for good.
const LEASE: SignedDuration = SignedDuration::from_mins(10);

#[derive(Clone, Debug)]
pub struct WriteGate {
    inner: Arc<Mutex<HashMap<String, Holder>>>,
    freed: broadcast::Sender<String>,
}

#[derive(Clone, Debug)]
struct Holder {
    key: String,
    until: Timestamp,
    /// The long-running operation the holder started, once it has.
    operation: Option<PendingOperation>,
}

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate {
            inner: Arc::default(),
            freed: broadcast::channel(1024).0,
        }
    }
}

impl Holder {
    fn new(writer: &str, now: Timestamp, operation: Option<PendingOperation>) -> Self {
        Holder {
            key: writer.to_string(),
            until: now + LEASE,
            operation,
        }
    }
}

/// Gates are keyed by the account's ARM id, which ARM compares case-insensitively.
fn gate_key(account_id: &str) -> String {
    account_id.to_ascii_lowercase()
}

impl WriteGate {
    /// Enters the account's gate as `writer`, or says who holds it. Entering again as the
    /// holder renews the lease.
    pub fn try_enter(&self, account_id: &str, writer: &str, now: Timestamp) -> Result<(), String> {
        let mut holders = self.inner.lock().expect("gate lock");
        let key = gate_key(account_id);
        match holders.get(&key) {
            Some(holder) if holder.key != writer && holder.until > now => Err(holder.key.clone()),
            Some(holder) if holder.key == writer => {
                let operation = holder.operation.clone();
                holders.insert(key, Holder::new(writer, now, operation));
                Ok(())
            }
            _ => {
                holders.insert(key, Holder::new(writer, now, None));
                Ok(())
            }
        }
    }

    /// Records the operation the holder `writer` started.
    pub fn started(&self, account_id: &str, writer: &str, operation: &PendingOperation) {
        let mut holders = self.inner.lock().expect("gate lock");
        if let Some(holder) = holders.get_mut(&gate_key(account_id))
            && holder.key == writer
        {
            holder.operation = Some(operation.clone());
        }
    }

    /// The operation `writer` started on the account and has not seen end, if it holds the gate.
    pub fn operation_of(&self, account_id: &str, writer: &str) -> Option<PendingOperation> {
        let holders = self.inner.lock().expect("gate lock");
        holders
            .get(&gate_key(account_id))
            .filter(|h| h.key == writer)
            .and_then(|h| h.operation.clone())
    }

    /// Takes the gate whoever holds it: a resumed operation is in flight already.
    pub fn hold(
        &self,
        account_id: &str,
        writer: &str,
        operation: &PendingOperation,
        now: Timestamp,
    ) {
        let mut holders = self.inner.lock().expect("gate lock");
        let holder = Holder::new(writer, now, Some(operation.clone()));
        holders.insert(gate_key(account_id), holder);
    }

    /// Leaves the gate, if `writer` holds it, and tells those waiting for the account.
    pub fn leave(&self, account_id: &str, writer: &str) {
        let key = gate_key(account_id);
        let mut holders = self.inner.lock().expect("gate lock");
        if holders.get(&key).is_some_and(|h| h.key == writer) {
            holders.remove(&key);
            drop(holders);
            let _ = self.freed.send(key);
        }
    }

    /// The ids (lower-cased) of accounts whose gate frees, as they do.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.freed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn one_writer_at_a_time_per_account() {
        let gate = WriteGate::default();
        let mut freed = gate.subscribe();
        assert_eq!(gate.try_enter("/A", "deployment a", at(0)), Ok(()));
        assert_eq!(
            gate.try_enter("/a", "deployment b", at(1)),
            Err("deployment a".to_string())
        );
        assert_eq!(gate.try_enter("/other", "deployment b", at(1)), Ok(()));
        // Only the holder leaves it.
        gate.leave("/a", "deployment b");
        assert!(gate.try_enter("/a", "deployment b", at(2)).is_err());
        gate.leave("/a", "deployment a");
        assert_eq!(freed.try_recv().unwrap(), "/a");
        assert_eq!(gate.try_enter("/a", "deployment b", at(3)), Ok(()));
    }

    #[test]
    fn the_holder_finds_its_operation_in_the_gate() {
        let gate = WriteGate::default();
        gate.try_enter("/a", "me", at(0)).unwrap();
        assert_eq!(gate.operation_of("/a", "me"), None);
        let operation = PendingOperation {
            kind: crate::arm::OperationKind::Create,
            poll: crate::arm::PollMethod::AzureAsyncOperation,
            url: "https://arm/op".into(),
            resource_id: "/a/deployments/x".into(),
            started_at: "2027-01-15T08:00:00Z".into(),
            retry_after_seconds: None,
        };
        gate.started("/a", "me", &operation);
        assert_eq!(gate.operation_of("/A", "me"), Some(operation.clone()));
        assert_eq!(gate.operation_of("/a", "someone else"), None);
        // Renewing keeps it; leaving forgets it.
        gate.try_enter("/a", "me", at(1)).unwrap();
        assert_eq!(gate.operation_of("/a", "me"), Some(operation));
        gate.leave("/a", "me");
        assert_eq!(gate.operation_of("/a", "me"), None);
    }

    #[test]
    fn a_holder_that_never_returns_loses_the_gate_after_its_lease() {
        let gate = WriteGate::default();
        gate.try_enter("/a", "gone", at(0)).unwrap();
        assert!(gate.try_enter("/a", "next", at(599)).is_err());
        assert_eq!(gate.try_enter("/a", "next", at(601)), Ok(()));
    }
}
