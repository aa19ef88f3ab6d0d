//! Typed models of the 2024-10-01 `Microsoft.CognitiveServices/accounts` resource.
//!
//! Every field is optional and skipped when unset, so a request carries exactly what the caller
//! set; unknown response fields are ignored. The writable parts ([`Sku`], [`Identity`],
//! [`AccountWritableProperties`]) double as the CRD's spec types, so their doc comments are
//! `kubectl explain` text.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Cognitive Services account as ARM returns it (and, partly filled, as a client sends it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<AccountProperties>,
}

impl Account {
    /// `properties.provisioningState`, if ARM reported one.
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties.as_ref()?.provisioning_state.as_deref()
    }

    /// `properties.endpoint`, if ARM reported one.
    pub fn endpoint(&self) -> Option<&str> {
        self.properties.as_ref()?.endpoint.as_deref()
    }
}

/// The SKU of the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    /// SKU name, for example `S0` or `F0`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// SKU tier; usually left unset (ARM derives it from the name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Free", "Basic", "Standard", "Premium", "Enterprise"]))]
    pub tier: Option<String>,
    /// SKU size, when the name combines tier and size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Hardware generation, when the service has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Capacity, for SKUs that scale out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
}

/// Managed identity of the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Identity type: `None`, `SystemAssigned`, `UserAssigned` or `SystemAssigned, UserAssigned`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["None", "SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned"]))]
    pub identity_type: Option<String>,
    /// Read-only: the identity's tenant, set by Azure. Ignored in a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Read-only: the identity's principal, set by Azure. Ignored in a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// User-assigned identities, keyed by their full ARM resource id; write `{}` as each value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_assigned_identities: Option<BTreeMap<String, UserAssignedIdentity>>,
}

/// A user-assigned identity entry; its fields are read-only and filled by Azure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// Read-only: principal id of the identity, set by Azure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Read-only: client id of the identity, set by Azure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The writable properties of an account (2024-10-01), with ARM's camelCase names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountWritableProperties {
    /// Custom subdomain for token-based authentication and the account's endpoint
    /// (`https://{customSubDomainName}.openai.azure.com/` for OpenAI). Globally unique; cannot
    /// change once set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 64),
        regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9-]*$")
    )]
    pub custom_sub_domain_name: Option<String>,
    /// Whether the public endpoint accepts traffic: `Enabled` or `Disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Enabled", "Disabled"]))]
    pub public_network_access: Option<String>,
    /// Network rules: which IP ranges and virtual network subnets may reach the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_acls: Option<NetworkRuleSet>,
    /// Disable key (local) authentication, leaving Entra ID as the only way in. When true the
    /// connection Secret holds only the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_local_auth: Option<bool>,
    /// Restrict outbound network access to `allowedFqdnList`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restrict_outbound_network_access: Option<bool>,
    /// Host names the account may call out to when `restrictOutboundNetworkAccess` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_fqdn_list: Option<Vec<String>>,
    /// Encryption at rest: service-managed or customer-managed keys in Key Vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Box<Encryption>>,
    /// Storage accounts owned by you that the service uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_owned_storage: Option<Vec<UserOwnedStorage>>,
    /// Properties for special APIs (QnA Maker, Bing, Personalizer, Metrics Advisor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_properties: Option<Box<ApiProperties>>,
    /// Enable dynamic throttling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_throttling_enabled: Option<bool>,
    /// An Azure Machine Learning workspace owned by you.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aml_workspace: Option<Box<UserOwnedAmlWorkspace>>,
    /// Multi-region routing settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locations: Option<Box<MultiRegionSettings>>,
    /// Responsible-AI monitoring storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rai_monitor_config: Option<Box<RaiMonitorConfig>>,
    /// Resource migration token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_token: Option<String>,
}

/// Account properties as ARM returns them: the writable ones plus the read-only ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProperties {
    #[serde(flatten)]
    pub writable: AccountWritableProperties,
    /// Write-only: restore a soft-deleted account. ARM never returns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<SkuCapability>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_migrated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku_change_info: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_endpoint_connections: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_rate_limit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_limit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_purge_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment_plan_associations: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_penalty: Option<serde_json::Value>,
}

/// A set of rules governing network access to the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRuleSet {
    /// What happens to traffic no rule matches: `Allow` or `Deny`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Allow", "Deny"]))]
    pub default_action: Option<String>,
    /// Trusted Azure services that bypass the rules: `None` or `AzureServices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["None", "AzureServices"]))]
    pub bypass: Option<String>,
    /// Allowed IPv4 addresses or CIDR ranges (compared as a set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_rules: Option<Vec<IpRule>>,
    /// Allowed virtual network subnets (compared as a set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_network_rules: Option<Vec<VirtualNetworkRule>>,
}

/// An allowed IP address or range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpRule {
    /// IPv4 address (`124.56.78.91`) or CIDR range (`124.56.78.0/24`).
    #[schemars(length(min = 1))]
    pub value: String,
}

/// An allowed virtual network subnet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkRule {
    /// Full ARM id of the subnet.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Read-only: the rule's state, set by Azure. Ignored in a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Accept the rule even when the subnet lacks the Microsoft.CognitiveServices service endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_missing_vnet_service_endpoint: Option<bool>,
}

/// Encryption at rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// Key source: `Microsoft.CognitiveServices` (service-managed) or `Microsoft.KeyVault`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Microsoft.CognitiveServices", "Microsoft.KeyVault"]))]
    pub key_source: Option<String>,
    /// The customer-managed key, when `keySource` is `Microsoft.KeyVault`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_vault_properties: Option<KeyVaultProperties>,
}

/// A customer-managed key in Key Vault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultProperties {
    /// Name of the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Version of the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<String>,
    /// URI of the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_vault_uri: Option<String>,
    /// Client id of the user-assigned identity that reads the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_client_id: Option<String>,
}

/// A storage account owned by you.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOwnedStorage {
    /// Full ARM id of the Microsoft.Storage account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Client id of the identity used to reach it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_client_id: Option<String>,
}

/// An Azure Machine Learning workspace owned by you.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOwnedAmlWorkspace {
    /// Full ARM id of the workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Client id of the identity used to reach it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_client_id: Option<String>,
}

/// Properties for special APIs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiProperties {
    /// (QnA Maker) runtime endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qna_runtime_endpoint: Option<String>,
    /// (QnA Maker) Azure Search endpoint id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qna_azure_search_endpoint_id: Option<String>,
    /// (Bing Search) enable statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics_enabled: Option<bool>,
    /// (Metrics Advisor) Entra ID client (application) id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub aad_client_id: Option<String>,
    /// (Metrics Advisor) Entra ID tenant id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub aad_tenant_id: Option<String>,
    /// (Metrics Advisor) super user.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub super_user: Option<String>,
    /// (Metrics Advisor) website name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub website_name: Option<String>,
}

/// Multi-region routing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiRegionSettings {
    /// Routing method: `Priority`, `Weighted` or `Performance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Priority", "Weighted", "Performance"]))]
    pub routing_method: Option<String>,
    /// The regions and their priority or weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<RegionSetting>>,
}

/// One region of a multi-region account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionSetting {
    /// Region name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Priority or weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The regional custom subdomain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customsubdomain: Option<String>,
}

/// Responsible-AI monitoring configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RaiMonitorConfig {
    /// Full ARM id of the storage resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adx_storage_resource_id: Option<String>,
    /// Client id of the identity used to reach it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_client_id: Option<String>,
}

/// A capability of the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SkuCapability {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The two access keys of an account. `Debug` never prints them.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeys {
    #[serde(default)]
    pub key1: Option<String>,
    #[serde(default)]
    pub key2: Option<String>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeys { key1: <redacted>, key2: <redacted> }")
    }
}

/// Which key `regenerateKey` replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyName {
    Key1,
    Key2,
}

impl std::str::FromStr for KeyName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            k if k.eq_ignore_ascii_case("key1") => Ok(KeyName::Key1),
            k if k.eq_ignore_ascii_case("key2") => Ok(KeyName::Key2),
            other => Err(format!("unknown key name {other:?}: expected Key1 or Key2")),
        }
    }
}

/// A page of a list operation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default)]
    pub next_link: Option<String>,
}

/// Where an active account lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl AccountRef {
    pub fn new(subscription_id: &str, resource_group: &str, name: &str) -> Self {
        AccountRef {
            subscription_id: subscription_id.to_string(),
            resource_group: resource_group.to_string(),
            name: name.to_string(),
        }
    }

    /// The account's ARM id, which is also its path under the ARM endpoint.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.CognitiveServices/accounts/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

/// Where a soft-deleted account lives: its ARM id includes the location.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeletedAccountRef {
    pub subscription_id: String,
    pub location: String,
    pub resource_group: String,
    pub name: String,
}

impl DeletedAccountRef {
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/providers/Microsoft.CognitiveServices/locations/{}/resourceGroups/{}/deletedAccounts/{}",
            self.subscription_id, self.location, self.resource_group, self.name
        )
    }

    /// Parses a deletedAccounts id (`/subscriptions/{s}/providers/Microsoft.CognitiveServices/locations/{loc}/resourceGroups/{rg}/deletedAccounts/{name}`).
    pub fn parse_id(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [s, sub, p, ns, l, loc, r, rg, d, name]
                if s.eq_ignore_ascii_case("subscriptions")
                    && p.eq_ignore_ascii_case("providers")
                    && ns.eq_ignore_ascii_case("Microsoft.CognitiveServices")
                    && l.eq_ignore_ascii_case("locations")
                    && r.eq_ignore_ascii_case("resourceGroups")
                    && d.eq_ignore_ascii_case("deletedAccounts") =>
            {
                Some(DeletedAccountRef {
                    subscription_id: sub.to_string(),
                    location: loc.to_string(),
                    resource_group: rg.to_string(),
                    name: name.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// Compares Azure locations the way ARM does: `West US` and `westus` are the same place.
pub fn same_location(a: &str, b: &str) -> bool {
    location_slug(a) == location_slug(b)
}

/// ARM paths use the location's short form (`westus`, not `West US`).
pub fn location_slug(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl DeletedAccountRef {
    /// The same place, as ARM compares them: case-insensitive names, either form of location.
    pub fn same_place(&self, other: &DeletedAccountRef) -> bool {
        self.subscription_id
            .eq_ignore_ascii_case(&other.subscription_id)
            && same_location(&self.location, &other.location)
            && self
                .resource_group
                .eq_ignore_ascii_case(&other.resource_group)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

/// A GUID in its usual 8-4-4-4-12 hexadecimal form (subscription, tenant and client ids).
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_are_not_sent() {
        let account = Account {
            location: Some("westus".into()),
            properties: Some(AccountProperties {
                writable: AccountWritableProperties {
                    disable_local_auth: Some(true),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&account).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"location": "westus", "properties": {"disableLocalAuth": true}})
        );
    }

    #[test]
    fn unknown_response_fields_are_ignored() {
        let body = serde_json::json!({
            "name": "a", "somethingNew": {"x": 1},
            "properties": {"endpoint": "https://a/", "futureProperty": [1, 2], "publicNetworkAccess": "Enabled"}
        });
        let account: Account = serde_json::from_value(body).unwrap();
        assert_eq!(account.endpoint(), Some("https://a/"));
        let writable = &account.properties.unwrap().writable;
        assert_eq!(writable.public_network_access.as_deref(), Some("Enabled"));
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let keys = ApiKeys {
            key1: Some("secret-one".into()),
            key2: Some("secret-two".into()),
        };
        let printed = format!("{keys:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn deleted_account_ids_round_trip() {
        let r = DeletedAccountRef {
            subscription_id: "s".into(),
            location: "westus".into(),
            resource_group: "rg".into(),
            name: "n".into(),
        };
        assert_eq!(DeletedAccountRef::parse_id(&r.id()), Some(r));
        assert_eq!(
            DeletedAccountRef::parse_id("/subscriptions/s/resourceGroups/rg"),
            None
        );
    }

    #[test]
    fn locations_compare_like_arm() {
        assert!(same_location("West US", "westus"));
        assert!(!same_location("westus", "westus2"));
    }
}
