//! The accounts' endpoints: GET, PUT (create, restore, full update), PATCH, DELETE, keys, the
//! soft-deleted copy and its purge, and the subdomain check.

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::lro::{self, Form};
use super::{Answer, Call, Reply, Target};
use crate::config::Profile;
use crate::error::ArmError;
use crate::kinds;
use crate::model::{
    Account, AccountKey, AccountRequest, ProvisioningState, Spec, is_valid_account_name,
    is_valid_subdomain, same_location,
};
use crate::operations::{Operation, OperationKind, Rollback};
use crate::render;
use crate::schema::{
    self, ACCOUNT_PROPERTIES_SINCE_2025_06_01, CHECK_DOMAIN_AVAILABILITY, REGENERATE_KEY,
    field_names,
};
use crate::store::State;

pub(super) fn existing<'s>(state: &'s State, target: &Target) -> Result<&'s Account, ArmError> {
    state
        .accounts
        .get(&target.key())
        .ok_or_else(|| target.not_found())
}

/// Writes wait for the running operation on the same account, or on one of its deployments
/// (one write at a time per account), to finish.
fn ensure_idle(state: &State, target: &Target) -> Result<(), ArmError> {
    match state.running_operation(&target.key()) {
        Some(operation) if operation.deployment.is_some() => {
            // Named as the deployment writes name it: the account's id in its own casing.
            let account = state.accounts.get(&target.key());
            let id = account.map_or_else(|| target.id(), Account::arm_id);
            Err(ArmError::ParentResourceBusy(id))
        }
        Some(_) => Err(ArmError::RequestConflict(target.id())),
        None => Ok(()),
    }
}

/// A GET of an account whose own operation is running counts as a poll of that operation: a
/// client may follow a write by reading the resource's provisioningState instead of the
/// operation URL (ARM's async protocol allows both), and with `polls_to_complete` the
/// emulator's operations advance by being looked at (on Azure they advance with time).
pub(super) fn get(state: &mut State, target: &Target, call: &Call) -> Answer {
    let own_operation = state
        .running_operation(&target.key())
        .filter(|operation| operation.deployment.is_none())
        .map(|operation| operation.id.clone());
    if let Some(id) = own_operation {
        state.poll(&id, call.now, call.settings.pacing);
    }
    Ok(Reply::ok(render::account(
        existing(state, target)?,
        call.shape(),
    )))
}

/// PUT: create, restore, or full update of an existing account.
pub(super) fn put(state: &mut State, target: &Target, call: &Call) -> Answer {
    if !is_valid_account_name(target.name) {
        return Err(ArmError::InvalidResourceName(target.name.to_string()));
    }
    let request = AccountRequest::parse(call.body, call.shape())?;
    ensure_idle(state, target)?;
    if state.accounts.contains_key(&target.key()) {
        return replace_account(state, target, request, call);
    }
    if request.restore {
        return restore_account(state, target, request, call);
    }
    if state.deleted.contains_key(&target.key()) {
        return Err(ArmError::FlagMustBeSetForRestore(target.id()));
    }
    create_account(state, target, request, call)
}

fn create_account(
    state: &mut State,
    target: &Target,
    request: AccountRequest,
    call: &Call,
) -> Answer {
    request.require(false)?;
    let kind = request.kind.clone().unwrap_or_default();
    if !kinds::is_known_kind(&kind) {
        return Err(ArmError::InvalidApiSetId(kind));
    }
    check_sku(request.sku.as_ref(), &kind)?;
    let location = request.location.clone().unwrap_or_default();
    let spec = request.into_spec();
    check_subdomain(state, &spec, None)?;
    let mut account = Account::new(
        target.subscription,
        target.resource_group,
        target.name,
        &location,
        spec,
        call.now,
    );
    let (status, starting, form) = create_answer(call.settings.profile);
    account.provisioning_state = starting;
    let body = render::account(&account, call.shape());
    state.accounts.insert(target.key(), account);
    let new = lro::on_account(OperationKind::Create, target, &location, None, call);
    let headers = lro::start(state, new, form, call);
    Ok(Reply {
        status,
        body: Some(body),
        headers,
    })
}

/// How an account create answers in each profile (docs/emulator.md, "Profiles"): its status,
/// the state the account starts in and the form of its operation.
fn create_answer(profile: Profile) -> (StatusCode, ProvisioningState, Form) {
    match profile {
        Profile::LongRunning => (
            StatusCode::CREATED,
            ProvisioningState::Creating,
            Form::Contract,
        ),
        Profile::Recorded => (
            StatusCode::CREATED,
            ProvisioningState::Creating,
            Form::Recorded(ProvisioningState::Creating),
        ),
        Profile::RecordedAccepted => (
            StatusCode::OK,
            ProvisioningState::Accepted,
            Form::Recorded(ProvisioningState::Accepted),
        ),
    }
}

/// An account SKU must be one some kind has (whether this kind offers it is not checked).
fn check_sku(sku: Option<&Value>, kind: &str) -> Result<(), ArmError> {
    match sku.and_then(|sku| sku["name"].as_str()) {
        Some(name) if !kinds::is_known_sku(name) => Err(ArmError::InvalidSkuId {
            sku: name.to_string(),
            kind: kind.to_string(),
        }),
        _ => Ok(()),
    }
}

fn restore_account(
    state: &mut State,
    target: &Target,
    request: AccountRequest,
    call: &Call,
) -> Answer {
    request.require(true)?;
    let requested = request.location.unwrap_or_default();
    let Some(deleted) = state.deleted.get(&target.key()) else {
        return Err(ArmError::CanNotRestoreANonExistingResource(target.id()));
    };
    if !same_location(&deleted.account.location, &requested) {
        return Err(ArmError::InvalidResourceLocation {
            name: target.name.to_string(),
            resource_group: target.resource_group.to_string(),
            existing: deleted.account.location.clone(),
            requested,
        });
    }
    let Some(deleted) = state.take_deleted(&target.key()) else {
        return Err(ArmError::CanNotRestoreANonExistingResource(target.id()));
    };
    let mut account = deleted.account;
    account.provisioning_state = ProvisioningState::Creating;
    account.touch(call.now);
    let location = account.location.clone();
    let body = render::account(&account, call.shape());
    state.accounts.insert(target.key(), account);
    let new = lro::on_account(OperationKind::Restore, target, &location, None, call);
    let headers = lro::start(state, new, Form::Contract, call);
    Ok(Reply {
        status: StatusCode::CREATED,
        body: Some(body),
        headers,
    })
}

/// PUT over an existing account replaces its writable part: a long-running update, except a
/// change of tags alone on a Succeeded account, which the recorded profiles apply at once (200).
fn replace_account(
    state: &mut State,
    target: &Target,
    request: AccountRequest,
    call: &Call,
) -> Answer {
    request.require(false)?;
    let current = existing(state, target)?;
    let requested_subdomain = request
        .properties
        .get("customSubDomainName")
        .filter(|value| !value.is_null());
    check_allowed_change(current, &request, requested_subdomain)?;
    let mut spec = request.into_spec();
    spec.tags = spec
        .tags
        .take()
        .map(|tags| current.spec.keep_tag_casing(tags));
    // A subdomain cannot be removed, so a PUT that leaves it out keeps it.
    if let Some(subdomain) = current.spec.custom_subdomain()
        && spec.custom_subdomain().is_none()
    {
        spec.properties
            .insert("customSubDomainName".into(), json!(subdomain));
    }
    if !call.shape().has_2025_06_01_properties() {
        keep_later_properties(&mut spec, &current.spec);
    }
    check_subdomain(state, &spec, Some(&target.key()))?;
    let tags_only = spec.same_except_tags(&current.spec)
        && current.provisioning_state == ProvisioningState::Succeeded;
    if tags_only && lro::answers_at_once(call) {
        return apply_now(state, target, spec, call);
    }
    // 201 like a create: both are asynchronous PUTs (Accounts_Create lists 200, 201 and 202).
    start_update(state, target, spec, StatusCode::CREATED, call)
}

/// What no write of an existing account may do: change what is immutable, or name a SKU its
/// kind does not have.
fn check_allowed_change(
    current: &Account,
    request: &AccountRequest,
    requested_subdomain: Option<&serde_json::Value>,
) -> Result<(), ArmError> {
    check_immutable(
        current,
        request.location.as_deref(),
        request.kind.as_deref(),
        requested_subdomain,
    )?;
    check_sku(request.sku.as_ref(), &current.spec.kind)
}

/// A PUT in an api-version older than 2025-06-01 cannot name that version's properties: it
/// keeps those the account has (a choice, docs/emulator.md).
fn keep_later_properties(spec: &mut Spec, current: &Spec) {
    for name in field_names(&ACCOUNT_PROPERTIES_SINCE_2025_06_01) {
        if let Some(value) = current.properties.get(name) {
            spec.properties.insert(name.to_string(), value.clone());
        }
    }
}

/// Applies a change of the account at once: 200 with the account, no operation.
fn apply_now(state: &mut State, target: &Target, spec: Spec, call: &Call) -> Answer {
    let account = state
        .accounts
        .get_mut(&target.key())
        .ok_or_else(|| target.not_found())?;
    account.set_spec(spec, call.now);
    Ok(Reply::ok(render::account(account, call.shape())))
}

/// Starts an update of the account to `spec` as a long-running operation, answered `status`.
fn start_update(
    state: &mut State,
    target: &Target,
    spec: Spec,
    status: StatusCode,
    call: &Call,
) -> Answer {
    let (location, rollback) = begin_update(state, target, spec, call.now);
    let body = render::account(existing(state, target)?, call.shape());
    let rollback = Some(Rollback::Account(rollback));
    let new = lro::on_account(OperationKind::Update, target, &location, rollback, call);
    let headers = lro::start(state, new, Form::Contract, call);
    Ok(Reply {
        status,
        body: Some(body),
        headers,
    })
}

pub(super) fn patch(state: &mut State, target: &Target, call: &Call) -> Answer {
    let current = existing(state, target)?;
    let request = AccountRequest::parse(call.body, call.shape())?;
    ensure_idle(state, target)?;
    let requested_subdomain = request.properties.get("customSubDomainName");
    check_allowed_change(current, &request, requested_subdomain)?;
    let spec = request.merge_into(&current.spec);
    check_subdomain(state, &spec, Some(&target.key()))?;
    if spec.same_except_tags(&current.spec) {
        return apply_now(state, target, spec, call);
    }
    start_update(state, target, spec, StatusCode::ACCEPTED, call)
}

/// Applies an update's spec right away (GET shows the new values while `Accepted`) and returns
/// the location and the previous account for rolling back a failed update.
fn begin_update(
    state: &mut State,
    target: &Target,
    spec: Spec,
    now: Timestamp,
) -> (String, Box<Account>) {
    let account = state
        .accounts
        .get_mut(&target.key())
        .expect("caller checked the account exists");
    let rollback = Box::new(account.clone());
    account.set_spec(spec, now);
    account.provisioning_state = ProvisioningState::Accepted;
    (account.location.clone(), rollback)
}

fn check_immutable(
    current: &Account,
    location: Option<&str>,
    kind: Option<&str>,
    subdomain: Option<&Value>,
) -> Result<(), ArmError> {
    if location.is_some_and(|location| !same_location(location, &current.location)) {
        return Err(ArmError::PropertyChangeNotAllowed("location"));
    }
    if kind.is_some_and(|kind| !kind_change_allowed(&current.spec.kind, kind)) {
        return Err(ArmError::PropertyChangeNotAllowed("kind"));
    }
    if let (Some(current), Some(requested)) = (current.spec.custom_subdomain(), subdomain)
        && !requested
            .as_str()
            .is_some_and(|requested| requested.eq_ignore_ascii_case(current))
    {
        return Err(ArmError::PropertyChangeNotAllowed(
            "properties.customSubDomainName",
        ));
    }
    Ok(())
}

/// Kind is fixed, except that OpenAI accounts can become AIServices and back.
fn kind_change_allowed(current: &str, requested: &str) -> bool {
    let convertible =
        |kind: &str| kind.eq_ignore_ascii_case("OpenAI") || kind.eq_ignore_ascii_case("AIServices");
    current.eq_ignore_ascii_case(requested) || (convertible(current) && convertible(requested))
}

/// A custom subdomain must be a valid DNS label no other account (of any subscription, active or
/// soft-deleted) uses.
fn check_subdomain(state: &State, spec: &Spec, this: Option<&AccountKey>) -> Result<(), ArmError> {
    let Some(subdomain) = spec.custom_subdomain() else {
        return Ok(());
    };
    if !is_valid_subdomain(subdomain) {
        return Err(ArmError::bad_request(
            format!(
                "The value '{subdomain}' of property 'properties.customSubDomainName' is invalid: use 2 to 64 letters, digits or '-', not starting or ending with '-'."
            ),
            "properties.customSubDomainName",
        ));
    }
    match state.subdomain_owner(subdomain, this) {
        Some(_) => Err(ArmError::CustomDomainInUse(subdomain.to_string())),
        None => Ok(()),
    }
}

pub(super) fn delete(state: &mut State, target: &Target, call: &Call) -> Answer {
    let Some(account) = state.accounts.get(&target.key()) else {
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    };
    ensure_idle(state, target)?;
    if lro::answers_at_once(call) {
        state.soft_delete(&target.key(), call.now);
        return Ok(Reply::empty(StatusCode::OK));
    }
    let location = account.location.clone();
    if let Some(account) = state.accounts.get_mut(&target.key()) {
        account.provisioning_state = ProvisioningState::Deleting;
    }
    let new = lro::on_account(OperationKind::Delete, target, &location, None, call);
    let headers = lro::start(state, new, Form::Contract, call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

pub(super) fn get_deleted(state: &State, target: &Target, location: &str, call: &Call) -> Answer {
    match state.deleted.get(&target.key()) {
        Some(deleted) if same_location(&deleted.account.location, location) => {
            Ok(Reply::ok(render::deleted_account(deleted, call.shape())))
        }
        _ => Err(ArmError::deleted_account_not_found(
            target.name,
            target.resource_group,
        )),
    }
}

pub(super) fn purge(state: &mut State, target: &Target, location: &str, call: &Call) -> Answer {
    if !call.purge_allowed {
        return Err(ArmError::AuthorizationFailed {
            subscription: target.subscription.to_string(),
        });
    }
    let deleting = |operation: &Operation| {
        matches!(operation.kind, OperationKind::Delete | OperationKind::Purge)
    };
    if state.running_operation(&target.key()).is_some_and(deleting) {
        return Err(ArmError::RequestConflict(target.id()));
    }
    let Some(deleted) = state.deleted.get(&target.key()) else {
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    };
    if !same_location(&deleted.account.location, location) {
        return Err(ArmError::deleted_account_not_found(
            target.name,
            target.resource_group,
        ));
    }
    let location = deleted.account.location.clone();
    let new = lro::on_account(OperationKind::Purge, target, &location, None, call);
    let headers = lro::start(state, new, Form::Contract, call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

pub(super) fn list_keys(state: &State, target: &Target) -> Answer {
    let account = existing(state, target)?;
    Ok(Reply::ok(keys(account)))
}

fn keys(account: &Account) -> Value {
    json!({ "key1": account.keys[0], "key2": account.keys[1] })
}

pub(super) fn regenerate_key(state: &mut State, target: &Target, call: &Call) -> Answer {
    existing(state, target)?;
    let body = schema::sanitize(&schema::parse_object(call.body)?, &REGENERATE_KEY, "")?;
    ensure_idle(state, target)?;
    let index = if body["keyName"] == "Key1" { 0 } else { 1 };
    let account = state
        .accounts
        .get_mut(&target.key())
        .ok_or_else(|| target.not_found())?;
    account.regenerate_key(index);
    Ok(Reply::ok(keys(account)))
}

pub(super) fn check_domain_availability(state: &State, call: &Call) -> Answer {
    let body = schema::sanitize(
        &schema::parse_object(call.body)?,
        &CHECK_DOMAIN_AVAILABILITY,
        "",
    )?;
    let subdomain = body["subdomainName"].as_str().unwrap_or_default();
    let reason = if !is_valid_subdomain(subdomain) {
        Some(format!("Sub domain name '{subdomain}' is not valid"))
    } else if state.subdomain_owner(subdomain, None).is_some() {
        Some(format!(
            "Sub domain name '{subdomain}' is already used. Please pick a different name."
        ))
    } else {
        None
    };
    let mut answer = json!({
        "isSubdomainAvailable": reason.is_none(),
        "subdomainName": subdomain,
        "type": body["type"],
    });
    if let Some(reason) = reason {
        answer["reason"] = json!(reason);
    }
    if let Some(kind) = body.get("kind").filter(|kind| kind.is_string()) {
        answer["kind"] = kind.clone();
    }
    Ok(Reply::ok(answer))
}
