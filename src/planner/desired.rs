//! The account as the spec wants it, and the minimal PATCH from what is observed.

use super::*;
use crate::api::StringMap;

/// The account to PUT on create: the spec plus the owner tag.
pub fn desired_account(input: &PlanInput) -> Account {
    let spec = input.spec;
    let tags = spec
        .tags
        .as_ref()
        .map(StringMap::to_btree)
        .unwrap_or_default();
    Account {
        location: Some(spec.location.clone()),
        kind: Some(spec.kind.clone()),
        sku: Some(spec.sku.clone()),
        tags: Some(with_owner_tag(tags, input.owner)),
        identity: spec.identity.clone(),
        properties: spec.properties.clone().map(|writable| AccountProperties {
            writable,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The managed part of the account as a document, compared against the observed one. When the
/// spec does not manage tags, only the owner tag is added to whatever tags the account has.
pub(super) fn desired_document(input: &PlanInput, observed: &Account) -> Value {
    let mut document = desired_document_without_owner(input);
    let tags: BTreeMap<String, String> = match &input.spec.tags {
        Some(tags) => tags.to_btree(),
        None => observed.tags.clone().unwrap_or_default(),
    };
    let tags = with_owner_tag(tags, input.owner);
    document["tags"] = serde_json::to_value(tags).expect("tags serialize");
    document
}

pub(super) fn desired_document_without_owner(input: &PlanInput) -> Value {
    let spec = input.spec;
    let mut document = serde_json::json!({
        "kind": spec.kind,
        "sku": spec.sku,
        "properties": spec.properties.clone().unwrap_or_default(),
    });
    if let Some(tags) = &spec.tags {
        document["tags"] = serde_json::to_value(tags).expect("tags serialize");
    }
    if let Some(identity) = &spec.identity {
        document["identity"] = serde_json::to_value(identity).expect("identity serializes");
    }
    document
}

pub(super) fn observed_document(account: &Account) -> Value {
    serde_json::to_value(account).expect("accounts serialize")
}

/// The PATCH that brings `observed` to the spec: fields and body (both empty when converged).
pub(super) fn patch_against(input: &PlanInput, observed: &Account) -> (Vec<String>, Value) {
    let desired = desired_document(input, observed);
    let drift = diff::diff(&desired, &observed_document(observed));
    let (body, fields) = diff::patch_body(&desired, &drift);
    (fields, body)
}
