//! The account exists and this resource manages it (or adopts it): patch what differs, refuse
//! immutable changes, wait for provisioning.

use super::*;

/// Provisioning states after which ARM accepts writes again.
pub(super) fn is_terminal(state: &str) -> bool {
    state.eq_ignore_ascii_case("Succeeded") || state.eq_ignore_ascii_case("Failed")
}

pub(super) fn plan_existing(input: &PlanInput, account: &Account) -> Plan {
    let adopting = match ownership(input, account) {
        Ownership::Ours => false,
        Ownership::Other(other) => return already_managed(input, other),
        Ownership::Unclaimed if input.spec.adoption_policy == AdoptionPolicy::Adopt => true,
        Ownership::Unclaimed => {
            return Plan::foreign(
                "AlreadyExists",
                format!(
                    "account {} already exists in resource group {} and was not created by this resource; set spec.adoptionPolicy: Adopt to take it over",
                    input.target.name, input.target.resource_group
                ),
            );
        }
    };
    if let Some(state) = account.provisioning_state()
        && !is_terminal(state)
    {
        let mut plan = Plan::verdict(Verdict::Progressing {
            reason: "Provisioning",
            message: format!(
                "the account's provisioningState is {state}; waiting for it to finish"
            ),
        });
        // Ours stays ours while it provisions (the status may be all that says so).
        plan.claims_account = !adopting;
        return plan;
    }
    let mut plan = plan_owned(input, account, adopting);
    // An adoption claims the account once its patched owner tag is read back, not before: a
    // PATCH that lost a race to another writer must not make the account ours.
    plan.claims_account = !adopting;
    plan
}

/// The plan for an account this resource manages (or is adopting).
pub(super) fn plan_owned(input: &PlanInput, account: &Account, adopting: bool) -> Plan {
    if let Some(stalled) = immutable_change(input, account) {
        return stalled;
    }
    if account
        .provisioning_state()
        .is_some_and(|s| s.eq_ignore_ascii_case("Failed"))
    {
        return Plan::act(
            vec![Action::Create(Box::new(desired_account(input)))],
            "RetryingFailedProvisioning",
            "the account's provisioningState is Failed; provisioning it again".to_string(),
        );
    }
    let desired = desired_document(input, account);
    let drift = diff::diff(&desired, &observed_document(account));
    if drift.is_empty() {
        return Plan::verdict(Verdict::Ready);
    }
    let (body, fields) = diff::patch_body(&desired, &drift);
    let (reason, verb) = if adopting {
        ("Adopting", "adopting the account: patching")
    } else {
        ("Updating", "patching")
    };
    let mut plan = Plan::act(
        vec![Action::Patch {
            fields: fields.clone(),
            body,
        }],
        reason,
        format!("{verb} {}", fields.join(", ")),
    );
    plan.drift = visible_drift(drift);
    plan
}

/// The owner tag is bookkeeping: it is written but not reported as drift.
pub(super) fn visible_drift(drift: Vec<FieldDiff>) -> Vec<FieldDiff> {
    drift
        .into_iter()
        .filter(|d| {
            d.path != "tags" || {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(map) = v.as_object_mut() {
                        map.retain(|name, _| !crate::api::is_owner_tag(name));
                    }
                    v
                };
                !diff::covers("tags", &strip(&d.desired), &strip(&d.observed))
            }
        })
        .collect()
}

pub(super) fn immutable_change(input: &PlanInput, account: &Account) -> Option<Plan> {
    let spec = input.spec;
    let immutable = |field: &str, desired: &str, observed: &str| {
        Some(Plan::stalled(
            "ImmutableFieldChanged",
            format!(
                "{field} is {desired:?} but the account has {observed:?}, and Azure cannot change it; restore the old value, or create a new resource (with another azureName) for the new account"
            ),
        ))
    };
    if let Some(location) = account.location.as_deref()
        && !same_location(location, &spec.location)
    {
        return immutable("spec.location", &spec.location, location);
    }
    if let Some(kind) = account.kind.as_deref()
        && !kind.eq_ignore_ascii_case(&spec.kind)
        && !(is_openai_family(kind) && is_openai_family(&spec.kind))
    {
        return immutable("spec.kind", &spec.kind, kind);
    }
    let desired_sub = spec
        .properties
        .as_ref()
        .and_then(|p| p.custom_sub_domain_name.as_deref());
    let observed_sub = account
        .properties
        .as_ref()
        .and_then(|p| p.writable.custom_sub_domain_name.as_deref());
    if let (Some(desired), Some(observed)) = (desired_sub, observed_sub)
        && !desired.eq_ignore_ascii_case(observed)
    {
        return immutable("spec.properties.customSubDomainName", desired, observed);
    }
    None
}

/// The kinds of the OpenAI family: they may turn into each other, and they hold model
/// deployments (which a deletion lists and deletes first).
pub fn is_openai_family(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("OpenAI") || kind.eq_ignore_ascii_case("AIServices")
}
