//! Model deployments of an account (`Microsoft.CognitiveServices/accounts/deployments`,
//! 2024-10-01): the typed model, where one lives, and the client's calls for them.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::ArmClient;
use super::error::ArmError;
use super::lro::{OperationKind, PendingOperation, PollStatus, Provisioned};
use super::models::{AccountRef, Sku};

/// A deployment as ARM returns it (and, partly filled, as a client sends it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<DeploymentProperties>,
}

/// `properties` of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<DeploymentModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rai_policy_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_upgrade_option: Option<String>,
    /// Read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<Vec<ThrottlingRule>>,
}

/// The model of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentModel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A rate limit Azure derives from the capacity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottlingRule {
    #[serde(default)]
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_period: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
}

impl Deployment {
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties.as_ref()?.provisioning_state.as_deref()
    }

    pub fn model(&self) -> Option<&DeploymentModel> {
        self.properties.as_ref()?.model.as_ref()
    }
}

impl Provisioned for Deployment {
    const GET: &'static str = "GetDeployment";
    const WHAT: &'static str = "deployment";
    fn provisioning_state(&self) -> Option<&str> {
        Deployment::provisioning_state(self)
    }
}

/// Where a deployment lives: its account and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeploymentRef {
    pub account: AccountRef,
    pub name: String,
}

impl DeploymentRef {
    pub fn new(account: &AccountRef, name: &str) -> Self {
        DeploymentRef {
            account: account.clone(),
            name: name.to_string(),
        }
    }

    /// Parses a deployment id (`/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{a}/deployments/{d}`).
    pub fn parse_id(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [s, sub, r, rg, p, ns, a, account, d, name]
                if s.eq_ignore_ascii_case("subscriptions")
                    && r.eq_ignore_ascii_case("resourceGroups")
                    && p.eq_ignore_ascii_case("providers")
                    && ns.eq_ignore_ascii_case("Microsoft.CognitiveServices")
                    && a.eq_ignore_ascii_case("accounts")
                    && d.eq_ignore_ascii_case("deployments") =>
            {
                Some(DeploymentRef::new(&AccountRef::new(sub, rg, account), name))
            }
            _ => None,
        }
    }

    /// The deployment's ARM id, which is also its path under the ARM endpoint.
    pub fn id(&self) -> String {
        format!("{}/deployments/{}", self.account.id(), self.name)
    }
}

/// What ARM answered a deployment's PUT or PATCH with.
#[derive(Debug)]
pub struct DeploymentWrite {
    /// The deployment as the answer shows it.
    pub deployment: Option<Deployment>,
    /// The operation to follow; `None` when ARM finished at once.
    pub operation: Option<PendingOperation>,
}

impl DeploymentWrite {
    /// The deployment the write left, when the answer shows it finished (`Succeeded`): what a
    /// GET right after would read, so none is needed.
    pub fn finished(self) -> Option<Deployment> {
        if self.operation.is_some() {
            return None;
        }
        self.deployment.filter(|d| {
            d.provisioning_state()
                .is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"))
        })
    }
}

impl ArmClient {
    /// GET a deployment; `None` when it (or its account) does not exist.
    pub async fn get_deployment(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<Option<Deployment>, ArmError> {
        let url = self.resource_url(&deployment.id());
        match self.execute("GetDeployment", Method::GET, url, None).await {
            Ok(response) => response.json().map(Some),
            Err(ArmError::Api(e)) if e.status == Some(404) && e.code != "ResourceGroupNotFound" => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Every deployment of an account, following `nextLink`.
    pub async fn list_deployments(
        &self,
        account: &AccountRef,
    ) -> Result<Vec<Deployment>, ArmError> {
        let url = self.resource_url(&format!("{}/deployments", account.id()));
        self.list_all("ListDeployments", url).await
    }

    /// PUT the whole deployment (create, or an update of its model version or policies).
    pub async fn put_deployment(
        &self,
        deployment: &DeploymentRef,
        body: &Deployment,
        kind: OperationKind,
    ) -> Result<DeploymentWrite, ArmError> {
        let body = serde_json::to_value(body).expect("deployments serialize");
        // Named apart: a create is never resent after a lost answer, an update may be.
        let name = match kind {
            OperationKind::Create => "CreateDeployment",
            _ => "UpdateDeployment",
        };
        let (deployment, operation) = self
            .write_to::<Deployment>(&deployment.id(), name, Method::PUT, &body, kind)
            .await?;
        Ok(DeploymentWrite {
            deployment,
            operation,
        })
    }

    /// PATCH `sku` and `tags` only (`PatchResourceTagsAndSku`).
    pub async fn patch_deployment(
        &self,
        deployment: &DeploymentRef,
        patch: &Value,
    ) -> Result<DeploymentWrite, ArmError> {
        let (deployment, operation) = self
            .write_to::<Deployment>(
                &deployment.id(),
                "PatchDeployment",
                Method::PATCH,
                patch,
                OperationKind::Update,
            )
            .await?;
        Ok(DeploymentWrite {
            deployment,
            operation,
        })
    }

    /// DELETE a deployment. `None` when ARM finished at once or it was already gone.
    pub async fn delete_deployment(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<Option<PendingOperation>, ArmError> {
        match self
            .delete(&deployment.id(), "DeleteDeployment", OperationKind::Delete)
            .await
        {
            Err(ArmError::Api(e)) if e.status == Some(404) => Ok(None),
            other => other,
        }
    }

    /// Polls an operation on a deployment until it ends or `timeout` passes.
    pub async fn wait_deployment(
        &self,
        operation: &PendingOperation,
        timeout: std::time::Duration,
    ) -> Result<(), ArmError> {
        self.wait_for::<Deployment>(operation, timeout).await
    }

    /// Polls an operation on a deployment once.
    pub async fn poll_deployment(
        &self,
        operation: &PendingOperation,
    ) -> Result<PollStatus<Deployment>, ArmError> {
        self.poll_for::<Deployment>(operation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_id_extends_its_account_id_and_parses_back() {
        let account = AccountRef::new("sub", "rg", "docs");
        let deployment = DeploymentRef::new(&account, "chat");
        assert_eq!(
            deployment.id(),
            "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/docs/deployments/chat"
        );
        assert_eq!(DeploymentRef::parse_id(&deployment.id()), Some(deployment));
        assert_eq!(DeploymentRef::parse_id(&account.id()), None);
    }

    #[test]
    fn server_filled_fields_read_back() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "id": "/x/deployments/chat", "name": "chat",
            "sku": {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
                "provisioningState": "Succeeded", "raiPolicyName": "Microsoft.DefaultV2",
                "rateLimits": [{"key": "request", "renewalPeriod": 10, "count": 1}]}
        }))
        .unwrap();
        assert_eq!(deployment.provisioning_state(), Some("Succeeded"));
        assert_eq!(
            deployment.model().and_then(|m| m.version.as_deref()),
            Some("2024-11-20")
        );
    }
}
