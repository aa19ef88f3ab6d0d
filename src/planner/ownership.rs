//! Who manages an account: its owner tag (`{cluster}/{namespace}/{name}`) and, failing that,
//! the resource's status.

use super::*;
use crate::api::is_owner_tag;

pub fn owner_of(account: &Account) -> Option<&str> {
    owner_tag_in(account.tags.as_ref()?)
}

/// The owner tag's value, whatever the letter case of its name: Azure tag names ignore case,
/// so `COGNITIVE-OPERATOR-OWNER: other/ns/x` is another resource's claim, not no claim.
pub(super) fn owner_tag_in(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.iter()
        .find(|(name, _)| is_owner_tag(name))
        .map(|(_, value)| value.as_str())
}

/// `tags` with the owner tag set to `owner`, under its one spelling: another spelling beside it
/// would be a second tag of the same name to Azure.
pub(super) fn with_owner_tag(
    mut tags: BTreeMap<String, String>,
    owner: &str,
) -> BTreeMap<String, String> {
    tags.retain(|name, _| !is_owner_tag(name));
    tags.insert(OWNER_TAG.to_string(), owner.to_string());
    tags
}

/// Who manages an existing account, by its owner tag and, failing that, by the status.
#[derive(Debug, PartialEq)]
pub(super) enum Ownership<'a> {
    Ours,
    Unclaimed,
    Other(&'a str),
}

pub(super) fn ownership<'a>(input: &PlanInput, account: &'a Account) -> Ownership<'a> {
    ownership_of(account, input.owner, input.managed_before)
}

pub(super) fn ownership_of<'a>(
    account: &'a Account,
    owner: &str,
    managed_before: bool,
) -> Ownership<'a> {
    match owner_of(account) {
        Some(tag) if tag == owner => Ownership::Ours,
        // A tag from before owner tags named their cluster (`{namespace}/{name}`) is ours only
        // when our status says so too; the next PATCH rewrites it with the cluster.
        Some(tag) if managed_before && is_legacy_form_of(tag, owner) => Ownership::Ours,
        Some(other) => Ownership::Other(other),
        None if managed_before => Ownership::Ours,
        None => Ownership::Unclaimed,
    }
}

/// `team-a/docs` is the legacy form of `{cluster}/team-a/docs`.
pub(super) fn is_legacy_form_of(tag: &str, owner: &str) -> bool {
    tag.matches('/').count() == 1
        && owner
            .strip_suffix(tag)
            .is_some_and(|cluster| cluster.len() > 1 && cluster.ends_with('/'))
}

/// Whether the resource whose owner tag value is `owner` manages `account` (by the tag, or by
/// its status when someone dropped the tag): only then may its keys go into a Secret without a
/// key-read grant.
pub fn is_managed_by(account: &Account, owner: &str, managed_before: bool) -> bool {
    ownership_of(account, owner, managed_before) == Ownership::Ours
}

/// Whether the plan for `account` stops because it is someone else's (AlreadyManaged, or
/// AlreadyExists without adoption): then nothing more of it is read, such as its deployments.
pub fn is_foreign(
    spec: &CognitiveServicesAccountSpec,
    account: &Account,
    owner: &str,
    managed_before: bool,
) -> bool {
    match ownership_of(account, owner, managed_before) {
        Ownership::Ours => false,
        Ownership::Other(_) => true,
        Ownership::Unclaimed => {
            spec.reconcile_policy == ReconcilePolicy::Manage
                && spec.adoption_policy != AdoptionPolicy::Adopt
        }
    }
}

pub(super) fn already_managed(input: &PlanInput, other: &str) -> Plan {
    if is_legacy_form_of(other, input.owner) {
        return Plan::foreign(
            "AlreadyManaged",
            format!(
                "account {} carries the owner tag {OWNER_TAG}={other}, written before owner tags named their cluster, and this resource's status does not show it managed the account: it may be {other} in another cluster. If this cluster owns it, set the tag to {} in Azure (az tag update --operation Merge --tags {OWNER_TAG}={} --resource-id {})",
                input.target.name,
                input.owner,
                input.owner,
                input.target.id()
            ),
        );
    }
    Plan::foreign(
        "AlreadyManaged",
        format!(
            "account {} is already managed by CognitiveServicesAccount {other} (Azure tag {OWNER_TAG}); two resources must not manage one account",
            input.target.name
        ),
    )
}
