//! The connection Secret: written when the account is there, provisioned and ours to describe,
//! with keys only where this resource may read them.

use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use super::status::restate;
use crate::api::{CognitiveServicesAccount, CognitiveServicesAccountStatus, ReconcilePolicy};
use crate::arm::ArmClient;
use crate::arm::models::{Account, AccountRef};
use crate::controller::error::Error;
use crate::controller::grants;
use crate::controller::reconciler::state::Reconciler;
use crate::controller::secrets::{self, ConnectionSecret, SecretSync};
use crate::engine::Outcome;
use crate::planner::status::{self, Summary};

/// The connection Secret's failure in the conditions; true for a Secret someone else owns.
pub(super) fn report_secret(
    status: &mut CognitiveServicesAccountStatus,
    resource: &CognitiveServicesAccount,
    secret: &Result<Option<SecretSync>, Error>,
    now: Timestamp,
) -> bool {
    match secret {
        Err(Error::SecretConflict(message)) => {
            restate(
                status,
                resource,
                &Summary::stalled("SecretConflict", message),
                now,
            );
            true
        }
        // Ready would be a lie while the workloads have no (current) keys: say so, and retry
        // with backoff.
        Err(error) => {
            let summary =
                Summary::progressing("ConnectionSecretFailed", &secret_failure(resource, error));
            restate(status, resource, &summary, now);
            false
        }
        Ok(_) => false,
    }
}

impl Reconciler {
    /// The connection Secret, when the account is there, provisioned and ours to describe.
    pub(super) async fn sync_secret(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        outcome: &Outcome,
        deleting: bool,
    ) -> Result<Option<SecretSync>, Error> {
        let Some(reference) = &resource.spec.connection_secret else {
            return Ok(None);
        };
        // A deleted resource's Secret goes with it (its ownerReference).
        if deleting {
            return Ok(None);
        }
        if let Some(why) = not_ours(outcome) {
            // Another's account is never one to copy keys from, whatever the key-read grant.
            let withdrawn = secrets::withdraw_keys(&self.client, resource, &reference.name)
                .await?
                .then_some(why);
            return Ok(Some(SecretSync {
                withdrawn,
                ..SecretSync::default()
            }));
        }
        let (Some(account), Ok(target)) = (&outcome.account, self.engine.target(resource)) else {
            return Ok(None);
        };
        let provisioned = account
            .provisioning_state()
            .is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"));
        if !provisioned || outcome.stalled() {
            return Ok(None);
        }
        let wanted = ConnectionSecret {
            resource,
            name: &reference.name,
            target: &target,
            account,
            may_write_to_azure: resource.spec.reconcile_policy == ReconcilePolicy::Manage,
            may_read_keys: self.may_read_keys(resource, &target, account),
        };
        let sync = secrets::sync_connection_secret(&self.client, arm, &wanted).await?;
        if sync.written {
            tracing::info!(secret = %reference.name, "connection Secret written");
        }
        Ok(Some(sync))
    }

    /// Events for a key regeneration and refused requests; removes the handled annotations.
    pub(super) async fn finish_secret_sync(
        &self,
        resource: &CognitiveServicesAccount,
        sync: &SecretSync,
    ) -> Result<(), Error> {
        if let Some(key) = sync.regenerated {
            let switched = match sync.switched_to {
                Some(active) => format!("; its `key` now holds {active:?}"),
                None => String::new(),
            };
            let note = format!(
                "regenerated {key:?} in Azure and stored the new keys in the connection Secret{switched}"
            );
            self.publish(
                resource,
                EventType::Normal,
                "KeyRegenerated",
                "RegenerateKey",
                &note,
            )
            .await;
        }
        if let Some(why) = &sync.withdrawn {
            self.publish_withdrawal(resource, why).await;
        }
        for (reason, message) in &sync.refused {
            self.publish(
                resource,
                EventType::Warning,
                reason,
                "SyncConnectionSecret",
                message,
            )
            .await;
        }
        if sync.handled_annotations.is_empty() {
            return Ok(());
        }
        // Without a resourceVersion: removing a key is idempotent, and a conflict here would
        // make the next reconcile rotate a key a second time.
        let removals: serde_json::Map<String, Value> = sync
            .handled_annotations
            .iter()
            .map(|a| (a.to_string(), Value::Null))
            .collect();
        let patch = json!({ "metadata": { "annotations": removals } });
        self.accounts(resource)
            .patch(
                &resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// The right to the keys ended (`why`): they leave the connection Secret, its endpoint
    /// stays, and a Warning event says so (only when there were keys to remove).
    pub(super) async fn withdraw_keys(
        &self,
        resource: &CognitiveServicesAccount,
        why: &str,
    ) -> Result<(), Error> {
        let Some(reference) = &resource.spec.connection_secret else {
            return Ok(());
        };
        if secrets::withdraw_keys(&self.client, resource, &reference.name).await? {
            self.publish_withdrawal(resource, why).await;
        }
        Ok(())
    }

    async fn publish_withdrawal(&self, resource: &CognitiveServicesAccount, why: &str) {
        let secret = connection_secret_name(resource);
        let note =
            format!("key, key1 and key2 removed from Secret {secret}, the endpoint stays: {why}");
        self.publish(
            resource,
            EventType::Warning,
            "KeysWithdrawn",
            "SyncConnectionSecret",
            &note,
        )
        .await;
    }

    /// Keys go into a Secret only for an account this resource manages, or where an admin
    /// granted its namespace reading the keys of accounts in that scope; else why not.
    pub(super) fn may_read_keys(
        &self,
        resource: &CognitiveServicesAccount,
        target: &AccountRef,
        account: &Account,
    ) -> Result<(), String> {
        if self.engine.manages(resource, target, account) {
            return Ok(());
        }
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        match self.grants.of(&namespace).map(|g| g.read_keys) {
            Some(Ok(read_keys))
                if read_keys.allows(&target.subscription_id, &target.resource_group) =>
            {
                Ok(())
            }
            Some(Err(error)) => Err(format!(
                "the account is not managed by this resource, and {}: no keys are read, rotated or stored",
                grants::describe_unreadable(&namespace, &error)
            )),
            _ => Err(format!(
                "the account is not managed by this resource and namespace {namespace} has no key-read grant for its scope ({}): no keys are read, rotated or stored",
                crate::tenancy::KEY_READ_SCOPES_ANNOTATION
            )),
        }
    }
}

/// Why the account is not this resource's to take keys from, when the verdict says it belongs
/// to someone else (`AlreadyManaged`: another owner's tag; `AlreadyExists`: made elsewhere, not
/// adopted), as the engine's [`Outcome::foreign`] says; the message is the verdict's.
fn not_ours(outcome: &Outcome) -> Option<String> {
    if !outcome.foreign {
        return None;
    }
    let ready = status::find(&outcome.status.conditions, status::READY)?;
    Some(format!("{}: {}", ready.reason, ready.message))
}

/// Why the connection Secret is not as it should be, naming it.
pub(super) fn secret_failure(resource: &CognitiveServicesAccount, error: &Error) -> String {
    let secret = connection_secret_name(resource);
    format!(
        "the connection Secret {secret} (spec.connectionSecret) could not be brought up to date: {error}; retrying"
    )
}

/// `{namespace}/{name}` of the connection Secret, for messages.
fn connection_secret_name(resource: &CognitiveServicesAccount) -> String {
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let name = resource
        .spec
        .connection_secret
        .as_ref()
        .map_or("", |reference| reference.name.as_str());
    format!("{namespace}/{name}")
}
