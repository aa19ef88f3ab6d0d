//! What a namespace's grant says about a resource's Azure scope (both kinds ask it).

use kube::ResourceExt;

use super::state::Reconciler;
use crate::api::CognitiveServicesAccount;
use crate::arm::ArmClient;
use crate::controller::error::Error;
use crate::controller::grants;

/// What a namespace's grant says about a resource's Azure scope.
pub(super) enum ScopeCheck {
    Allowed,
    /// Outside the grant; the message says how an admin grants it.
    Denied(String),
    /// The grant annotation does not parse: nothing is decided until an admin fixes it.
    Unreadable(String),
}

impl Reconciler {
    /// The ARM client for `account` (and its deployments), a Secret's workload identity checked
    /// against the client ids its namespace allows.
    pub(super) async fn arm_client_for(
        &self,
        account: &CognitiveServicesAccount,
    ) -> Result<ArmClient, Error> {
        let namespace = account.namespace().unwrap_or_else(|| "default".into());
        let Some(grants) = self.grants.of(&namespace) else {
            return Err(Error::NamespaceNotCached(namespace));
        };
        self.credentials
            .client_for(&self.client, account, &grants.federated_client_ids)
            .await
    }

    /// What the resource's namespace grant says about its Azure scope; an error (retried soon)
    /// while its Namespace is not cached yet.
    pub(super) fn scope_check(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<ScopeCheck, Error> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        let Ok(target) = self.engine.target(resource) else {
            return Ok(ScopeCheck::Allowed);
        };
        let Some(grants) = self.grants.of(&namespace) else {
            return Err(Error::NamespaceNotCached(namespace));
        };
        let manage = match grants.manage {
            Ok(manage) => manage,
            Err(error) => {
                return Ok(ScopeCheck::Unreadable(grants::describe_unreadable(
                    &namespace, &error,
                )));
            }
        };
        if manage.allows(&target.subscription_id, &target.resource_group) {
            return Ok(ScopeCheck::Allowed);
        }
        Ok(ScopeCheck::Denied(format!(
            "namespace {namespace} may not manage accounts in subscription {} resource group {} (granted: {manage}); a cluster admin grants it with: kubectl annotate namespace {namespace} {}={}/{}",
            target.subscription_id,
            target.resource_group,
            crate::tenancy::SCOPES_ANNOTATION,
            target.subscription_id,
            target.resource_group
        )))
    }
}
