//! The typed REST client for `Microsoft.CognitiveServices/accounts`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::credentials::{Credential, validate_endpoint};
use super::error::{ApiError, ArmError, api_error_from_response, api_error_from_value};
use super::lro::{OperationKind, PendingOperation, PollMethod, PollStatus, Provisioned};
use super::models::{Account, AccountRef, ApiKeys, DeletedAccountRef, KeyName, Page};
use super::ratelimit::{Booking, Permit, RateLimiter, RateLimits, RequestClass};
use crate::API_VERSION;

/// Retries inside one call: for throttling, server errors and lost connections.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Jittered exponential backoff before attempt `attempt + 1` (between half and all of the
    /// exponential value, so a crowd of clients spreads out).
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let capped = exponential.min(self.max_delay);
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// How to build an [`ArmClient`].
#[derive(Clone, Debug)]
pub struct ArmClientConfig {
    /// ARM base URL, e.g. `https://management.azure.com` or the emulator's `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Client-side token buckets; `None` sends without waiting (ARM still throttles).
    pub rate_limits: Option<RateLimits>,
    pub retry: RetryPolicy,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
    /// Counters to add to; clients given the same metrics share them (one per credential, one
    /// set of counters for the metrics endpoint).
    pub metrics: ArmMetrics,
}

impl ArmClientConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        ArmClientConfig {
            endpoint: endpoint.into(),
            rate_limits: Some(RateLimits::azure()),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            metrics: ArmMetrics::default(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub status: String,
}

/// Counters for the metrics endpoint. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct ArmMetrics {
    /// ARM requests by operation and HTTP status (`error` when no answer came).
    pub requests: Family<RequestLabels, Counter>,
    /// Requests that waited for a client-side token.
    pub throttle_waits: Counter,
    /// 429 answers received.
    pub throttled: Counter,
    /// Retries after throttling, server errors or lost connections.
    pub retries: Counter,
}

impl ArmMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cognitive_operator_arm_requests",
            "ARM requests by operation and HTTP status",
            self.requests.clone(),
        );
        registry.register(
            "cognitive_operator_arm_throttle_waits",
            "ARM requests that waited for a client-side rate-limit token",
            self.throttle_waits.clone(),
        );
        registry.register(
            "cognitive_operator_arm_throttled",
            "429 answers received from ARM",
            self.throttled.clone(),
        );
        registry.register(
            "cognitive_operator_arm_retries",
            "ARM requests retried after throttling, server errors or lost connections",
            self.retries.clone(),
        );
    }

    /// Requests counted so far for one operation, over all statuses.
    pub fn requests_for(&self, operation: &str) -> u64 {
        [
            "200", "201", "202", "204", "400", "401", "403", "404", "409", "429", "500", "503",
            "error",
        ]
        .iter()
        .map(|status| {
            self.requests
                .get_or_create(&RequestLabels {
                    operation: operation.to_string(),
                    status: status.to_string(),
                })
                .get()
        })
        .sum()
    }
}

/// A long-running write: the account ARM answered with (if any) and the operation to follow.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    pub account: Option<Account>,
    /// `None` when ARM finished synchronously.
    pub operation: Option<PendingOperation>,
}

pub(super) struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Response {
    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, ArmError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ArmError::InvalidResponse(format!("cannot read ARM response body: {e}")))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The ARM client. Cheap to clone; clones share connections, tokens, buckets and counters.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this client (and its clones) apart from clients with other credentials.
    id: u64,
    http: reqwest::Client,
    endpoint: Url,
    credential: Arc<Credential>,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    metrics: ArmMetrics,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArmClient({})", self.inner.endpoint)
    }
}

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("cognitive-operator/", env!("CARGO_PKG_VERSION"));

impl ArmClient {
    pub fn new(config: ArmClientConfig, credential: Arc<Credential>) -> Result<Self, ArmError> {
        crate::install_crypto_provider();
        let endpoint = validate_endpoint(&config.endpoint)?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ArmError::Config(format!("cannot build HTTP client: {e}")))?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(ArmClient {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                http,
                endpoint,
                credential,
                limiter: config.rate_limits.map(RateLimiter::new),
                retry: config.retry,
                metrics: config.metrics,
            }),
        })
    }

    pub fn metrics(&self) -> &ArmMetrics {
        &self.inner.metrics
    }

    /// The same for every clone of this client, and for no other client: what one client has
    /// read may be shown only to reconciles using the same credential.
    pub fn instance_id(&self) -> u64 {
        self.inner.id
    }

    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// How many writes to `subscription` are waiting for a token (0 without a limiter).
    pub fn writes_queued(&self, subscription: &str) -> f64 {
        self.inner
            .limiter
            .as_ref()
            .map_or(0.0, |l| l.queued(subscription, RequestClass::Write))
    }

    /// Books a write token for a request to be sent later inside
    /// [`crate::arm::ratelimit::with_booked_token`], and says how long until it is due. `None`
    /// without a limiter (nothing to wait for).
    pub fn book_write(&self, subscription: &str) -> Option<(Booking, Duration)> {
        let limiter = self.inner.limiter.as_ref()?;
        Some(limiter.book(subscription, RequestClass::Write))
    }

    /// Gives `booking` up: the reconcile that booked it will not write after all.
    pub fn release_write_booking(&self, subscription: &str, booking: Booking) {
        if let Some(limiter) = &self.inner.limiter {
            limiter.release(subscription, RequestClass::Write, booking);
        }
    }

    /// How long until `booking` is due now; `None` when it was given up.
    pub fn write_booking_due(&self, subscription: &str, booking: Booking) -> Option<Duration> {
        let limiter = self.inner.limiter.as_ref()?;
        limiter.booking_due(subscription, RequestClass::Write, booking)
    }

    // ----- accounts -------------------------------------------------------------------------

    /// GET the account; `None` when it does not exist (404 ResourceNotFound).
    pub async fn get_account(&self, account: &AccountRef) -> Result<Option<Account>, ArmError> {
        let url = self.resource_url(&account.id());
        match self.execute("GetAccount", Method::GET, url, None).await {
            Ok(response) => response.json().map(Some),
            Err(ArmError::Api(e)) if e.status == Some(404) && e.code != "ResourceGroupNotFound" => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// PUT a new account (or a full update of an existing one).
    pub async fn create_account(
        &self,
        account: &AccountRef,
        body: &Account,
    ) -> Result<WriteOutcome, ArmError> {
        let body = serde_json::to_value(body).expect("accounts serialize");
        self.write(
            account,
            "CreateAccount",
            Method::PUT,
            &body,
            OperationKind::Create,
        )
        .await
    }

    /// Restores a soft-deleted account: PUT with `properties.restore = true` and its location.
    pub async fn restore_account(
        &self,
        account: &AccountRef,
        location: &str,
    ) -> Result<WriteOutcome, ArmError> {
        let body = serde_json::json!({"location": location, "properties": {"restore": true}});
        self.write(
            account,
            "RestoreAccount",
            Method::PUT,
            &body,
            OperationKind::Restore,
        )
        .await
    }

    /// PATCH exactly the fields in `patch` (a partial Account document).
    pub async fn update_account(
        &self,
        account: &AccountRef,
        patch: &Value,
    ) -> Result<WriteOutcome, ArmError> {
        self.write(
            account,
            "UpdateAccount",
            Method::PATCH,
            patch,
            OperationKind::Update,
        )
        .await
    }

    /// DELETE (soft-delete) the account. `None` when ARM finished at once or it was already gone.
    pub async fn delete_account(
        &self,
        account: &AccountRef,
    ) -> Result<Option<PendingOperation>, ArmError> {
        self.delete(&account.id(), "DeleteAccount", OperationKind::Delete)
            .await
    }

    /// A DELETE of `id`, long-running or not.
    pub(super) async fn delete(
        &self,
        id: &str,
        operation: &'static str,
        kind: OperationKind,
    ) -> Result<Option<PendingOperation>, ArmError> {
        let url = self.resource_url(id);
        let response = self.execute(operation, Method::DELETE, url, None).await?;
        Ok(self.operation_from(&response, kind, id))
    }

    /// Accounts of a resource group, following `nextLink`.
    pub async fn list_accounts_by_resource_group(
        &self,
        subscription_id: &str,
        resource_group: &str,
    ) -> Result<Vec<Account>, ArmError> {
        let path = format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.CognitiveServices/accounts"
        );
        self.list_all("ListAccounts", self.resource_url(&path))
            .await
    }

    /// Both access keys. Never log the result.
    pub async fn list_keys(&self, account: &AccountRef) -> Result<ApiKeys, ArmError> {
        let url = self.resource_url(&format!("{}/listKeys", account.id()));
        self.execute("ListKeys", Method::POST, url, None)
            .await?
            .json()
    }

    /// Regenerates one key and returns both. Never log the result.
    pub async fn regenerate_key(
        &self,
        account: &AccountRef,
        key: KeyName,
    ) -> Result<ApiKeys, ArmError> {
        let url = self.resource_url(&format!("{}/regenerateKey", account.id()));
        let body = serde_json::json!({ "keyName": key });
        self.execute("RegenerateKey", Method::POST, url, Some(&body))
            .await?
            .json()
    }

    // ----- soft-deleted accounts --------------------------------------------------------------

    /// GET a soft-deleted account; `None` when there is none at that location and resource group.
    pub async fn get_deleted_account(
        &self,
        deleted: &DeletedAccountRef,
    ) -> Result<Option<Account>, ArmError> {
        let url = self.resource_url(&deleted.id());
        match self
            .execute("GetDeletedAccount", Method::GET, url, None)
            .await
        {
            Ok(response) => response.json().map(Some),
            Err(ArmError::Api(e)) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every soft-deleted account of the subscription, following `nextLink`.
    pub async fn list_deleted_accounts(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Account>, ArmError> {
        let path = format!(
            "/subscriptions/{subscription_id}/providers/Microsoft.CognitiveServices/deletedAccounts"
        );
        self.list_all("ListDeletedAccounts", self.resource_url(&path))
            .await
    }

    /// Purges a soft-deleted account for good. Needs the subscription-scope permission
    /// `Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete`.
    pub async fn purge_deleted_account(
        &self,
        deleted: &DeletedAccountRef,
    ) -> Result<Option<PendingOperation>, ArmError> {
        self.delete(&deleted.id(), "PurgeDeletedAccount", OperationKind::Purge)
            .await
    }

    // ----- long-running operations ------------------------------------------------------------

    /// Polls an account's operation once. Safe to call from a fresh client with a stored handle.
    pub async fn poll(&self, operation: &PendingOperation) -> Result<PollStatus, ArmError> {
        self.poll_for::<Account>(operation).await
    }

    /// Polls an operation on a resource of type `T` once.
    pub(super) async fn poll_for<T: Provisioned>(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<T>, ArmError> {
        match operation.poll {
            PollMethod::AzureAsyncOperation => self.poll_status_document(operation).await,
            PollMethod::Location => self.poll_location(operation).await,
            PollMethod::ProvisioningState => self.confirm_resource(operation).await,
        }
    }

    /// Polls an account's operation until it ends or `timeout` passes, sleeping as ARM asks.
    pub async fn wait(
        &self,
        operation: &PendingOperation,
        timeout: Duration,
    ) -> Result<(), ArmError> {
        self.wait_for::<Account>(operation, timeout).await
    }

    /// [`ArmClient::wait`] for an operation on a resource of type `T`.
    pub(super) async fn wait_for<T: Provisioned>(
        &self,
        operation: &PendingOperation,
        timeout: Duration,
    ) -> Result<(), ArmError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.poll_for::<T>(operation).await? {
                // The caller observes the account next, which tells how it went.
                PollStatus::Succeeded(_) | PollStatus::Unknown => return Ok(()),
                PollStatus::Failed(error) => return Err(error),
                PollStatus::Running { retry_after } => {
                    if Instant::now() + retry_after > deadline {
                        return Err(ArmError::Transport(format!(
                            "{:?} operation still running after {}s",
                            operation.kind,
                            timeout.as_secs()
                        )));
                    }
                    tokio::time::sleep(retry_after).await;
                }
            }
        }
    }

    async fn poll_status_document<T: Provisioned>(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<T>, ArmError> {
        let url = self.same_origin_url(&operation.url)?;
        let response = match self
            .execute("GetOperationStatus", Method::GET, url, None)
            .await
        {
            Err(ArmError::Api(error)) if operation_url_unusable(&error) => {
                return self.poll_resource_instead(operation).await;
            }
            other => other?,
        };
        let document: Value = response.json()?;
        let status = document
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("InProgress");
        match status {
            s if s.eq_ignore_ascii_case("Succeeded") => self.confirm_resource(operation).await,
            s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                let error = document
                    .get("error")
                    .map(api_error_from_value)
                    .unwrap_or_else(|| api_error_from_value(&Value::Null));
                Ok(PollStatus::Failed(ArmError::OperationFailed {
                    status: s.to_string(),
                    error: Box::new(error),
                }))
            }
            _ => Ok(running(response.retry_after(), operation)),
        }
    }

    async fn poll_location<T: Provisioned>(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<T>, ArmError> {
        let url = self.same_origin_url(&operation.url)?;
        match self
            .execute("GetOperationResult", Method::GET, url, None)
            .await
        {
            Ok(response) if response.status == StatusCode::ACCEPTED => {
                Ok(running(response.retry_after(), operation))
            }
            Ok(_) => self.confirm_resource(operation).await,
            Err(ArmError::Api(error)) if operation_url_unusable(&error) => {
                self.poll_resource_instead(operation).await
            }
            Err(ArmError::Api(error)) if !error.is_retryable_status() => {
                Ok(PollStatus::Failed(ArmError::OperationFailed {
                    status: "Failed".into(),
                    error,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// An operation URL that answers 404 has expired (Azure keeps them only for a while after
    /// the operation ends) or never existed here; one that answers 401/403 is not this
    /// identity's (a handle from another identity or endpoint). The resource tells how it went.
    async fn poll_resource_instead<T: Provisioned>(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<T>, ArmError> {
        let by_resource = PendingOperation {
            poll: PollMethod::ProvisioningState,
            ..operation.clone()
        };
        self.confirm_resource(&by_resource).await
    }

    /// After an operation reports success, the resource must show `Succeeded`: ARM can still
    /// show `Accepted` for a moment, which counts as running.
    async fn confirm_resource<T: Provisioned>(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<T>, ArmError> {
        if !operation.kind.leaves_account() {
            if operation.poll != PollMethod::ProvisioningState {
                return Ok(PollStatus::Succeeded(None));
            }
            // Deletes without an operation URL: done when the resource is gone.
            let url = self.resource_url(&operation.resource_id);
            return match self.execute(T::GET, Method::GET, url, None).await {
                Ok(_) => Ok(running(None, operation)),
                Err(ArmError::Api(e)) if e.status == Some(404) => Ok(PollStatus::Succeeded(None)),
                Err(e) => Err(e),
            };
        }
        let url = self.resource_url(&operation.resource_id);
        let resource: T = match self.execute(T::GET, Method::GET, url, None).await {
            Ok(response) => response.json()?,
            // The resource the operation should have left is not there (deleted meanwhile, or
            // the write never took): nothing to wait for; the caller observes afresh.
            Err(ArmError::Api(e)) if e.status == Some(404) => return Ok(PollStatus::Unknown),
            Err(e) => return Err(e),
        };
        match resource.provisioning_state() {
            Some(s) if s.eq_ignore_ascii_case("Succeeded") => {
                Ok(PollStatus::Succeeded(Some(Box::new(resource))))
            }
            Some(s) if s.eq_ignore_ascii_case("Failed") => {
                let error = match self.operation_error(operation).await {
                    Some(error) => error,
                    None => api_error_from_value(&serde_json::json!({
                        "code": "ProvisioningFailed",
                        "message": format!("the {}'s provisioningState is Failed after the {:?} operation", T::WHAT, operation.kind),
                    })),
                };
                Ok(PollStatus::Failed(ArmError::OperationFailed {
                    status: "Failed".into(),
                    error: Box::new(error),
                }))
            }
            // Followed by reading the resource: at the pace ARM asked for. Confirming an
            // operation that said it succeeded: ARM can show Accepted for a moment.
            _ if operation.poll == PollMethod::ProvisioningState => Ok(running(None, operation)),
            _ => Ok(running(Some(Duration::from_secs(1)), operation)),
        }
    }

    /// The error of an operation followed by reading its resource, from its status URL (which
    /// the handle keeps for that): only read when the resource shows it failed.
    async fn operation_error(&self, operation: &PendingOperation) -> Option<ApiError> {
        if operation.url == self.resource_url(&operation.resource_id).as_str() {
            return None;
        }
        let url = self.same_origin_url(&operation.url).ok()?;
        let response = self
            .execute("GetOperationStatus", Method::GET, url, None)
            .await
            .ok()?;
        let document: Value = response.json().ok()?;
        document.get("error").map(api_error_from_value)
    }

    // ----- plumbing ---------------------------------------------------------------------------

    async fn write(
        &self,
        account: &AccountRef,
        operation: &'static str,
        method: Method,
        body: &Value,
        kind: OperationKind,
    ) -> Result<WriteOutcome, ArmError> {
        let (account, operation) = self
            .write_to(&account.id(), operation, method, body, kind)
            .await?;
        // A create is followed by reading the account (its provisioningState) instead of the
        // status URL and then the account: one read a poll instead of two at the end, and the
        // account as it is comes with the answer. The URL stays for a failure's error.
        let operation = operation.map(|operation| match kind {
            OperationKind::Create => PendingOperation {
                poll: PollMethod::ProvisioningState,
                ..operation
            },
            _ => operation,
        });
        Ok(WriteOutcome { account, operation })
    }

    /// A PUT or PATCH of the resource `id`: what ARM answered with, and the operation to follow.
    pub(super) async fn write_to<T: DeserializeOwned>(
        &self,
        id: &str,
        operation: &'static str,
        method: Method,
        body: &Value,
        kind: OperationKind,
    ) -> Result<(Option<T>, Option<PendingOperation>), ArmError> {
        let url = self.resource_url(id);
        let response = self.execute(operation, method, url, Some(body)).await?;
        let returned = if response.body.is_empty() {
            None
        } else {
            Some(response.json()?)
        };
        Ok((returned, self.operation_from(&response, kind, id)))
    }

    /// The operation handle of a 201/202 answer, preferring `Azure-AsyncOperation`.
    fn operation_from(
        &self,
        response: &Response,
        kind: OperationKind,
        resource_id: &str,
    ) -> Option<PendingOperation> {
        // A 200 carrying an operation URL is long-running too (ARM's async protocol allows it;
        // a PUT over an existing deployment answers so).
        let long_running = matches!(response.status, StatusCode::CREATED | StatusCode::ACCEPTED)
            || (response.status == StatusCode::OK
                && response.header("azure-asyncoperation").is_some());
        if !long_running {
            return None;
        }
        let (poll, url) = if let Some(url) = response.header("azure-asyncoperation") {
            (PollMethod::AzureAsyncOperation, url)
        } else if let Some(url) = response.header("location") {
            (PollMethod::Location, url)
        } else {
            (
                PollMethod::ProvisioningState,
                self.resource_url(resource_id).to_string(),
            )
        };
        Some(PendingOperation {
            kind,
            poll,
            url,
            resource_id: resource_id.to_string(),
            started_at: jiff::Timestamp::now().to_string(),
            retry_after_seconds: response.retry_after().map(|d| d.as_secs()),
        })
    }

    pub(super) async fn list_all<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        first: Url,
    ) -> Result<Vec<T>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let page: Page<T> = self
                .execute(operation, Method::GET, url, None)
                .await?
                .json()?;
            items.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                next = Some(self.same_origin_url(&link)?);
            }
        }
        Ok(items)
    }

    pub(super) fn resource_url(&self, path: &str) -> Url {
        let mut url = self.inner.endpoint.clone();
        url.set_path(path);
        url.set_query(Some(&format!("api-version={API_VERSION}")));
        url
    }

    /// URLs that ARM hands back (operation status, nextLink) are followed only on the ARM
    /// endpoint itself: a stored handle edited to point elsewhere must not receive our token.
    fn same_origin_url(&self, raw: &str) -> Result<Url, ArmError> {
        let url = Url::parse(raw)
            .map_err(|e| ArmError::InvalidResponse(format!("bad URL {raw:?} from ARM: {e}")))?;
        if url.origin() != self.inner.endpoint.origin() {
            return Err(ArmError::Config(format!(
                "refusing to send credentials to {}, which is not the ARM endpoint {}",
                url.origin().ascii_serialization(),
                self.inner.endpoint.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// Sends one logical request: waits for a rate-limit token, retries throttling, server
    /// errors and lost connections with backoff, and returns a 2xx response or the error.
    pub(super) async fn execute(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ArmError> {
        let span = tracing::info_span!(
            "arm_request",
            method = %method,
            operation,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        self.execute_with_retries(operation, method, url, body)
            .instrument(span)
            .await
    }

    async fn execute_with_retries(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ArmError> {
        let started = Instant::now();
        let class = RequestClass::for_method(&method);
        let subscription = subscription_of(&url);
        let retry = self.inner.retry;
        let mut attempt = 1;
        let result = loop {
            let permit = self.wait_for_token(&subscription, class).await;
            let outcome = self.send_once(operation, &method, &url, body, permit).await;
            let (error, maybe_delivered) = match outcome {
                Ok(response) => break Ok(response),
                Err(failed) => (failed.error, failed.maybe_delivered),
            };
            if attempt >= retry.max_attempts || !retried_in_client(&error) {
                break Err(error);
            }
            // A request that may have been carried out must not be sent again blindly: only a
            // 429, or a connection that was never made, proves that ARM did not act on it.
            if !is_idempotent(operation) && maybe_delivered && !error.is_throttled() {
                break Err(error);
            }
            self.inner.metrics.retries.inc();
            let backoff = retry.backoff(attempt);
            // After a 429 the bucket itself holds the next attempt back until Retry-After.
            let delay = if error.is_throttled() {
                Duration::ZERO
            } else {
                error.retry_after().unwrap_or_default().max(backoff)
            };
            tracing::debug!(attempt, error = %error, delay_ms = delay.as_millis() as u64, "retrying ARM request");
            tokio::time::sleep(delay).await;
            attempt += 1;
        };
        let span = tracing::Span::current();
        span.record("duration_ms", started.elapsed().as_millis() as u64);
        span.record("retries", attempt - 1);
        match &result {
            Ok(response) => span.record("status", response.status.as_u16()),
            Err(error) => span.record("status", error.status().unwrap_or(0)),
        };
        tracing::debug!("ARM request done");
        result
    }

    async fn wait_for_token<'a>(
        &'a self,
        subscription: &'a str,
        class: RequestClass,
    ) -> Option<Permit<'a>> {
        let limiter = self.inner.limiter.as_ref()?;
        let permit = limiter.acquire(subscription, class).await;
        if !permit.waited.is_zero() {
            self.inner.metrics.throttle_waits.inc();
        }
        Some(permit)
    }

    async fn send_once(
        &self,
        operation: &'static str,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        permit: Option<Permit<'_>>,
    ) -> Result<Response, FailedAttempt> {
        // No token, nothing sent: a create may be tried again.
        let token = self
            .inner
            .credential
            .token()
            .await
            .map_err(|error| FailedAttempt {
                error,
                maybe_delivered: false,
            })?;
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.secret())
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(body) = body {
            request = request.json(body);
        } else if *method != Method::GET && *method != Method::DELETE {
            request = request.header("content-length", "0");
        }
        let sent = request.send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.count(operation, "error");
                return Err(FailedAttempt {
                    error: ArmError::Transport(describe_transport_error(&e)),
                    // No connection, nothing sent: the request never reached ARM.
                    maybe_delivered: !e.is_connect(),
                });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        self.count(operation, status.as_str());
        let request_id = headers
            .get("x-ms-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(request_id) = &request_id {
            tracing::Span::current().record("request_id", request_id.as_str());
        }
        if let Some(permit) = permit {
            self.answered(permit, status, &headers);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| ArmError::Transport(describe_transport_error(&e)))?;
        if status.is_success() {
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        let server_retry_after = retry_after(&headers);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.inner.metrics.throttled.inc();
        }
        Err(ArmError::Api(Box::new(api_error_from_response(
            status.as_u16(),
            &body,
            request_id,
            server_retry_after,
        )))
        .into())
    }

    /// Tells the limiter what the answer said of ARM's bucket: its count, and after a 429 how
    /// long nobody is to send.
    fn answered(&self, permit: Permit<'_>, status: StatusCode, headers: &HeaderMap) {
        let remaining = headers
            .get(permit.class.remaining_header())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(limiter) = &self.inner.limiter
        {
            let wait = retry_after(headers).unwrap_or(Duration::from_secs(10));
            limiter.observe_throttled(permit.subscription, permit.class, wait);
        }
        permit.answered(remaining);
    }

    fn count(&self, operation: &str, status: &str) {
        self.inner
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status: status.to_string(),
            })
            .inc();
    }
}

impl ApiError {
    fn is_retryable_status(&self) -> bool {
        matches!(self.status, Some(429) | Some(408)) || self.status.is_some_and(|s| s >= 500)
    }
}

/// Which failures the client retries by itself. `RequestConflict` is not among them: it means an
/// operation is in flight, which can take minutes; the engine comes back later instead.
fn retried_in_client(error: &ArmError) -> bool {
    match error {
        ArmError::Transport(_) => true,
        ArmError::Api(e) => e.is_retryable_status(),
        _ => false,
    }
}

/// One attempt that got no usable answer.
struct FailedAttempt {
    error: ArmError,
    /// Whether ARM may have received (and acted on) the request: false only when no
    /// connection was made.
    maybe_delivered: bool,
}

impl From<ArmError> for FailedAttempt {
    fn from(error: ArmError) -> Self {
        FailedAttempt {
            error,
            maybe_delivered: true,
        }
    }
}

/// Whether sending `operation` again after a lost answer is safe. Regenerating a key twice
/// replaces it twice (a key handed out in between is lost). A create or restore was decided on
/// a read older than the lost answer, so it is sent once per decision: the engine reads the
/// account (or deployment) again and finds what the first PUT made, or decides anew. Updates,
/// deletes and purges sent twice are the same request.
fn is_idempotent(operation: &str) -> bool {
    !matches!(
        operation,
        "RegenerateKey" | "CreateAccount" | "RestoreAccount" | "CreateDeployment"
    )
}

fn operation_url_unusable(error: &ApiError) -> bool {
    matches!(error.status, Some(401 | 403 | 404))
}

fn running<T>(retry_after: Option<Duration>, operation: &PendingOperation) -> PollStatus<T> {
    PollStatus::Running {
        retry_after: retry_after.unwrap_or_else(|| operation.poll_interval()),
    }
}

fn subscription_of(url: &Url) -> String {
    let mut segments = url.path_segments().into_iter().flatten();
    while let Some(segment) = segments.next() {
        if segment.eq_ignore_ascii_case("subscriptions") {
            return segments.next().unwrap_or_default().to_string();
        }
    }
    String::new()
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which never holds a token (the token is a header).
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection lost"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let first = policy.backoff(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let late = policy.backoff(9);
        assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
    }

    #[test]
    fn the_subscription_is_read_from_the_path() {
        let url =
            Url::parse("https://x/subscriptions/abc/resourceGroups/rg?api-version=1").unwrap();
        assert_eq!(subscription_of(&url), "abc");
        assert_eq!(
            subscription_of(&Url::parse("https://x/providers").unwrap()),
            ""
        );
    }
}
