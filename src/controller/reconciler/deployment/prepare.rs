//! The gates before the engine: the account resource (its scope checked against the namespace's
//! grant, its credentials), and the answers given without an ARM call.

use jiff::Timestamp;
use kube::{Api, ResourceExt};

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::scope::ScopeCheck;
use crate::controller::reconciler::state::{Reconciled, Reconciler, done};
use crate::planner::status::{self, Summary};

impl Reconciler {
    /// The account resource named by `spec.accountRef`; `None` when there is none, and the
    /// inner `Err` when it does not match its schema (its own status says where).
    pub(super) async fn account_of(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Result<Result<Option<CognitiveServicesAccount>, String>, Error> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        let accounts: Api<CognitiveServicesAccount> =
            Api::namespaced(self.client.clone(), &namespace);
        let name = &resource.spec.account_ref.name;
        match accounts.get_opt(name).await {
            Ok(account) => Ok(Ok(account)),
            Err(kube::Error::SerdeError(e)) => Ok(Err(format!(
                "CognitiveServicesAccount {name} (spec.accountRef) does not match its schema ({e}); fix it, then this deployment goes on"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The namespace's grant and the credentials, both the account's: a deployment reaches
    /// only what its account may. `Err` is the reconcile's answer when they stop it.
    pub(super) async fn deployment_gates(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Result<crate::arm::ArmClient, Reconciled>, Error> {
        let stop = match self.scope_check(account)? {
            ScopeCheck::Allowed => None,
            ScopeCheck::Denied(message) => Some(("ScopeNotAllowed", message)),
            ScopeCheck::Unreadable(message) => Some(("ScopeGrantInvalid", message)),
        };
        if let Some((reason, message)) = stop {
            let message = format!("its account's scope: {message}");
            return Ok(Err(self
                .stall_deployment(resource, reason, &message, deleting)
                .await?));
        }
        match self.arm_client_for(account).await {
            Ok(arm) => Ok(Ok(arm)),
            Err(Error::GrantInvalid(message)) => Ok(Err(self
                .stall_deployment(resource, "ScopeGrantInvalid", &message, deleting)
                .await?)),
            Err(Error::CredentialsInvalid(message)) => Ok(Err(self
                .stall_deployment(resource, "CredentialsInvalid", &message, deleting)
                .await?)),
            Err(e) => Err(e),
        }
    }

    /// Stalled before any ARM call; the finalizer (when deleting) stays until it is fixed.
    pub(super) async fn stall_deployment(
        &self,
        resource: &CognitiveServicesDeployment,
        reason: &str,
        message: &str,
        deleting: bool,
    ) -> Result<Reconciled, Error> {
        let mut status = resource.status.clone().unwrap_or_default();
        let previous = status.conditions.clone();
        let generation = resource.metadata.generation;
        status.conditions = status::conditions(
            &Summary::stalled(reason, message),
            generation,
            &previous,
            &Timestamp::now().to_string(),
        );
        status.observed_generation = generation;
        self.write_deployment_status(resource, &status).await?;
        let prefix = if deleting {
            "the deletion policy cannot complete: "
        } else {
            ""
        };
        self.warn_deployment_on_new_reason(resource, &status, prefix)
            .await;
        Ok(done(
            crate::controller::requeue::resync_requeue(resource.spec.resync()),
            ReconcileResult::Stalled,
        ))
    }
}
