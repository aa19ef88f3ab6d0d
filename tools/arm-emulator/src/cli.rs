//! The `emulator` subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{
    Emulator, EmulatorConfig, Profile, ResourceGroupSeed, ThrottleConfig, TlsConfig, TlsError,
};

/// Runs the Microsoft.CognitiveServices ARM emulator on loopback until killed.
#[derive(clap::Args, Debug, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Resource group that exists from the start, as SUBSCRIPTION_ID/RESOURCE_GROUP or
    /// SUBSCRIPTION_ID/RESOURCE_GROUP@LOCATION (location defaults to eastus). Repeatable; other
    /// resource groups answer 404 ResourceGroupNotFound until seeded via POST /_emulator/resourceGroups.
    #[arg(long = "resource-group", value_name = "SUB/RG[@LOCATION]")]
    pub resource_groups: Vec<ResourceGroupSeed>,

    /// Status polls (of the Azure-AsyncOperation or Location URL) after which a long-running
    /// operation completes, or `never`; 0 lets any read of the account complete it. Whichever of
    /// this and --operation-seconds is met first completes the operation.
    #[arg(long, default_value = "2", value_parser = parse_polls)]
    pub polls_to_complete: Never<u32>,

    /// Seconds (on the emulator clock) after which a long-running operation completes whether
    /// or not anyone polls it, as Azure's do, or `never`.
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    pub operation_seconds: Never<Duration>,

    /// Seconds after an operation ends until its status and result URLs answer 404, or `never`.
    #[arg(long, default_value = "900", value_parser = parse_seconds)]
    pub operation_retention_seconds: Never<Duration>,

    /// Retry-After seconds sent with long-running operation responses.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,

    /// Disable the per-subscription ARM throttling (250 reads + 25/s, 200 writes + 10/s, 200 deletes + 10/s).
    #[arg(long)]
    pub no_throttling: bool,

    /// Multiply the throttling refill rates (10 = buckets refill ten times faster than on Azure).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    /// Delay in milliseconds added to every resource-provider response.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Items per page of list operations before a nextLink is returned.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,

    /// The forms writes are answered in: `recorded` (as real Azure was recorded answering:
    /// deployment writes, DELETEs and tags-only account PUTs synchronous, an account create 201
    /// with Azure-AsyncOperation alone), `recorded-accepted` (the same, the create 200
    /// `Accepted`) or `long-running` (every write an operation with the contract's headers).
    #[arg(long, env = "ARM_EMULATOR_PROFILE", value_enum, default_value_t = Profile::default())]
    pub profile: Profile,

    /// Accept only this bearer token (default: any well-formed bearer token).
    #[arg(long)]
    pub require_token: Option<String>,

    /// Also serve https on this address (e.g. 127.0.0.1:0), printing `TLS listening on https://…`;
    /// operation URLs and nextLinks answered over it are https.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,

    /// PEM certificate chain (leaf first) of the TLS listener (default: a generated CA and a leaf
    /// it signed for 127.0.0.1, ::1 and localhost).
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_listen"])]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Write the PEM clients must trust (the generated CA, or the --tls-cert given) to this file
    /// before printing the TLS line.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    pub tls_ca_out: Option<PathBuf>,

    /// A service principal of the offline Entra ID with a client secret. Repeatable.
    #[arg(long = "service-principal", value_name = "TENANT/CLIENT:SECRET")]
    pub service_principals: Vec<ServicePrincipalFlag>,

    /// A federated credential of a service principal: client assertions from ISSUER (with
    /// subject SUBJECT, if given) are exchanged for tokens. Repeatable.
    #[arg(
        long = "federated-identity",
        value_name = "TENANT/CLIENT@ISSUER[#SUBJECT]"
    )]
    pub federated_identities: Vec<FederatedIdentityFlag>,

    /// A managed identity of /_emulator/msi/token; the first is the system-assigned one.
    /// Repeatable.
    #[arg(long = "managed-identity", value_name = "CLIENT_ID[@PRINCIPAL_ID]")]
    pub managed_identities: Vec<ManagedIdentityFlag>,

    /// The X-IDENTITY-HEADER the managed-identity endpoint requires (default: any non-empty one).
    #[arg(long, value_name = "SECRET")]
    pub identity_header: Option<String>,

    /// Answer resource-provider requests whose bearer token the emulator did not mint (or that
    /// expired, or is not for ARM) with 401 InvalidAuthenticationToken.
    #[arg(long)]
    pub require_issued_tokens: bool,
}

/// `--service-principal TENANT/CLIENT:SECRET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePrincipalFlag {
    pub tenant: String,
    pub client: String,
    pub secret: String,
}

impl FromStr for ServicePrincipalFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("expected TENANT/CLIENT:SECRET, got '{text}'");
        let (tenant, rest) = text.split_once('/').ok_or_else(malformed)?;
        let (client, secret) = rest.split_once(':').ok_or_else(malformed)?;
        if [tenant, client, secret].iter().any(|part| part.is_empty()) {
            return Err(malformed());
        }
        Ok(Self {
            tenant: tenant.to_string(),
            client: client.to_string(),
            secret: secret.to_string(),
        })
    }
}

/// `--federated-identity TENANT/CLIENT@ISSUER[#SUBJECT]` (an issuer URL has no fragment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedIdentityFlag {
    pub tenant: String,
    pub client: String,
    pub issuer: String,
    pub subject: Option<String>,
}

impl FromStr for FederatedIdentityFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("expected TENANT/CLIENT@ISSUER[#SUBJECT], got '{text}'");
        let (tenant, rest) = text.split_once('/').ok_or_else(malformed)?;
        let (client, rest) = rest.split_once('@').ok_or_else(malformed)?;
        let (issuer, subject) = match rest.split_once('#') {
            Some((issuer, subject)) => (issuer, Some(subject)),
            None => (rest, None),
        };
        if [tenant, client, issuer, subject.unwrap_or("-")]
            .iter()
            .any(|part| part.is_empty())
        {
            return Err(malformed());
        }
        Ok(Self {
            tenant: tenant.to_string(),
            client: client.to_string(),
            issuer: issuer.to_string(),
            subject: subject.map(str::to_string),
        })
    }
}

/// `--managed-identity CLIENT_ID[@PRINCIPAL_ID]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedIdentityFlag {
    pub client_id: String,
    pub principal_id: Option<String>,
}

impl FromStr for ManagedIdentityFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (client_id, principal_id) = match text.split_once('@') {
            Some((client_id, principal_id)) => (client_id, Some(principal_id)),
            None => (text, None),
        };
        if client_id.is_empty() || principal_id == Some("") {
            return Err(format!("expected CLIENT_ID[@PRINCIPAL_ID], got '{text}'"));
        }
        Ok(Self {
            client_id: client_id.to_string(),
            principal_id: principal_id.map(str::to_string),
        })
    }
}

impl EmulatorArgs {
    pub fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            resource_groups: self.resource_groups.clone(),
            polls_to_complete: self.polls_to_complete.0,
            operation_duration: self.operation_seconds.0,
            operation_retention: self.operation_retention_seconds.0,
            retry_after_secs: self.retry_after,
            throttling: (!self.no_throttling)
                .then(|| ThrottleConfig::azure().scaled(self.time_scale)),
            latency: Duration::from_millis(self.latency_ms),
            page_size: self.page_size,
            profile: self.profile,
            tls: None,
        }
    }

    /// The TLS listener the flags ask for: the given pair, or a generated one.
    pub fn tls_config(&self) -> Result<Option<TlsConfig>, TlsError> {
        let Some(listen) = self.tls_listen else {
            return Ok(None);
        };
        let config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsConfig::from_files(cert, key)?,
            _ => TlsConfig::generated(),
        };
        Ok(Some(config.with_listen(listen)))
    }

    /// Registers the identities and token rules the flags name.
    pub fn register_identities(&self, emulator: &Emulator) {
        emulator.require_token(self.require_token.clone());
        for sp in &self.service_principals {
            emulator.add_service_principal(&sp.tenant, &sp.client, &sp.secret);
        }
        for federated in &self.federated_identities {
            emulator.add_federated_identity(
                &federated.tenant,
                &federated.client,
                &federated.issuer,
                federated.subject.as_deref(),
            );
        }
        for managed in &self.managed_identities {
            emulator.add_managed_identity(&managed.client_id, managed.principal_id.as_deref());
        }
        if let Some(secret) = &self.identity_header {
            emulator.set_identity_header(secret);
        }
        emulator.require_issued_tokens(self.require_issued_tokens);
    }
}

/// A flag value that may be `never` (`None`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Never<T>(pub Option<T>);

fn parse_never<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Never<T>, String> {
    if text.eq_ignore_ascii_case("never") {
        return Ok(Never(None));
    }
    parse(text)
        .map(|value| Never(Some(value)))
        .ok_or_else(|| format!("expected a non-negative number or 'never', got '{text}'"))
}

fn parse_polls(text: &str) -> Result<Never<u32>, String> {
    parse_never(text, |text| text.parse().ok())
}

fn parse_seconds(text: &str) -> Result<Never<Duration>, String> {
    parse_never(text, |text| {
        Duration::try_from_secs_f64(text.parse().ok()?).ok()
    })
}

/// Starts the emulator, prints `listening on http://ADDR` (then, with --tls-listen,
/// `TLS listening on https://ADDR`, once the CA file is written) and serves until Ctrl-C (or a
/// kill).
pub async fn run(args: EmulatorArgs) -> Result<(), std::io::Error> {
    let mut config = args.config();
    config.tls = args.tls_config().map_err(std::io::Error::other)?;
    let emulator = Emulator::start_on(args.listen, config).await?;
    args.register_identities(&emulator);
    println!("ARM emulator listening on {}", emulator.base_url());
    if let Some(url) = emulator.tls_base_url() {
        if let Some(path) = &args.tls_ca_out {
            std::fs::write(path, emulator.ca_pem().unwrap_or_default())?;
        }
        println!("TLS listening on {url}");
    }
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn every_flag_has_help_text() {
        let command = Cli::command();
        for argument in command
            .get_arguments()
            .filter(|argument| argument.get_long().is_some())
        {
            assert!(
                argument.get_help().is_some(),
                "--{} has no help",
                argument.get_id()
            );
        }
    }

    #[test]
    fn flags_become_the_configuration() {
        let cli = Cli::parse_from([
            "emulator",
            "--listen",
            "127.0.0.1:9999",
            "--resource-group",
            "sub/rg-a@westus",
            "--resource-group",
            "sub/rg-b",
            "--polls-to-complete",
            "0",
            "--operation-seconds",
            "1.5",
            "--retry-after",
            "0",
            "--time-scale",
            "10",
            "--latency-ms",
            "5",
            "--page-size",
            "7",
        ]);
        let config = cli.args.config();
        assert_eq!(cli.args.listen.port(), 9999);
        assert_eq!(config.resource_groups.len(), 2);
        assert_eq!(config.resource_groups[1].location, "eastus");
        assert_eq!(config.polls_to_complete, Some(0));
        assert_eq!(config.operation_duration, Some(Duration::from_millis(1500)));
        assert_eq!(config.retry_after_secs, 0);
        assert_eq!(
            config.throttling.map(|throttling| throttling.time_scale),
            Some(10.0)
        );
        assert_eq!(config.latency, Duration::from_millis(5));
        assert_eq!(config.page_size, 7);
        let off = Cli::parse_from(["emulator", "--no-throttling"])
            .args
            .config();
        assert!(off.throttling.is_none());
        let defaults = Cli::parse_from(["emulator"]).args;
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");
        let defaults = defaults.config();
        assert_eq!(defaults.polls_to_complete, Some(2));
        assert_eq!(defaults.operation_duration, Some(Duration::from_secs(2)));
        let never = Cli::parse_from(["emulator", "--polls-to-complete", "never"]).args;
        assert_eq!(never.config().polls_to_complete, None);
        assert!(Cli::try_parse_from(["emulator", "--operation-seconds", "-1"]).is_err());
    }

    #[test]
    fn identity_flags_parse_their_parts() {
        let cli = Cli::parse_from([
            "emulator",
            "--service-principal",
            "tenant-1/client-1:s3cr:et",
            "--federated-identity",
            "tenant-1/client-2@https://oidc.example/issuer#system:serviceaccount:ns:sa",
            "--federated-identity",
            "tenant-1/client-3@https://issuer.example",
            "--managed-identity",
            "mi-1@principal-1",
            "--managed-identity",
            "mi-2",
            "--identity-header",
            "header-secret",
            "--require-issued-tokens",
        ]);
        let args = cli.args;
        assert_eq!(args.service_principals[0].secret, "s3cr:et");
        assert_eq!(
            args.federated_identities[0].issuer,
            "https://oidc.example/issuer"
        );
        assert_eq!(
            args.federated_identities[0].subject.as_deref(),
            Some("system:serviceaccount:ns:sa")
        );
        assert_eq!(args.federated_identities[1].subject, None);
        assert_eq!(
            args.managed_identities[0].principal_id.as_deref(),
            Some("principal-1")
        );
        assert_eq!(args.managed_identities[1].principal_id, None);
        assert!(args.require_issued_tokens);
        for bad in [
            ["--service-principal", "tenant/client"],
            ["--federated-identity", "tenant/client"],
            ["--managed-identity", "mi@"],
        ] {
            assert!(
                Cli::try_parse_from(["emulator", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tls_flags_need_a_listener_and_a_whole_pair() {
        assert!(
            Cli::try_parse_from(["emulator", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_err()
        );
        assert!(
            Cli::try_parse_from([
                "emulator",
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                "c.pem"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["emulator", "--tls-ca-out", "ca.pem"]).is_err());
        let generated = Cli::parse_from(["emulator", "--tls-listen", "127.0.0.1:0"]).args;
        let tls = generated.tls_config().unwrap().expect("a TLS listener");
        assert_eq!(tls.listen.to_string(), "127.0.0.1:0");
        assert!(
            Cli::parse_from(["emulator"])
                .args
                .tls_config()
                .unwrap()
                .is_none()
        );
    }
}
