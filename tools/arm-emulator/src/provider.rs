//! The resource provider proper: one function per endpoint, run under the state lock.
//! Returns a [`Reply`] or the [`ArmError`] Azure would answer. Requests are routed here; the
//! accounts' endpoints are in [`accounts`], deployments, the model catalogue and quotas in
//! [`deployments`], long-running operations (their start and their URLs) in [`lro`].

mod accounts;
mod deployments;
mod lro;

pub(crate) use deployments::{SeedTarget, auto_upgrade, seed_deployment, set_quota};

use axum::http::{HeaderName, Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::ArmErrorBody;
use super::catalogue;
use super::deployment::kind_deploys_models;
use super::error::ArmError;
use super::model::{AccountKey, account_id};
use super::operations::Pacing;
use super::render;
use super::routes::Route;
use super::schema::ApiShape;
use super::store::State;

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
    /// The raw query string (operation URLs of the recorded form are checked against it).
    pub query: &'a str,
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

impl Call<'_> {
    /// The shapes bodies are read and answered in, by the request's api-version.
    fn shape(&self) -> ApiShape {
        ApiShape::of(self.api_version)
    }
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
        | Route::AccountUsages {
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

/// Requests on one account: the account itself, its keys, SKUs, models and usages, its
/// soft-deleted copy.
fn handle_one_account(state: &mut State, route: &Route, target: &Target, call: &Call) -> Answer {
    match (route, call.method.clone()) {
        (Route::Account { .. }, Method::GET) => accounts::get(state, target, call),
        (Route::Account { .. }, Method::PUT) => accounts::put(state, target, call),
        (Route::Account { .. }, Method::PATCH) => accounts::patch(state, target, call),
        (Route::Account { .. }, Method::DELETE) => accounts::delete(state, target, call),
        (Route::ListKeys { .. }, Method::POST) => accounts::list_keys(state, target),
        (Route::RegenerateKey { .. }, Method::POST) => {
            accounts::regenerate_key(state, target, call)
        }
        (Route::AccountSkus { .. }, Method::GET) => {
            let account = accounts::existing(state, target)?;
            Ok(Reply::ok(render::account_skus(&account.spec.kind)))
        }
        (Route::AccountModels { .. }, Method::GET) => {
            let account = accounts::existing(state, target)?;
            // Accounts of other kinds deploy no models: their list is empty.
            let models = catalogue::MODELS
                .iter()
                .filter(|_| kind_deploys_models(&account.spec.kind));
            Ok(paged(models, render::account_model, call))
        }
        (Route::AccountUsages { .. }, Method::GET) => {
            let account = accounts::existing(state, target)?;
            Ok(deployments::account_usages(state, account))
        }
        (Route::DeletedAccount { location, .. }, Method::GET) => {
            accounts::get_deleted(state, target, location, call)
        }
        (Route::DeletedAccount { location, .. }, Method::DELETE) => {
            accounts::purge(state, target, location, call)
        }
        (_, method) => Err(ArmError::MethodNotAllowed(method.to_string())),
    }
}

/// Lists, the subdomain check and operation URLs.
fn handle_collection(state: &mut State, route: &Route, call: &Call) -> Answer {
    let shape = call.shape();
    match (route, call.method.clone()) {
        (
            Route::AccountsInGroup {
                subscription,
                resource_group,
            },
            Method::GET,
        ) => Ok(paged(
            state.accounts_in_group(subscription, resource_group),
            |account| render::account(account, shape),
            call,
        )),
        (Route::AccountsInSubscription { subscription }, Method::GET) => Ok(paged(
            state.accounts_in_subscription(subscription),
            |account| render::account(account, shape),
            call,
        )),
        (Route::DeletedAccounts { subscription }, Method::GET) => Ok(paged(
            state.deleted_in_subscription(subscription),
            |deleted| render::deleted_account(deleted, shape),
            call,
        )),
        (Route::CheckDomainAvailability { .. }, Method::POST) => {
            accounts::check_domain_availability(state, call)
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
        ) => lro::operation_status(state, subscription, id, call),
        (
            Route::OperationResult {
                subscription, id, ..
            },
            Method::GET,
        ) => lro::operation_result(state, subscription, id, call),
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
