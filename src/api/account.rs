//! The `CognitiveServicesAccount` custom resource, and the types both kinds share.
//!
//! Doc comments here are the CRD's descriptions, which `kubectl explain` shows.

use std::time::Duration;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StringMap;
use crate::arm::lro::PendingOperation;
use crate::arm::models::{AccountWritableProperties, Identity, Sku, is_guid};

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

/// A spec field that fails validation, named by its path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub(super) fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Parses a duration like `10m`, `1h30m`, `90s`, `500ms` or `0`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        total += unit.checked_mul(u32::try_from(value).ok()?)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// Checks a name against ARM's account-name rule.
pub fn valid_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    (2..=64).contains(&name.chars().count())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub(super) fn check_enum(
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<(), FieldError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(field_error(
            field,
            format!(
                "unsupported value {v:?}: expected one of {}",
                allowed.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

impl CognitiveServicesAccountSpec {
    /// The name of the account in Azure.
    pub fn azure_name<'a>(&'a self, metadata_name: &'a str) -> &'a str {
        self.azure_name.as_deref().unwrap_or(metadata_name)
    }

    /// The drift-check period; `None` when periodic checks are off.
    pub fn resync(&self) -> Option<Duration> {
        resync_period(self.resync_interval.as_deref())
    }

    /// Checks what the CRD schema checks (for manifests that never met an API server, and for
    /// objects stored before a schema change), naming the first bad field.
    pub fn validate(&self, metadata_name: &str) -> Result<(), FieldError> {
        self.validate_name(metadata_name)?;
        self.validate_required()?;
        self.validate_scope()?;
        self.validate_settings()?;
        self.validate_references()
    }

    /// The account name: `spec.azureName`, or `metadata.name` when it is not set.
    fn validate_name(&self, metadata_name: &str) -> Result<(), FieldError> {
        check_azure_name("account", self.azure_name.as_deref(), metadata_name)
    }

    /// Fields without which nothing can be planned.
    fn validate_required(&self) -> Result<(), FieldError> {
        for (field, value) in [
            ("spec.resourceGroup", &self.resource_group),
            ("spec.location", &self.location),
            ("spec.kind", &self.kind),
            ("spec.sku.name", &self.sku.name),
        ] {
            if value.trim().is_empty() {
                return Err(field_error(field, "is required"));
            }
        }
        Ok(())
    }

    /// Where the account is. These become segments of ARM paths, and the namespace's grant is
    /// checked against them: a value with '/' or '..' could walk the path to another scope.
    fn validate_scope(&self) -> Result<(), FieldError> {
        if let Some(subscription) = &self.subscription_id
            && !is_guid(subscription)
        {
            return Err(field_error(
                "spec.subscriptionId",
                format!(
                    "{subscription:?} is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)"
                ),
            ));
        }
        if !valid_resource_group(&self.resource_group) {
            return Err(field_error(
                "spec.resourceGroup",
                format!(
                    "{:?} is not a valid resource group name: 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.'",
                    self.resource_group
                ),
            ));
        }
        if !self
            .location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            return Err(field_error(
                "spec.location",
                format!(
                    "{:?} is not an Azure location such as westus or \"West US\"",
                    self.location
                ),
            ));
        }
        Ok(())
    }

    /// Enums and durations.
    fn validate_settings(&self) -> Result<(), FieldError> {
        check_resync_interval(self.resync_interval.as_deref())?;
        check_enum(
            "spec.sku.tier",
            self.sku.tier.as_deref(),
            &["Free", "Basic", "Standard", "Premium", "Enterprise"],
        )?;
        if let Some(identity) = &self.identity {
            check_enum(
                "spec.identity.type",
                identity.identity_type.as_deref(),
                &[
                    "None",
                    "SystemAssigned",
                    "UserAssigned",
                    "SystemAssigned, UserAssigned",
                ],
            )?;
        }
        Ok(())
    }

    /// The tags, the writable properties and the Secret names.
    fn validate_references(&self) -> Result<(), FieldError> {
        if let Some(tags) = &self.tags {
            check_tags(tags.len(), tags.iter().map(|(name, _)| name))?;
        }
        if let Some(properties) = &self.properties {
            validate_properties(properties)?;
        }
        for (field, reference) in [
            (
                "spec.credentialsSecretRef.name",
                &self.credentials_secret_ref,
            ),
            ("spec.connectionSecret.name", &self.connection_secret),
        ] {
            if let Some(r) = reference
                && !valid_dns_subdomain(&r.name)
            {
                return Err(field_error(
                    field,
                    format!("{:?} is not a valid Secret name", r.name),
                ));
            }
        }
        Ok(())
    }
}

/// `spec.tags`: within Azure's count, and never the owner tag, whose value says who manages the
/// resource (a spec could otherwise claim, or disown, what it names).
pub(super) fn check_tags<'a>(
    count: usize,
    mut names: impl Iterator<Item = &'a str>,
) -> Result<(), FieldError> {
    if count > MAX_SPEC_TAGS {
        return Err(field_error(
            "spec.tags",
            format!(
                "{count} tags is too many: Azure allows 50 on a resource, one of them the operator's own, so at most {MAX_SPEC_TAGS}"
            ),
        ));
    }
    match names.find(|name| is_owner_tag(name)) {
        Some(name) => Err(field_error(
            "spec.tags",
            format!(
                "may not set {name}: {OWNER_TAG}, in any letter case, is the tag the operator sets itself"
            ),
        )),
        None => Ok(()),
    }
}

/// The drift-check period `spec.resyncInterval` asks for (default [`DEFAULT_RESYNC`]); `None`
/// when periodic checks are off.
pub(super) fn resync_period(interval: Option<&str>) -> Option<Duration> {
    let interval = interval.map_or(DEFAULT_RESYNC, |text| {
        parse_duration(text).unwrap_or(DEFAULT_RESYNC)
    });
    (!interval.is_zero()).then_some(interval)
}

pub(super) fn check_resync_interval(interval: Option<&str>) -> Result<(), FieldError> {
    match interval {
        Some(text) if parse_duration(text).is_none() => Err(field_error(
            "spec.resyncInterval",
            format!("{text:?} is not a duration like 10m, 1h, 90s or 0"),
        )),
        _ => Ok(()),
    }
}

/// The Azure name of a resource (`what`: account or deployment): `spec.azureName`, or
/// `metadata.name` when it is not set, against ARM's naming rule.
pub(super) fn check_azure_name(
    what: &str,
    azure_name: Option<&str>,
    metadata_name: &str,
) -> Result<(), FieldError> {
    let name = azure_name.unwrap_or(metadata_name);
    if valid_account_name(name) {
        return Ok(());
    }
    let field = if azure_name.is_some() {
        "spec.azureName"
    } else {
        "metadata.name"
    };
    Err(field_error(
        field,
        format!(
            "{name:?} is not a valid {what} name: 2-64 characters, letters, digits, '_', '.' and '-', starting with a letter or digit"
        ),
    ))
}

/// Azure's rule for resource group names (Unicode letters and digits are allowed).
fn valid_resource_group(name: &str) -> bool {
    (1..=90).contains(&name.chars().count())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'))
}

fn validate_properties(p: &AccountWritableProperties) -> Result<(), FieldError> {
    check_enum(
        "spec.properties.publicNetworkAccess",
        p.public_network_access.as_deref(),
        &["Enabled", "Disabled"],
    )?;
    if let Some(acls) = &p.network_acls {
        check_enum(
            "spec.properties.networkAcls.defaultAction",
            acls.default_action.as_deref(),
            &["Allow", "Deny"],
        )?;
        check_enum(
            "spec.properties.networkAcls.bypass",
            acls.bypass.as_deref(),
            &["None", "AzureServices"],
        )?;
    }
    if let Some(encryption) = &p.encryption {
        check_enum(
            "spec.properties.encryption.keySource",
            encryption.key_source.as_deref(),
            &["Microsoft.CognitiveServices", "Microsoft.KeyVault"],
        )?;
    }
    if let Some(locations) = &p.locations {
        check_enum(
            "spec.properties.locations.routingMethod",
            locations.routing_method.as_deref(),
            &["Priority", "Weighted", "Performance"],
        )?;
    }
    if let Some(sub) = &p.custom_sub_domain_name {
        let ok = (2..=64).contains(&sub.len())
            && sub.starts_with(|c: char| c.is_ascii_alphanumeric())
            && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(field_error(
                "spec.properties.customSubDomainName",
                format!(
                    "{sub:?} is not a valid subdomain: 2-64 letters, digits and '-', starting with a letter or digit"
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn valid_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CognitiveServicesAccountSpec {
        crate::test_fixtures::openai_spec()
    }

    #[test]
    fn durations_parse_like_kubernetes_ones() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("ten minutes"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn resync_defaults_to_ten_minutes_and_zero_disables_it() {
        let mut s = spec();
        assert_eq!(s.resync(), Some(DEFAULT_RESYNC));
        s.resync_interval = Some("0".into());
        assert_eq!(s.resync(), None);
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(spec().validate("docs-openai"), Ok(()));
        let err = spec().validate("x").unwrap_err();
        assert_eq!(err.field, "metadata.name");
        let mut s = spec();
        s.properties = Some(AccountWritableProperties {
            public_network_access: Some("Maybe".into()),
            ..Default::default()
        });
        let err = s.validate("docs").unwrap_err();
        assert_eq!(err.field, "spec.properties.publicNetworkAccess");
        assert!(err.message.contains("Enabled, Disabled"), "{err}");
        let mut s = spec();
        s.resync_interval = Some("soon".into());
        assert_eq!(s.validate("docs").unwrap_err().field, "spec.resyncInterval");
        let mut s = spec();
        s.connection_secret = Some(LocalSecretReference {
            name: "Not_A_Name".into(),
        });
        assert_eq!(
            s.validate("docs").unwrap_err().field,
            "spec.connectionSecret.name"
        );
    }

    #[test]
    fn the_owner_tag_is_refused_in_any_letter_case() {
        for key in [
            OWNER_TAG,
            "Cognitive-Operator-Owner",
            "COGNITIVE-OPERATOR-OWNER",
        ] {
            let mut s = spec();
            s.tags = Some([(key.to_string(), "team-b/theirs".to_string())].into());
            let error = s.validate("docs").unwrap_err();
            assert_eq!(error.field, "spec.tags", "{key}");
            assert!(error.message.contains(key), "{error}");
        }
        let mut s = spec();
        s.tags = Some((0..50).map(|i| (format!("t{i}"), String::new())).collect());
        assert_eq!(s.validate("docs").unwrap_err().field, "spec.tags");
        s.tags = Some((0..49).map(|i| (format!("t{i}"), String::new())).collect());
        assert_eq!(s.validate("docs"), Ok(()));
    }

    #[test]
    fn scope_fields_that_could_walk_an_arm_path_are_refused() {
        let other = "../../../subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/x";
        for (field, bad) in [
            ("spec.resourceGroup", other),
            ("spec.resourceGroup", ".."),
            ("spec.resourceGroup", "rg%2f.."),
            (
                "spec.subscriptionId",
                "11111111-1111-1111-1111-111111111111/..",
            ),
            ("spec.subscriptionId", "not-a-guid"),
            ("spec.location", "westus/../eastus"),
        ] {
            let mut s = spec();
            match field {
                "spec.resourceGroup" => s.resource_group = bad.into(),
                "spec.subscriptionId" => s.subscription_id = Some(bad.into()),
                _ => s.location = bad.into(),
            }
            let error = s.validate("docs").unwrap_err();
            assert_eq!(error.field, field, "{bad}");
            assert!(error.message.contains(bad), "{error}");
        }
        let mut s = spec();
        s.subscription_id = Some("0A1b2C3d-0000-0000-0000-000000000000".into());
        s.resource_group = "rg_(prod).eu-1".into();
        s.location = "West US 2".into();
        assert_eq!(s.validate("docs"), Ok(()));
    }
}
