//! Where ARM bearer tokens come from: Azure identities through `azure_identity`, or a static
//! token for the emulator. Tokens are cached until shortly before they expire and never logged.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use url::Url;

use super::error::ArmError;

/// How the operator authenticates to Azure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialMode {
    /// AKS workload identity: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE.
    WorkloadIdentity,
    /// The managed identity of the node or pod (AZURE_CLIENT_ID picks a user-assigned one).
    ManagedIdentity,
    /// A service principal: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET.
    ClientSecret,
    /// The signed-in Azure CLI user (`az login`), for people at a terminal.
    AzureCli,
    /// A fixed bearer token (`--static-token`), for the emulator.
    StaticToken,
}

/// Which Azure cloud: decides the ARM endpoint, the token scope and the Entra ID authority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Cloud {
    #[default]
    #[value(name = "AzureCloud", alias = "azurecloud")]
    AzureCloud,
    #[value(name = "AzureChinaCloud", alias = "azurechinacloud")]
    AzureChinaCloud,
    #[value(name = "AzureUSGovernment", alias = "azureusgovernment")]
    AzureUsGovernment,
}

impl Cloud {
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Cloud::AzureCloud => "https://management.azure.com",
            Cloud::AzureChinaCloud => "https://management.chinacloudapi.cn",
            Cloud::AzureUsGovernment => "https://management.usgovcloudapi.net",
        }
    }

    /// The OAuth scope of the cloud's ARM audience.
    pub fn token_scope(self) -> String {
        format!("{}/.default", self.arm_endpoint())
    }

    fn configuration(self) -> CloudConfiguration {
        match self {
            Cloud::AzureCloud => CloudConfiguration::AzurePublic,
            Cloud::AzureChinaCloud => CloudConfiguration::AzureChina,
            Cloud::AzureUsGovernment => CloudConfiguration::AzureGovernment,
        }
    }
}

/// Checks an ARM endpoint: https anywhere, plain http only on a loopback address (the emulator),
/// so a token is never sent in clear text over a network.
pub fn validate_endpoint(endpoint: &str) -> Result<Url, ArmError> {
    let url = Url::parse(endpoint)
        .map_err(|e| ArmError::Config(format!("ARM endpoint {endpoint:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ArmError::Config(format!(
            "ARM endpoint {endpoint} uses plain http on a non-loopback host; use https (plain http is allowed only on 127.0.0.1, ::1 or localhost)"
        ))),
        other => Err(ArmError::Config(format!(
            "ARM endpoint {endpoint} has unsupported scheme {other:?}"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The settings of a service principal or workload identity, when not taken from the environment.
#[derive(Clone, Default)]
pub struct IdentitySettings {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub federated_token_file: Option<std::path::PathBuf>,
    /// The Entra ID authority tokens are asked of, instead of the cloud's (an https URL, e.g.
    /// a sovereign or private cloud's, or the emulator's offline Entra ID).
    pub authority_host: Option<String>,
}

impl fmt::Debug for IdentitySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySettings")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("federated_token_file", &self.federated_token_file)
            .field("authority_host", &self.authority_host)
            .finish()
    }
}

impl IdentitySettings {
    /// Fills unset fields from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and
    /// AZURE_FEDERATED_TOKEN_FILE.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        IdentitySettings {
            tenant_id: var("AZURE_TENANT_ID"),
            client_id: var("AZURE_CLIENT_ID"),
            client_secret: var("AZURE_CLIENT_SECRET"),
            federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE").map(Into::into),
            authority_host: None,
        }
    }
}

enum TokenSource {
    Static(Secret),
    Azure(Arc<dyn TokenCredential>),
}

struct CachedToken {
    token: Secret,
    expires_at: SystemTime,
}

/// A source of ARM bearer tokens with a cache in front.
pub struct Credential {
    source: TokenSource,
    scope: String,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            TokenSource::Static(_) => "static",
            TokenSource::Azure(_) => "azure_identity",
        };
        write!(f, "Credential({kind}, scope {})", self.scope)
    }
}

/// Refresh a cached token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl Credential {
    /// A fixed token (for the emulator). It never expires.
    pub fn static_token(token: impl Into<String>) -> Self {
        Credential {
            source: TokenSource::Static(Secret::new(token.into())),
            scope: String::new(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Builds a credential of the given mode for the given cloud.
    pub fn new(
        mode: CredentialMode,
        cloud: Cloud,
        identity: &IdentitySettings,
        static_token: Option<&str>,
    ) -> Result<Self, ArmError> {
        let credential: Arc<dyn TokenCredential> = match mode {
            CredentialMode::StaticToken => {
                let token = static_token.filter(|t| !t.is_empty()).ok_or_else(|| {
                    ArmError::Config("--credential static-token needs --static-token".into())
                })?;
                return Ok(Credential::static_token(token));
            }
            CredentialMode::WorkloadIdentity => workload_identity(cloud, identity)?,
            CredentialMode::ManagedIdentity => managed_identity(cloud, identity)?,
            CredentialMode::ClientSecret => client_secret(cloud, identity)?,
            CredentialMode::AzureCli => AzureCliCredential::new(None).map_err(credential_error)?,
        };
        Ok(Credential {
            source: TokenSource::Azure(credential),
            scope: cloud.token_scope(),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// Wraps any `azure_identity`-style credential (tests use a fake one).
    pub fn from_token_credential(
        credential: Arc<dyn TokenCredential>,
        scope: impl Into<String>,
    ) -> Self {
        Credential {
            source: TokenSource::Azure(credential),
            scope: scope.into(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Overrides the token scope (for custom clouds).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// A valid bearer token, from the cache when it has one that is not about to expire.
    pub async fn token(&self) -> Result<Secret, ArmError> {
        let credential = match &self.source {
            TokenSource::Static(token) => return Ok(token.clone()),
            TokenSource::Azure(credential) => credential,
        };
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.expires_at > SystemTime::now() + REFRESH_MARGIN
        {
            return Ok(cached.token.clone());
        }
        let access = credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(credential_error)?;
        let expires_at = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(access.expires_on.unix_timestamp()).unwrap_or(0));
        *cache = Some(CachedToken {
            token: access.token.clone(),
            expires_at,
        });
        Ok(access.token)
    }
}

fn credential_error(e: azure_core::Error) -> ArmError {
    // azure_core errors describe the failing step; they do not carry token values.
    if is_transient(&e) {
        ArmError::CredentialUnavailable(e.to_string())
    } else {
        ArmError::Credential(e.to_string())
    }
}

/// A token endpoint or IMDS that could not be reached, timed out, throttled or failed on its
/// side: the same request may work in a moment. An answer that refuses the identity (400, 401:
/// a wrong secret, an unknown client id) is not. azure_identity wraps the HTTP error in a
/// `Credential` error, so the whole chain is looked at.
fn is_transient(error: &azure_core::Error) -> bool {
    use azure_core::error::ErrorKind;
    let mut current = Some(error);
    while let Some(error) = current {
        match error.kind() {
            ErrorKind::Connection | ErrorKind::Io => return true,
            ErrorKind::HttpResponse { status, .. } => {
                let status = u16::from(*status);
                return matches!(status, 408 | 429) || status >= 500;
            }
            _ => current = error.downcast_ref::<azure_core::Error>(),
        }
    }
    false
}

fn require(value: &Option<String>, what: &str) -> Result<String, ArmError> {
    value
        .clone()
        .ok_or_else(|| ArmError::Credential(format!("{what} is not set")))
}

/// The cloud's authority (or the one given), and few quick retries of a token request:
/// azure_identity's default (8 retries over up to a minute) would hold a reconcile worker that
/// long, while the controller's own backoff retries a failed token request anyway.
fn identity_client_options(
    cloud: Cloud,
    identity: &IdentitySettings,
) -> Result<ClientOptions, ArmError> {
    let cloud = match &identity.authority_host {
        None => cloud.configuration(),
        Some(authority) => custom_authority(authority)?,
    };
    Ok(ClientOptions {
        cloud: Some(Arc::new(cloud)),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            max_retries: 2,
            max_total_elapsed: azure_core::time::Duration::seconds(5),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A cloud whose Entra ID is at `authority`: https only, since client secrets and federated
/// assertions are sent there.
fn custom_authority(authority: &str) -> Result<CloudConfiguration, ArmError> {
    let url = Url::parse(authority).map_err(|e| {
        ArmError::Config(format!(
            "authority host {authority:?} (--authority-host, AZURE_AUTHORITY_HOST) is not a URL: {e}"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(ArmError::Config(format!(
            "authority host {authority} (--authority-host, AZURE_AUTHORITY_HOST) must be https: secrets and assertions are sent to it"
        )));
    }
    let mut custom = CustomConfiguration::default();
    custom.authority_host = authority.trim_end_matches('/').to_string();
    Ok(custom.into())
}

fn workload_identity(
    cloud: Cloud,
    identity: &IdentitySettings,
) -> Result<Arc<dyn TokenCredential>, ArmError> {
    let mut options = WorkloadIdentityCredentialOptions {
        tenant_id: identity.tenant_id.clone(),
        client_id: identity.client_id.clone(),
        token_file_path: identity.federated_token_file.clone(),
        ..Default::default()
    };
    options.credential_options.client_options = identity_client_options(cloud, identity)?;
    Ok(WorkloadIdentityCredential::new(Some(options)).map_err(credential_error)?)
}

fn managed_identity(
    cloud: Cloud,
    identity: &IdentitySettings,
) -> Result<Arc<dyn TokenCredential>, ArmError> {
    let mut options = ManagedIdentityCredentialOptions {
        user_assigned_id: identity
            .client_id
            .clone()
            .map(azure_identity::UserAssignedId::ClientId),
        ..Default::default()
    };
    // Managed identity asks the host (IMDS, App Service), never an Entra authority.
    let cloud_only = IdentitySettings {
        authority_host: None,
        ..identity.clone()
    };
    options.client_options = identity_client_options(cloud, &cloud_only)?;
    Ok(ManagedIdentityCredential::new(Some(options)).map_err(credential_error)?)
}

fn client_secret(
    cloud: Cloud,
    identity: &IdentitySettings,
) -> Result<Arc<dyn TokenCredential>, ArmError> {
    let tenant = require(&identity.tenant_id, "tenantId (AZURE_TENANT_ID)")?;
    let client = require(&identity.client_id, "clientId (AZURE_CLIENT_ID)")?;
    let secret = require(
        &identity.client_secret,
        "clientSecret (AZURE_CLIENT_SECRET)",
    )?;
    let options = ClientSecretCredentialOptions {
        client_options: identity_client_options(cloud, identity)?,
    };
    Ok(
        ClientSecretCredential::new(&tenant, client, Secret::new(secret), Some(options))
            .map_err(credential_error)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_allowed_on_loopback() {
        assert!(validate_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(validate_endpoint("http://[::1]:8080").is_ok());
        assert!(validate_endpoint("http://localhost:1").is_ok());
        assert!(validate_endpoint("https://management.azure.com").is_ok());
        let err = validate_endpoint("http://10.0.0.1:8080").unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(validate_endpoint("ftp://x").is_err());
    }

    #[test]
    fn each_cloud_has_its_own_endpoint_and_scope() {
        assert_eq!(
            Cloud::AzureCloud.token_scope(),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            Cloud::AzureChinaCloud.arm_endpoint(),
            "https://management.chinacloudapi.cn"
        );
        assert_eq!(
            Cloud::AzureUsGovernment.arm_endpoint(),
            "https://management.usgovcloudapi.net"
        );
    }

    #[test]
    fn a_client_secret_credential_names_the_missing_setting() {
        let identity = IdentitySettings {
            tenant_id: Some("00000000-0000-0000-0000-000000000000".into()),
            client_id: Some("app".into()),
            ..Default::default()
        };
        let err = Credential::new(
            CredentialMode::ClientSecret,
            Cloud::AzureCloud,
            &identity,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("clientSecret"), "{err}");
    }

    /// Counts token requests and hands out tokens that expire after `lifetime`.
    #[derive(Debug)]
    struct CountingCredential {
        calls: std::sync::atomic::AtomicU32,
        lifetime: time::Duration,
    }

    #[async_trait::async_trait]
    impl TokenCredential for CountingCredential {
        async fn get_token(
            &self,
            scopes: &[&str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            assert_eq!(scopes, ["https://management.azure.com/.default"]);
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(azure_core::credentials::AccessToken::new(
                format!("token-{n}"),
                time::OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    fn counting(lifetime: time::Duration) -> (Arc<CountingCredential>, Credential) {
        let fake = Arc::new(CountingCredential {
            calls: 0.into(),
            lifetime,
        });
        let credential =
            Credential::from_token_credential(fake.clone(), Cloud::AzureCloud.token_scope());
        (fake, credential)
    }

    #[tokio::test]
    async fn tokens_are_cached_until_near_expiry() {
        let (fake, credential) = counting(time::Duration::hours(1));
        assert_eq!(credential.token().await.unwrap().secret(), "token-0");
        assert_eq!(credential.token().await.unwrap().secret(), "token-0");
        assert_eq!(fake.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        // A token within the refresh margin of its expiry is replaced.
        let (fake, credential) = counting(time::Duration::minutes(2));
        credential.token().await.unwrap();
        assert_eq!(credential.token().await.unwrap().secret(), "token-1");
        assert_eq!(fake.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn an_authority_host_replaces_the_clouds_and_must_be_https() {
        let with = |authority: &str| IdentitySettings {
            authority_host: Some(authority.into()),
            ..IdentitySettings::default()
        };
        let options = identity_client_options(Cloud::AzureCloud, &with("https://login.example/"))
            .expect("an https authority");
        let Some(CloudConfiguration::Custom(custom)) = options.cloud.as_deref() else {
            panic!("a custom cloud: {:?}", options.cloud);
        };
        assert_eq!(custom.authority_host, "https://login.example");
        let refused = identity_client_options(Cloud::AzureCloud, &with("http://127.0.0.1:1"))
            .expect_err("plain http");
        assert!(
            refused.to_string().contains("must be https")
                && refused.to_string().contains("AZURE_AUTHORITY_HOST"),
            "{refused}"
        );
        let default =
            identity_client_options(Cloud::AzureUsGovernment, &IdentitySettings::default())
                .unwrap();
        assert_eq!(
            default.cloud.as_deref(),
            Some(&CloudConfiguration::AzureGovernment),
            "without one, the cloud's own"
        );
    }

    #[test]
    fn token_endpoint_hiccups_are_retryable_and_a_refused_identity_is_not() {
        use azure_core::error::{Error, ErrorKind};
        use azure_core::http::StatusCode;
        let answered = |status: StatusCode| {
            // As azure_identity reports it: a Credential error wrapping the HTTP one.
            let http = ErrorKind::HttpResponse {
                status,
                error_code: None,
                raw_response: None,
            }
            .into_error();
            Error::with_error(ErrorKind::Credential, http, "authentication failed")
        };
        for transient in [
            answered(StatusCode::ServiceUnavailable),
            answered(StatusCode::TooManyRequests),
            Error::with_message(ErrorKind::Io, "connection reset"),
            Error::with_error(
                ErrorKind::Credential,
                ErrorKind::Connection.into_error(),
                "IMDS unreachable",
            ),
        ] {
            let error = credential_error(transient);
            assert!(error.is_retryable(), "{error}");
            assert_eq!(error.code(), "CredentialsUnavailable");
        }
        for refused in [
            answered(StatusCode::BadRequest),
            answered(StatusCode::Unauthorized),
            Error::with_message(ErrorKind::Credential, "AZURE_TENANT_ID is not set"),
        ] {
            let error = credential_error(refused);
            assert!(!error.is_retryable(), "{error}");
            assert_eq!(error.code(), "CredentialsInvalid");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let identity = IdentitySettings {
            client_secret: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{identity:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credential::static_token("tok-123")).contains("tok-123"));
    }
}
