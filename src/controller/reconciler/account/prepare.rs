//! The gates before the engine: the namespace's grant, the credentials, the finalizer; and the
//! answers given without an ARM call when one of them stops the reconcile.

use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::finalizer::has_finalizer;
use super::status::restate;
use crate::api::{CognitiveServicesAccount, DeletionPolicy, ReconcilePolicy};
use crate::arm::ArmClient;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::scope::ScopeCheck;
use crate::controller::reconciler::state::{Reconciled, Reconciler, done, key_of};
use crate::controller::requeue::{Requeue, resync_requeue};
use crate::planner::status::Summary;

/// Ready for the engine (with the client and the resource as it now is), or stopped short.
pub(super) enum Prepared {
    Go {
        arm: ArmClient,
        resource: Box<CognitiveServicesAccount>,
    },
    Stop(Reconciled),
}

impl Reconciler {
    /// The gates before the engine: the namespace's grant, the credentials, the finalizer
    /// (on before any ARM write).
    pub(super) async fn prepare(
        &self,
        resource: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Prepared, Error> {
        let needs_arm = self.engine.target(resource).is_ok()
            && resource.spec.reconcile_policy != ReconcilePolicy::Pause;
        if !needs_arm {
            // The engine makes no ARM call for an invalid spec or a paused resource; a paused
            // one's keys still go when its namespace loses the grant (a Kubernetes write).
            if !deleting
                && self.engine.target(resource).is_ok()
                && let Ok(ScopeCheck::Denied(message)) = self.scope_check(resource)
            {
                self.withdraw_keys(resource, &message).await?;
            }
            return Ok(Prepared::Go {
                arm: self.credentials.default_client().clone(),
                resource: Box::new(resource.clone()),
            });
        }
        let stop = match self.scope_check(resource)? {
            ScopeCheck::Allowed => None,
            ScopeCheck::Denied(message) => {
                Some(self.scope_not_allowed(resource, deleting, &message).await?)
            }
            ScopeCheck::Unreadable(message) => {
                Some(self.grant_unreadable(resource, deleting, &message).await?)
            }
        };
        if let Some(answer) = stop {
            return Ok(Prepared::Stop(answer));
        }
        let arm = match self.arm_client_for(resource).await {
            Ok(arm) => arm,
            Err(Error::GrantInvalid(message)) => {
                let answer = self.grant_unreadable(resource, deleting, &message).await?;
                return Ok(Prepared::Stop(answer));
            }
            Err(Error::CredentialsInvalid(message)) => {
                let answer = self
                    .credentials_invalid(resource, deleting, &message)
                    .await?;
                return Ok(Prepared::Stop(answer));
            }
            Err(e) => return Err(e),
        };
        let resource = if deleting {
            resource.clone()
        } else {
            self.ensure_finalizer(resource).await?
        };
        Ok(Prepared::Go {
            arm,
            resource: Box::new(resource),
        })
    }

    /// A grant annotation that does not parse: Stalled `ScopeGrantInvalid` and no ARM call.
    /// Deleting waits too, finalizer held: the deletion policy runs once an admin fixes the
    /// annotation (the Namespace change triggers the reconcile), never skipped for a typo.
    pub(super) async fn grant_unreadable(
        &self,
        resource: &CognitiveServicesAccount,
        deleting: bool,
        message: &str,
    ) -> Result<Reconciled, Error> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        let message = if deleting && self.grants.namespace_terminating(&namespace) {
            format!(
                "namespace {namespace} is being deleted and waits for this resource, whose deletion policy waits for a grant that parses: {message}"
            )
        } else if deleting {
            format!("the deletion policy waits for a grant that parses: {message}")
        } else {
            message.to_string()
        };
        self.stall_before_arm(resource, "ScopeGrantInvalid", &message)
            .await?;
        self.backoffs.reset(&key_of(&resource.metadata));
        Ok(done(
            resync_requeue(resource.spec.resync()),
            ReconcileResult::Stalled,
        ))
    }

    /// Stalled with `reason`, before any ARM call: the status and, on a new reason, a Warning.
    pub(super) async fn stall_before_arm(
        &self,
        resource: &CognitiveServicesAccount,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let mut status = resource.status.clone().unwrap_or_default();
        let summary = Summary::stalled(reason, message);
        restate(&mut status, resource, &summary, Timestamp::now());
        self.write_status(resource, &status).await?;
        self.warn_on_new_reason(resource, &status, true).await;
        Ok(())
    }

    /// Outside its namespace's grant: Stalled `ScopeNotAllowed`, and no ARM call. Deleting such
    /// a resource leaves the account in Azure (the namespace may not touch it) and lets the
    /// finalizer go, so neither the resource nor its namespace is stuck.
    pub(super) async fn scope_not_allowed(
        &self,
        resource: &CognitiveServicesAccount,
        deleting: bool,
        message: &str,
    ) -> Result<Reconciled, Error> {
        let key = key_of(&resource.metadata);
        if deleting {
            let note = format!("the account is left in Azure: {message}");
            return self
                .let_go_without_arm(resource, Some(("ScopeNotAllowed", note)))
                .await;
        }
        // The grant is what gave the right to the keys.
        self.withdraw_keys(resource, message).await?;
        self.stall_before_arm(resource, "ScopeNotAllowed", message)
            .await?;
        // A grant lands on the Namespace, whose change triggers a reconcile.
        self.backoffs.reset(&key);
        Ok(done(
            resync_requeue(resource.spec.resync()),
            ReconcileResult::Stalled,
        ))
    }

    /// Lets a deleted resource go without an ARM call; `skipped` is the Warning event that says
    /// what its deletion policy did not do.
    pub(super) async fn let_go_without_arm(
        &self,
        resource: &CognitiveServicesAccount,
        skipped: Option<(&str, String)>,
    ) -> Result<Reconciled, Error> {
        if has_finalizer(resource) {
            if let Some((reason, note)) = skipped {
                self.publish(resource, EventType::Warning, reason, "Delete", &note)
                    .await;
            }
            self.remove_finalizer(resource).await?;
        }
        self.backoffs.reset(&key_of(&resource.metadata));
        Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted))
    }

    /// A missing or incomplete credentials Secret: Stalled, with the Secret and key named.
    pub(super) async fn credentials_invalid(
        &self,
        resource: &CognitiveServicesAccount,
        deleting: bool,
        message: &str,
    ) -> Result<Reconciled, Error> {
        let key = key_of(&resource.metadata);
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        // Deleting a namespace deletes the credentials Secret together with the resource, and
        // nothing can bring it back: holding the finalizer would hold the namespace forever.
        let namespace_going = self.grants.namespace_terminating(&namespace);
        if deleting && (leaves_azure_alone(resource) || namespace_going) {
            let skipped = (!leaves_azure_alone(resource)).then(|| {
                let note = format!(
                    "namespace {namespace} is being deleted and the resource's credentials are gone ({message}): deletionPolicy {:?} cannot run, the account is left in Azure",
                    resource.spec.deletion_policy
                );
                ("CredentialsGone", note)
            });
            return self.let_go_without_arm(resource, skipped).await;
        }
        let message = if deleting {
            format!("the deletion policy cannot run: {message}")
        } else {
            message.to_string()
        };
        self.stall_before_arm(resource, "CredentialsInvalid", &message)
            .await?;
        // A fix lands in a Secret, which does not trigger a reconcile: look again with backoff.
        let requeue = Requeue::After(self.backoffs.fail(&key, None));
        Ok(done(requeue, ReconcileResult::Stalled))
    }
}

/// Deleting such a resource makes no ARM call, so it needs no credentials.
pub(super) fn leaves_azure_alone(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.deletion_policy == DeletionPolicy::Orphan
        || resource.spec.reconcile_policy != ReconcilePolicy::Manage
}
