//! The `CognitiveServicesAccount` custom resource, and the types both kinds share.
//!
//! Doc comments here are the CRD's descriptions, which `kubectl explain` shows.

use std::time::Duration;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StringMap;
use crate::arm::lro::PendingOperation;
use crate::arm::models::{AccountWritableProperties, Identity, Sku};

/// The Azure tag that marks an account (or a deployment) as managed by one resource; its value
/// is `{cluster}/{namespace}/{name}` (`{namespace}/{name}` without a cluster id). It survives
/// soft-delete and restore, so ownership is known even without the resource's status (after a
/// backup restore, or from the `plan` CLI).
pub const OWNER_TAG: &str = "cognitive-operator-owner";

/// Whether a tag name is the owner tag. Azure compares tag names ignoring case, so
/// `Cognitive-Operator-Owner` is the same tag.
pub fn is_owner_tag(name: &str) -> bool {
    name.eq_ignore_ascii_case(OWNER_TAG)
}

/// How many tags `spec.tags` may hold: Azure's 50 per resource, less the owner tag.
pub const MAX_SPEC_TAGS: usize = 49;

/// The finalizer that runs the deletion policy before the resource goes away.
pub const FINALIZER: &str = "cognitive-operator.dev/cleanup";

/// Desired state of an Azure Cognitive Services (Azure AI services) account.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "cognitive-operator.dev",
    version = "v1alpha1",
    kind = "CognitiveServicesAccount",
    namespaced,
    shortname = "csa",
    status = "CognitiveServicesAccountStatus",
    doc = "An Azure Cognitive Services (Azure AI services) account, with what to do about a soft-deleted copy and what deleting this resource does.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.azureName) == has(oldSelf.azureName)").message("spec.azureName cannot be added or removed: it names the Azure account; create a new resource to manage another account"))]
#[x_kube(validation = Rule::new("has(self.subscriptionId) == has(oldSelf.subscriptionId)").message("spec.subscriptionId cannot be added or removed after creation; create a new resource to manage an account in another subscription"))]
#[x_kube(validation = Rule::new("!has(oldSelf.properties) || !has(oldSelf.properties.customSubDomainName) || (has(self.properties) && has(self.properties.customSubDomainName) && self.properties.customSubDomainName == oldSelf.properties.customSubDomainName)").message("spec.properties.customSubDomainName cannot change once set (Azure does not allow it); create a new resource for a new subdomain"))]
#[serde(rename_all = "camelCase")]
pub struct CognitiveServicesAccountSpec {
    /// Name of the account in Azure; defaults to metadata.name. 2-64 characters, letters,
    /// digits, `_`, `.` and `-`, starting with a letter or digit. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 64),
        regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.azureName is immutable: create a new resource to manage another Azure account"))]
    pub azure_name: Option<String>,

    /// Azure subscription id (a GUID); defaults to the operator's default subscription
    /// (`--subscription-id`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.subscriptionId is immutable: create a new resource to manage an account in another subscription"))]
    pub subscription_id: Option<String>,

    /// Resource group of the account; it must exist. 1-90 letters, digits, `_`, `-`, `.`,
    /// `(` and `)`, not ending with `.`. Immutable.
    #[schemars(
        length(min = 1, max = 90),
        regex(pattern = r"^[-\p{L}\p{N}_.()]*[-\p{L}\p{N}_()]$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.resourceGroup is immutable: Azure cannot move an account by this operator; create a new resource"))]
    pub resource_group: String,

    /// Azure region, e.g. `swedencentral` (or its display name, `Sweden Central`). Immutable.
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z0-9 ]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.location is immutable: Azure cannot move an account to another region; create a new resource"))]
    pub location: String,

    /// Kind of account, e.g. `OpenAI`, `AIServices`, `CognitiveServices`, `TextAnalytics`.
    /// Immutable, except between `OpenAI` and `AIServices`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self == oldSelf || (self in ['OpenAI', 'AIServices'] && oldSelf in ['OpenAI', 'AIServices'])").message("spec.kind is immutable except between OpenAI and AIServices; create a new resource for another kind"))]
    pub kind: String,

    /// SKU of the account, e.g. `{name: S0}`.
    pub sku: Sku,

    /// Azure tags (at most 49). When set, they are managed as a whole: tags added in Azure by
    /// hand are removed. The operator adds its own tag `cognitive-operator-owner`, which this
    /// map may not set in any letter case (Azure tag names ignore case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 49))]
    #[x_kube(validation = Rule::new("self.all(k, k.lowerAscii() != 'cognitive-operator-owner')").message("spec.tags may not set cognitive-operator-owner, in any letter case: the operator sets that tag itself"))]
    pub tags: Option<StringMap>,

    /// Managed identity of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,

    /// Writable account properties of ARM api-version 2024-10-01, with ARM's camelCase names.
    /// Only the properties you set are managed; Azure's defaults for the others are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<AccountWritableProperties>,

    /// What to do when the account is absent but a soft-deleted copy of it exists: `Restore`
    /// (default: bring it back with its keys and endpoint, then apply the spec), `Purge` (delete
    /// the copy for good, then create a new account) or `Fail` (stop and report the copy).
    #[serde(default)]
    pub soft_delete_policy: SoftDeletePolicy,

    /// What deleting this resource does to the account: `Delete` (default: ARM soft-delete,
    /// restorable for 48 hours), `DeleteAndPurge` (soft-delete, then purge the copy; needs the
    /// subscription-scope permission
    /// `Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete`) or `Orphan`
    /// (leave the account in Azure).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// What to do when an account with this name exists and was not created by this resource:
    /// `Never` (default: stop with reason AlreadyExists) or `Adopt` (take it over and apply the spec).
    #[serde(default)]
    pub adoption_policy: AdoptionPolicy,

    /// `Manage` (default: create and update the account), `Observe` (read only: report drift in
    /// status, never write) or `Pause` (make no ARM calls at all).
    #[serde(default)]
    pub reconcile_policy: ReconcilePolicy,

    /// How often to check Azure for drift, e.g. `10m`, `1h`, `90s` (jittered by ±10%). `0`
    /// disables periodic checks. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(ms|s|m|h))+)$"))]
    pub resync_interval: Option<String>,

    /// A Secret in this resource's namespace with the Azure identity to use for this account
    /// (keys `tenantId`, `clientId`, and `clientSecret`); defaults to the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalSecretReference>,

    /// A Secret in this resource's namespace that the operator writes and owns, with `endpoint`
    /// and, unless local auth is disabled, `key1`, `key2` and `key` (the active one, named by
    /// the Secret's `cognitive-operator.dev/active-key` annotation; the resource's
    /// `cognitive-operator.dev/rotate-key: Standby` annotation rotates without a broken key).
    /// Keys only for an account this resource manages, or with a key-read grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<LocalSecretReference>,
}

/// A Secret in the same namespace as the resource (other namespaces cannot be named).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretReference {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// `Restore`, `Purge` or `Fail`: what to do with a soft-deleted copy when the account is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SoftDeletePolicy {
    #[default]
    Restore,
    Purge,
    Fail,
}

/// `Delete`, `DeleteAndPurge` or `Orphan`: what deleting the resource does to the account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    DeleteAndPurge,
    Orphan,
}

/// `Never` or `Adopt`: whether to take over an existing account this resource did not create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AdoptionPolicy {
    #[default]
    Never,
    Adopt,
}

/// `Manage`, `Observe` or `Pause`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReconcilePolicy {
    #[default]
    Manage,
    Observe,
    Pause,
}

/// Observed state, in kstatus form: conditions `Ready`, `Reconciling` and `Stalled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CognitiveServicesAccountStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the account matches the spec), `Reconciling` (work in progress) and `Stalled`
    /// (cannot progress without a change by you).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// ARM id of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_id: Option<String>,
    /// The account's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// All endpoints of the account, by API name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<StringMap>,
    /// The account's provisioningState in Azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// A long-running ARM operation in flight, resumed by the next reconcile (even after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<Box<PendingOperation>>,
    /// A soft-deleted copy of the account, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_deleted_copy: Option<Box<SoftDeletedCopy>>,
    /// When the operator last restored the account from a soft-deleted copy (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restore_time: Option<String>,
    /// When the operator last purged a soft-deleted copy (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purge_time: Option<String>,
    /// Fields whose Azure value differs from the spec (in Observe mode, and while a PATCH is pending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<FieldDrift>,
    /// The last ARM error, cleared when a reconcile succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,
    /// The model deployments Azure has in the account (kinds OpenAI and AIServices), and which
    /// CognitiveServicesDeployment manages each, so that unmanaged ones show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentSeen>,
}

/// A deployment seen in the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSeen {
    /// Name of the deployment in Azure.
    pub name: String,
    /// Model name, e.g. `gpt-4o`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SKU name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
    /// The owner tag's value (`{cluster}/{namespace}/{name}` of the CognitiveServicesDeployment
    /// managing it); unset for a deployment no resource manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// A kstatus condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason, e.g. `Succeeded`, `Creating`, `SoftDeletedCopyExists`.
    pub reason: String,
    /// Human-readable details.
    pub message: String,
    /// The metadata.generation this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
}

/// A soft-deleted copy of the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoftDeletedCopy {
    /// Location of the copy.
    pub location: String,
    /// Resource group of the copy.
    pub resource_group: String,
    /// When the account was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
    /// When Azure purges the copy by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_purge_date: Option<String>,
}

/// A field whose Azure value differs from the spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldDrift {
    /// Path of the field, e.g. `tags` or `properties.networkAcls.defaultAction`.
    pub field: String,
    /// The spec's value, as JSON.
    pub desired: String,
    /// Azure's value, as JSON (`null` when unset).
    pub observed: String,
}

/// An ARM error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// ARM error code, e.g. `CustomDomainInUse`.
    pub code: String,
    /// ARM error message.
    pub message: String,
}

/// The default drift-check period.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);
