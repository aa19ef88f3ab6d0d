//! The resource provider proper: one function per endpoint, run under the state lock.
//! Returns a [`Reply`] or the [`ArmError`] Azure would answer. Accounts here; deployments, the
//! model catalogue and quotas in [`deployments`].

mod deployments;

pub(crate) use deployments::{SeedTarget, auto_upgrade, seed_deployment, set_quota};

use axum::http::{HeaderName, Method, StatusCode, header};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::ArmErrorBody;
use super::catalogue;

use super::deployment::{DeploymentKey, kind_deploys_models};
use super::error::ArmError;
use super::model::{
    Account, AccountKey, AccountRequest, ProvisioningState, Spec, account_id,
    is_valid_account_name, is_valid_subdomain, same_location,
};
use super::operations::{Operation, OperationKind, OperationStatus, Pacing, Rollback};
use super::render;
use super::routes::Route;
use super::schema::{self, CHECK_DOMAIN_AVAILABILITY, REGENERATE_KEY};
use super::store::{NewOperation, State};
use super::tags;

/// Settings the provider needs from the emulator configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub pacing: Pacing,
    pub retry_after_secs: u64,
    pub page_size: usize,
    pub profile: crate::config::Profile,
}

/// One resource-provider request, already authenticated, admitted and routed.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub api_version: &'a str,
    pub skip_token: Option<&'a str>,
    pub body: &'a [u8],
    /// `http://host:port` the client reached the emulator on; operation URLs and nextLinks use it.
    pub base_url: &'a str,
    pub now: Timestamp,
    pub settings: Settings,
    /// Error a fault scripted for the long-running operation this request starts.
    pub operation_error: Option<ArmErrorBody>,
    pub purge_allowed: bool,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
        }
    }
}

type Answer = Result<Reply, ArmError>;

pub(crate) fn handle(state: &mut State, route: &Route, call: &Call) -> Answer {
    if let (Some(group), subscription) = (route.resource_group(), route.subscription())
        && !state.has_resource_group(subscription, group)
    {
        return Err(ArmError::ResourceGroupNotFound(group.to_string()));
    }
    if deployments::addresses_deployments(route) {
        return deployments::handle(state, route, call);
    }
    match target_of(route) {
        Some(target) => handle_one_account(state, route, &target, call),
        None => handle_collection(state, route, call),
    }
}

/// The account (or soft-deleted account) a route addresses, if it addresses one.
fn target_of(route: &Route) -> Option<Target<'_>> {
    let (subscription, resource_group, name) = match route {
        Route::Account {
            subscription,
            resource_group,
            name,
        }
        | Route::ListKeys {
            subscription,
            resource_group,
            name,
        }
        | Route::RegenerateKey {
            subscription,
            resource_group,
            name,
        }
        | Route::AccountSkus {
            subscription,
            resource_group,
            name,
        }
        | Route::AccountModels {
            subscription,
            resource_group,
            name,
        }
        | Route::DeletedAccount {
            subscription,
            resource_group,
            name,
            ..
        } => (subscription, resource_group, name),
        _ => return None,
    };
    Some(Target {
        subscription,
        resource_group,
        name,
    })
}

/// Requests on one account: the account itself, its keys and SKUs, its soft-deleted copy.
fn handle_one_account(state: &mut State, route: &Route, target: &Target, call: &Call) -> Answer {
    match (route, call.method.clone()) {
        (Route::Account { .. }, Method::GET) => get_account(state, target, call),
        (Route::Account { .. }, Method::PUT) => put_account(state, target, call),
        (Route::Account { .. }, Method::PATCH) => patch_account(state, target, call),
        (Route::Account { .. }, Method::DELETE) => delete_account(state, target, call),
        (Route::ListKeys { .. }, Method::POST) => list_keys(state, target),
        (Route::RegenerateKey { .. }, Method::POST) => regenerate_key(state, target, call),
        (Route::AccountSkus { .. }, Method::GET) => {
            let account = existing(state, target)?;
            Ok(Reply::ok(render::account_skus(&account.spec.kind)))
        }
        (Route::AccountModels { .. }, Method::GET) => {
            let account = existing(state, target)?;
            // Accounts of other kinds deploy no models: their list is empty.
            let models = catalogue::MODELS
                .iter()
                .filter(|_| kind_deploys_models(&account.spec.kind));
            Ok(paged(models, render::account_model, call))
        }
        (Route::DeletedAccount { location, .. }, Method::GET) => {
            get_deleted(state, target, location)
        }
        (Route::DeletedAccount { location, .. }, Method::DELETE) => {
            purge(state, target, location, call)
        }
        (_, method) => Err(ArmError::MethodNotAllowed(method.to_string())),
    }
}

/// Lists, the subdomain check and operation URLs.
fn handle_collection(state: &mut State, route: &Route, call: &Call) -> Answer {
    match (route, call.method.clone()) {
        (
            Route::AccountsInGroup {
                subscription,
                resource_group,
            },
            Method::GET,
        ) => Ok(paged(
            state.accounts_in_group(subscription, resource_group),
            render::account,
            call,
        )),
        (Route::AccountsInSubscription { subscription }, Method::GET) => Ok(paged(
            state.accounts_in_subscription(subscription),
            render::account,
            call,
        )),
        (Route::DeletedAccounts { subscription }, Method::GET) => Ok(paged(
            state.deleted_in_subscription(subscription),
            render::deleted_account,
            call,
        )),
        (Route::CheckDomainAvailability { .. }, Method::POST) => {
            check_domain_availability(state, call)
        }
        (Route::LocationModels { .. }, Method::GET) => Ok(paged(
            catalogue::MODELS.iter(),
            render::location_model,
            call,
        )),
        (
            Route::LocationUsages {
                subscription,
                location,
            },
            Method::GET,
        ) => Ok(deployments::usages(state, subscription, location, call)),
        (
            Route::OperationStatus {
                subscription, id, ..
            },
            Method::GET,
        ) => operation_status(state, subscription, id, call),
        (
            Route::OperationResult {
                subscription, id, ..
            },
            Method::GET,
        ) => operation_result(state, subscription, id, call),
        (_, method) => Err(ArmError::MethodNotAllowed(method.to_string())),
    }
}

/// The account a request addresses, in the request's casing.
struct Target<'a> {
    subscription: &'a str,
    resource_group: &'a str,
    name: &'a str,
}

impl Target<'_> {
    fn key(&self) -> AccountKey {
        AccountKey::new(self.subscription, self.resource_group, self.name)
    }

    fn id(&self) -> String {
        account_id(self.subscription, self.resource_group, self.name)
    }

    fn not_found(&self) -> ArmError {
        ArmError::account_not_found(self.name, self.resource_group)
    }
}

fn existing<'s>(state: &'s State, target: &Target) -> Result<&'s Account, ArmError> {
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
fn get_account(state: &mut State, target: &Target, call: &Call) -> Answer {
    let own_operation = state
        .running_operation(&target.key())
        .filter(|operation| operation.deployment.is_none())
        .map(|operation| operation.id.clone());
    if let Some(id) = own_operation {
        state.poll(&id, call.now, call.settings.pacing);
    }
    Ok(Reply::ok(render::account(existing(state, target)?)))
}

/// PUT: create, restore, or full update of an existing account.
fn put_account(state: &mut State, target: &Target, call: &Call) -> Answer {
    if !is_valid_account_name(target.name) {
        return Err(ArmError::InvalidResourceName(target.name.to_string()));
    }
    let request = AccountRequest::parse(call.body)?;
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
    let location = request.location.clone().unwrap_or_default();
    let spec = request.into_spec();
    check_subdomain(state, &spec, None)?;
    let account = Account::new(
        target.subscription,
        target.resource_group,
        target.name,
        &location,
        spec,
        call.now,
    );
    let body = render::account(&account);
    state.accounts.insert(target.key(), account);
    let headers = start_operation(state, OperationKind::Create, target, &location, None, call);
    Ok(Reply {
        status: StatusCode::CREATED,
        body: Some(body),
        headers,
    })
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
    let (location, body) = (account.location.clone(), render::account(&account));
    state.accounts.insert(target.key(), account);
    let headers = start_operation(state, OperationKind::Restore, target, &location, None, call);
    Ok(Reply {
        status: StatusCode::CREATED,
        body: Some(body),
        headers,
    })
}

/// PUT over an existing account replaces its writable part (a long-running update).
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
    check_immutable(
        current,
        request.location.as_deref(),
        request.kind.as_deref(),
        requested_subdomain,
    )?;
    let mut spec = request.into_spec();
    spec.tags = tags::keep_stored_casing(std::mem::take(&mut spec.tags), &current.spec.tags);
    // A subdomain cannot be removed, so a PUT that leaves it out keeps it.
    if let Some(subdomain) = current.spec.custom_subdomain()
        && spec.custom_subdomain().is_none()
    {
        spec.properties
            .insert("customSubDomainName".into(), json!(subdomain));
    }
    check_subdomain(state, &spec, Some(&target.key()))?;
    // 201 like a create: both are asynchronous PUTs (Accounts_Create lists 200, 201 and 202).
    start_update(state, target, spec, StatusCode::CREATED, call)
}

/// Starts an update of the account to `spec` as a long-running operation, answered `status`.
fn start_update(
    state: &mut State,
    target: &Target,
    spec: Spec,
    status: StatusCode,
    call: &Call,
) -> Answer {
    let (location, body, rollback) = begin_update(state, target, spec, call.now);
    let headers = start_operation(
        state,
        OperationKind::Update,
        target,
        &location,
        Some(Rollback::Account(rollback)),
        call,
    );
    Ok(Reply {
        status,
        body: Some(body),
        headers,
    })
}

fn patch_account(state: &mut State, target: &Target, call: &Call) -> Answer {
    let current = existing(state, target)?;
    let request = AccountRequest::parse(call.body)?;
    ensure_idle(state, target)?;
    let requested_subdomain = request.properties.get("customSubDomainName");
    check_immutable(
        current,
        request.location.as_deref(),
        request.kind.as_deref(),
        requested_subdomain,
    )?;
    let spec = request.merge_into(&current.spec);
    check_subdomain(state, &spec, Some(&target.key()))?;
    if spec.same_except_tags(&current.spec) {
        let account = state
            .accounts
            .get_mut(&target.key())
            .ok_or_else(|| target.not_found())?;
        account.set_spec(spec, call.now);
        return Ok(Reply::ok(render::account(account)));
    }
    start_update(state, target, spec, StatusCode::ACCEPTED, call)
}

/// Applies an update's spec right away (GET shows the new values while `Accepted`) and returns
/// the location, the response body and the previous account for rolling back a failed update.
fn begin_update(
    state: &mut State,
    target: &Target,
    spec: Spec,
    now: Timestamp,
) -> (String, Value, Box<Account>) {
    let account = state
        .accounts
        .get_mut(&target.key())
        .expect("caller checked the account exists");
    let rollback = Box::new(account.clone());
    account.set_spec(spec, now);
    account.provisioning_state = ProvisioningState::Accepted;
    (account.location.clone(), render::account(account), rollback)
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

fn delete_account(state: &mut State, target: &Target, call: &Call) -> Answer {
    let Some(account) = state.accounts.get(&target.key()) else {
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    };
    ensure_idle(state, target)?;
    if answers_at_once(call) {
        state.soft_delete(&target.key(), call.now);
        return Ok(Reply::empty(StatusCode::OK));
    }
    let location = account.location.clone();
    if let Some(account) = state.accounts.get_mut(&target.key()) {
        account.provisioning_state = ProvisioningState::Deleting;
    }
    let headers = start_operation(state, OperationKind::Delete, target, &location, None, call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

fn get_deleted(state: &State, target: &Target, location: &str) -> Answer {
    match state.deleted.get(&target.key()) {
        Some(deleted) if same_location(&deleted.account.location, location) => {
            Ok(Reply::ok(render::deleted_account(deleted)))
        }
        _ => Err(ArmError::deleted_account_not_found(
            target.name,
            target.resource_group,
        )),
    }
}

fn purge(state: &mut State, target: &Target, location: &str, call: &Call) -> Answer {
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
    let headers = start_operation(state, OperationKind::Purge, target, &location, None, call);
    Ok(Reply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers,
    })
}

fn list_keys(state: &State, target: &Target) -> Answer {
    let account = existing(state, target)?;
    Ok(Reply::ok(keys(account)))
}

fn keys(account: &Account) -> Value {
    json!({ "key1": account.keys[0], "key2": account.keys[1] })
}

fn regenerate_key(state: &mut State, target: &Target, call: &Call) -> Answer {
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

fn check_domain_availability(state: &State, call: &Call) -> Answer {
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

/// One page of a list, with a `nextLink` (`$skipToken` = offset) when more items follow.
fn paged<'s, T: 's>(
    items: impl Iterator<Item = &'s T>,
    render: impl Fn(&T) -> Value,
    call: &Call,
) -> Reply {
    let page_size = call.settings.page_size.max(1);
    let offset: usize = call
        .skip_token
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let mut rest = items.skip(offset);
    let value: Vec<Value> = rest.by_ref().take(page_size).map(render).collect();
    let mut body = json!({ "value": value });
    if rest.next().is_some() {
        body["nextLink"] = json!(format!(
            "{}{}?api-version={}&$skipToken={}",
            call.base_url,
            call.path,
            call.api_version,
            offset + page_size
        ));
    }
    Reply::ok(body)
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

fn operation_status(state: &mut State, subscription: &str, id: &str, call: &Call) -> Answer {
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

/// The Location URL: 202 while running, then the resource (200), nothing (204) or the error.
fn operation_result(state: &mut State, subscription: &str, id: &str, call: &Call) -> Answer {
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
        OperationStatus::Succeeded => Ok(finished_resource(state, &operation)),
    }
}

/// What the Location URL of a succeeded operation answers: the resource it created or updated
/// (200), or nothing (204) after a delete or purge.
fn finished_resource(state: &State, operation: &Operation) -> Reply {
    if !operation.kind.returns_resource() {
        return Reply::empty(StatusCode::NO_CONTENT);
    }
    let body = match &operation.deployment {
        Some(name) => state
            .deployments
            .get(&DeploymentKey {
                account: operation.account.clone(),
                name: name.clone(),
            })
            .map(render::deployment),
        None => state.accounts.get(&operation.account).map(render::account),
    };
    match body {
        Some(body) => Reply::ok(body),
        None => Reply::empty(StatusCode::NO_CONTENT),
    }
}

fn operation_url(operation: &Operation, collection: &str, call: &Call) -> String {
    format!(
        "{}{}?api-version={}",
        call.base_url,
        operation.path(collection),
        call.api_version
    )
}

/// Whether this write answers synchronously, as the recordings show Azure doing. A scripted
/// operation failure keeps the long-running form: only an operation can fail later.
pub(crate) fn answers_at_once(call: &Call) -> bool {
    call.settings.profile.synchronous_writes() && call.operation_error.is_none()
}

/// Registers a long-running operation on the target account and returns the ARM async headers.
fn start_operation(
    state: &mut State,
    kind: OperationKind,
    target: &Target,
    location: &str,
    rollback: Option<Rollback>,
    call: &Call,
) -> Vec<(HeaderName, String)> {
    let new = NewOperation {
        kind,
        subscription_id: target.subscription.to_string(),
        location: location.to_string(),
        account: target.key(),
        deployment: None,
        resource_id: target.id(),
        planned_error: call.operation_error.clone(),
        rollback,
    };
    start(state, new, call)
}

/// Registers a long-running operation and returns the ARM async headers.
fn start(state: &mut State, new: NewOperation, call: &Call) -> Vec<(HeaderName, String)> {
    let operation = state.start_operation(new, call.now);
    vec![
        (
            HeaderName::from_static("azure-asyncoperation"),
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
