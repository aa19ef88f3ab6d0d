//! The Azure identities an end-to-end operator runs as: each reaches the emulator over TLS and
//! gets its tokens from the emulator's offline Entra ID or managed-identity endpoint, as it
//! would from Azure's, and the emulator's request log names who made each ARM call.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use arm_emulator::Caller;

use super::e2e::{Cluster, EmulatorProcess, OPERATOR_NAMESPACE};

/// The X-IDENTITY-HEADER the emulator's managed-identity endpoint requires and the operator
/// sends (App Service's IDENTITY_HEADER).
pub const IDENTITY_HEADER: &str = "e2e-identity-header";
/// The audience Entra ID takes federated assertions for.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Where azure_identity looks for an identity. Cleared before a mode sets its own, so that
/// nothing in the test runner's environment (a developer's AZURE_CLIENT_ID, an App Service
/// variable) picks another identity, or IMDS at 169.254.169.254.
const IDENTITY_VARIABLES: [&str; 11] = [
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
];

/// How `cognitive-operator run` authenticates to ARM.
#[derive(Clone, Debug)]
pub enum OperatorIdentity {
    /// `--credential static-token` on the emulator's plain listener.
    Static,
    /// A service principal with a client secret.
    ClientSecret {
        tenant: String,
        client: String,
        secret: String,
    },
    /// A client id federated with the ServiceAccount token in `token_file`.
    WorkloadIdentity {
        tenant: String,
        client: String,
        token_file: PathBuf,
    },
    /// The App Service managed-identity protocol; `client_id` picks a user-assigned one.
    ManagedIdentity { client_id: Option<String> },
}

impl OperatorIdentity {
    fn mode(&self) -> &'static str {
        match self {
            OperatorIdentity::Static => "static-token",
            OperatorIdentity::ClientSecret { .. } => "client-secret",
            OperatorIdentity::WorkloadIdentity { .. } => "workload-identity",
            OperatorIdentity::ManagedIdentity { .. } => "managed-identity",
        }
    }

    /// The ARM endpoint, `--credential` and the environment the mode reads.
    pub fn configure(&self, command: &mut Command, emulator: &EmulatorProcess) {
        for variable in IDENTITY_VARIABLES {
            command.env_remove(variable);
        }
        if let OperatorIdentity::Static = self {
            command
                .args(["--arm-endpoint", &emulator.url])
                .args(["--credential", "static-token"])
                .args(["--static-token", "e2e-token"]);
            return;
        }
        let (Some(tls_url), Some(ca_path)) = (&emulator.tls_url, &emulator.ca_path) else {
            panic!("an Azure identity needs the emulator's TLS listener (Cluster::start_with_tls)");
        };
        command
            .args(["--arm-endpoint", tls_url, "--credential", self.mode()])
            // Entra ID is the emulator's: azure_identity takes only an https authority.
            .env("AZURE_AUTHORITY_HOST", tls_url)
            // The emulator's CA, for ARM and Entra ID; the kube client keeps the kubeconfig's.
            .env("SSL_CERT_FILE", ca_path);
        match self {
            OperatorIdentity::Static => unreachable!("configured above"),
            OperatorIdentity::ClientSecret {
                tenant,
                client,
                secret,
            } => {
                command
                    .env("AZURE_TENANT_ID", tenant)
                    .env("AZURE_CLIENT_ID", client)
                    .env("AZURE_CLIENT_SECRET", secret);
            }
            OperatorIdentity::WorkloadIdentity {
                tenant,
                client,
                token_file,
            } => {
                command
                    .env("AZURE_TENANT_ID", tenant)
                    .env("AZURE_CLIENT_ID", client)
                    .env("AZURE_FEDERATED_TOKEN_FILE", token_file);
            }
            OperatorIdentity::ManagedIdentity { client_id } => {
                // Both, always: without IDENTITY_HEADER azure_identity would ask IMDS.
                command
                    .env(
                        "IDENTITY_ENDPOINT",
                        format!("{tls_url}/_emulator/msi/token"),
                    )
                    .env("IDENTITY_HEADER", IDENTITY_HEADER);
                if let Some(client_id) = client_id {
                    command.env("AZURE_CLIENT_ID", client_id);
                }
            }
        }
    }
}

/// One identity as the emulator names a caller: `kind tenant/client grant`.
pub fn identity(kind: &str, tenant: &str, client: &str, grant: &str) -> String {
    format!("{kind} {tenant}/{client} {grant}")
}

/// The identity of a request's caller; `none` when its token was not minted by the emulator.
pub fn describe(caller: Option<&Caller>) -> String {
    caller.map_or_else(
        || "none".to_string(),
        |c| identity(&c.kind, &c.tenant_id, &c.client_id, &c.grant),
    )
}

impl EmulatorProcess {
    /// Who made the resource-provider requests on the account `name` and below it
    /// (deployments, listKeys).
    pub async fn callers_of(&self, name: &str) -> BTreeSet<String> {
        let account = format!("/providers/Microsoft.CognitiveServices/accounts/{name}");
        self.requests()
            .await
            .iter()
            .filter(|r| {
                let path = r.path.to_ascii_lowercase();
                let account = account.to_ascii_lowercase();
                path.ends_with(&account) || path.contains(&format!("{account}/"))
            })
            .map(|r| describe(r.caller.as_ref()))
            .collect()
    }
}

impl Cluster {
    /// A token of the chart's ServiceAccount for Entra ID's token exchange, written (without
    /// a trailing newline) where AZURE_FEDERATED_TOKEN_FILE points: what AKS's webhook
    /// projects into the pod, signed by this API server (iss: its service-account issuer,
    /// sub: `system:serviceaccount:cognitive-operator:cognitive-operator`).
    pub fn federated_token(&self) -> PathBuf {
        let token = self.plane.kubectl(&[
            "create",
            "token",
            "cognitive-operator",
            "--namespace",
            OPERATOR_NAMESPACE,
            "--audience",
            TOKEN_EXCHANGE_AUDIENCE,
            "--duration=1h",
        ]);
        let path = self.plane.dir().join("azure-identity-token");
        std::fs::write(&path, token.trim()).expect("write the federated token");
        path
    }
}

/// The subject of the chart's ServiceAccount's tokens.
pub fn operator_subject() -> String {
    format!("system:serviceaccount:{OPERATOR_NAMESPACE}:cognitive-operator")
}
