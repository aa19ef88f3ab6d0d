//! The `emulator` subcommand.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Emulator, EmulatorConfig, Profile, ResourceGroupSeed, ThrottleConfig};

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
        }
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

/// Starts the emulator, prints `listening on http://ADDR` and serves until Ctrl-C (or a kill).
pub async fn run(args: EmulatorArgs) -> Result<(), std::io::Error> {
    let emulator = Emulator::start_on(args.listen, args.config()).await?;
    emulator.require_token(args.require_token.clone());
    println!("ARM emulator listening on {}", emulator.base_url());
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
}
