//! What every request handler shares, and the resource-provider request pipeline:
//! faults → authentication → throttling → api-version → routing → provider → headers → request log.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::broadcast;

use super::error::ArmError;
use super::faults::{FaultBook, injected_error};
use super::identity::{Caller, Identities};
use super::model::{
    Account, AccountRequest, DeletedAccount, ProvisioningState, is_valid_account_name,
};
use super::operations::{Pacing, RECORDED_OPERATION_API_VERSION};
use super::provider::{self, Call, Reply, SeedTarget, Settings};
use super::resource_groups::{self, GroupCall};
use super::routes::{self, Route};
use super::schema::ApiShape;
use super::server::{ConnectionHandle, Scheme};
use super::store::{SOFT_DELETE_RETENTION, State as ProviderState};
use super::throttle::{Admission, Remaining, RequestClass, Throttler};
use super::{ArmErrorBody, EmulatorConfig, RecordedRequest, ResourceGroupSeed, clock::Clock};

/// Request log entries kept (oldest dropped first), so a long-running emulator stays bounded.
const MAX_LOGGED_REQUESTS: usize = 100_000;
/// Largest request body read.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(crate) struct Shared {
    pub addr: SocketAddr,
    settings: Settings,
    latency: Duration,
    pub clock: Clock,
    state: Mutex<ProviderState>,
    throttler: Option<Throttler>,
    pub faults: FaultBook,
    log: Mutex<VecDeque<RecordedRequest>>,
    feed: broadcast::Sender<RecordedRequest>,
    purge_allowed: AtomicBool,
    required_token: RwLock<Option<String>>,
    throttled: AtomicU64,
    /// The offline Entra ID's identities and signing key.
    pub identities: Identities,
}

impl Shared {
    pub(crate) fn new(addr: SocketAddr, config: EmulatorConfig) -> Self {
        let mut state = ProviderState::default();
        for seed in config.resource_groups {
            state.add_resource_group(seed);
        }
        Self {
            addr,
            settings: Settings {
                pacing: Pacing {
                    polls: config.polls_to_complete,
                    duration: config.operation_duration,
                    retention: config.operation_retention,
                },
                retry_after_secs: config.retry_after_secs,
                page_size: config.page_size,
                profile: config.profile,
            },
            latency: config.latency,
            clock: Clock::default(),
            state: Mutex::new(state),
            throttler: config.throttling.map(Throttler::new),
            faults: FaultBook::default(),
            log: Mutex::new(VecDeque::new()),
            feed: broadcast::channel(1024).0,
            purge_allowed: AtomicBool::new(true),
            required_token: RwLock::new(None),
            throttled: AtomicU64::new(0),
            identities: Identities::new(),
        }
    }

    /// The state, settled to the current time (due operations completed, expired accounts purged).
    fn state(&self) -> MutexGuard<'_, ProviderState> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.settle(self.clock.now(), self.settings.pacing);
        state
    }

    pub(crate) fn seed_resource_group(&self, seed: ResourceGroupSeed) {
        self.state().add_resource_group(seed);
    }

    pub(crate) fn dump_state(&self) -> Value {
        self.dump_state_at(&format!("http://{}", self.addr))
    }

    /// The state with operation URLs on `base_url` (the scheme and host the admin client used).
    pub(crate) fn dump_state_at(&self, base_url: &str) -> Value {
        self.state().dump(base_url)
    }

    pub(crate) fn set_purge_permission(&self, allowed: bool) {
        self.purge_allowed.store(allowed, Ordering::Relaxed);
    }

    pub(crate) fn require_token(&self, token: Option<String>) {
        *self
            .required_token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = token;
    }

    pub(crate) fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub(crate) fn subscribe_requests(&self) -> broadcast::Receiver<RecordedRequest> {
        self.feed.subscribe()
    }

    /// Puts an account straight into state, `Succeeded`, active or soft-deleted (deleted now).
    pub(crate) fn seed_account(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
        body: &Value,
        soft_deleted: bool,
    ) -> Result<(), ArmError> {
        if !is_valid_account_name(name) {
            return Err(ArmError::InvalidResourceName(name.to_string()));
        }
        let body = serde_json::to_vec(body).unwrap_or_default();
        // A seed may carry whatever the newest shapes can store.
        let request = AccountRequest::parse(&body, ApiShape::V2025_06_01)?;
        request.require(false)?;
        let location = request.location.clone().unwrap_or_default();
        let now = self.clock.now();
        let mut account = Account::new(
            subscription_id,
            resource_group,
            name,
            &location,
            request.into_spec(),
            now,
        );
        account.provisioning_state = ProvisioningState::Succeeded;
        let key = account.key();
        let mut state = self.state();
        if let Some(subdomain) = account.spec.custom_subdomain()
            && state.subdomain_owner(subdomain, Some(&key)).is_some()
        {
            return Err(ArmError::CustomDomainInUse(subdomain.to_string()));
        }
        state.accounts.remove(&key);
        state.take_deleted(&key);
        // A different account now: the old one's deployments go (their billing stops).
        state.remove_deployments_of(&key, now);
        if soft_deleted {
            state.insert_deleted(DeletedAccount {
                account,
                deleted_at: now,
                purge_at: now + SOFT_DELETE_RETENTION,
            });
        } else {
            if !state.has_resource_group(subscription_id, resource_group) {
                state.add_resource_group(ResourceGroupSeed {
                    subscription_id: subscription_id.to_string(),
                    name: resource_group.to_string(),
                    location: location.clone(),
                });
            }
            state.accounts.insert(key, account);
        }
        Ok(())
    }

    pub(crate) fn seed_deployment(
        &self,
        target: &SeedTarget,
        body: &Value,
    ) -> Result<(), ArmError> {
        let now = self.clock.now();
        provider::seed_deployment(&mut self.state(), target, body, now)
    }

    pub(crate) fn auto_upgrade(
        &self,
        target: &SeedTarget,
        version: &str,
    ) -> Result<bool, ArmError> {
        let now = self.clock.now();
        provider::auto_upgrade(&mut self.state(), target, version, now)
    }

    pub(crate) fn set_quota(
        &self,
        subscription_id: &str,
        location: &str,
        model: &str,
        sku: &str,
        limit: u32,
    ) -> Result<(), ArmError> {
        provider::set_quota(
            &mut self.state(),
            subscription_id,
            location,
            model,
            sku,
            limit,
        )
    }

    pub(crate) fn billing(&self) -> Value {
        let now = self.clock.now();
        self.state().billing(now)
    }

    fn record(&self, entry: RecordedRequest) {
        tracing::debug!(method = %entry.method, path = %entry.path, status = entry.status, "emulator request");
        if self.feed.receiver_count() > 0 {
            let _ = self.feed.send(entry.clone());
        }
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() >= MAX_LOGGED_REQUESTS {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Answers a request the resource provider (rather than a fault) handles.
    fn answer(
        &self,
        parts: &Parts,
        body: &[u8],
        operation_error: Option<ArmErrorBody>,
    ) -> Response {
        if let Err(error) = self.authenticate(&parts.headers) {
            return error_response(&error, None);
        }
        let subscription = routes::subscription_of(parts.uri.path());
        let remaining = match (&self.throttler, subscription) {
            (Some(throttler), Some(subscription)) => {
                match throttler.admit(subscription, RequestClass::of(&parts.method)) {
                    Admission::Admitted(remaining) => Some(remaining),
                    Admission::Throttled {
                        remaining,
                        retry_after,
                    } => {
                        let class = RequestClass::of(&parts.method).label();
                        let subscription = subscription.to_string();
                        return self.error(
                            &ArmError::Throttled {
                                class,
                                subscription,
                                retry_after,
                            },
                            Some(remaining),
                        );
                    }
                }
            }
            _ => None,
        };
        match self.dispatch(parts, body, operation_error) {
            Ok(reply) => reply_response(reply, remaining),
            Err(error) => self.error(&error, remaining),
        }
    }

    /// Answers with a fault's scripted error; nothing is consumed from the buckets.
    fn answer_injected(&self, parts: &Parts, error: &ArmError) -> Response {
        let remaining = match (&self.throttler, routes::subscription_of(parts.uri.path())) {
            (Some(throttler), Some(subscription)) => Some(throttler.peek(subscription)),
            _ => None,
        };
        self.error(error, remaining)
    }

    fn error(&self, error: &ArmError, remaining: Option<Remaining>) -> Response {
        if error.status() == StatusCode::TOO_MANY_REQUESTS {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        error_response(error, remaining)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ArmError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ArmError::AuthenticationFailed(
                "The 'Authorization' header is missing.",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("Bearer") && !token.trim().is_empty()
            })
            .map(|(_, token)| token.trim())
            .ok_or(ArmError::AuthenticationFailed(
                "The 'Authorization' header is provided in an invalid format.",
            ))?;
        let required = self
            .required_token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(required) = required.as_deref()
            && required != token
        {
            return Err(ArmError::AuthenticationFailed(
                "The access token is invalid.",
            ));
        }
        if self.identities.requires_issued_tokens() {
            self.identities.check_arm_token(token)?;
        }
        Ok(())
    }

    fn dispatch(
        &self,
        parts: &Parts,
        body: &[u8],
        operation_error: Option<ArmErrorBody>,
    ) -> Result<Reply, ArmError> {
        let path = parts.uri.path();
        // Microsoft.Resources has its own routes and api-versions.
        if let Some(route) = resource_groups::GroupRoute::parse(path) {
            let base_url = base_url(parts, self.addr);
            let call = GroupCall::of(parts, body, &base_url, self.clock.now(), self.settings)?;
            return resource_groups::handle(&mut self.state(), &route, &call);
        }
        let query = QueryParameters::parse(parts.uri.query().unwrap_or(""));
        let api_version = query
            .api_version
            .as_deref()
            .ok_or(ArmError::MissingApiVersion)?;
        let route = Route::parse(path);
        check_route_api_version(route.as_ref(), api_version)?;
        let route = route.ok_or_else(|| unknown_route(path))?;
        let base_url = base_url(parts, self.addr);
        let call = Call {
            method: &parts.method,
            path,
            api_version,
            query: parts.uri.query().unwrap_or(""),
            skip_token: query.skip_token.as_deref(),
            body,
            base_url: &base_url,
            now: self.clock.now(),
            settings: self.settings,
            operation_error,
            purge_allowed: self.purge_allowed.load(Ordering::Relaxed),
        };
        let mut state = self.state();
        provider::handle(&mut state, &route, &call)
    }
}

/// The axum handler of every resource-provider request.
pub(crate) async fn resource_provider(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("", |value| value.as_str());
    let fault = shared.faults.take(&parts.method, path_and_query);
    let mut operation_error = None;
    let mut injected = None;
    let mut drop_after_handling = false;
    if let Some(fault) = fault {
        drop_after_handling = fault.drop_after_handling == Some(true);
        if let Some(delay) = fault.delay_ms {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if fault.drop == Some(true) {
            return drop_connection(&shared, &parts, &body).await;
        }
        injected = injected_error(&fault);
        operation_error = fault.operation_error;
    }
    let mut response = match &injected {
        Some(error) => shared.answer_injected(&parts, error),
        None => shared.answer(&parts, &body, operation_error),
    };
    if drop_after_handling {
        return drop_connection(&shared, &parts, &body).await;
    }
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    add_request_ids(&parts.headers, response.headers_mut());
    let caller = shared.identities.caller(&parts.headers);
    shared.record(recorded(&parts, &body, response.status().as_u16(), caller));
    response
}

/// Closes the client's connection without an answer: its `send()` fails.
async fn drop_connection(shared: &Shared, parts: &Parts, body: &Bytes) -> Response {
    let caller = shared.identities.caller(&parts.headers);
    shared.record(recorded(parts, body, 0, caller));
    if let Some(connection) = parts.extensions.get::<ConnectionHandle>() {
        connection.kill();
    }
    // The connection task drops this future together with the connection.
    std::future::pending().await
}

fn recorded(parts: &Parts, body: &[u8], status: u16, caller: Option<Caller>) -> RecordedRequest {
    RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        status,
        request_body: if body.is_empty() {
            None
        } else {
            serde_json::from_slice(body).ok()
        },
        caller,
    }
}

fn add_request_ids(request: &HeaderMap, response: &mut HeaderMap) {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::try_from(request_id) {
        response.insert(HeaderName::from_static("x-ms-request-id"), value);
    }
    let client_request_id = HeaderName::from_static("x-ms-client-request-id");
    if let Some(value) = request.get(&client_request_id) {
        response.insert(client_request_id, value.clone());
    }
}

fn reply_response(reply: Reply, remaining: Option<Remaining>) -> Response {
    let mut response = match &reply.body {
        Some(body) => json_response(reply.status, body),
        None => empty_response(reply.status),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            response.headers_mut().insert(name, value);
        }
    }
    add_etag_header(response.headers_mut(), reply.body.as_ref());
    add_rate_limit_headers(response.headers_mut(), remaining);
    response
}

/// Recorded Azure repeats a resource body's `etag` in an `ETag` header (GET and PUT alike).
fn add_etag_header(headers: &mut HeaderMap, body: Option<&Value>) {
    let etag = body
        .and_then(|body| body.get("etag"))
        .and_then(Value::as_str);
    if let Some(value) = etag.and_then(|etag| HeaderValue::try_from(etag).ok()) {
        headers.insert(header::ETAG, value);
    }
}

fn error_response(error: &ArmError, remaining: Option<Remaining>) -> Response {
    let mut response = json_response(error.status(), &error.body());
    let headers = response.headers_mut();
    if let Some(seconds) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(cause) = error.failure_cause() {
        headers.insert(
            HeaderName::from_static("x-ms-failure-cause"),
            HeaderValue::from_static(cause),
        );
    }
    add_rate_limit_headers(headers, remaining);
    response
}

fn add_rate_limit_headers(headers: &mut HeaderMap, remaining: Option<Remaining>) {
    let Some(remaining) = remaining else { return };
    for (name, value) in [
        (
            "x-ms-ratelimit-remaining-subscription-reads",
            remaining.reads,
        ),
        (
            "x-ms-ratelimit-remaining-subscription-writes",
            remaining.writes,
        ),
        (
            "x-ms-ratelimit-remaining-subscription-deletes",
            remaining.deletes,
        ),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

struct QueryParameters {
    api_version: Option<String>,
    skip_token: Option<String>,
}

impl QueryParameters {
    fn parse(query: &str) -> Self {
        let mut parameters = Self {
            api_version: None,
            skip_token: None,
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key == "api-version" {
                parameters.api_version = Some(value.into_owned());
            } else if key.eq_ignore_ascii_case("$skipToken") {
                parameters.skip_token = Some(value.into_owned());
            }
        }
        parameters
    }
}

/// Oldest and newest stable api-version the emulator answers (with 2024-10-01 shapes).
const OLDEST_API_VERSION: &str = "2021-04-30";
const NEWEST_API_VERSION: &str = "2026-09-01";

/// Accepts any stable (no `-preview`) `YYYY-MM-DD` date from 2021-04-30 to 2026-09-01.
fn check_api_version(version: &str) -> Result<(), ArmError> {
    let well_formed = version.len() == 10
        && version.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
        && version.parse::<jiff::civil::Date>().is_ok();
    // Same-length ISO dates compare correctly as strings.
    if well_formed && (OLDEST_API_VERSION..=NEWEST_API_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(ArmError::InvalidApiVersion(version.to_string()))
    }
}

/// The api-version check of a request on `route` (`None`: a path no route matches). Operation
/// URLs also accept 2017-04-18, the version of the URLs Azure hands out in the recorded form.
fn check_route_api_version(route: Option<&Route>, version: &str) -> Result<(), ArmError> {
    let operation_url = matches!(
        route,
        Some(Route::OperationStatus { .. } | Route::OperationResult { .. })
    );
    if operation_url && version == RECORDED_OPERATION_API_VERSION {
        return Ok(());
    }
    check_api_version(version)
}

fn unknown_route(path: &str) -> ArmError {
    let lowered = path.to_ascii_lowercase();
    if lowered.contains("/providers/microsoft.cognitiveservices") {
        ArmError::InvalidResourceType(path.to_string())
    } else {
        ArmError::NoRegisteredProviderFound(path.to_string())
    }
}

/// `{scheme}://{Host}` as the client addressed the emulator, so links work through any name for
/// it, and over TLS stay on TLS (the scheme is the connection's).
pub(crate) fn base_url(parts: &Parts, addr: SocketAddr) -> String {
    let scheme = parts
        .extensions
        .get::<Scheme>()
        .copied()
        .unwrap_or_default()
        .as_str();
    match parts
        .headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    {
        Some(host) if !host.is_empty() => format!("{scheme}://{host}"),
        _ => format!("{scheme}://{addr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_in_the_stable_range_are_accepted() {
        for version in [
            "2021-04-30",
            "2024-10-01",
            "2025-06-01",
            "2026-09-01",
            "2023-07-15",
        ] {
            assert!(check_api_version(version).is_ok(), "{version}");
        }
        for version in [
            "2021-03-01",
            "2026-09-02",
            "2024-10-01-preview",
            "2024-13-01",
            "latest",
            "",
        ] {
            assert!(check_api_version(version).is_err(), "{version}");
        }
    }

    #[test]
    fn operation_urls_also_accept_the_recorded_api_version() {
        let operation = Route::parse(
            "/subscriptions/s/providers/Microsoft.CognitiveServices/locations/eastus/operationResults/x",
        );
        let account = Route::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
        );
        assert!(check_route_api_version(operation.as_ref(), "2017-04-18").is_ok());
        assert!(check_route_api_version(account.as_ref(), "2017-04-18").is_err());
        assert!(check_route_api_version(None, "2017-04-18").is_err());
        assert!(check_route_api_version(account.as_ref(), "2024-10-01").is_ok());
    }
}
