//! Long-running operations as the provider hands them out: starting one (the headers of the
//! write that starts it, in the contract's form or the recorded one) and answering its URLs.

use axum::http::{HeaderName, StatusCode, header};

use super::{Answer, Call, Reply, Target};
use crate::ArmErrorBody;
use crate::deployment::DeploymentKey;
use crate::error::ArmError;
use crate::model::ProvisioningState;
use crate::operations::{Operation, OperationKind, OperationStatus, OperationStyle, Rollback};
use crate::render;
use crate::signature::Signature;
use crate::store::{NewOperation, State};

/// The form in which a write hands out its operation.
#[derive(Clone, Copy, Debug)]
pub(super) enum Form {
    /// Azure-AsyncOperation (`operationStatuses`), Location (`operationResults`), Retry-After.
    Contract,
    /// Azure-AsyncOperation alone, at the signed `operationResults` URL of api-version
    /// 2017-04-18, whose status document reads the given state while the operation runs.
    Recorded(ProvisioningState),
}

/// Whether this write answers synchronously, as the recordings show Azure doing. A scripted
/// operation failure keeps the long-running form: only an operation can fail later.
pub(super) fn answers_at_once(call: &Call) -> bool {
    call.settings.profile.recorded_forms() && call.operation_error.is_none()
}

/// A long-running operation on the target account.
pub(super) fn on_account(
    kind: OperationKind,
    target: &Target,
    location: &str,
    rollback: Option<Rollback>,
    call: &Call,
) -> NewOperation {
    NewOperation {
        kind,
        subscription_id: target.subscription.to_string(),
        location: location.to_string(),
        account: target.key(),
        deployment: None,
        resource_id: target.id(),
        planned_error: call.operation_error.clone(),
        rollback,
    }
}

/// Registers a long-running operation and returns the ARM async headers of its form.
pub(super) fn start(
    state: &mut State,
    new: NewOperation,
    form: Form,
    call: &Call,
) -> Vec<(HeaderName, String)> {
    let style = match form {
        Form::Contract => OperationStyle::Contract,
        Form::Recorded(running) => OperationStyle::Recorded {
            running: running.as_str(),
            signature: Signature::new(call.now),
        },
    };
    let operation = state.start_operation(new, style, call.now);
    let azure_async_operation = HeaderName::from_static("azure-asyncoperation");
    if let Some(signature) = operation.signature() {
        let url = format!("{}{}", call.base_url, operation.recorded_url(signature));
        return vec![(azure_async_operation, url)];
    }
    vec![
        (
            azure_async_operation,
            operation_url(operation, "operationStatuses", call),
        ),
        (
            header::LOCATION,
            operation_url(operation, "operationResults", call),
        ),
        (
            header::RETRY_AFTER,
            call.settings.retry_after_secs.to_string(),
        ),
    ]
}

fn operation_url(operation: &Operation, collection: &str, call: &Call) -> String {
    format!(
        "{}{}?api-version={}",
        call.base_url,
        operation.path(collection),
        call.api_version
    )
}

fn polled<'s>(
    state: &'s mut State,
    subscription: &str,
    id: &str,
    call: &Call,
) -> Result<&'s Operation, ArmError> {
    let pacing = call.settings.pacing;
    match state.poll(id, call.now, pacing) {
        Some(operation) if operation.subscription_id.eq_ignore_ascii_case(subscription) => {
            Ok(operation)
        }
        _ => Err(ArmError::OperationNotFound(id.to_string())),
    }
}

/// Whether the operation `id` was handed out in the recorded form (it then has one URL, the
/// signed `operationResults` one).
fn is_recorded(state: &State, id: &str) -> bool {
    state
        .operations
        .get(id)
        .is_some_and(|operation| operation.signature().is_some())
}

/// The `operationStatuses` URL: the status document, with Retry-After while running. An
/// operation of the recorded form has no such URL (404).
pub(super) fn operation_status(
    state: &mut State,
    subscription: &str,
    id: &str,
    call: &Call,
) -> Answer {
    if is_recorded(state, id) {
        return Err(ArmError::OperationNotFound(id.to_string()));
    }
    let operation = polled(state, subscription, id, call)?;
    let mut reply = Reply::ok(operation.status_document());
    if operation.status == OperationStatus::InProgress {
        reply.headers.push((
            header::RETRY_AFTER,
            call.settings.retry_after_secs.to_string(),
        ));
    }
    Ok(reply)
}

/// The `operationResults` URL. Of the recorded form: the status document (no Retry-After),
/// when the URL carries the operation's signature (else 404, without counting a poll). Of the
/// contract's (the Location URL): 202 while running, then the resource (200), nothing (204) or
/// the error.
pub(super) fn operation_result(
    state: &mut State,
    subscription: &str,
    id: &str,
    call: &Call,
) -> Answer {
    if let Some(signature) = state.operations.get(id).and_then(Operation::signature) {
        if !signature.matches(call.query) {
            return Err(ArmError::OperationNotFound(id.to_string()));
        }
        let operation = polled(state, subscription, id, call)?;
        return Ok(Reply::ok(operation.status_document()));
    }
    let operation = polled(state, subscription, id, call)?.clone();
    match operation.status {
        OperationStatus::InProgress => Ok(Reply {
            status: StatusCode::ACCEPTED,
            body: None,
            headers: vec![
                (
                    header::LOCATION,
                    operation_url(&operation, "operationResults", call),
                ),
                (
                    header::RETRY_AFTER,
                    call.settings.retry_after_secs.to_string(),
                ),
            ],
        }),
        OperationStatus::Failed => Err(ArmError::Scripted {
            status: StatusCode::BAD_REQUEST,
            body: operation.error.clone().unwrap_or_else(|| ArmErrorBody {
                code: "OperationFailed".into(),
                message: "The operation failed.".into(),
            }),
            retry_after: None,
        }),
        OperationStatus::Succeeded => Ok(finished_resource(state, &operation, call)),
    }
}

/// What the Location URL of a succeeded operation answers: the resource it created or updated
/// (200), or nothing (204) after a delete or purge.
fn finished_resource(state: &State, operation: &Operation, call: &Call) -> Reply {
    if !operation.kind.returns_resource() {
        return Reply::empty(StatusCode::NO_CONTENT);
    }
    let shape = call.shape();
    let body = match &operation.deployment {
        Some(name) => state
            .deployments
            .get(&DeploymentKey {
                account: operation.account.clone(),
                name: name.clone(),
            })
            .map(|deployment| render::deployment(deployment, shape)),
        None => state
            .accounts
            .get(&operation.account)
            .map(|account| render::account(account, shape)),
    };
    match body {
        Some(body) => Reply::ok(body),
        None => Reply::empty(StatusCode::NO_CONTENT),
    }
}
