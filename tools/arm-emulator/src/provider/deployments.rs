//! Deployments of an account (`.../accounts/{a}/deployments/{d}`), the location's model
//! catalogue and quota usages, and the in-process helpers behind `seed_deployment`,
//! `auto_upgrade` and `set_quota`.
//!
//! A deployment write is checked in full before anything happens (400s), then against the one
//! write at a time per account (409), then starts a long-running operation on the account's
//! operation slot, so the same machinery completes it and keeps the account's other writes out.

use axum::http::{HeaderName, Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::lro::{self, Form, answers_at_once};
use super::{Answer, Call, Reply, Target, paged};
use crate::catalogue::{self, OPENAI_FORMAT};
use crate::deployment::{
    Deployment, DeploymentKey, DeploymentPatch, DeploymentRequest, DeploymentSpec, NO_AUTO_UPGRADE,
    Placement, QuotaKey, check_not_deprecated, deployment_id, kind_deploys_models,
};
use crate::error::ArmError;
use crate::model::{Account, AccountKey, ProvisioningState, is_valid_account_name};
use crate::operations::{OperationKind, Rollback};
use crate::render;
use crate::routes::Route;
use crate::schema::ApiShape;
use crate::store::{NewOperation, State};

pub(super) fn addresses_deployments(route: &Route) -> bool {
    matches!(
        route,
        Route::Deployments { .. } | Route::Deployment { .. } | Route::DeploymentSkus { .. }
    )
}

pub(super) fn handle(state: &mut State, route: &Route, call: &Call) -> Answer {
    match (route, call.method.clone()) {
        (
            Route::Deployments {
                subscription,
                resource_group,
                account,
            },
            Method::GET,
        ) => {
            let account = Target {
                subscription,
                resource_group,
                name: account,
            };
            list(state, &account, call)
        }
        (Route::Deployment { .. }, method) => {
            let target = DeploymentTarget::of(route);
            match method {
                Method::GET => get(state, &target, call),
                Method::PUT => put(state, &target, call),
                Method::PATCH => patch(state, &target, call),
                Method::DELETE => delete(state, &target, call),
                method => Err(ArmError::MethodNotAllowed(method.to_string())),
            }
        }
        (Route::DeploymentSkus { .. }, Method::GET) => {
            skus(state, &DeploymentTarget::of(route), call)
        }
        (_, method) => Err(ArmError::MethodNotAllowed(method.to_string())),
    }
}

/// The deployment a request addresses, in the request's casing.
struct DeploymentTarget<'a> {
    account: Target<'a>,
    name: &'a str,
}

impl<'a> DeploymentTarget<'a> {
    fn of(route: &'a Route) -> Self {
        let (subscription, resource_group, account, name) = match route {
            Route::Deployment {
                subscription,
                resource_group,
                account,
                name,
            }
            | Route::DeploymentSkus {
                subscription,
                resource_group,
                account,
                name,
            } => (subscription, resource_group, account, name),
            _ => unreachable!("only deployment routes reach here"),
        };
        Self {
            account: Target {
                subscription,
                resource_group,
                name: account,
            },
            name,
        }
    }

    fn key(&self) -> DeploymentKey {
        DeploymentKey::new(self.account.key(), self.name)
    }

    fn not_found(&self) -> ArmError {
        ArmError::DeploymentNotFound(format!("{}/deployments/{}", self.account.id(), self.name))
    }
}

/// The account a deployment path is under: a missing or soft-deleted one is no parent.
fn parent<'s>(state: &'s State, account: &Target) -> Result<&'s Account, ArmError> {
    state
        .accounts
        .get(&account.key())
        .ok_or_else(|| ArmError::ParentResourceNotFound(account.name.to_string()))
}

fn existing<'s>(state: &'s State, target: &DeploymentTarget) -> Result<&'s Deployment, ArmError> {
    parent(state, &target.account)?;
    state
        .deployments
        .get(&target.key())
        .ok_or_else(|| target.not_found())
}

/// One write at a time per account: a deployment write waits until the account is Succeeded
/// and no operation runs on it or on any of its deployments.
fn ensure_writable(state: &State, account: &Account) -> Result<(), ArmError> {
    let busy = account.provisioning_state != ProvisioningState::Succeeded
        || state.running_operation(&account.key()).is_some();
    if busy {
        return Err(ArmError::ParentResourceBusy(account.arm_id()));
    }
    Ok(())
}

/// The new capacity must fit in what is left of the quota of the deployment's model and SKU in
/// the account's subscription and location (its own current capacity counts as already held).
fn check_quota(
    state: &State,
    account: &Account,
    spec: &DeploymentSpec,
    current: Option<&Deployment>,
) -> Result<(), ArmError> {
    let key = QuotaKey::new(
        &account.subscription_id,
        &account.location,
        spec.model.name,
        spec.sku.name,
    );
    let held = current.map_or(0, |current| u64::from(current.spec.capacity));
    let required = u64::from(spec.capacity).saturating_sub(held);
    if required == 0 {
        return Ok(());
    }
    let used = state.quota_used(&key);
    let limit = u64::from(state.quota_limit(&key));
    let available = limit.saturating_sub(used);
    if required > available {
        return Err(ArmError::InsufficientQuota {
            required,
            usage: key.usage_name(),
            available,
            used,
            limit,
        });
    }
    Ok(())
}

fn list(state: &State, account: &Target, call: &Call) -> Answer {
    let account = parent(state, account)?;
    let shape = call.shape();
    Ok(paged(
        state.deployments_of(&account.key()),
        |deployment| render::deployment(deployment, shape),
        call,
    ))
}

fn get(state: &State, target: &DeploymentTarget, call: &Call) -> Answer {
    Ok(Reply::ok(render::deployment(
        existing(state, target)?,
        call.shape(),
    )))
}

fn skus(state: &State, target: &DeploymentTarget, call: &Call) -> Answer {
    let deployment = existing(state, target)?;
    Ok(paged(
        deployment.spec.model.skus().iter(),
        render::deployment_sku,
        call,
    ))
}

/// PUT: create (201) or full update (200), both long-running.
fn put(state: &mut State, target: &DeploymentTarget, call: &Call) -> Answer {
    if !is_valid_account_name(target.name) {
        return Err(ArmError::InvalidDeploymentName(target.name.to_string()));
    }
    let account = parent(state, &target.account)?;
    let request = DeploymentRequest::parse(call.body, call.shape())?;
    if !kind_deploys_models(&account.spec.kind) {
        return Err(ArmError::kind_cannot_deploy(&account.spec.kind));
    }
    let current = state.deployments.get(&target.key());
    let current_spec = current.map(|current| &current.spec);
    let spec = request.resolve(current_spec, &account.location)?;
    check_not_deprecated(&spec, current_spec)?;
    check_quota(state, account, &spec, current)?;
    ensure_writable(state, account)?;
    if current.is_some() {
        return replace(state, target, spec, call);
    }
    let deployment = Deployment::new(&placement(account, target.name), spec, call.now);
    create(state, deployment, call)
}

fn placement<'a>(account: &'a Account, name: &'a str) -> Placement<'a> {
    Placement {
        subscription_id: &account.subscription_id,
        resource_group: &account.resource_group,
        account_name: &account.name,
        location: &account.location,
        name,
    }
}

fn create(state: &mut State, mut deployment: Deployment, call: &Call) -> Answer {
    if answers_at_once(call) {
        deployment.provisioning_state = ProvisioningState::Succeeded;
        let body = render::deployment(&deployment, call.shape());
        state.deployments.insert(deployment.key(), deployment);
        return Ok(Reply {
            status: StatusCode::CREATED,
            body: Some(body),
            headers: Vec::new(),
        });
    }
    let (key, body) = (
        deployment.key(),
        render::deployment(&deployment, call.shape()),
    );
    state.deployments.insert(key.clone(), deployment);
    let headers = start_operation(state, OperationKind::Create, &key, None, call);
    Ok(Reply {
        status: StatusCode::CREATED,
        body: Some(body),
        headers,
    })
}

fn replace(
    state: &mut State,
    target: &DeploymentTarget,
    spec: DeploymentSpec,
    call: &Call,
) -> Answer {
    let key = target.key();
    if answers_at_once(call) {
        let deployment = state
            .deployments
            .get_mut(&key)
            .ok_or_else(|| target.not_found())?;
        deployment.set_spec(spec, call.now);
        deployment.provisioning_state = ProvisioningState::Succeeded;
        return Ok(Reply::ok(render::deployment(deployment, call.shape())));
    }
    let (body, rollback) = begin_update(state, &key, spec, call);
    let headers = start_operation(state, OperationKind::Update, &key, Some(rollback), call);
    Ok(Reply {
        status: StatusCode::OK,
        body: Some(body),
        headers,
    })
}

/// Applies an update right away (GET shows the new values while `Accepted`) and returns the
/// response body and the deployment as it was, for rolling back a failed update.
fn begin_update(
    state: &mut State,
    key: &DeploymentKey,
    spec: DeploymentSpec,
    call: &Call,
) -> (Value, Rollback) {
    let deployment = state
        .deployments
        .get_mut(key)
        .expect("caller checked the deployment exists");
    let rollback = Rollback::Deployment(Box::new(deployment.clone()));
    deployment.set_spec(spec, call.now);
    deployment.provisioning_state = ProvisioningState::Accepted;
    (render::deployment(deployment, call.shape()), rollback)
}

/// PATCH (`PatchResourceTagsAndSku`): tags alone apply at once (200); a capacity change is
/// long-running (202, no body, as the contract declares).
fn patch(state: &mut State, target: &DeploymentTarget, call: &Call) -> Answer {
    let current = existing(state, target)?;
    let account = parent(state, &target.account)?;
    let spec = DeploymentPatch::parse(call.body)?.merge_into(&current.spec)?;
    check_quota(state, account, &spec, Some(current))?;
    ensure_writable(state, account)?;
    let key = target.key();
    let tags_only = spec.capacity == current.spec.capacity;
    if tags_only {
        let deployment = state
            .deployments
            .get_mut(&key)
            .ok_or_else(|| target.not_found())?;
        deployment.set_spec(spec, call.now);
        return Ok(Reply::ok(render::deployment(deployment, call.shape())));
    }
    let (_, rollback) = begin_update(state, &key, spec, call);
    let headers = start_operation(state, OperationKind::Update, &key, Some(rollback), call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

/// DELETE: 202 and an operation that removes the deployment (200 at once in the recorded
/// profile); 204 when there is none.
fn delete(state: &mut State, target: &DeploymentTarget, call: &Call) -> Answer {
    let account = parent(state, &target.account)?;
    let key = target.key();
    if !state.deployments.contains_key(&key) {
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    }
    ensure_writable(state, account)?;
    if answers_at_once(call) {
        state.remove_deployment(&key, call.now);
        return Ok(Reply::empty(StatusCode::OK));
    }
    if let Some(deployment) = state.deployments.get_mut(&key) {
        deployment.provisioning_state = ProvisioningState::Deleting;
    }
    let headers = start_operation(state, OperationKind::Delete, &key, None, call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

/// Registers a long-running operation on a deployment, in its account's operation slot.
fn start_operation(
    state: &mut State,
    kind: OperationKind,
    key: &DeploymentKey,
    rollback: Option<Rollback>,
    call: &Call,
) -> Vec<(HeaderName, String)> {
    let deployment = state
        .deployments
        .get(key)
        .expect("caller checked the deployment exists");
    let new = NewOperation {
        kind,
        subscription_id: deployment.subscription_id.clone(),
        location: deployment.location.clone(),
        account: key.account.clone(),
        deployment: Some(key.name.clone()),
        resource_id: deployment.arm_id(),
        planned_error: call.operation_error.clone(),
        rollback,
    };
    lro::start(state, new, Form::Contract, call)
}

/// `UsageListResult`: one usage per (model, SKU) quota of the subscription in the location.
pub(super) fn usages(state: &State, subscription: &str, location: &str, call: &Call) -> Reply {
    let usages: Vec<Value> = catalogue::quota_pairs()
        .map(|(model, sku)| {
            let key = QuotaKey::new(subscription, location, model, sku.name);
            render::usage(&key, state.quota_used(&key), state.quota_limit(&key))
        })
        .collect();
    paged(usages.iter(), Value::clone, call)
}

/// `Accounts_ListUsages` (not pageable): one usage per (model, SKU) quota of the catalogue,
/// `currentValue` the capacity this account's deployments hold, `limit` the quota's limit in
/// the subscription and location. Accounts of kinds that deploy no models have none.
pub(super) fn account_usages(state: &State, account: &Account) -> Reply {
    let held = |key: &QuotaKey| -> u64 {
        state
            .deployments_of(&account.key())
            .filter(|deployment| deployment.quota_key() == *key)
            .map(|deployment| u64::from(deployment.spec.capacity))
            .sum()
    };
    let usages: Vec<Value> = catalogue::quota_pairs()
        .filter(|_| kind_deploys_models(&account.spec.kind))
        .map(|(model, sku)| {
            let key = QuotaKey::new(&account.subscription_id, &account.location, model, sku.name);
            let mut usage = render::usage(&key, held(&key), state.quota_limit(&key));
            usage["status"] = json!("Included");
            usage
        })
        .collect();
    Reply::ok(json!({ "value": usages }))
}

/// Where a deployment put straight into state goes.
pub(crate) struct SeedTarget<'a> {
    pub subscription_id: &'a str,
    pub resource_group: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

impl SeedTarget<'_> {
    fn id(&self) -> String {
        deployment_id(
            self.subscription_id,
            self.resource_group,
            self.account,
            self.name,
        )
    }

    fn key(&self) -> DeploymentKey {
        DeploymentKey::new(
            AccountKey::new(self.subscription_id, self.resource_group, self.account),
            self.name,
        )
    }
}

/// Puts a `Succeeded` deployment straight into state under an active account, as if created
/// long ago by someone else: checked against the catalogue like a PUT, but not against quota,
/// deprecation or the one write at a time (it describes what exists, not a request).
pub(crate) fn seed_deployment(
    state: &mut State,
    target: &SeedTarget,
    body: &Value,
    now: Timestamp,
) -> Result<(), ArmError> {
    if !is_valid_account_name(target.name) {
        return Err(ArmError::InvalidDeploymentName(target.name.to_string()));
    }
    let account_target = Target {
        subscription: target.subscription_id,
        resource_group: target.resource_group,
        name: target.account,
    };
    let account = parent(state, &account_target)?;
    if !kind_deploys_models(&account.spec.kind) {
        return Err(ArmError::kind_cannot_deploy(&account.spec.kind));
    }
    // A seed may carry whatever the newest shapes can store.
    let request = DeploymentRequest::from_value(body, ApiShape::V2025_06_01)?;
    let spec = request.resolve(None, &account.location)?;
    let mut deployment = Deployment::new(&placement(account, target.name), spec, now);
    deployment.provisioning_state = ProvisioningState::Succeeded;
    let key = target.key();
    // A deployment of the same name is replaced; what it accrued stays on the bill.
    state.remove_deployment(&key, now);
    state.deployments.insert(key, deployment);
    Ok(())
}

/// Azure's automatic upgrade when a new default version is released: the deployment moves to
/// `version` unless its `versionUpgradeOption` is `NoAutoUpgrade`. Returns whether it moved.
pub(crate) fn auto_upgrade(
    state: &mut State,
    target: &SeedTarget,
    version: &str,
    now: Timestamp,
) -> Result<bool, ArmError> {
    let deployment = state
        .deployments
        .get_mut(&target.key())
        .ok_or_else(|| ArmError::DeploymentNotFound(target.id()))?;
    let name = deployment.spec.model.name;
    let model = catalogue::find(OPENAI_FORMAT, name, Some(version)).ok_or_else(|| {
        ArmError::model_not_supported(OPENAI_FORMAT, name, Some(version), &deployment.location)
    })?;
    if model.is_deprecated() {
        return Err(ArmError::ServiceModelDeprecated {
            name: name.to_string(),
            version: model.version.to_string(),
        });
    }
    let unchanged = model.version == deployment.spec.model.version;
    if unchanged || deployment.spec.version_upgrade_option == NO_AUTO_UPGRADE {
        return Ok(false);
    }
    let mut spec = deployment.spec.clone();
    spec.model = model;
    deployment.set_spec(spec, now);
    Ok(true)
}

/// Sets the quota limit of a (model, SKU) pair of the catalogue in a subscription and location.
pub(crate) fn set_quota(
    state: &mut State,
    subscription_id: &str,
    location: &str,
    model: &str,
    sku: &str,
    limit: u32,
) -> Result<(), ArmError> {
    let (model, sku) = catalogue::quota_pairs()
        .find(|(name, range)| name.eq_ignore_ascii_case(model) && range.name.eq_ignore_ascii_case(sku))
        .ok_or_else(|| {
            ArmError::bad_request(
                format!(
                    "There is no quota '{}': the catalogue has no model '{model}' with the SKU '{sku}'.",
                    catalogue::usage_name(model, sku)
                ),
                "model",
            )
        })?;
    state.set_quota_limit(
        QuotaKey::new(subscription_id, location, model, sku.name),
        limit,
    );
    Ok(())
}
