//! The stored state of an account: what the client set (its [`Spec`]) plus what the service adds.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::error::ArmError;
use super::schema::{self, ACCOUNT, ACCOUNT_PROPERTIES_SINCE_2025_06_01, ApiShape, strip_nulls};
use super::tags;

/// Identity of an account in state maps: subscription, resource group and name, lowercased
/// because ARM names are case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct AccountKey {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl AccountKey {
    pub(crate) fn new(subscription: &str, resource_group: &str, name: &str) -> Self {
        Self {
            subscription: subscription.to_ascii_lowercase(),
            resource_group: resource_group.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProvisioningState {
    Accepted,
    Creating,
    Deleting,
    Failed,
    Succeeded,
}

impl ProvisioningState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::Creating => "Creating",
            Self::Deleting => "Deleting",
            Self::Failed => "Failed",
            Self::Succeeded => "Succeeded",
        }
    }
}

/// The writable part of an account, as sanitized from the client's requests.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spec {
    pub kind: String,
    pub sku: Value,
    /// `None` when no request set tags: Azure then answers without a `tags` key (recorded),
    /// and with `{}` once a client sent `{}` (the contract's examples show both).
    pub tags: Option<Map<String, Value>>,
    pub identity: Option<Value>,
    pub properties: Map<String, Value>,
}

impl Spec {
    pub(crate) fn custom_subdomain(&self) -> Option<&str> {
        self.properties
            .get("customSubDomainName")
            .and_then(Value::as_str)
    }

    /// `tags` with the names this spec stores in its casing (see [`tags::keep_stored_casing`]).
    pub(crate) fn keep_tag_casing(&self, tags: Map<String, Value>) -> Map<String, Value> {
        match &self.tags {
            Some(stored) => tags::keep_stored_casing(tags, stored),
            None => tags,
        }
    }

    /// Equal apart from tags: such a change is applied synchronously.
    pub(crate) fn same_except_tags(&self, other: &Spec) -> bool {
        self.kind == other.kind
            && self.sku == other.sku
            && self.identity == other.identity
            && self.properties == other.properties
    }

    /// Fills the defaults Azure applies to what the client left out.
    pub(crate) fn apply_server_defaults(&mut self) {
        self.properties
            .entry("publicNetworkAccess")
            .or_insert_with(|| Value::String("Enabled".to_string()));
        if let Some(Value::Object(encryption)) = self.properties.get_mut("encryption") {
            encryption
                .entry("keySource")
                .or_insert_with(|| Value::String("Microsoft.KeyVault".to_string()));
        }
    }
}

/// Service-generated ids of the managed identities an account has.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct IdentityIds {
    pub system_principal_id: Option<String>,
    /// Keyed by the lowercased user-assigned identity resource id: (principalId, clientId).
    pub user_assigned: BTreeMap<String, (String, String)>,
}

impl IdentityIds {
    /// Keeps ids of identities that stay, generates ids for new ones and forgets removed ones.
    pub(crate) fn refresh(&mut self, identity: Option<&Value>) {
        let kind = identity
            .and_then(|identity| identity["type"].as_str())
            .unwrap_or("None");
        if kind.contains("SystemAssigned") {
            self.system_principal_id.get_or_insert_with(new_uuid);
        } else {
            self.system_principal_id = None;
        }
        let wanted: Vec<String> =
            match identity.and_then(|identity| identity["userAssignedIdentities"].as_object()) {
                Some(entries) if kind.contains("UserAssigned") => {
                    entries.keys().map(|key| key.to_ascii_lowercase()).collect()
                }
                _ => Vec::new(),
            };
        self.user_assigned.retain(|key, _| wanted.contains(key));
        for key in wanted {
            self.user_assigned
                .entry(key)
                .or_insert_with(|| (new_uuid(), new_uuid()));
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub spec: Spec,
    pub identity_ids: IdentityIds,
    pub internal_id: String,
    pub keys: [String; 2],
    pub provisioning_state: ProvisioningState,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
}

impl Account {
    pub(crate) fn new(
        subscription_id: &str,
        resource_group: &str,
        name: &str,
        location: &str,
        spec: Spec,
        now: Timestamp,
    ) -> Self {
        let mut account = Self {
            subscription_id: subscription_id.to_string(),
            resource_group: resource_group.to_string(),
            name: name.to_string(),
            location: location.to_string(),
            spec,
            identity_ids: IdentityIds::default(),
            internal_id: uuid::Uuid::new_v4().simple().to_string(),
            keys: [new_key(), new_key()],
            provisioning_state: ProvisioningState::Creating,
            created_at: now,
            modified_at: now,
        };
        account.identity_ids.refresh(account.spec.identity.as_ref());
        account
    }

    pub(crate) fn key(&self) -> AccountKey {
        AccountKey::new(&self.subscription_id, &self.resource_group, &self.name)
    }

    pub(crate) fn arm_id(&self) -> String {
        account_id(&self.subscription_id, &self.resource_group, &self.name)
    }

    /// The ARM id of the soft-deleted copy.
    pub(crate) fn deleted_id(&self) -> String {
        format!(
            "/subscriptions/{}/providers/Microsoft.CognitiveServices/locations/{}/resourceGroups/{}/deletedAccounts/{}",
            self.subscription_id,
            normalize_location(&self.location),
            self.resource_group,
            self.name
        )
    }

    /// Replaces the writable part and records the write (new etag, lastModified).
    pub(crate) fn set_spec(&mut self, spec: Spec, now: Timestamp) {
        self.spec = spec;
        self.identity_ids.refresh(self.spec.identity.as_ref());
        self.touch(now);
    }

    /// Moves `modified_at` (the etag's source) strictly forward, so every write changes the etag.
    pub(crate) fn touch(&mut self, now: Timestamp) {
        self.modified_at = write_time(self.modified_at, now);
    }

    pub(crate) fn regenerate_key(&mut self, index: usize) {
        self.keys[index] = new_key();
    }
}

/// An account in the soft-deleted state.
#[derive(Clone, Debug)]
pub(crate) struct DeletedAccount {
    pub account: Account,
    pub deleted_at: Timestamp,
    pub purge_at: Timestamp,
}

/// When a write at `now` happened, strictly after the previous one at `previous` (so the etag,
/// derived from it, changes even when two writes share a clock tick).
pub(crate) fn write_time(previous: Timestamp, now: Timestamp) -> Timestamp {
    let floor = previous + jiff::SignedDuration::from_nanos(100);
    if now >= floor { now } else { floor }
}

pub(crate) fn account_id(subscription_id: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

/// "West US" → "westus", the form locations take in URLs and ids.
pub(crate) fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn same_location(a: &str, b: &str) -> bool {
    normalize_location(a) == normalize_location(b)
}

pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Azure's current key format: 84 alphanumeric characters.
fn new_key() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(84)
        .collect()
}

/// Account name rule of the contract: 2–64 characters, `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`.
pub(crate) fn is_valid_account_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(allowed)
}

/// Custom subdomain rule (a DNS label): 2–64 letters, digits or '-', not starting or ending with '-'.
pub(crate) fn is_valid_subdomain(subdomain: &str) -> bool {
    (2..=64).contains(&subdomain.len())
        && subdomain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !subdomain.starts_with('-')
        && !subdomain.ends_with('-')
}

/// The fields of an account request body, sanitized.
#[derive(Debug, Default)]
pub(crate) struct AccountRequest {
    pub location: Option<String>,
    pub kind: Option<String>,
    pub sku: Option<Value>,
    /// `Some(None)`: the client sent `"tags": null`.
    pub tags: Option<Option<Map<String, Value>>>,
    pub identity: Option<Value>,
    /// Writable properties, `null` meaning "remove" (PATCH).
    pub properties: Map<String, Value>,
    pub restore: bool,
}

impl AccountRequest {
    /// Reads a PUT or PATCH body in the shapes of `shape`'s api-version (properties of later
    /// versions are dropped, as unknown ones are).
    pub(crate) fn parse(body: &[u8], shape: ApiShape) -> Result<Self, ArmError> {
        let body = schema::parse_object(body)?;
        let Value::Object(mut kept) = schema::sanitize(&body, &ACCOUNT, "")? else {
            unreachable!("an object shape sanitizes to an object");
        };
        if shape.has_2025_06_01_properties()
            && let (Some(Value::Object(properties)), Some(sent)) =
                (kept.get_mut("properties"), body.get("properties"))
        {
            let shape = &ACCOUNT_PROPERTIES_SINCE_2025_06_01;
            if let Value::Object(added) = schema::sanitize(sent, shape, "properties")? {
                properties.extend(added);
            }
        }
        let mut take = |key: &str| kept.remove(key).filter(|value| !value.is_null());
        let location = take("location").and_then(|value| value.as_str().map(str::to_string));
        let kind = take("kind").and_then(|value| value.as_str().map(str::to_string));
        let sku = take("sku").map(stripped);
        let identity = take("identity").map(stripped);
        let mut properties = match take("properties") {
            Some(Value::Object(properties)) => properties,
            _ => Map::new(),
        };
        let restore = properties
            .remove("restore")
            .and_then(|value| value.as_bool())
            .unwrap_or(false);
        properties.values_mut().for_each(strip_nulls_below_top);
        let tags = kept.remove("tags").map(|tags| match tags {
            Value::Object(tags) => Some(tags),
            _ => None,
        });
        if let Some(Some(tags)) = &tags {
            tags::check_distinct_names(tags)?;
        }
        Ok(Self {
            location,
            kind,
            sku,
            tags,
            identity,
            properties,
            restore,
        })
    }

    /// Checks the properties a PUT must carry.
    pub(crate) fn require(&self, restore: bool) -> Result<(), ArmError> {
        let missing = |field: &str| {
            ArmError::bad_request(format!("The '{field}' property is required."), field)
        };
        if self.location.as_deref().is_none_or(str::is_empty) {
            return Err(missing("location"));
        }
        if restore {
            return Ok(());
        }
        if self.kind.as_deref().is_none_or(str::is_empty) {
            return Err(missing("kind"));
        }
        if self.sku.is_none() {
            return Err(missing("sku"));
        }
        Ok(())
    }

    /// The spec a PUT describes (a full replacement of the writable part).
    pub(crate) fn into_spec(self) -> Spec {
        let mut properties = self.properties;
        properties.retain(|_, value| !value.is_null());
        let mut spec = Spec {
            kind: self.kind.unwrap_or_default(),
            sku: self.sku.unwrap_or(Value::Null),
            tags: self.tags.flatten(),
            identity: self.identity,
            properties,
        };
        spec.apply_server_defaults();
        spec
    }

    /// `current` with this PATCH merged in: tags, sku and identity replaced when present,
    /// properties replaced key by key (`null` removes a key).
    pub(crate) fn merge_into(self, current: &Spec) -> Spec {
        let mut spec = current.clone();
        if let Some(kind) = self.kind {
            spec.kind = kind;
        }
        if let Some(sku) = self.sku {
            spec.sku = sku;
        }
        if let Some(tags) = self.tags {
            spec.tags = tags.map(|tags| current.keep_tag_casing(tags));
        }
        if let Some(identity) = self.identity {
            spec.identity = Some(identity);
        }
        for (key, value) in self.properties {
            if value.is_null() {
                spec.properties.remove(&key);
            } else {
                spec.properties.insert(key, value);
            }
        }
        spec.apply_server_defaults();
        spec
    }
}

fn stripped(mut value: Value) -> Value {
    strip_nulls(&mut value);
    value
}

/// Nulls inside a property value mean nothing; only a top-level `null` (removal) is kept.
fn strip_nulls_below_top(value: &mut Value) {
    if !value.is_null() {
        strip_nulls(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_follow_the_contract_pattern() {
        assert!(is_valid_account_name("ab"));
        assert!(is_valid_account_name("a.b_c-d"));
        assert!(!is_valid_account_name("a"));
        assert!(!is_valid_account_name("-ab"));
        assert!(!is_valid_account_name("a b"));
        assert!(!is_valid_account_name(&"a".repeat(65)));
    }

    #[test]
    fn locations_normalize_like_azure() {
        assert_eq!(normalize_location("West US 2"), "westus2");
        assert!(same_location("West US", "westus"));
    }

    #[test]
    fn properties_of_2025_06_01_are_read_only_at_that_version() {
        let body = br#"{"properties": {"allowProjectManagement": true, "defaultProject": "p"}}"#;
        let old = AccountRequest::parse(body, ApiShape::V2024_10_01).unwrap();
        assert!(old.properties.is_empty());
        let new = AccountRequest::parse(body, ApiShape::V2025_06_01).unwrap();
        assert_eq!(new.properties["allowProjectManagement"], true);
        assert_eq!(new.properties["defaultProject"], "p");
    }

    #[test]
    fn etag_source_always_moves_forward() {
        let now = Timestamp::now();
        let spec = AccountRequest::default().into_spec();
        let mut account = Account::new("s", "rg", "name", "westus", spec, now);
        account.touch(now);
        assert!(account.modified_at > now);
    }
}
