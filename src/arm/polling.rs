//! Long-running operations: the handle a write's answer gives, and polling it to its end.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::client::{ArmClient, Response};
use super::error::{ApiError, ArmError, api_error_from_value};
use super::lro::{OperationKind, PendingOperation, PollMethod, PollStatus, Provisioned};
use super::models::Account;

impl ArmClient {
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
            _ => Ok(self.running(response.retry_after(), operation)),
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
                Ok(self.running(response.retry_after(), operation))
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
                Ok(_) => Ok(self.running(None, operation)),
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
            _ if operation.poll == PollMethod::ProvisioningState => {
                Ok(self.running(None, operation))
            }
            _ => Ok(self.running(Some(Duration::from_secs(1)), operation)),
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

    /// The operation handle of a 201/202 answer, preferring `Azure-AsyncOperation`; `None` when
    /// the write is done, as a 201 whose body (`returned`) already says it ended is: Azure was
    /// recorded answering a deployment create so, with no operation header.
    pub(super) fn operation_from(
        &self,
        response: &Response,
        returned: Option<&Value>,
        kind: OperationKind,
        resource_id: &str,
    ) -> Option<PendingOperation> {
        let operation_header = response.header("azure-asyncoperation").is_some()
            || response.header("location").is_some();
        // A 200 carrying an operation URL is long-running too (ARM's async protocol allows it).
        let long_running = matches!(response.status, StatusCode::CREATED | StatusCode::ACCEPTED)
            || (response.status == StatusCode::OK
                && response.header("azure-asyncoperation").is_some());
        // A 202 says the work goes on, whatever its body shows.
        let answered_done = response.status != StatusCode::ACCEPTED
            && !operation_header
            && returned.is_some_and(ended);
        if !long_running || answered_done {
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
}

/// A resource body whose provisioningState is terminal: nothing is left to poll for.
fn ended(body: &Value) -> bool {
    body.pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .is_some_and(|state| {
            ["Succeeded", "Failed", "Canceled"]
                .iter()
                .any(|ended| state.eq_ignore_ascii_case(ended))
        })
}

fn operation_url_unusable(error: &ApiError) -> bool {
    matches!(error.status, Some(401 | 403 | 404))
}

impl ArmClient {
    fn running<T>(
        &self,
        retry_after: Option<Duration>,
        operation: &PendingOperation,
    ) -> PollStatus<T> {
        PollStatus::Running {
            retry_after: retry_after.unwrap_or_else(|| self.poll_interval(operation)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::json;

    use super::*;
    use crate::arm::{ArmClientConfig, Credential};

    fn answer(status: StatusCode, operation_header: bool) -> Response {
        let mut headers = HeaderMap::new();
        if operation_header {
            let url = "http://127.0.0.1:9/subscriptions/s/providers/Microsoft.CognitiveServices/locations/l/operationStatuses/1";
            headers.insert("azure-asyncoperation", HeaderValue::from_static(url));
        }
        Response {
            status,
            headers,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn only_an_answer_that_says_it_is_done_is_no_operation() {
        let client = ArmClient::new(
            ArmClientConfig::new("http://127.0.0.1:9"),
            Arc::new(Credential::static_token("t")),
        )
        .unwrap();
        let done = json!({"properties": {"provisioningState": "Succeeded"}});
        let running = json!({"properties": {"provisioningState": "Creating"}});
        let handle = |status, header, body: &Value| {
            client.operation_from(
                &answer(status, header),
                Some(body),
                OperationKind::Create,
                "/x",
            )
        };
        // Recorded Azure's deployment create: 201 Succeeded, no header.
        assert_eq!(handle(StatusCode::CREATED, false, &done), None);
        // A body not yet done, an operation header, or a 202 keep the operation.
        let by_resource = handle(StatusCode::CREATED, false, &running).unwrap();
        assert_eq!(by_resource.poll, PollMethod::ProvisioningState);
        let by_header = handle(StatusCode::CREATED, true, &done).unwrap();
        assert_eq!(by_header.poll, PollMethod::AzureAsyncOperation);
        assert!(handle(StatusCode::ACCEPTED, false, &done).is_some());
        assert_eq!(
            handle(StatusCode::OK, false, &running),
            None,
            "a 200 is done"
        );
    }
}
