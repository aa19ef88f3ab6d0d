//! Sending one logical ARM request: a rate-limit token, the bearer token, retries of
//! throttling, server errors and lost connections, and the metrics of each answer.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::client::{ArmClient, RequestLabels, Response, retry_after};
use super::error::{ApiError, ArmError, api_error_from_response};
use super::ratelimit::{Permit, RequestClass};

impl ArmClient {
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
    pub(super) fn is_retryable_status(&self) -> bool {
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
    use crate::arm::client::RetryPolicy;

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
