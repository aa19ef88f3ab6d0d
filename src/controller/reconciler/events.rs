//! Events, best effort, for both kinds.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use super::state::Reconciler;

/// Events notes are limited to 1 kB by the API server.
pub(super) const NOTE_LIMIT: usize = 1000;

impl Reconciler {
    /// Events are best effort: a failure is logged, never fails the reconcile.
    pub(super) async fn publish_to(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, NOTE_LIMIT)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            // E.g. a namespace being deleted refuses new events: the log keeps what it said.
            tracing::warn!(reason, note, error = %e, "could not publish event");
        }
    }
}

pub(super) fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let text = "é".repeat(600);
        let cut = truncate(&text, NOTE_LIMIT);
        assert!(cut.len() <= NOTE_LIMIT + "…".len());
    }
}
