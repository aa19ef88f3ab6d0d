//! ARM connection flags shared by `run`, `plan` and `apply`: they configure this module, so they
//! live here (the CLI and the controller both import them; neither imports the other).

use std::sync::Arc;
use std::time::Duration;

use crate::arm::client::DEFAULT_POLL;
use crate::arm::{
    ArmClient, ArmClientConfig, ArmError, Cloud, Credential, CredentialMode, IdentitySettings,
};

#[derive(clap::Args, Debug, Clone)]
pub struct ArmArgs {
    /// ARM endpoint URL. Default: the cloud's (https://management.azure.com for AzureCloud).
    /// Plain http is accepted only on loopback addresses (the emulator).
    #[arg(long, env = "ARM_ENDPOINT")]
    pub arm_endpoint: Option<String>,

    /// Azure cloud: decides the default ARM endpoint, the token scope and the Entra ID authority.
    #[arg(long, env = "AZURE_CLOUD", value_enum, default_value = "AzureCloud")]
    pub cloud: Cloud,

    /// OAuth scope of ARM tokens, for a custom cloud. Default: the cloud's
    /// (`https://management.azure.com/.default` for AzureCloud).
    #[arg(long, env = "ARM_TOKEN_SCOPE")]
    pub token_scope: Option<String>,

    /// Default subscription, for resources without spec.subscriptionId.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID")]
    pub subscription_id: Option<String>,

    /// How to authenticate to Azure. Default: workload-identity for `run`, azure-cli for
    /// `plan`/`apply`. client-secret and workload-identity read AZURE_TENANT_ID,
    /// AZURE_CLIENT_ID, AZURE_CLIENT_SECRET / AZURE_FEDERATED_TOKEN_FILE.
    #[arg(long, env = "COGNITIVE_OPERATOR_CREDENTIAL", value_enum)]
    pub credential: Option<CredentialMode>,

    /// Bearer token for --credential static-token (for the emulator).
    #[arg(long, env = "COGNITIVE_OPERATOR_STATIC_TOKEN", hide_env_values = true)]
    pub static_token: Option<String>,

    /// Entra ID authority (https) for client-secret, workload-identity and the Secrets of
    /// spec.credentialsSecretRef, instead of the cloud's (e.g. https://login.microsoftonline.us
    /// or a private cloud's). As Azure's SDKs, it reads AZURE_AUTHORITY_HOST.
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    pub authority_host: Option<String>,

    /// Seconds between polls of an operation when ARM names none (no Retry-After).
    #[arg(long, env = "ARM_DEFAULT_POLL_SECONDS", default_value_t = DEFAULT_POLL.as_secs(), hide = true)]
    pub default_poll_seconds: u64,
}

impl ArmArgs {
    pub fn endpoint(&self) -> String {
        self.arm_endpoint
            .clone()
            .unwrap_or_else(|| self.cloud.arm_endpoint().to_string())
    }

    /// The client configuration these flags give (endpoint, poll pacing).
    pub fn config(&self) -> ArmClientConfig {
        ArmClientConfig {
            default_poll: Duration::from_secs(self.default_poll_seconds),
            ..ArmClientConfig::new(self.endpoint())
        }
    }

    /// The identity settings of the environment, with these flags' authority.
    pub fn identity_settings(&self) -> IdentitySettings {
        IdentitySettings {
            authority_host: self.authority_host.clone().filter(|a| !a.is_empty()),
            ..IdentitySettings::from_env()
        }
    }

    /// Builds the client with the given default credential mode.
    pub fn client(&self, default_mode: CredentialMode) -> Result<ArmClient, ArmError> {
        self.client_with(default_mode, self.config())
    }

    /// Builds the client from `config` (endpoint, limits, shared metrics) with these credentials.
    pub fn client_with(
        &self,
        default_mode: CredentialMode,
        config: ArmClientConfig,
    ) -> Result<ArmClient, ArmError> {
        let mode = self.credential.unwrap_or(default_mode);
        let mut credential = Credential::new(
            mode,
            self.cloud,
            &self.identity_settings(),
            self.static_token.as_deref(),
        )?;
        if let Some(scope) = &self.token_scope {
            credential = credential.with_scope(scope.clone());
        }
        ArmClient::new(config, Arc::new(credential))
    }
}
