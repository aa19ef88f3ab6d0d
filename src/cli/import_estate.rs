//! What `import` reads from Azure and turns into resources: the accounts of a scope with their
//! deployments, as `CognitiveServicesAccount`s and `CognitiveServicesDeployment`s whose specs
//! state what is set in Azure and writable, and nothing Azure fills in by itself.
//!
//! Read-only: only GETs (the account and deployment lists, the soft-deleted list). The keys
//! (`listKeys`, a POST) are never read.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::ObjectMeta;

use crate::api::{
    AccountReference, AdoptionPolicy, CognitiveServicesAccount, CognitiveServicesAccountSpec,
    CognitiveServicesDeployment, CognitiveServicesDeploymentSpec, DeletionPolicy,
    DeploymentDeletionPolicy, DeploymentSku, ModelSpec, SoftDeletePolicy, is_owner_tag,
};
use crate::arm::deployments::Deployment;
use crate::arm::models::{Account, AccountRef, AccountWritableProperties, Identity};
use crate::arm::{ArmClient, ArmError};

/// Which accounts to import.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub subscription_id: String,
    /// Only these resource groups; the whole subscription when empty (and no ids are given).
    pub resource_groups: Vec<String>,
    /// Only these accounts (their ARM ids).
    pub accounts: Vec<AccountRef>,
}

/// How to write what is found.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub namespace: String,
    pub deletion_policy: DeletionPolicy,
    /// Import accounts and deployments another resource (or cluster) owns, dropping its tag.
    pub include_owned: bool,
    /// Write soft-deleted accounts too, with `softDeletePolicy: Restore`.
    pub include_deleted: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            namespace: "default".into(),
            deletion_policy: DeletionPolicy::Orphan,
            include_owned: false,
            include_deleted: false,
        }
    }
}

/// One account as imported, with its deployments.
#[derive(Clone, Debug)]
pub struct ImportedAccount {
    pub arm_id: String,
    pub account: CognitiveServicesAccount,
    pub deployments: Vec<CognitiveServicesDeployment>,
    /// Set for a soft-deleted account: when Azure purges it.
    pub deleted: Option<String>,
}

/// Everything an import found.
#[derive(Clone, Debug, Default)]
pub struct Estate {
    pub accounts: Vec<ImportedAccount>,
    /// What was found and not written, one line each (skipped owned resources, soft-deleted
    /// accounts), to print as comments.
    pub notes: Vec<String>,
}

/// Parses an account's ARM id.
pub fn parse_account_id(id: &str) -> Option<AccountRef> {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [s, sub, r, rg, p, ns, a, name]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourceGroups")
                && p.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.CognitiveServices")
                && a.eq_ignore_ascii_case("accounts") =>
        {
            Some(AccountRef::new(sub, rg, name))
        }
        _ => None,
    }
}

/// Reads the scope's accounts and their deployments, and writes them as resources.
pub async fn read_estate(
    client: &ArmClient,
    scope: &Scope,
    options: &ImportOptions,
) -> Result<Estate, ArmError> {
    let mut estate = Estate::default();
    let mut names = Names::default();
    for account in accounts_in(client, scope).await? {
        let Some(at) = account.id.as_deref().and_then(parse_account_id) else {
            continue;
        };
        if let Some(owner) = foreign_owner(account.tags.as_ref(), options) {
            estate.notes.push(format!(
                "skipped account {} (resource group {}): managed by {owner} (its owner tag); --include-owned imports it anyway",
                at.name, at.resource_group
            ));
            continue;
        }
        if let Some(state) = account
            .provisioning_state()
            .filter(|state| !state.eq_ignore_ascii_case("Succeeded"))
        {
            // A Failed account would be planned as a create, an account in an operation is
            // not what it will be: neither is a no-op to import.
            estate.notes.push(format!(
                "skipped account {} (resource group {}): its provisioningState is {state}; import it once it is Succeeded",
                at.name, at.resource_group
            ));
            continue;
        }
        let mut imported = import_account(&account, &at, options, &mut names);
        // Only these kinds have model deployments (the operator lists no others either).
        let kind = account.kind.as_deref().unwrap_or_default();
        let deployments = if crate::planner::is_openai_family(kind) {
            client.list_deployments(&at).await?
        } else {
            Vec::new()
        };
        for deployment in deployments {
            let name = deployment.name.clone().unwrap_or_default();
            if let Some(owner) = foreign_owner(deployment.tags.as_ref(), options) {
                estate.notes.push(format!(
                    "skipped deployment {name} of account {}: it is managed by {owner}",
                    at.name
                ));
                continue;
            }
            let meta = names.deployment(&imported.account, &name);
            imported.deployments.push(import_deployment(
                &deployment,
                &imported.account,
                meta,
                options,
            ));
        }
        estate.accounts.push(imported);
    }
    deleted_accounts(client, scope, options, &mut names, &mut estate).await?;
    Ok(estate)
}

async fn accounts_in(client: &ArmClient, scope: &Scope) -> Result<Vec<Account>, ArmError> {
    if !scope.accounts.is_empty() {
        let mut found = Vec::new();
        for at in &scope.accounts {
            match client.get_account(at).await? {
                Some(account) => found.push(account),
                None => {
                    return Err(ArmError::Config(format!(
                        "account {} does not exist",
                        at.id()
                    )));
                }
            }
        }
        return Ok(found);
    }
    if scope.resource_groups.is_empty() {
        return client
            .list_accounts_in_subscription(&scope.subscription_id)
            .await;
    }
    let mut found = Vec::new();
    for group in &scope.resource_groups {
        found.extend(
            client
                .list_accounts_by_resource_group(&scope.subscription_id, group)
                .await?,
        );
    }
    Ok(found)
}

/// Soft-deleted accounts of the scope: a note each, and with `--include-deleted` a resource
/// that restores it.
async fn deleted_accounts(
    client: &ArmClient,
    scope: &Scope,
    options: &ImportOptions,
    names: &mut Names,
    estate: &mut Estate,
) -> Result<(), ArmError> {
    let deleted = client.list_deleted_accounts(&scope.subscription_id).await?;
    for account in deleted {
        let Some(at) = account
            .id
            .as_deref()
            .and_then(crate::arm::models::DeletedAccountRef::parse_id)
        else {
            continue;
        };
        let in_scope = if scope.accounts.is_empty() {
            scope.resource_groups.is_empty()
                || scope
                    .resource_groups
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(&at.resource_group))
        } else {
            scope.accounts.iter().any(|a| {
                a.name.eq_ignore_ascii_case(&at.name)
                    && a.resource_group.eq_ignore_ascii_case(&at.resource_group)
            })
        };
        if !in_scope {
            continue;
        }
        if let Some(owner) = foreign_owner(account.tags.as_ref(), options) {
            estate.notes.push(format!(
                "skipped soft-deleted account {} (resource group {}): managed by {owner} (its owner tag); --include-owned imports it anyway",
                at.name, at.resource_group
            ));
            continue;
        }
        let purge = account
            .properties
            .as_ref()
            .and_then(|p| p.scheduled_purge_date.clone())
            .unwrap_or_else(|| "unknown".into());
        estate.notes.push(format!(
            "soft-deleted account {} (resource group {}, {}): Azure purges it on {purge}{}",
            at.name,
            at.resource_group,
            at.location,
            if options.include_deleted {
                "; written below with softDeletePolicy: Restore"
            } else {
                "; --include-deleted writes it with softDeletePolicy: Restore"
            }
        ));
        if options.include_deleted {
            let live = AccountRef::new(&at.subscription_id, &at.resource_group, &at.name);
            let mut imported = import_account(&account, &live, options, names);
            imported.account.spec.soft_delete_policy = SoftDeletePolicy::Restore;
            imported.deleted = Some(purge);
            estate.accounts.push(imported);
        }
    }
    Ok(())
}

/// The owner tag's value, when it is there and the options do not import owned resources.
fn foreign_owner(
    tags: Option<&BTreeMap<String, String>>,
    options: &ImportOptions,
) -> Option<String> {
    if options.include_owned {
        return None;
    }
    tags?
        .iter()
        .find(|(name, _)| is_owner_tag(name))
        .map(|(_, value)| value.clone())
}

/// An account as a resource: what is set in Azure and writable.
pub fn import_account(
    account: &Account,
    at: &AccountRef,
    options: &ImportOptions,
    names: &mut Names,
) -> ImportedAccount {
    let (name, azure_name) = names.account(&at.name);
    let spec = CognitiveServicesAccountSpec {
        azure_name,
        subscription_id: Some(at.subscription_id.clone()),
        resource_group: at.resource_group.clone(),
        location: account.location.clone().unwrap_or_default(),
        kind: account.kind.clone().unwrap_or_default(),
        sku: account.sku.clone().unwrap_or_default(),
        tags: spec_tags(account.tags.as_ref()).map(Into::into),
        identity: account.identity.as_ref().and_then(spec_identity),
        properties: account
            .properties
            .as_ref()
            .and_then(|p| spec_properties(&p.writable)),
        deletion_policy: options.deletion_policy,
        adoption_policy: AdoptionPolicy::Adopt,
        ..Default::default()
    };
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(options.namespace.clone()),
        ..Default::default()
    };
    ImportedAccount {
        arm_id: at.id(),
        account: CognitiveServicesAccount {
            metadata,
            spec,
            status: None,
        },
        deployments: Vec::new(),
        deleted: None,
    }
}

/// Tags without the operator's own; none when Azure has none (so the spec leaves them alone).
fn spec_tags(tags: Option<&BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let tags: BTreeMap<String, String> = tags?
        .iter()
        .filter(|(name, _)| !is_owner_tag(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!tags.is_empty()).then_some(tags)
}

/// The identity's type and user-assigned ids, without Azure's principal and tenant ids.
fn spec_identity(identity: &Identity) -> Option<Identity> {
    let kind = identity.identity_type.as_deref()?;
    if kind.eq_ignore_ascii_case("None") {
        return None;
    }
    Some(Identity {
        identity_type: Some(kind.to_string()),
        tenant_id: None,
        principal_id: None,
        user_assigned_identities: identity.user_assigned_identities.as_ref().map(|ids| {
            ids.keys()
                .map(|id| (id.clone(), Default::default()))
                .collect()
        }),
    })
}

/// The writable properties set in Azure, less what Azure sets by itself when a create leaves
/// it out (`publicNetworkAccess: Enabled`, empty objects and lists such as `apiProperties: {}`):
/// intent, not noise. None when nothing is left.
fn spec_properties(writable: &AccountWritableProperties) -> Option<AccountWritableProperties> {
    let mut json = serde_json::to_value(writable).expect("properties serialize");
    if let Some(fields) = json.as_object_mut() {
        fields.retain(|_, value| !is_empty(value));
    }
    let mut properties: AccountWritableProperties =
        serde_json::from_value(json).expect("properties deserialize");
    if properties
        .public_network_access
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("Enabled"))
    {
        properties.public_network_access = None;
    }
    (properties != AccountWritableProperties::default()).then_some(properties)
}

fn is_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(fields) => fields.values().all(is_empty),
        serde_json::Value::Array(items) => items.is_empty(),
        serde_json::Value::Null => true,
        _ => false,
    }
}

/// A deployment as a resource of `account`: model, SKU, capacity and policies as deployed.
pub fn import_deployment(
    deployment: &Deployment,
    account: &CognitiveServicesAccount,
    (name, azure_name): (String, Option<String>),
    options: &ImportOptions,
) -> CognitiveServicesDeployment {
    let properties = deployment.properties.clone().unwrap_or_default();
    let model = properties.model.clone().unwrap_or_default();
    let upgrade = properties.version_upgrade_option.clone();
    // A version pinned while Azure upgrades it would make each upgrade drift that apply
    // reverts: the version is stated only where Azure never moves it.
    let pinned = upgrade
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("NoAutoUpgrade"));
    let sku = deployment.sku.clone().unwrap_or_default();
    let spec = CognitiveServicesDeploymentSpec {
        account_ref: AccountReference {
            name: account.metadata.name.clone().unwrap_or_default(),
        },
        azure_name,
        model: ModelSpec {
            format: model.format.unwrap_or_default(),
            name: model.name.unwrap_or_default(),
            version: model.version.filter(|_| pinned),
        },
        sku: DeploymentSku {
            name: sku.name,
            capacity: sku.capacity,
        },
        rai_policy_name: properties.rai_policy_name,
        version_upgrade_option: upgrade,
        tags: spec_tags(deployment.tags.as_ref()),
        deletion_policy: match options.deletion_policy {
            DeletionPolicy::Orphan => DeploymentDeletionPolicy::Orphan,
            _ => DeploymentDeletionPolicy::Delete,
        },
        adoption_policy: AdoptionPolicy::Adopt,
        ..Default::default()
    };
    CognitiveServicesDeployment {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: account.metadata.namespace.clone(),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// The Kubernetes names given so far in the namespace, so that two Azure names never map to one.
#[derive(Debug, Default)]
pub struct Names {
    accounts: BTreeSet<String>,
    deployments: BTreeSet<String>,
}

impl Names {
    /// `metadata.name` for an account, and `spec.azureName` when Azure's name is not that.
    pub fn account(&mut self, azure: &str) -> (String, Option<String>) {
        let name = unique(&mut self.accounts, &kubernetes_name(azure));
        let azure_name = (name != azure).then(|| azure.to_string());
        (name, azure_name)
    }

    /// `metadata.name` for a deployment (its own name, or prefixed with its account's when
    /// another account's deployment has it), and `spec.azureName` when it is not Azure's.
    pub fn deployment(
        &mut self,
        account: &CognitiveServicesAccount,
        azure: &str,
    ) -> (String, Option<String>) {
        let own = kubernetes_name(azure);
        let candidate = if self.deployments.contains(&own) {
            kubernetes_name(&format!(
                "{}-{own}",
                account.metadata.name.as_deref().unwrap_or_default()
            ))
        } else {
            own
        };
        let name = unique(&mut self.deployments, &candidate);
        let azure_name = (name != azure).then(|| azure.to_string());
        (name, azure_name)
    }
}

/// `base`, or `base-2`, `base-3`, ... when taken; recorded as taken.
fn unique(taken: &mut BTreeSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        let stem: String = base.chars().take(58).collect();
        name = format!("{}-{n}", stem.trim_end_matches('-'));
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A valid Kubernetes object name (a lowercase DNS-1123 label, at most 63 characters, which is
/// also a valid subdomain) for an Azure name: lowercased, any other character (`.` and `_`
/// too) as `-`, runs of `-` as one.
pub fn kubernetes_name(azure: &str) -> String {
    let mut mapped = String::new();
    for c in azure.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && mapped.ends_with('-')) {
            mapped.push(c);
        }
    }
    let trimmed: String = mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect();
    let trimmed = trimmed
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if trimmed.is_empty() {
        "account".to_string()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_kubernetes_names_and_keep_azures_in_azure_name() {
        let mut names = Names::default();
        assert_eq!(names.account("chat-openai"), ("chat-openai".into(), None));
        assert_eq!(
            names.account("Chat_OpenAI"),
            ("chat-openai-2".into(), Some("Chat_OpenAI".into()))
        );
        assert_eq!(
            names.account("My.Account"),
            ("my-account".into(), Some("My.Account".into()))
        );
        assert_eq!(kubernetes_name("_x_"), "x");
        // Never a dot beside a dash, never a run of dashes: a valid label.
        assert_eq!(kubernetes_name("a_.b"), "a-b");
        assert_eq!(kubernetes_name("x..y"), "x-y");
        let long = "A".repeat(70);
        let mut names = Names::default();
        assert_eq!(names.account(&long).0.len(), 63);
        let second = names.account(&format!("{long}_")).0;
        assert!(second.ends_with("-2") && second.len() <= 63, "{second}");
    }

    #[test]
    fn account_ids_parse_and_others_do_not() {
        let at = parse_account_id(
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/a",
        )
        .unwrap();
        assert_eq!((at.resource_group.as_str(), at.name.as_str()), ("RG", "a"));
        assert!(parse_account_id("/subscriptions/s/resourceGroups/RG").is_none());
    }
}
