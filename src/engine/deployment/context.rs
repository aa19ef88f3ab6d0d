//! Where a deployment's account is, and whether it is ready for deployments.

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment, ReconcilePolicy};
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
    /// The account resource is `reconcilePolicy: Observe`: none of the account's deployments
    /// is written through it, nor deleted, whether or not it has read the account yet.
    pub observe_only: bool,
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
                observe_only: false,
            };
        };
        let target = self.target(account).ok();
        let state = account_state(account, target.as_ref());
        AccountContext {
            target,
            state,
            observe_only: account.spec.reconcile_policy == ReconcilePolicy::Observe,
        }
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

/// Where the account stands for its deployments, from its account resource. Deployments are
/// written only into an account that resource manages: Ready for its current generation,
/// `reconcilePolicy: Manage`, and its status naming the account as its own (`status.armId`,
/// recorded only from an account read back with its owner tag). The account of an Observe
/// resource that has read it (Ready, or Drifted) is observed only, and so are its deployments.
fn account_state(account: &CognitiveServicesAccount, target: Option<&AccountRef>) -> AccountState {
    let status = account.status.as_ref();
    let Some(ready) = status.and_then(|s| status::find(&s.conditions, status::READY)) else {
        return AccountState::NotReady("it has no status yet".into());
    };
    let current = status.is_some_and(|s| s.observed_generation == account.metadata.generation);
    let ready_now = ready.status == "True" && current;
    match account.spec.reconcile_policy {
        ReconcilePolicy::Observe if ready_now || (current && ready.reason == "Drifted") => {
            AccountState::Observed
        }
        ReconcilePolicy::Manage if ready_now => {
            let claimed = status
                .and_then(|s| s.arm_id.as_deref())
                .zip(target)
                .is_some_and(|(id, target)| id.eq_ignore_ascii_case(&target.id()));
            if claimed {
                AccountState::Ready
            } else {
                AccountState::NotReady(
                    "its status does not name the account as its own (status.armId)".into(),
                )
            }
        }
        _ if ready.status == "True" => {
            AccountState::NotReady("its latest spec is not reconciled yet".into())
        }
        _ => AccountState::NotReady(format!("{}: {}", ready.reason, ready.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CognitiveServicesAccountStatus, Condition};

    const SUB: &str = "11111111-1111-1111-1111-111111111111";

    /// An account resource `docs` at generation 1 whose Ready is `ready`/`reason` for
    /// generation 1, its status naming `arm_id`.
    fn account(
        policy: ReconcilePolicy,
        ready: &str,
        reason: &str,
        arm_id: Option<&str>,
    ) -> CognitiveServicesAccount {
        let mut spec = crate::test_fixtures::openai_spec();
        spec.subscription_id = Some(SUB.into());
        spec.reconcile_policy = policy;
        let mut resource = CognitiveServicesAccount::new("docs", spec);
        resource.metadata.namespace = Some("team".into());
        resource.metadata.generation = Some(1);
        resource.status = Some(CognitiveServicesAccountStatus {
            observed_generation: Some(1),
            arm_id: arm_id.map(str::to_string),
            conditions: vec![Condition {
                type_: status::READY.into(),
                status: ready.into(),
                reason: reason.into(),
                message: "m".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        resource
    }

    #[test]
    fn deployments_are_written_only_into_an_account_its_resource_manages() {
        let engine = Engine::default();
        let ours = AccountRef::new(SUB, "rg", "docs").id();
        let state = |a: &CognitiveServicesAccount| engine.account_context(Some(a)).state;
        let manage = ReconcilePolicy::Manage;
        assert_eq!(
            state(&account(
                manage,
                "True",
                "Succeeded",
                Some(&ours.to_uppercase())
            )),
            AccountState::Ready
        );
        // Ready, but the status does not claim the account: no writes through it.
        let unclaimed = state(&account(manage, "True", "Succeeded", None));
        assert!(
            matches!(&unclaimed, AccountState::NotReady(why) if why.contains("status.armId")),
            "{unclaimed:?}"
        );
        let observe = ReconcilePolicy::Observe;
        for (ready, reason) in [("True", "Succeeded"), ("False", "Drifted")] {
            let observed = account(observe, ready, reason, None);
            assert_eq!(state(&observed), AccountState::Observed);
            assert!(engine.account_context(Some(&observed)).observe_only);
        }
        let absent = account(observe, "False", "NotFound", None);
        assert!(matches!(state(&absent), AccountState::NotReady(_)));
        assert!(engine.account_context(Some(&absent)).observe_only);
    }
}
