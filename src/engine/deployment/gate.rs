//! A deployment reconcile at its account's write gate.

use jiff::Timestamp;

use super::outcome::DeploymentOutcome;
use super::pass::DeploymentPass;
use crate::arm::lro::PendingOperation;
use crate::engine::Engine;
use crate::engine::common::{GATE_WAIT, Next};
use crate::planner::status::Summary;

pub(super) fn waiting_for_the_gate(
    pass: &mut DeploymentPass<'_>,
    holder: &str,
) -> DeploymentOutcome {
    let message =
        format!("another write on the account is in flight ({holder}); this one follows it");
    pass.finish(
        Summary::progressing("WaitingForAccountWrite", &message),
        Next::After(GATE_WAIT),
    )
}

/// This reconcile at its account's write gate.
pub(super) struct Gate<'a> {
    pub(super) engine: &'a Engine,
    pub(super) account_id: String,
    pub(super) writer: String,
}

impl Gate<'_> {
    pub(super) fn enter(&self, now: Timestamp) -> Result<(), String> {
        self.engine
            .gate
            .try_enter(&self.account_id, &self.writer, now)
    }

    pub(super) fn hold(&self, operation: &PendingOperation, now: Timestamp) {
        self.engine
            .gate
            .hold(&self.account_id, &self.writer, operation, now)
    }

    pub(super) fn started(&self, operation: &PendingOperation) {
        self.engine
            .gate
            .started(&self.account_id, &self.writer, operation)
    }

    pub(super) fn operation(&self) -> Option<PendingOperation> {
        self.engine
            .gate
            .operation_of(&self.account_id, &self.writer)
    }

    pub(super) fn leave(&self) {
        self.engine.gate.leave(&self.account_id, &self.writer)
    }
}
