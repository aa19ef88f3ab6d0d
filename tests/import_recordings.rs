//! `import` of what real Azure answered: every account and deployment a recorded GET of
//! spec/azure-recordings/ shows `Succeeded` is imported (the pure conversion `import` runs on
//! each listed resource) and planned against that same answer. The plan must be the adoption
//! only (the owner tag), with no drift the import did not carry.

use std::collections::BTreeMap;

use cognitive_operator::arm::deployments::{Deployment, DeploymentRef};
use cognitive_operator::arm::models::Account;
use cognitive_operator::cli::import_estate::{
    ImportOptions, Names, import_account, import_deployment, parse_account_id,
};
use cognitive_operator::planner::deployment::{AccountState, DeploymentPlanInput, plan_deployment};
use cognitive_operator::planner::{Action, FieldDiff, PlanInput, plan};
use serde::Deserialize;

#[derive(Deserialize)]
struct Cassette {
    interactions: Vec<Interaction>,
}

#[derive(Deserialize)]
struct Interaction {
    request: Request,
    response: Response,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    url: String,
}

#[derive(Deserialize)]
struct Response {
    code: u16,
    #[serde(default)]
    body: String,
}

const CASSETTES: &[&str] = &[
    "spec/azure-recordings/aso/Test_CognitiveServices_Deployment_CRUD.yaml",
    "spec/azure-recordings/aso/Test_CognitiveServices_Account_20250601_CRUD.yaml",
];

/// The bodies of the recorded `200` GETs of `Succeeded` resources whose path ends with
/// `/{kind}/{name}`, in order.
fn recorded(kind: &str) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for file in CASSETTES {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let cassette: Cassette =
            serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for interaction in cassette.interactions {
            let url = interaction
                .request
                .url
                .split('?')
                .next()
                .unwrap()
                .to_string();
            let segments: Vec<&str> = url.rsplit('/').collect();
            let of_kind = segments.get(1) == Some(&kind)
                && url.contains("Microsoft.CognitiveServices")
                && !url.contains("deletedAccounts");
            if interaction.request.method != "GET" || interaction.response.code != 200 || !of_kind {
                continue;
            }
            let body: serde_json::Value = serde_json::from_str(&interaction.response.body).unwrap();
            if body["properties"]["provisioningState"] == "Succeeded" {
                found.push(body);
            }
        }
    }
    found
}

/// Drift other than the owner tag that the adoption adds.
fn unexpected(drift: &[FieldDiff]) -> Vec<&FieldDiff> {
    drift
        .iter()
        .filter(|d| {
            let mut desired = d.desired.clone();
            if let Some(tags) = desired.as_object_mut() {
                tags.remove(cognitive_operator::api::OWNER_TAG);
            }
            let observed = if d.observed.is_null() {
                serde_json::json!({})
            } else {
                d.observed.clone()
            };
            d.path != "tags" || desired != observed
        })
        .collect()
}

#[test]
fn every_recorded_account_and_deployment_imports_to_an_adoption_only_plan() {
    let options = ImportOptions::default();
    let mut names = Names::default();
    let accounts = recorded("accounts");
    assert!(accounts.len() >= 2, "both recordings have accounts");
    let mut imported_accounts = BTreeMap::new();
    for body in &accounts {
        let account: Account = serde_json::from_value(body.clone()).unwrap();
        let at = parse_account_id(account.id.as_deref().unwrap()).unwrap();
        let imported = import_account(&account, &at, &options, &mut Names::default());
        let owner = format!(
            "default/{}",
            imported.account.metadata.name.as_deref().unwrap()
        );
        let planned = plan(&PlanInput {
            spec: &imported.account.spec,
            target: &at,
            owner: &owner,
            account: Some(&account),
            soft_deleted: None,
            pending: None,
            deleting: false,
            deployments: None,
            managed_before: false,
            purged: false,
        });
        let only_tags = planned
            .actions
            .iter()
            .all(|a| matches!(a, Action::Patch { fields, .. } if fields == &["tags"]));
        assert!(
            only_tags && planned.actions.len() == 1,
            "{}: {:?}",
            at.name,
            planned.actions
        );
        assert!(
            unexpected(&planned.drift).is_empty(),
            "{}: {:?}",
            at.name,
            planned.drift
        );
        imported_accounts.insert(at.id().to_ascii_lowercase(), imported.account);
    }

    let deployments = recorded("deployments");
    assert!(
        !deployments.is_empty(),
        "the deployment recording has deployments"
    );
    for body in &deployments {
        let deployment: Deployment = serde_json::from_value(body.clone()).unwrap();
        let at = DeploymentRef::parse_id(deployment.id.as_deref().unwrap()).unwrap();
        let account = &imported_accounts[&at.account.id().to_ascii_lowercase()];
        let meta = names.deployment(account, &at.name);
        let imported = import_deployment(&deployment, account, meta, &options);
        let owner = format!("default/{}", imported.metadata.name.as_deref().unwrap());
        let planned = plan_deployment(&DeploymentPlanInput {
            spec: &imported.spec,
            target: &at,
            owner: &owner,
            account: &AccountState::Ready,
            deployment: Some(&deployment),
            pending: None,
            deleting: false,
            managed_before: false,
        });
        assert_eq!(
            planned.actions.len(),
            1,
            "{}: {:?}",
            at.name,
            planned.actions
        );
        assert_eq!(
            planned.actions[0].fields(),
            ["tags"],
            "{}: {:?}",
            at.name,
            planned.actions
        );
        assert!(
            unexpected(&planned.drift).is_empty(),
            "{}: {:?}",
            at.name,
            planned.drift
        );
    }
    eprintln!(
        "recordings: {} account answers and {} deployment answers imported, drift found: 0",
        accounts.len(),
        deployments.len()
    );
}
