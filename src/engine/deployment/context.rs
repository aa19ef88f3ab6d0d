//! Where a deployment's account is, and whether it is ready for deployments.

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::arm::deployments::DeploymentRef;
use crate::arm::models::AccountRef;
use crate::engine::Engine;
use crate::planner::deployment::AccountState;
use crate::planner::status::{self};

/// Where the deployment's account is, and whether it is ready for deployments.
#[derive(Clone, Debug)]
pub struct AccountContext {
    /// The Azure account (`None` when neither the account resource nor the status says).
    pub target: Option<AccountRef>,
    pub state: AccountState,
}

impl Engine {
    /// Where a deployment's account is and whether it is ready, from its
    /// `CognitiveServicesAccount`. Without one there is no grant to check the scope against,
    /// nor credentials: no ARM call at all.
    pub fn account_context(&self, account: Option<&CognitiveServicesAccount>) -> AccountContext {
        let Some(account) = account else {
            return AccountContext {
                target: None,
                state: AccountState::ResourceMissing,
            };
        };
        let target = self.target(account).ok();
        let ready = account.status.as_ref().and_then(|s| {
            status::find(&s.conditions, status::READY).map(|c| (c.clone(), s.observed_generation))
        });
        let state = match ready {
            Some((c, generation))
                if c.status == "True" && generation == account.metadata.generation =>
            {
                AccountState::Ready
            }
            Some((c, _)) if c.status == "True" => {
                AccountState::NotReady("its latest spec is not reconciled yet".into())
            }
            Some((c, _)) => AccountState::NotReady(format!("{}: {}", c.reason, c.message)),
            None => AccountState::NotReady("it has no status yet".into()),
        };
        AccountContext { target, state }
    }

    /// Where the deployment lives in Azure.
    pub fn deployment_target(
        &self,
        deployment: &CognitiveServicesDeployment,
        account: &AccountContext,
    ) -> Option<DeploymentRef> {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let account = account.target.as_ref()?;
        Some(DeploymentRef::new(
            account,
            deployment.spec.azure_name(name),
        ))
    }
}
