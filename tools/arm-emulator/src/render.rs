//! Account and deployment bodies, model and usage lists as the 2024-10-01 API answers them (and
//! 2025-06-01, with its additions), read-only fields filled the way Azure fills them.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::catalogue::{self, CatalogueModel, OPENAI_FORMAT, SkuRange};
use super::deployment::{DEPLOYMENT_TYPE, Deployment, QuotaKey};
use super::error::CALLER_OBJECT_ID;
use super::kinds::{self, is_openai};
use super::model::{Account, DeletedAccount};
use super::schema::{ACCOUNT_PROPERTIES_SINCE_2025_06_01, ApiShape, field_names};

/// Tenant of every managed identity the emulator hands out.
pub(crate) const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

pub(crate) const ACCOUNT_TYPE: &str = "Microsoft.CognitiveServices/accounts";

pub(crate) fn account(account: &Account, shape: ApiShape) -> Value {
    account_body(account, account.arm_id(), None, shape)
}

pub(crate) fn deleted_account(deleted: &DeletedAccount, shape: ApiShape) -> Value {
    account_body(
        &deleted.account,
        deleted.account.deleted_id(),
        Some(deleted),
        shape,
    )
}

fn account_body(
    account: &Account,
    id: String,
    deleted: Option<&DeletedAccount>,
    shape: ApiShape,
) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), Value::String(id));
    body.insert("name".into(), json!(account.name));
    body.insert("type".into(), json!(ACCOUNT_TYPE));
    body.insert("location".into(), json!(account.location));
    body.insert("kind".into(), json!(account.spec.kind));
    body.insert("sku".into(), account.spec.sku.clone());
    // Recorded Azure has no `tags` key on an account no request gave tags.
    if let Some(tags) = &account.spec.tags {
        body.insert("tags".into(), Value::Object(tags.clone()));
    }
    if let Some(identity) = identity(account) {
        body.insert("identity".into(), identity);
    }
    body.insert("etag".into(), Value::String(etag(account.modified_at)));
    body.insert(
        "systemData".into(),
        system_data(account.created_at, account.modified_at),
    );
    body.insert(
        "properties".into(),
        Value::Object(properties(account, deleted, shape)),
    );
    Value::Object(body)
}

fn properties(
    account: &Account,
    deleted: Option<&DeletedAccount>,
    shape: ApiShape,
) -> Map<String, Value> {
    let mut properties = account.spec.properties.clone();
    if shape.has_2025_06_01_properties() {
        properties
            .entry("allowProjectManagement")
            .or_insert(json!(false));
    } else {
        for name in field_names(&ACCOUNT_PROPERTIES_SINCE_2025_06_01) {
            properties.remove(name);
        }
    }
    let kind = &account.spec.kind;
    let endpoint = kinds::endpoint(account);
    properties.insert("endpoints".into(), kinds::endpoints(account, &endpoint));
    properties.insert("endpoint".into(), json!(endpoint));
    properties.insert("internalId".into(), json!(account.internal_id));
    properties.insert("dateCreated".into(), json!(timestamp(account.created_at)));
    properties
        .entry("apiProperties")
        .or_insert_with(|| json!({}));
    properties.insert("callRateLimit".into(), kinds::call_rate_limit(kind));
    properties.insert("privateEndpointConnections".into(), json!([]));
    properties.insert(
        "provisioningState".into(),
        json!(account.provisioning_state.as_str()),
    );
    properties.insert("capabilities".into(), kinds::capabilities(kind));
    properties.insert("isMigrated".into(), json!(false));
    if let Some(deleted) = deleted {
        properties.insert("deletionDate".into(), json!(timestamp(deleted.deleted_at)));
        properties.insert(
            "scheduledPurgeDate".into(),
            json!(timestamp(deleted.purge_at)),
        );
    }
    properties
}

fn identity(account: &Account) -> Option<Value> {
    let requested = account.spec.identity.as_ref()?;
    let mut identity = Map::new();
    let kind = requested["type"].as_str().unwrap_or("None");
    identity.insert("type".into(), json!(kind));
    if let Some(principal_id) = &account.identity_ids.system_principal_id {
        identity.insert("principalId".into(), json!(principal_id));
        identity.insert("tenantId".into(), json!(TENANT_ID));
    }
    if let Some(entries) = requested["userAssignedIdentities"].as_object()
        && !account.identity_ids.user_assigned.is_empty()
    {
        let mut user_assigned = Map::new();
        for resource_id in entries.keys() {
            if let Some((principal_id, client_id)) = account
                .identity_ids
                .user_assigned
                .get(&resource_id.to_ascii_lowercase())
            {
                user_assigned.insert(
                    resource_id.clone(),
                    json!({"principalId": principal_id, "clientId": client_id}),
                );
            }
        }
        identity.insert(
            "userAssignedIdentities".into(),
            Value::Object(user_assigned),
        );
    }
    Some(Value::Object(identity))
}

fn system_data(created_at: Timestamp, modified_at: Timestamp) -> Value {
    json!({
        "createdBy": CALLER_OBJECT_ID,
        "createdByType": "Application",
        "createdAt": timestamp(created_at),
        "lastModifiedBy": CALLER_OBJECT_ID,
        "lastModifiedByType": "Application",
        "lastModifiedAt": timestamp(modified_at),
    })
}

/// `W/"datetime'2017-04-10T08%3A00%3A05.4455950Z'"`, the weak etag Azure derives from the write time.
pub(crate) fn etag(modified_at: Timestamp) -> String {
    let text = modified_at.strftime("%Y-%m-%dT%H:%M:%S.%7fZ").to_string();
    format!("W/\"datetime'{}'\"", text.replace(':', "%3A"))
}

/// RFC 3339 in UTC with 7 fractional digits, as Azure writes dates.
pub(crate) fn timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S.%7fZ").to_string()
}

/// SKUs an account of `kind` can move to.
pub(crate) fn account_skus(kind: &str) -> Value {
    let skus: &[(&str, &str)] = if is_openai(kind) || kind.eq_ignore_ascii_case("AIServices") {
        &[("S0", "Standard")]
    } else {
        &[("F0", "Free"), ("S0", "Standard")]
    };
    let value: Vec<Value> = skus
        .iter()
        .map(|(name, tier)| json!({"resourceType": ACCOUNT_TYPE, "sku": {"name": name, "tier": tier}}))
        .collect();
    json!({ "value": value })
}

pub(crate) fn deployment(deployment: &Deployment, shape: ApiShape) -> Value {
    let spec = &deployment.spec;
    let mut properties = json!({
        "model": {
            "format": OPENAI_FORMAT,
            "name": spec.model.name,
            "version": spec.model.version,
            // Recorded Azure names OpenAI as the publisher of its models.
            "publisher": OPENAI_FORMAT,
        },
        "provisioningState": deployment.provisioning_state.as_str(),
        "versionUpgradeOption": spec.version_upgrade_option,
        "capabilities": capability_map(spec.model),
        "rateLimits": rate_limits(spec.capacity),
        "currentCapacity": spec.capacity,
    });
    if let Some(policy) = &spec.rai_policy_name {
        properties["raiPolicyName"] = json!(policy);
    }
    if let Some(spillover) = &spec.spillover_deployment_name
        && shape.has_2025_06_01_properties()
    {
        properties["spilloverDeploymentName"] = json!(spillover);
    }
    let mut body = json!({
        "id": deployment.arm_id(),
        "name": deployment.name,
        "type": DEPLOYMENT_TYPE,
        "sku": {"name": spec.sku.name, "capacity": spec.capacity},
        "etag": etag(deployment.modified_at),
        "systemData": system_data(deployment.created_at, deployment.modified_at),
        "properties": properties,
    });
    if !spec.tags.is_empty() {
        body["tags"] = json!(spec.tags);
    }
    body
}

/// Emulator formula (Azure's differs per model and SKU): each unit of capacity allows one
/// request per 10 seconds and 1,000 tokens per minute.
fn rate_limits(capacity: u32) -> Value {
    json!([
        {"key": "request", "renewalPeriod": 10, "count": capacity},
        {"key": "token", "renewalPeriod": 60, "count": u64::from(capacity) * 1000},
    ])
}

fn capability_map(model: &CatalogueModel) -> Value {
    let capabilities: Map<String, Value> = model
        .capabilities()
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    Value::Object(capabilities)
}

fn capacity_config(sku: &SkuRange) -> Value {
    json!({"minimum": sku.minimum, "maximum": sku.maximum, "step": 1, "default": sku.default})
}

/// One `SkuResource` of a deployment's SKU list.
pub(crate) fn deployment_sku(sku: &SkuRange) -> Value {
    json!({"resourceType": DEPLOYMENT_TYPE, "sku": {"name": sku.name}, "capacity": capacity_config(sku)})
}

/// An `AccountModel`: one version of a catalogue model.
pub(crate) fn account_model(model: &CatalogueModel) -> Value {
    let skus: Vec<Value> = model
        .skus()
        .iter()
        .map(|sku| {
            json!({
                "name": sku.name,
                "usageName": catalogue::usage_name(model.name, sku.name),
                "capacity": capacity_config(sku),
            })
        })
        .collect();
    let mut body = json!({
        "format": OPENAI_FORMAT,
        "name": model.name,
        "version": model.version,
        "isDefaultVersion": model.is_default_version,
        "skus": skus,
        "maxCapacity": model.skus().iter().map(|sku| sku.maximum).max().unwrap_or(0),
        "capabilities": capability_map(model),
        "lifecycleStatus": model.lifecycle_status,
    });
    if let Some(inference) = model.deprecation {
        body["deprecation"] = json!({"inference": inference});
    }
    body
}

/// A `Model` of the location's models list: the account model for accounts of kind OpenAI.
pub(crate) fn location_model(model: &CatalogueModel) -> Value {
    json!({"kind": "OpenAI", "skuName": "S0", "model": account_model(model)})
}

/// A `Usage` of the location's usages list.
pub(crate) fn usage(key: &QuotaKey, used: u64, limit: u32) -> Value {
    json!({
        "name": {
            "value": key.usage_name(),
            "localizedValue": catalogue::usage_display_name(key.model, key.sku),
        },
        "unit": "Count",
        "currentValue": used,
        "limit": limit,
    })
}
