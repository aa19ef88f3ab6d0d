//! The demo's import step: `import` of the resource group holding the account made by hand
//! (the Observe example's), and `plan` of what it wrote, which shows only the adoption.

use kube::ResourceExt;

use super::embedded::EMULATOR_SUBSCRIPTION;
use super::import::{ImportFormat, render};
use super::import_estate::{ImportOptions, Scope, read_estate};
use crate::arm::ArmClient;
use crate::engine::Engine;
use crate::planner::{Action, Verdict};
use arm_emulator::Emulator;

/// Imports `resource_group` (read-only: checked on the emulator's request log), prints the
/// manifests, and plans them: an error when the plan has anything but the owner tag to write.
pub async fn import_and_plan(
    emulator: &Emulator,
    client: &ArmClient,
    engine: &Engine,
    resource_group: &str,
) -> Result<(), String> {
    let before = emulator.requests().len();
    let scope = Scope {
        subscription_id: EMULATOR_SUBSCRIPTION.into(),
        resource_groups: vec![resource_group.into()],
        accounts: Vec::new(),
    };
    let estate = read_estate(client, &scope, &ImportOptions::default())
        .await
        .map_err(|e| format!("import: {e}"))?;
    if estate.accounts.is_empty() {
        return Err("import found no account to import".into());
    }
    let reads = &emulator.requests()[before..];
    if reads.iter().any(|r| r.method != "GET") {
        return Err("import wrote to ARM".into());
    }
    println!(
        "    cognitive-operator import --subscription {EMULATOR_SUBSCRIPTION} --resource-group {resource_group}: {} GET, 0 writes\n",
        reads.len()
    );
    for line in render(&estate, ImportFormat::Yaml).lines() {
        println!("    | {line}");
    }
    println!();
    for imported in &estate.accounts {
        let account = &imported.account;
        let preview = engine
            .preview(client, account, false)
            .await
            .map_err(|e| format!("plan {}: {e}", account.name_any()))?;
        let only_tags = preview.plan.actions.len() == 1
            && preview.plan.actions.iter().all(
                |a| matches!(a, Action::Patch { fields, .. } if fields.iter().all(|f| f == "tags")),
            );
        let drift: Vec<&str> = preview
            .plan
            .drift
            .iter()
            .map(|d| d.path.as_str())
            .filter(|path| *path != "tags")
            .collect();
        if !only_tags
            || !drift.is_empty()
            || matches!(preview.plan.verdict, Verdict::Stalled { .. })
        {
            return Err(format!(
                "plan of imported {} is not only the adoption: {:?}, drift {drift:?}",
                account.name_any(),
                preview.plan.actions
            ));
        }
        println!(
            "    plan {}: ~ patch tags (adoption: the owner tag), no drift",
            account.name_any()
        );
    }
    println!();
    Ok(())
}
