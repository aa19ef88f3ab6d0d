//! The emulator through real HTTP, as a client sees it: a [`Harness`] (an emulator plus a
//! keep-alive client that sends a bearer token) and the [`Answer`]s it gets.

use arm_emulator::{Emulator, EmulatorConfig, TlsConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const API: &str = "api-version=2024-10-01";

/// The `Authorization` header of every call that does not choose its own.
pub const BEARER: &str = "Bearer test-token";

/// An emulator plus a keep-alive client that sends a bearer token.
pub struct Harness {
    pub emulator: Emulator,
    pub http: reqwest::Client,
    /// Where [`Harness::url`] sends requests: the plain listener, or the TLS one.
    pub base: String,
    /// The `Authorization` header of [`Harness::send`] ([`BEARER`] unless changed).
    pub auth: String,
}

/// What the tests look at in a response.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    pub fn error_target(&self) -> &str {
        self.body["error"]["target"].as_str().unwrap_or_default()
    }

    pub fn provisioning_state(&self) -> &str {
        self.body["properties"]["provisioningState"]
            .as_str()
            .unwrap_or_default()
    }
}

impl Harness {
    /// Starts an emulator with `config` (and seeds nothing more than it says).
    pub async fn with(config: EmulatorConfig) -> Self {
        install_ring();
        let emulator = Emulator::start(config).await.expect("emulator starts");
        Self {
            base: emulator.base_url(),
            emulator,
            http: reqwest::Client::new(),
            auth: BEARER.to_string(),
        }
    }

    /// Starts an emulator with `config` and its TLS listener (a generated one if it has none);
    /// the client trusts only what the emulator says to trust and talks to the TLS listener.
    pub async fn with_tls(config: EmulatorConfig) -> Self {
        install_ring();
        let config = EmulatorConfig {
            tls: Some(config.tls.clone().unwrap_or_else(TlsConfig::generated)),
            ..config
        };
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let ca = emulator.ca_pem().expect("a TLS listener");
        Self {
            base: emulator.tls_base_url().expect("a TLS listener"),
            http: client_trusting(&ca),
            emulator,
            auth: BEARER.to_string(),
        }
    }

    /// The URL of a resource-provider path, with the api-version.
    pub fn url(&self, path: &str) -> String {
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{separator}{API}", self.base)
    }

    /// A request to a resource-provider path (the api-version added).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.send(method, &self.url(path), body).await
    }

    /// A request to a whole URL (a next link, an operation's URL, an example's URL).
    pub async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Answer {
        self.raw(method, url, body, Some(&self.auth)).await
    }

    /// A request with the given `Authorization` header, or none.
    pub async fn raw(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> Answer {
        let mut request = self.http.request(method, url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request is answered");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.expect("body is read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn get_url(&self, url: &str) -> Answer {
        self.send(Method::GET, url, None).await
    }

    /// Polls the operation's Azure-AsyncOperation URL until its status is terminal (Succeeded,
    /// Failed, Canceled; running reads InProgress in the contract's form, Creating or Accepted
    /// in the recorded one); returns its final status document.
    pub async fn finish(&self, started: &Answer) -> Value {
        let url = started
            .header("azure-asyncoperation")
            .unwrap_or_else(|| panic!("no Azure-AsyncOperation header: {}", started.body))
            .to_string();
        for _ in 0..10 {
            let status = self.get_url(&url).await;
            assert_eq!(status.status, StatusCode::OK, "poll {url}: {}", status.body);
            if is_terminal(&status.body["status"]) {
                return status.body;
            }
        }
        panic!("operation {url} did not finish in 10 polls");
    }
}

/// In a workspace build reqwest has rustls without a provider (the operator's
/// `rustls-no-provider`); ring is the graph's one. Err: already installed.
pub fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that trusts only `ca_pem` (not the system's roots), as a test of the emulator's
/// certificate must.
pub fn client_trusting(ca_pem: &str) -> reqwest::Client {
    install_ring();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("a PEM certificate");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("a client")
}

/// Whether an operation status is one it ends in.
pub fn is_terminal(status: &Value) -> bool {
    matches!(status.as_str(), Some("Succeeded" | "Failed" | "Canceled"))
}
