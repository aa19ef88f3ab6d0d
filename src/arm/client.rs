//! The typed REST client for `Microsoft.CognitiveServices/accounts`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::credentials::{Credential, validate_endpoint};
use super::error::ArmError;
use super::lro::{OperationKind, PendingOperation, PollMethod};
use super::models::{Account, AccountRef, ApiKeys, DeletedAccountRef, KeyName, Page};
use super::ratelimit::{Booking, RateLimiter, RateLimits, RequestClass};
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
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
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
    /// The wait between polls of an operation whose answer named none (`Retry-After`): Azure
    /// was recorded sending none with an account create's `Azure-AsyncOperation`.
    pub default_poll: Duration,
}

impl ArmClientConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        ArmClientConfig {
            endpoint: endpoint.into(),
            rate_limits: Some(RateLimits::azure()),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            metrics: ArmMetrics::default(),
            default_poll: DEFAULT_POLL,
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
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: bytes::Bytes,
}

impl Response {
    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, ArmError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ArmError::InvalidResponse(format!("cannot read ARM response body: {e}")))
    }

    pub(super) fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The ARM client. Cheap to clone; clones share connections, tokens, buckets and counters.
#[derive(Clone)]
pub struct ArmClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// Tells this client (and its clones) apart from clients with other credentials.
    id: u64,
    pub(super) http: reqwest::Client,
    pub(super) endpoint: Url,
    pub(super) credential: Arc<Credential>,
    pub(super) limiter: Option<RateLimiter>,
    pub(super) retry: RetryPolicy,
    pub(super) metrics: ArmMetrics,
    default_poll: Duration,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArmClient({})", self.inner.endpoint)
    }
}

/// The wait between polls when ARM names none.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

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
                default_poll: config.default_poll,
            }),
        })
    }

    pub fn metrics(&self) -> &ArmMetrics {
        &self.inner.metrics
    }

    /// How long to wait before polling `operation` again: what ARM asked for, or this client's
    /// default when it asked for nothing.
    pub fn poll_interval(&self, operation: &PendingOperation) -> Duration {
        operation
            .retry_after_seconds
            .map_or(self.inner.default_poll, Duration::from_secs)
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
        Ok(self.operation_from(&response, None, kind, id))
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

    /// Accounts of a whole subscription, following `nextLink`.
    pub async fn list_accounts_in_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Account>, ArmError> {
        let path = format!(
            "/subscriptions/{subscription_id}/providers/Microsoft.CognitiveServices/accounts"
        );
        self.list_all("ListAccountsInSubscription", self.resource_url(&path))
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
        let document: Option<Value> = if response.body.is_empty() {
            None
        } else {
            Some(response.json()?)
        };
        let operation = self.operation_from(&response, document.as_ref(), kind, id);
        let returned = document
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                ArmError::InvalidResponse(format!("cannot read ARM response body: {e}"))
            })?;
        Ok((returned, operation))
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
    pub(super) fn same_origin_url(&self, raw: &str) -> Result<Url, ArmError> {
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
}
