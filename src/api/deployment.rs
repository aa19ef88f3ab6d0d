//! The `CognitiveServicesDeployment` custom resource: a model deployment of an account.
//!
//! Doc comments here are the CRD's descriptions, which `kubectl explain` shows.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::account_spec::{
    check_azure_name, check_enum, check_resync_interval, check_tags, field_error, resync_period,
    valid_dns_subdomain,
};
use super::{AdoptionPolicy, Condition, FieldDrift, FieldError, LastError, ReconcilePolicy};
use crate::arm::lro::PendingOperation;

/// Desired state of a model deployment (e.g. `gpt-4o`) of a `CognitiveServicesAccount`.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "cognitive-operator.dev",
    version = "v1alpha1",
    kind = "CognitiveServicesDeployment",
    namespaced,
    shortname = "csd",
    status = "CognitiveServicesDeploymentStatus",
    doc = "A model deployment of an Azure OpenAI or AI Services account managed by a CognitiveServicesAccount in the same namespace.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Model","type":"string","jsonPath":".spec.model.name"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.modelVersion"}"#,
    printcolumn = r#"{"name":"SKU","type":"string","jsonPath":".spec.sku.name"}"#,
    printcolumn = r#"{"name":"Capacity","type":"integer","jsonPath":".status.capacity"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".spec.accountRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.azureName) == has(oldSelf.azureName)").message("spec.azureName cannot be added or removed: it names the Azure deployment; create a new deployment resource"))]
#[serde(rename_all = "camelCase")]
pub struct CognitiveServicesDeploymentSpec {
    /// The `CognitiveServicesAccount` (in this namespace) whose Azure account holds the
    /// deployment. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.accountRef is immutable: a deployment cannot move to another account; create a new deployment resource"))]
    pub account_ref: AccountReference,

    /// Name of the deployment in Azure; defaults to metadata.name. 2-64 characters, letters,
    /// digits, `_`, `.` and `-`, starting with a letter or digit. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 64),
        regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.azureName is immutable: create a new deployment resource for another Azure deployment"))]
    pub azure_name: Option<String>,

    /// The model to deploy. `format` and `name` are immutable; `version` may change.
    pub model: ModelSpec,

    /// The deployment's SKU and capacity. `name` is immutable; `capacity` may change.
    pub sku: DeploymentSku,

    /// Name of the responsible-AI (content filter) policy, e.g. `Microsoft.DefaultV2`. Left
    /// to Azure when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub rai_policy_name: Option<String>,

    /// When Azure moves the deployment to a newer model version by itself:
    /// `OnceNewDefaultVersionAvailable`, `OnceCurrentVersionExpired` or `NoAutoUpgrade`. Left
    /// to Azure when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade"]))]
    pub version_upgrade_option: Option<String>,

    /// Azure tags (at most 49). When set, they are managed as a whole. The operator adds its
    /// own tag `cognitive-operator-owner`, which this map may not set in any letter case (Azure
    /// tag names ignore case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 49))]
    #[x_kube(validation = Rule::new("self.all(k, k.lowerAscii() != 'cognitive-operator-owner')").message("spec.tags may not set cognitive-operator-owner, in any letter case: the operator sets that tag itself"))]
    pub tags: Option<BTreeMap<String, String>>,

    /// `Manage` (default: create and update the deployment), `Observe` (read only: report
    /// drift, never write) or `Pause` (make no ARM calls).
    #[serde(default)]
    pub reconcile_policy: ReconcilePolicy,

    /// What deleting this resource does to the deployment: `Delete` (default) or `Orphan`
    /// (leave it in Azure). Deleting the account deletes all its deployments first anyway.
    #[serde(default)]
    pub deletion_policy: DeploymentDeletionPolicy,

    /// What to do when a deployment with this name exists and was not created by this
    /// resource: `Never` (default: stop with reason AlreadyExists) or `Adopt`.
    #[serde(default)]
    pub adoption_policy: AdoptionPolicy,

    /// How often to check Azure for drift, e.g. `10m`, `1h`, `90s`. `0` disables periodic
    /// checks. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(ms|s|m|h))+)$"))]
    pub resync_interval: Option<String>,
}

/// A `CognitiveServicesAccount` in the same namespace (other namespaces cannot be named).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountReference {
    /// metadata.name of the `CognitiveServicesAccount`.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// The model of a deployment.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Model format, e.g. `OpenAI`. Immutable.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.model.format is immutable: Azure cannot change a deployment's model; create a new deployment resource"))]
    pub format: String,
    /// Model name, e.g. `gpt-4o`. Immutable.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.model.name is immutable: Azure cannot change a deployment's model; create a new deployment resource (and delete this one)"))]
    pub name: String,
    /// Model version, e.g. `2024-11-20`. When unset, Azure picks the model's default version
    /// and may upgrade it; neither is drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub version: Option<String>,
}

/// The SKU of a deployment.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSku {
    /// SKU name, e.g. `Standard`, `GlobalStandard`, `ProvisionedManaged`. Immutable.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.sku.name is immutable: Azure cannot change a deployment's SKU; create a new deployment resource"))]
    pub name: String,
    /// Capacity in the SKU's units (thousands of tokens per minute for Standard, PTUs for
    /// provisioned SKUs). When unset, Azure's default for the SKU, and never drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub capacity: Option<i32>,
}

/// `Delete` or `Orphan`: what deleting the resource does to the deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeploymentDeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

/// Observed state, in kstatus form: conditions `Ready`, `Reconciling` and `Stalled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CognitiveServicesDeploymentStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the deployment matches the spec), `Reconciling` (work in progress, or waiting
    /// for the account) and `Stalled` (cannot progress without a change by you).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// ARM id of the deployment, while this resource manages it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_id: Option<String>,
    /// The model version deployed (Azure may have chosen or upgraded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The SKU deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_name: Option<String>,
    /// The capacity deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
    /// The deployment's provisioningState in Azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The rate limits Azure derives from the capacity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
    /// A long-running ARM operation in flight, resumed by the next reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<PendingOperation>,
    /// Fields whose Azure value differs from the spec (in Observe mode, and while a write is pending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<FieldDrift>,
    /// The last ARM error, cleared when a reconcile succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
}

/// One rate limit of a deployment, as Azure reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// What is limited, e.g. `request` or `token`.
    pub key: String,
    /// The window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_period: Option<f64>,
    /// How many per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
}

impl CognitiveServicesDeploymentSpec {
    /// The name of the deployment in Azure.
    pub fn azure_name<'a>(&'a self, metadata_name: &'a str) -> &'a str {
        self.azure_name.as_deref().unwrap_or(metadata_name)
    }

    /// The drift-check period; `None` when periodic checks are off.
    pub fn resync(&self) -> Option<Duration> {
        resync_period(self.resync_interval.as_deref())
    }

    /// Whether `accountRef.name` can be an object's name, so that it may reach an API path
    /// (whatever else the spec says).
    pub fn names_an_account(&self) -> bool {
        valid_dns_subdomain(&self.account_ref.name)
    }

    /// Checks what the CRD schema checks, naming the first bad field.
    pub fn validate(&self, metadata_name: &str) -> Result<(), FieldError> {
        check_azure_name("deployment", self.azure_name.as_deref(), metadata_name)?;
        if !self.names_an_account() {
            return Err(field_error(
                "spec.accountRef.name",
                format!(
                    "{:?} is not the name of a CognitiveServicesAccount",
                    self.account_ref.name
                ),
            ));
        }
        for (field, value) in [
            ("spec.model.format", &self.model.format),
            ("spec.model.name", &self.model.name),
            ("spec.sku.name", &self.sku.name),
        ] {
            if value.trim().is_empty() {
                return Err(field_error(field, "is required"));
            }
        }
        if let Some(capacity) = self.sku.capacity
            && capacity < 1
        {
            return Err(field_error(
                "spec.sku.capacity",
                format!("{capacity} is not a capacity: at least 1"),
            ));
        }
        check_enum(
            "spec.versionUpgradeOption",
            self.version_upgrade_option.as_deref(),
            &[
                "OnceNewDefaultVersionAvailable",
                "OnceCurrentVersionExpired",
                "NoAutoUpgrade",
            ],
        )?;
        if let Some(tags) = &self.tags {
            check_tags(tags.len(), tags.keys().map(String::as_str))?;
        }
        check_resync_interval(self.resync_interval.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CognitiveServicesDeploymentSpec {
        crate::test_fixtures::gpt4o_deployment_spec()
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(spec().validate("chat"), Ok(()));
        assert_eq!(spec().validate("x").unwrap_err().field, "metadata.name");
        let mut s = spec();
        s.account_ref.name = "Docs_OpenAI".into();
        assert_eq!(
            s.validate("chat").unwrap_err().field,
            "spec.accountRef.name"
        );
        let mut s = spec();
        s.sku.capacity = Some(0);
        assert_eq!(s.validate("chat").unwrap_err().field, "spec.sku.capacity");
        let mut s = spec();
        s.version_upgrade_option = Some("Sometimes".into());
        let error = s.validate("chat").unwrap_err();
        assert_eq!(error.field, "spec.versionUpgradeOption");
        assert!(error.message.contains("NoAutoUpgrade"), "{error}");
        let mut s = spec();
        s.model.name = " ".into();
        assert_eq!(s.validate("chat").unwrap_err().field, "spec.model.name");
    }

    #[test]
    fn the_owner_tag_is_refused_in_any_letter_case() {
        for key in [crate::api::OWNER_TAG, "Cognitive-Operator-Owner"] {
            let mut s = spec();
            s.tags = Some(BTreeMap::from([(key.to_string(), "x".to_string())]));
            let error = s.validate("chat").unwrap_err();
            assert_eq!(error.field, "spec.tags", "{key}");
            assert!(error.message.contains(key), "{error}");
        }
    }
}
