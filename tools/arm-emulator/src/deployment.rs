//! The stored state of a deployment (an account's child resource) and the checks that turn a
//! client's PUT or PATCH into it: every rule the request itself can break is answered at once
//! with 400, before anything starts.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::billing::Meter;
use super::catalogue::{self, CatalogueModel, OPENAI_FORMAT, SkuRange};
use super::error::ArmError;
use super::model::{AccountKey, ProvisioningState, account_id, normalize_location, write_time};
use super::schema::{
    self, ApiShape, DEPLOYMENT, DEPLOYMENT_PATCH, DEPLOYMENT_PROPERTIES_SINCE_2025_06_01,
};
use super::tags;

pub(crate) const DEPLOYMENT_TYPE: &str = "Microsoft.CognitiveServices/accounts/deployments";

/// Server defaults of a deployment PUT (none for `raiPolicyName`: recorded Azure answers
/// without one when the PUT sets none).
pub(crate) const DEFAULT_VERSION_UPGRADE_OPTION: &str = "OnceNewDefaultVersionAvailable";
pub(crate) const NO_AUTO_UPGRADE: &str = "NoAutoUpgrade";
const DEFAULT_SKU: &str = "Standard";

/// A deployment in state maps: its account's key and its lowercased name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DeploymentKey {
    pub account: AccountKey,
    pub name: String,
}

impl DeploymentKey {
    pub(crate) fn new(account: AccountKey, name: &str) -> Self {
        Self {
            account,
            name: name.to_ascii_lowercase(),
        }
    }
}

/// What a quota is kept per: subscription, location, model name and SKU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct QuotaKey {
    pub subscription: String,
    pub location: String,
    pub model: &'static str,
    pub sku: &'static str,
}

impl QuotaKey {
    pub(crate) fn new(
        subscription: &str,
        location: &str,
        model: &'static str,
        sku: &'static str,
    ) -> Self {
        Self {
            subscription: subscription.to_ascii_lowercase(),
            location: normalize_location(location),
            model,
            sku,
        }
    }

    pub(crate) fn usage_name(&self) -> String {
        catalogue::usage_name(self.model, self.sku)
    }
}

/// The writable part of a deployment, resolved against the catalogue and the defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DeploymentSpec {
    pub model: &'static CatalogueModel,
    pub sku: &'static SkuRange,
    pub capacity: u32,
    pub tags: Map<String, Value>,
    pub rai_policy_name: Option<String>,
    pub version_upgrade_option: String,
    /// 2025-06-01's `spilloverDeploymentName`.
    pub spillover_deployment_name: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Deployment {
    pub subscription_id: String,
    pub resource_group: String,
    /// In the casing the account was created with.
    pub account_name: String,
    pub name: String,
    /// The account's location, normalized: where its quota is counted.
    pub location: String,
    pub spec: DeploymentSpec,
    pub provisioning_state: ProvisioningState,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub meter: Meter,
}

/// Where a new deployment goes: its account (ids in the account's casing) and name.
pub(crate) struct Placement<'a> {
    pub subscription_id: &'a str,
    pub resource_group: &'a str,
    pub account_name: &'a str,
    pub location: &'a str,
    pub name: &'a str,
}

impl Deployment {
    pub(crate) fn new(placement: &Placement, spec: DeploymentSpec, now: Timestamp) -> Self {
        let id = deployment_id(
            placement.subscription_id,
            placement.resource_group,
            placement.account_name,
            placement.name,
        );
        Self {
            subscription_id: placement.subscription_id.to_string(),
            resource_group: placement.resource_group.to_string(),
            account_name: placement.account_name.to_string(),
            name: placement.name.to_string(),
            location: normalize_location(placement.location),
            meter: Meter::start(id, spec.sku.name, spec.capacity, now),
            spec,
            provisioning_state: ProvisioningState::Creating,
            created_at: now,
            modified_at: now,
        }
    }

    pub(crate) fn key(&self) -> DeploymentKey {
        DeploymentKey::new(
            AccountKey::new(
                &self.subscription_id,
                &self.resource_group,
                &self.account_name,
            ),
            &self.name,
        )
    }

    pub(crate) fn arm_id(&self) -> String {
        deployment_id(
            &self.subscription_id,
            &self.resource_group,
            &self.account_name,
            &self.name,
        )
    }

    pub(crate) fn quota_key(&self) -> QuotaKey {
        QuotaKey::new(
            &self.subscription_id,
            &self.location,
            self.spec.model.name,
            self.spec.sku.name,
        )
    }

    /// Replaces the writable part, records the write and meters the new capacity from `now`.
    pub(crate) fn set_spec(&mut self, spec: DeploymentSpec, now: Timestamp) {
        self.meter.set_capacity(spec.capacity, now);
        self.spec = spec;
        self.touch(now);
    }

    pub(crate) fn touch(&mut self, now: Timestamp) {
        self.modified_at = write_time(self.modified_at, now);
    }
}

pub(crate) fn deployment_id(
    subscription_id: &str,
    resource_group: &str,
    account_name: &str,
    name: &str,
) -> String {
    format!(
        "{}/deployments/{name}",
        account_id(subscription_id, resource_group, account_name)
    )
}

/// Only these account kinds can hold OpenAI model deployments.
pub(crate) fn kind_deploys_models(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("OpenAI") || kind.eq_ignore_ascii_case("AIServices")
}

/// A deployment PUT body, sanitized.
#[derive(Debug)]
pub(crate) struct DeploymentRequest {
    sku_name: Option<String>,
    capacity: Option<i64>,
    tags: Map<String, Value>,
    format: String,
    model_name: String,
    version: Option<String>,
    rai_policy_name: Option<String>,
    version_upgrade_option: Option<String>,
    spillover_deployment_name: Option<String>,
    /// Whether the request was read in 2025-06-01's shapes (an older one cannot say
    /// `spilloverDeploymentName`, so a PUT in it keeps the current one).
    knows_spillover: bool,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// A JSON integer as i64; beyond i64's range it counts as out of any capacity range.
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX))
}

fn tags_of(body: &Value) -> Result<Option<Map<String, Value>>, ArmError> {
    let tags = body.get("tags").and_then(Value::as_object).cloned();
    if let Some(tags) = &tags {
        tags::check_distinct_names(tags)?;
    }
    Ok(tags)
}

impl DeploymentRequest {
    pub(crate) fn parse(body: &[u8], shape: ApiShape) -> Result<Self, ArmError> {
        Self::from_value(&schema::parse_object(body)?, shape)
    }

    pub(crate) fn from_value(sent: &Value, shape: ApiShape) -> Result<Self, ArmError> {
        let mut body = schema::sanitize(sent, &DEPLOYMENT, "")?;
        schema::strip_nulls(&mut body);
        let knows_spillover = shape.has_2025_06_01_properties();
        let mut added = match &sent["properties"] {
            properties @ Value::Object(_) if knows_spillover => schema::sanitize(
                properties,
                &DEPLOYMENT_PROPERTIES_SINCE_2025_06_01,
                "properties",
            )?,
            _ => Value::Null,
        };
        schema::strip_nulls(&mut added);
        let model = &body["properties"]["model"];
        Ok(Self {
            spillover_deployment_name: text(&added["spilloverDeploymentName"]),
            knows_spillover,
            sku_name: text(&body["sku"]["name"]),
            capacity: integer(&body["sku"]["capacity"]),
            tags: tags_of(&body)?.unwrap_or_default(),
            format: text(&model["format"]).unwrap_or_default(),
            model_name: text(&model["name"]).unwrap_or_default(),
            version: text(&model["version"]),
            rai_policy_name: text(&body["properties"]["raiPolicyName"]),
            version_upgrade_option: text(&body["properties"]["versionUpgradeOption"]),
        })
    }

    /// The spec this PUT describes. Defaults fill what a create leaves out; over an existing
    /// deployment an absent SKU, capacity or model version keeps the current one (a default there
    /// would silently scale or upgrade a live deployment).
    pub(crate) fn resolve(
        self,
        current: Option<&DeploymentSpec>,
        location: &str,
    ) -> Result<DeploymentSpec, ArmError> {
        if let Some(current) = current {
            check_same_model(current, &self.format, &self.model_name)?;
        }
        let version = self.version.as_deref().or_else(|| {
            current
                .filter(|current| current.model.name.eq_ignore_ascii_case(&self.model_name))
                .map(|current| current.model.version)
        });
        let model = catalogue::find(&self.format, &self.model_name, version).ok_or_else(|| {
            ArmError::model_not_supported(&self.format, &self.model_name, version, location)
        })?;
        let sku_name = self
            .sku_name
            .as_deref()
            .or(current.map(|current| current.sku.name))
            .unwrap_or(DEFAULT_SKU);
        let sku = resolve_sku(model, sku_name, current)?;
        let capacity = self
            .capacity
            .or(current.map(|current| i64::from(current.capacity)))
            .unwrap_or(i64::from(sku.default));
        let capacity = check_capacity(sku, capacity)?;
        if let Some(current) = current {
            check_one_change(current, model, capacity)?;
        }
        Ok(DeploymentSpec {
            model,
            sku,
            capacity,
            tags: match current {
                Some(current) => tags::keep_stored_casing(self.tags, &current.tags),
                None => self.tags,
            },
            rai_policy_name: self.rai_policy_name,
            version_upgrade_option: self
                .version_upgrade_option
                .unwrap_or_else(|| DEFAULT_VERSION_UPGRADE_OPTION.to_string()),
            spillover_deployment_name: match current {
                Some(current) if !self.knows_spillover => current.spillover_deployment_name.clone(),
                _ => self.spillover_deployment_name,
            },
        })
    }
}

/// A deployment PATCH body: SKU capacity and tags only.
#[derive(Debug)]
pub(crate) struct DeploymentPatch {
    sku_name: Option<String>,
    capacity: Option<i64>,
    tags: Option<Map<String, Value>>,
}

impl DeploymentPatch {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ArmError> {
        let body = schema::parse_object(body)?;
        if let Some(other) = body.as_object().and_then(|object| {
            object
                .keys()
                .find(|key| !matches!(key.as_str(), "sku" | "tags"))
        }) {
            return Err(ArmError::InvalidResourceProperties {
                message: format!(
                    "The property '{other}' cannot be updated with PATCH: a deployment PATCH changes only 'sku' and 'tags'. Use PUT to change the other properties."
                ),
                target: other.clone(),
            });
        }
        let mut body = schema::sanitize(&body, &DEPLOYMENT_PATCH, "")?;
        schema::strip_nulls(&mut body);
        Ok(Self {
            sku_name: text(&body["sku"]["name"]),
            capacity: integer(&body["sku"]["capacity"]),
            tags: tags_of(&body)?,
        })
    }

    /// `current` with this PATCH applied: tags replaced when present, capacity when present.
    pub(crate) fn merge_into(self, current: &DeploymentSpec) -> Result<DeploymentSpec, ArmError> {
        let sku_name = self.sku_name.as_deref().unwrap_or(current.sku.name);
        let sku = resolve_sku(current.model, sku_name, Some(current))?;
        let capacity = check_capacity(sku, self.capacity.unwrap_or(i64::from(current.capacity)))?;
        let mut spec = current.clone();
        spec.capacity = capacity;
        if let Some(tags) = self.tags {
            spec.tags = tags::keep_stored_casing(tags, &current.tags);
        }
        Ok(spec)
    }
}

/// The model name and format of a deployment are fixed once it exists.
fn check_same_model(current: &DeploymentSpec, format: &str, name: &str) -> Result<(), ArmError> {
    if current.model.name.eq_ignore_ascii_case(name) && OPENAI_FORMAT.eq_ignore_ascii_case(format) {
        return Ok(());
    }
    Err(ArmError::InvalidResourceProperties {
        message: format!(
            "The model of a deployment cannot change: it deploys '{OPENAI_FORMAT}/{}', the request asks for '{format}/{name}'. The model name and format cannot change; delete the deployment and create a new one.",
            current.model.name
        ),
        target: "properties.model.name".to_string(),
    })
}

/// The SKU the request names, if the model allows it and it is the deployment's current one.
fn resolve_sku(
    model: &'static CatalogueModel,
    name: &str,
    current: Option<&DeploymentSpec>,
) -> Result<&'static SkuRange, ArmError> {
    if let Some(current) = current
        && !current.sku.name.eq_ignore_ascii_case(name)
    {
        return Err(ArmError::InvalidResourceProperties {
            message: format!(
                "The SKU of a deployment cannot change from '{}' to '{name}'. Create a new deployment with the SKU '{name}'.",
                current.sku.name
            ),
            target: "sku.name".to_string(),
        });
    }
    model.sku(name).ok_or_else(|| {
        let allowed: Vec<&str> = model.skus().iter().map(|sku| sku.name).collect();
        ArmError::InvalidResourceProperties {
            message: format!(
                "The SKU '{name}' is not supported by the model '{}' version '{}'. Supported SKUs: {}.",
                model.name,
                model.version,
                allowed.join(", ")
            ),
            target: "sku.name".to_string(),
        }
    })
}

fn check_capacity(sku: &SkuRange, capacity: i64) -> Result<u32, ArmError> {
    match u32::try_from(capacity) {
        Ok(valid) if sku.allows(capacity) => Ok(valid),
        _ => Err(ArmError::InvalidResourceProperties {
            message: format!(
                "The capacity {capacity} is out of the range of the SKU '{}': it must be from {} to {}.",
                sku.name, sku.minimum, sku.maximum
            ),
            target: "sku.capacity".to_string(),
        }),
    }
}

/// Azure scales and upgrades a deployment in separate operations, never both in one request.
fn check_one_change(
    current: &DeploymentSpec,
    model: &CatalogueModel,
    capacity: u32,
) -> Result<(), ArmError> {
    if current.capacity != capacity && current.model.version != model.version {
        return Err(ArmError::InvalidResourceProperties {
            message: format!(
                "The capacity and model version cannot change in one request: capacity {} to {capacity} and version '{}' to '{}'. Change one, wait for it to succeed, then the other.",
                current.capacity, current.model.version, model.version
            ),
            target: "sku.capacity".to_string(),
        });
    }
    Ok(())
}

/// A deprecated version can be kept, not chosen: a create or a version change to it is refused.
pub(crate) fn check_not_deprecated(
    spec: &DeploymentSpec,
    current: Option<&DeploymentSpec>,
) -> Result<(), ArmError> {
    let unchanged = current.is_some_and(|current| current.model.version == spec.model.version);
    if spec.model.is_deprecated() && !unchanged {
        return Err(ArmError::ServiceModelDeprecated {
            name: spec.model.name.to_string(),
            version: spec.model.version.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> DeploymentRequest {
        DeploymentRequest::from_value(&body, ApiShape::V2024_10_01).unwrap()
    }

    fn gpt4o(version: Option<&str>) -> Value {
        let mut model = json!({"format": "OpenAI", "name": "gpt-4o"});
        if let Some(version) = version {
            model["version"] = json!(version);
        }
        json!({"properties": {"model": model}})
    }

    #[test]
    fn a_create_gets_the_server_defaults() {
        let spec = request(gpt4o(None)).resolve(None, "westus").unwrap();
        assert_eq!(spec.model.version, "2024-11-20");
        assert_eq!(spec.sku.name, "Standard");
        assert_eq!(spec.capacity, 1);
        assert_eq!(spec.rai_policy_name, None);
        assert_eq!(spec.version_upgrade_option, DEFAULT_VERSION_UPGRADE_OPTION);
    }

    #[test]
    fn an_update_keeps_what_it_leaves_out() {
        let mut body = gpt4o(Some("2024-08-06"));
        body["sku"] = json!({"name": "globalstandard", "capacity": 40});
        let current = request(body).resolve(None, "westus").unwrap();
        assert_eq!(current.sku.name, "GlobalStandard");
        let updated = request(gpt4o(None))
            .resolve(Some(&current), "westus")
            .unwrap();
        assert_eq!(updated.model.version, "2024-08-06");
        assert_eq!((updated.sku.name, updated.capacity), ("GlobalStandard", 40));
    }

    #[test]
    fn a_put_in_2024_10_01_shapes_keeps_the_spillover_it_cannot_name() {
        let mut body = gpt4o(None);
        body["properties"]["spilloverDeploymentName"] = json!("backup");
        let newer = DeploymentRequest::from_value(&body, ApiShape::V2025_06_01).unwrap();
        let current = newer.resolve(None, "westus").unwrap();
        assert_eq!(current.spillover_deployment_name.as_deref(), Some("backup"));
        let older = request(gpt4o(None))
            .resolve(Some(&current), "westus")
            .unwrap();
        assert_eq!(older.spillover_deployment_name.as_deref(), Some("backup"));
        let cleared = DeploymentRequest::from_value(&gpt4o(None), ApiShape::V2025_06_01)
            .unwrap()
            .resolve(Some(&current), "westus")
            .unwrap();
        assert_eq!(cleared.spillover_deployment_name, None);
    }

    #[test]
    fn capacity_outside_the_range_names_the_field() {
        let mut body = gpt4o(None);
        body["sku"] = json!({"name": "ProvisionedManaged", "capacity": 5});
        let error = request(body).resolve(None, "westus").unwrap_err();
        assert_eq!(error.target(), Some("sku.capacity"));
    }

    #[test]
    fn a_patch_of_anything_but_sku_and_tags_is_refused() {
        let error = DeploymentPatch::parse(br#"{"properties": {}}"#).unwrap_err();
        assert_eq!(error.target(), Some("properties"));
    }
}
