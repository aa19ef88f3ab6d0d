//! One reconcile of one resource: finalizer, credentials, the engine, the status (server-side
//! apply on the status subresource), the connection Secret, events and the requeue.
//!
//! Written against a plain `kube::Client`, so tests drive it with a fake API server.

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::Instrument;

mod deployments;

use super::credentials::Credentials;
use super::error::Error;
use super::grants::{self, Grants};
use super::metrics::{Metrics, ReconcileResult};
use super::requeue::{Backoffs, Requeue, requeue_for, resync_requeue};
use super::secrets::{self, ConnectionSecret, SecretSync};
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesAccountStatus, DeletionPolicy, FINALIZER,
    ReconcilePolicy,
};
use crate::arm::models::{Account, AccountRef};
use crate::arm::{ArmClient, OperationKind};
use crate::engine::{Engine, Outcome, condition_is_true};
use crate::planner::status::{self, Summary};

/// The field manager of every server-side apply (and the events' reporting controller).
pub const FIELD_MANAGER: &str = "cognitive-operator";

/// Internal: set by the controller (`controller::cache_object`) on the cached placeholder of an
/// object that does not deserialize, holding the parse error; the reconciler reports it as
/// Stalled `InvalidResource`. Never read from the API server: the controller drops it from
/// watched objects before the conversion, so users cannot set it.
pub const INVALID_RESOURCE_ANNOTATION: &str = "cognitive-operator.dev/invalid-resource";

/// Events notes are limited to 1 kB by the API server.
const NOTE_LIMIT: usize = 1000;

/// Reconciles resources. One per process, shared by all reconciles.
pub struct Reconciler {
    client: kube::Client,
    engine: Engine,
    credentials: Credentials,
    grants: Grants,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    backoffs: Backoffs,
}

/// Ready for the engine (with the client and the resource as it now is), or stopped short.
enum Prepared {
    Go {
        arm: ArmClient,
        resource: Box<CognitiveServicesAccount>,
    },
    Stop(Reconciled),
}

/// The connection Secret's failure in the conditions; true for a Secret someone else owns.
fn report_secret(
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

/// What a namespace's grant says about a resource's Azure scope.
enum ScopeCheck {
    Allowed,
    /// Outside the grant; the message says how an admin grants it.
    Denied(String),
    /// The grant annotation does not parse: nothing is decided until an admin fixes it.
    Unreadable(String),
}

/// A reconcile's result before requeue bookkeeping.
struct Reconciled {
    requeue: Requeue,
    result: ReconcileResult,
}

impl Reconciler {
    /// `instance` names this replica in events (`reportingInstance`).
    pub fn new(
        client: kube::Client,
        engine: Engine,
        credentials: Credentials,
        grants: Grants,
        metrics: Arc<Metrics>,
        instance: &str,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance.into()),
        };
        Reconciler {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            engine,
            credentials,
            grants,
            metrics,
            backoffs: Backoffs::default(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The resource is gone from the cluster: drop what is kept for it (its backoff, its
    /// credentials Secret's client when no other resource uses that Secret).
    pub fn forget(&self, namespace: Option<&str>, name: Option<&str>) {
        let key = format!(
            "{}/{}",
            namespace.unwrap_or("default"),
            name.unwrap_or_default()
        );
        self.backoffs.reset(&key);
        self.credentials.release(&key);
    }

    /// The controller's entry point: a cached object, which may be the placeholder of one that
    /// does not deserialize (see [`INVALID_RESOURCE_ANNOTATION`]).
    pub async fn reconcile(&self, object: &CognitiveServicesAccount) -> Result<Requeue, Error> {
        let span = tracing::info_span!(
            "reconcile",
            namespace = object.metadata.namespace.as_deref().unwrap_or_default(),
            name = object.metadata.name.as_deref().unwrap_or_default(),
        );
        async {
            match invalid_resource(object) {
                None => self.reconcile_account(object).await,
                Some(message) => self.timed(self.report_malformed(object, message)).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Reconciles a resource that deserialized (not a placeholder).
    pub async fn reconcile_account(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<Requeue, Error> {
        self.timed(self.reconcile_inner(resource)).await
    }

    /// The requeue after a failed reconcile: per-resource exponential backoff (at least the
    /// server's Retry-After) for an error that may pass by itself; the resync for one that
    /// needs someone to change something (RBAC, a refused identity), so it costs no calls
    /// meanwhile.
    pub fn error_requeue(&self, object: &CognitiveServicesAccount, error: &Error) -> Requeue {
        let key = key_of(&object.metadata);
        tracing::warn!(
            namespace = object.metadata.namespace.as_deref().unwrap_or_default(),
            name = object.metadata.name.as_deref().unwrap_or_default(),
            error = %error,
            retryable = error.is_retryable(),
            "reconcile failed"
        );
        if !error.is_retryable() {
            self.backoffs.reset(&key);
            return resync_requeue(object.spec.resync());
        }
        let retry_after = match error {
            Error::Arm(e) => e.retry_after(),
            _ => None,
        };
        Requeue::After(self.backoffs.fail(&key, retry_after))
    }

    async fn timed(
        &self,
        work: impl Future<Output = Result<Reconciled, Error>>,
    ) -> Result<Requeue, Error> {
        let started = Instant::now();
        let result = work.await;
        let label = match &result {
            Ok(done) => done.result,
            Err(_) => ReconcileResult::Error,
        };
        self.metrics.record_reconcile(label, started.elapsed());
        result.map(|done| done.requeue)
    }

    async fn reconcile_inner(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<Reconciled, Error> {
        let key = key_of(&resource.metadata);
        let deleting = resource.metadata.deletion_timestamp.is_some();
        if deleting && !has_finalizer(resource) {
            self.backoffs.reset(&key);
            return Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted));
        }
        let (arm, resource) = match self.prepare(resource, deleting).await? {
            Prepared::Go { arm, resource } => (arm, *resource),
            Prepared::Stop(answer) => return Ok(answer),
        };
        let now = Timestamp::now();
        let outcome = self.engine.reconcile(&arm, &resource, deleting, now).await;
        for write in &outcome.writes {
            tracing::info!(kind = ?write.kind, fields = ?write.fields, "ARM write: {}", write.description);
        }
        let secret = self.sync_secret(&arm, &resource, &outcome, deleting).await;
        let mut status = outcome.status.clone();
        let conflict = report_secret(&mut status, &resource, &secret, now);
        // The status write moves the resourceVersion that the finalizer patch is conditional on.
        let latest = self.write_status(&resource, &status).await?;
        let latest = latest.as_ref().unwrap_or(&resource);
        self.publish_outcome_events(&resource, &outcome, &status, deleting)
            .await;
        match secret {
            Ok(Some(sync)) => self.finish_secret_sync(&resource, &sync).await?,
            Err(e) if !conflict => return Err(e),
            _ => {}
        }
        if deleting && outcome.deletion_finished {
            return self.finish_deletion(&resource, latest).await;
        }
        if let Some(error) = &outcome.error {
            tracing::warn!(error = %error, "reconcile did not complete");
        }
        let requeue = if conflict {
            self.backoffs.reset(&key);
            resync_requeue(resource.spec.resync())
        } else {
            requeue_for(outcome.next, resource.spec.resync(), &key, &self.backoffs)
        };
        Ok(done(requeue, classify(&status)))
    }

    /// The gates before the engine: the namespace's grant, the credentials, the finalizer
    /// (on before any ARM write).
    async fn prepare(
        &self,
        resource: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Prepared, Error> {
        let needs_arm = self.engine.target(resource).is_ok()
            && resource.spec.reconcile_policy != ReconcilePolicy::Pause;
        if !needs_arm {
            // The engine makes no ARM call for an invalid spec or a paused resource.
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
        let arm = match self.credentials.client_for(&self.client, resource).await {
            Ok(arm) => arm,
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

    /// The deletion policy has run: the finalizer goes (saying so when Pause skipped it).
    async fn finish_deletion(
        &self,
        resource: &CognitiveServicesAccount,
        latest: &CognitiveServicesAccount,
    ) -> Result<Reconciled, Error> {
        if skipped_deletion_policy(resource) {
            let note = format!(
                "reconcilePolicy is Pause, which makes no ARM call: deletionPolicy {:?} was not run and the account is left in Azure",
                resource.spec.deletion_policy
            );
            self.publish(
                resource,
                EventType::Warning,
                "DeletionPolicySkipped",
                "Delete",
                &note,
            )
            .await;
        }
        self.remove_finalizer(latest).await?;
        self.backoffs.reset(&key_of(&resource.metadata));
        tracing::info!("deletion policy done; finalizer removed");
        Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted))
    }

    /// The connection Secret, when the account is there, provisioned and ours to describe.
    async fn sync_secret(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        outcome: &Outcome,
        deleting: bool,
    ) -> Result<Option<SecretSync>, Error> {
        let (Some(reference), Some(account), Ok(target)) = (
            &resource.spec.connection_secret,
            &outcome.account,
            self.engine.target(resource),
        ) else {
            return Ok(None);
        };
        let provisioned = account
            .provisioning_state()
            .is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"));
        // A stalled outcome may describe someone else's account (AlreadyExists): no keys of it.
        if deleting || !provisioned || outcome.stalled() {
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
    async fn finish_secret_sync(
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

    /// What the resource's namespace grant says about its Azure scope; an error (retried soon)
    /// while its Namespace is not cached yet.
    fn scope_check(&self, resource: &CognitiveServicesAccount) -> Result<ScopeCheck, Error> {
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

    /// Keys go into a Secret only for an account this resource manages, or where an admin
    /// granted its namespace reading the keys of accounts in that scope; else why not.
    fn may_read_keys(
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

    /// A grant annotation that does not parse: Stalled `ScopeGrantInvalid` and no ARM call.
    /// Deleting waits too, finalizer held: the deletion policy runs once an admin fixes the
    /// annotation (the Namespace change triggers the reconcile), never skipped for a typo.
    async fn grant_unreadable(
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
    async fn stall_before_arm(
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
    async fn scope_not_allowed(
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
    async fn let_go_without_arm(
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
    async fn credentials_invalid(
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

    /// An object that does not deserialize (its cached placeholder): Stalled `InvalidResource`,
    /// written through the dynamic API (the object read back would not deserialize either);
    /// the watch carries on with the other objects. No ARM call.
    async fn report_malformed(
        &self,
        object: &CognitiveServicesAccount,
        message: &str,
    ) -> Result<Reconciled, Error> {
        tracing::warn!(error = %message, "resource does not deserialize");
        let mut status = object.status.clone().unwrap_or_default();
        let previous_reason = ready_reason(&status);
        let generation = object.metadata.generation;
        let summary = Summary::stalled("InvalidResource", message);
        let now = Timestamp::now().to_string();
        status.conditions = status::conditions(&summary, generation, &status.conditions, &now);
        status.observed_generation = generation;
        let api_resource = account_api_resource();
        let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &api_resource);
        let previous = serde_json::to_value(&object.status).expect("status serializes");
        let patch = status_patch::<CognitiveServicesAccount>(&previous, &status);
        api.patch_status(&object.name_any(), &apply_params(), &Patch::Apply(&patch))
            .await?;
        if previous_reason.as_deref() != Some("InvalidResource") {
            let reference = object.object_ref(&());
            self.publish_to(
                &reference,
                EventType::Warning,
                "InvalidResource",
                "Reconcile",
                message,
            )
            .await;
        }
        Ok(done(Requeue::AwaitChange, ReconcileResult::Stalled))
    }

    async fn ensure_finalizer(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<CognitiveServicesAccount, Error> {
        if has_finalizer(resource) {
            return Ok(resource.clone());
        }
        let mut finalizers = resource.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        let updated = self.patch_finalizers(resource, finalizers).await?;
        tracing::debug!("finalizer added");
        Ok(updated)
    }

    async fn remove_finalizer(&self, resource: &CognitiveServicesAccount) -> Result<(), Error> {
        let finalizers: Vec<String> = resource
            .finalizers()
            .iter()
            .filter(|f| f.as_str() != FINALIZER)
            .cloned()
            .collect();
        match self.patch_finalizers(resource, finalizers).await {
            // Gone already: the API server deleted it when the last finalizer went.
            Err(Error::Kube(e)) if super::error::is_not_found(&e) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Sets the finalizer list, conditional on the resourceVersion read: a concurrent change
    /// to the list is a conflict (retried), never a lost finalizer.
    async fn patch_finalizers(
        &self,
        resource: &CognitiveServicesAccount,
        finalizers: Vec<String>,
    ) -> Result<CognitiveServicesAccount, Error> {
        let patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": resource.resource_version(),
            }
        });
        Ok(self
            .accounts(resource)
            .patch(
                &resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?)
    }

    async fn write_status(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
    ) -> Result<Option<CognitiveServicesAccount>, Error> {
        apply_status(
            self.accounts(resource),
            resource,
            resource.status.as_ref(),
            status,
        )
        .await
    }

    async fn publish_outcome_events(
        &self,
        resource: &CognitiveServicesAccount,
        outcome: &Outcome,
        status: &CognitiveServicesAccountStatus,
        deleting: bool,
    ) {
        for write in &outcome.writes {
            let (reason, action) = write_reason(write.kind);
            let note = if write.fields.is_empty() {
                write.description.clone()
            } else {
                format!(
                    "{} (fields: {})",
                    write.description,
                    write.fields.join(", ")
                )
            };
            self.publish(resource, EventType::Normal, reason, action, &note)
                .await;
        }
        let failing = outcome.error.is_some() || condition_is_true(status, status::STALLED);
        if deleting && failing {
            // The finalizer stays until this is fixed; say so where `kubectl describe` shows it.
            self.warn_on_new_reason_with(resource, status, "the deletion policy cannot complete: ")
                .await;
        } else {
            self.warn_on_new_reason(resource, status, failing).await;
        }
    }

    /// A Warning event when the Ready reason changes to a failure reason (not on every retry).
    async fn warn_on_new_reason(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
        failing: bool,
    ) {
        if failing {
            self.warn_on_new_reason_with(resource, status, "").await;
        }
    }

    async fn warn_on_new_reason_with(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
        prefix: &str,
    ) {
        let before = resource.status.as_ref().and_then(ready_reason);
        let Some(ready) = status::find(&status.conditions, status::READY) else {
            return;
        };
        if before.as_deref() == Some(ready.reason.as_str()) {
            return;
        }
        let note = format!("{prefix}{}", ready.message);
        self.publish(
            resource,
            EventType::Warning,
            &ready.reason,
            "Reconcile",
            &note,
        )
        .await;
    }

    async fn publish(
        &self,
        resource: &CognitiveServicesAccount,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        self.publish_to(&resource.object_ref(&()), type_, reason, action, note)
            .await;
    }

    /// Events are best effort: a failure is logged, never fails the reconcile.
    async fn publish_to(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, NOTE_LIMIT)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            // E.g. a namespace being deleted refuses new events: the log keeps what it said.
            tracing::warn!(reason, note, error = %e, "could not publish event");
        }
    }

    fn accounts(&self, resource: &CognitiveServicesAccount) -> Api<CognitiveServicesAccount> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        Api::namespaced(self.client.clone(), &namespace)
    }
}

fn done(requeue: Requeue, result: ReconcileResult) -> Reconciled {
    Reconciled { requeue, result }
}

/// `namespace/name`, the key of per-resource state.
fn key_of(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default()
    )
}

pub fn has_finalizer(resource: &CognitiveServicesAccount) -> bool {
    resource.finalizers().iter().any(|f| f == FINALIZER)
}

/// Deleting a paused resource: Pause means no ARM call, so a Delete/DeleteAndPurge policy is not
/// run; said in a Warning event rather than silently.
fn skipped_deletion_policy(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.reconcile_policy == ReconcilePolicy::Pause
        && resource.spec.deletion_policy != DeletionPolicy::Orphan
}

/// Deleting such a resource makes no ARM call, so it needs no credentials.
fn leaves_azure_alone(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.deletion_policy == DeletionPolicy::Orphan
        || resource.spec.reconcile_policy != ReconcilePolicy::Manage
}

/// The parse error carried by the placeholder of an object that does not deserialize.
pub fn invalid_resource(resource: &CognitiveServicesAccount) -> Option<&str> {
    resource
        .metadata
        .annotations
        .as_ref()?
        .get(INVALID_RESOURCE_ANNOTATION)
        .map(String::as_str)
}

pub fn account_api_resource() -> ApiResource {
    ApiResource::erase::<CognitiveServicesAccount>(&())
}

/// Deserializes a watched object, naming the offending field when it does not fit.
pub fn parse_account(object: &DynamicObject) -> Result<CognitiveServicesAccount, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        format!(
            "the resource does not match the CognitiveServicesAccount schema at {}: {}",
            e.path(),
            e.inner()
        )
    })
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The apply body for the status. Fields that were set and are now unset are sent as `null`:
/// a real API server prunes nulls from custom resources (so this is the omission that makes
/// server-side apply drop a field we own), and a merge-patch based server needs them to
/// remove the field at all.
pub fn status_patch<K: Resource<DynamicType = ()>>(
    previous: &Value,
    status: &impl serde::Serialize,
) -> Value {
    let mut desired = serde_json::to_value(status).expect("status serializes");
    null_removed_fields(previous, &mut desired);
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    })
}

/// Server-side apply of the whole status of `resource` (an account or a deployment) on the
/// status subresource, when it changed. Returns the object as written (`None`: nothing to write).
async fn apply_status<K, S>(
    api: Api<K>,
    resource: &K,
    previous: Option<&S>,
    status: &S,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if previous == Some(status) {
        return Ok(None);
    }
    let previous = serde_json::to_value(previous).expect("status serializes");
    let patch = status_patch::<K>(&previous, status);
    let written = api
        .patch_status(&resource.name_any(), &apply_params(), &Patch::Apply(&patch))
        .await?;
    Ok(Some(written))
}

/// Adds `null` to `desired` for each object field of `previous` it lacks, recursively — `[]`
/// for a list: the API server validates the applied object with the null still in it, and a
/// list field (unlike an optional one, which the schema marks nullable) must be a list.
pub fn null_removed_fields(previous: &Value, desired: &mut Value) {
    let (Value::Object(old), Value::Object(new)) = (previous, desired) else {
        return;
    };
    for (key, old_value) in old {
        match new.get_mut(key) {
            None if old_value.is_array() => {
                new.insert(key.clone(), Value::Array(Vec::new()));
            }
            None => {
                new.insert(key.clone(), Value::Null);
            }
            Some(new_value) => null_removed_fields(old_value, new_value),
        }
    }
}

/// Why the connection Secret is not as it should be, naming it.
fn secret_failure(resource: &CognitiveServicesAccount, error: &Error) -> String {
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let name = resource
        .spec
        .connection_secret
        .as_ref()
        .map_or("", |reference| reference.name.as_str());
    format!(
        "the connection Secret {namespace}/{name} (spec.connectionSecret) could not be brought up to date: {error}; retrying"
    )
}

/// Replaces the conditions (keeping transition times of unchanged ones) and the generation.
fn restate(
    status: &mut CognitiveServicesAccountStatus,
    resource: &CognitiveServicesAccount,
    summary: &Summary,
    now: Timestamp,
) {
    let previous = resource
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = resource.metadata.generation;
    status.conditions = status::conditions(summary, generation, &previous, &now.to_string());
    status.observed_generation = generation;
}

fn ready_reason(status: &CognitiveServicesAccountStatus) -> Option<String> {
    status::find(&status.conditions, status::READY).map(|c| c.reason.clone())
}

fn classify(status: &CognitiveServicesAccountStatus) -> ReconcileResult {
    classify_conditions(&status.conditions)
}

/// The metrics' result of a reconcile, from the conditions it left.
fn classify_conditions(conditions: &[crate::api::Condition]) -> ReconcileResult {
    let is_true = |type_| status::find(conditions, type_).is_some_and(|c| c.status == "True");
    if is_true(status::STALLED) {
        ReconcileResult::Stalled
    } else if is_true(status::READY) {
        ReconcileResult::Ready
    } else if is_true(status::RECONCILING) {
        ReconcileResult::Progressing
    } else {
        ReconcileResult::Idle
    }
}

/// The event reason and action of an ARM write.
fn write_reason(kind: OperationKind) -> (&'static str, &'static str) {
    match kind {
        OperationKind::Create => ("Created", "CreateAccount"),
        OperationKind::Restore => ("Restored", "RestoreAccount"),
        OperationKind::Update => ("Patched", "UpdateAccount"),
        OperationKind::Delete => ("Deleted", "DeleteAccount"),
        OperationKind::Purge => ("Purged", "PurgeDeletedAccount"),
    }
}

fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_status_fields_become_nulls_at_any_depth() {
        let previous = json!({
            "endpoint": "https://x/",
            "pendingOperation": {"kind": "Create", "retryAfterSeconds": 1},
            "conditions": [{"type": "Ready"}],
            "drift": [{"field": "tags"}]
        });
        let mut desired = json!({
            "pendingOperation": {"kind": "Update"},
            "conditions": []
        });
        null_removed_fields(&previous, &mut desired);
        assert_eq!(
            desired,
            json!({
                "endpoint": null,
                "pendingOperation": {"kind": "Update", "retryAfterSeconds": null},
                "conditions": [],
                "drift": []
            })
        );
    }

    #[test]
    fn a_malformed_object_names_the_field() {
        let resource = account_api_resource();
        let object = DynamicObject::new("bad", &resource).data(json!({
            "spec": {"resourceGroup": "rg", "location": "westus", "kind": "OpenAI", "sku": {"name": 7}}
        }));
        let message = parse_account(&object).unwrap_err();
        assert!(message.contains("spec.sku.name"), "{message}");
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let text = "é".repeat(600);
        let cut = truncate(&text, NOTE_LIMIT);
        assert!(cut.len() <= NOTE_LIMIT + "…".len());
    }
}
