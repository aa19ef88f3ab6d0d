//! `cognitive-operator import` round trip: the accounts and deployments an estate already has in
//! (emulated) Azure are imported, read-only; `plan` of the manifests shows per resource only the
//! adoption (the owner tag), no drift; `apply` makes one PATCH per resource (the tag) and nothing
//! else; a second `plan` is clean. Every account kind, and every writable property set in turn.

mod common;

use std::process::Command;

use arm_emulator::Emulator;
use cognitive_operator::api::OWNER_TAG;
use cognitive_operator::cli::import::{ImportFormat, render};
use cognitive_operator::cli::import_estate::{Estate, ImportOptions, Scope, read_estate};
use cognitive_operator::cli::manifests;
use common::{LOCATION, RG, SUB};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cognitive-operator");

/// Every kind the emulator accepts.
const KINDS: &[&str] = arm_emulator::ACCOUNT_KINDS;

fn resource(kind: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/{kind}/{name}")
}

/// One account per writable property (and identity, tags, SKU tier), each set as a user would.
fn one_property_each() -> Vec<(&'static str, Value)> {
    let storage = resource("Microsoft.Storage/storageAccounts", "st");
    let identity = resource("Microsoft.ManagedIdentity/userAssignedIdentities", "id");
    vec![
        (
            "sub-domain",
            json!({"properties": {"customSubDomainName": "imported-sub"}}),
        ),
        (
            "private",
            json!({"properties": {"publicNetworkAccess": "Disabled"}}),
        ),
        (
            "firewalled",
            json!({"properties": {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices",
                "ipRules": [{"value": "203.0.113.0/24"}],
                "virtualNetworkRules": [{"id": resource("Microsoft.Network/virtualNetworks", "vn/subnets/s")}]}}}),
        ),
        ("keyless", json!({"properties": {"disableLocalAuth": true}})),
        (
            "outbound",
            json!({"properties": {"restrictOutboundNetworkAccess": true, "allowedFqdnList": ["api.example.com"]}}),
        ),
        (
            "cmk",
            json!({"identity": {"type": "SystemAssigned"}, "properties": {"encryption": {"keySource": "Microsoft.KeyVault",
                "keyVaultProperties": {"keyName": "k", "keyVersion": "1", "keyVaultUri": "https://kv.vault.azure.net/"}}}}),
        ),
        (
            "storage",
            json!({"properties": {"userOwnedStorage": [{"resourceId": storage}]}}),
        ),
        (
            "api",
            json!({"properties": {"apiProperties": {"statisticsEnabled": true}}}),
        ),
        (
            "throttled",
            json!({"properties": {"dynamicThrottlingEnabled": true}}),
        ),
        (
            "aml",
            json!({"properties": {"amlWorkspace": {"resourceId": resource("Microsoft.MachineLearningServices/workspaces", "w")}}}),
        ),
        (
            "regions",
            json!({"properties": {"locations": {"routingMethod": "Priority", "regions": [{"name": "westus", "value": 1.0}]}}}),
        ),
        (
            "rai-monitor",
            json!({"properties": {"raiMonitorConfig": {"adxStorageResourceId": resource("Microsoft.Kusto/clusters", "k")}}}),
        ),
        (
            "system-identity",
            json!({"identity": {"type": "SystemAssigned"}}),
        ),
        (
            "user-identity",
            json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}}),
        ),
        ("tagged", json!({"tags": {"team": "search", "Env": "Prod"}})),
    ]
}

fn body(kind: &str, extra: &Value) -> Value {
    let mut body = json!({"location": LOCATION, "kind": kind, "sku": {"name": "S0"}});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Deployments: version pinned (NoAutoUpgrade) and not, a named content filter, and two
/// accounts with a deployment of the same name.
fn seed_deployments(emulator: &Emulator) {
    emulator.seed_account(SUB, RG, "chat", body("OpenAI", &json!({})));
    emulator.seed_account(SUB, RG, "Chat_Two", body("AIServices", &json!({})));
    emulator.seed_deployment(
        SUB,
        RG,
        "chat",
        "gpt4o",
        json!({"sku": {"name": "GlobalStandard", "capacity": 10},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
                "versionUpgradeOption": "NoAutoUpgrade", "raiPolicyName": "Microsoft.DefaultV2"}}),
    );
    emulator.seed_deployment(
        SUB,
        RG,
        "chat",
        "embeddings",
        json!({"sku": {"name": "Standard", "capacity": 20}, "tags": {"cost": "shared"},
            "properties": {"model": {"format": "OpenAI", "name": "text-embedding-3-small", "version": "1"}}}),
    );
    emulator.seed_deployment(
        SUB,
        RG,
        "Chat_Two",
        "gpt4o",
        json!({"sku": {"name": "GlobalStandard", "capacity": 5},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"}}}),
    );
}

fn seed_estate(emulator: &Emulator) -> usize {
    for kind in KINDS {
        let name = format!("kind-{}", kind.to_ascii_lowercase().replace('.', "-"));
        emulator.seed_account(SUB, RG, &name, body(kind, &json!({})));
    }
    let properties = one_property_each();
    for (name, extra) in &properties {
        emulator.seed_account(SUB, RG, name, body("AIServices", extra));
    }
    seed_deployments(emulator);
    KINDS.len() + properties.len() + 2
}

/// `spec` holds every value of `seeded` (a PUT body's identity, properties and tags).
fn assert_carries(spec: &Value, seeded: &Value, name: &str) {
    // Even an empty object or list set in Azure must be there.
    assert!(
        seeded.is_null() || !spec.is_null(),
        "{name} is missing from the imported spec"
    );
    match seeded {
        Value::Object(fields) => {
            for (key, value) in fields {
                assert_carries(&spec[key], value, &format!("{name}.{key}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_carries(&spec[i], item, &format!("{name}[{i}]"));
            }
        }
        _ => assert_eq!(spec, seeded, "{name} is not imported as set"),
    }
}

async fn import(emulator: &Emulator, options: &ImportOptions) -> Estate {
    let client = common::client(emulator);
    let scope = Scope {
        subscription_id: SUB.into(),
        resource_groups: vec![RG.into()],
        accounts: Vec::new(),
    };
    read_estate(&client, &scope, options).await.expect("import")
}

/// Runs `command -f file -o json` against the emulator: exit code, stdout, stderr.
fn cli(
    emulator: &Emulator,
    command: &str,
    file: &std::path::Path,
) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .args([command, "-f", file.to_str().unwrap(), "-o", "json"])
        .args(["--arm-endpoint", &emulator.base_url()])
        .args(["--credential", "static-token", "--static-token", "t"])
        .args(["--default-poll-seconds", "0"])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

fn write_manifests(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("import-roundtrip-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("imported.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Each entry of a `plan -o json`: only a tags PATCH that adds the owner tag, no other drift.
fn assert_only_adoption(report: &Value) -> (usize, usize) {
    let (mut accounts, mut deployments) = (0, 0);
    for entry in report.as_array().unwrap() {
        let name = &entry["name"];
        assert!(entry.get("error").is_none(), "{entry}");
        let actions = entry["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{name}: {entry}");
        assert_eq!(actions[0]["fields"], json!(["tags"]), "{name}: {entry}");
        // The adoption may show the owner tag as the tags' drift; nothing else may differ.
        for drift in entry["drift"].as_array().unwrap() {
            assert_eq!(
                drift["field"], "tags",
                "{name}: drift the import did not carry: {entry}"
            );
            let mut desired = drift["desired"].clone();
            let owner = desired.as_object_mut().unwrap().remove(OWNER_TAG);
            assert!(owner.is_some(), "{name}: {entry}");
            let observed = match &drift["observed"] {
                Value::Null => json!({}),
                observed => observed.clone(),
            };
            assert_eq!(
                desired, observed,
                "{name}: tags beyond the owner tag differ"
            );
        }
        match entry["kind"].as_str() {
            Some("account") => accounts += 1,
            _ => deployments += 1,
        }
    }
    (accounts, deployments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_manifests_plan_as_adoption_only_and_apply_one_tag_patch_each() {
    let emulator = common::emulator().await;
    let seeded = seed_estate(&emulator);
    emulator.clear_requests();

    let estate = import(&emulator, &ImportOptions::default()).await;
    let requests = emulator.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "import wrote: {:?}",
        common::writes(&requests)
    );
    assert!(!requests.iter().any(|r| r.path.ends_with("/listKeys")));
    assert_eq!(estate.accounts.len(), seeded);
    let deployments: usize = estate.accounts.iter().map(|a| a.deployments.len()).sum();
    assert_eq!(deployments, 3);

    // Valid, strict manifests, with the policies an import must have.
    let text = render(&estate, ImportFormat::Yaml);
    let parsed = manifests::parse_all("imported.yaml", &text).expect("strict manifests");
    assert_eq!(parsed.accounts.len(), seeded);
    let by_name = |name: &str| {
        parsed
            .accounts
            .iter()
            .find(|a| a.resource.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    // Every property set in Azure is in the spec, as set: a plan can only be clean about what
    // the manifest states.
    for (name, extra) in one_property_each() {
        let spec = serde_json::to_value(&by_name(name).resource.spec).unwrap();
        assert_carries(&spec, &extra, name);
    }
    for kind in KINDS {
        let name = format!("kind-{}", kind.to_ascii_lowercase().replace('.', "-"));
        assert_eq!(by_name(&name).resource.spec.kind, *kind);
    }
    let renamed = &by_name("chat-two").resource.spec;
    assert_eq!(renamed.azure_name.as_deref(), Some("Chat_Two"));
    assert!(text.contains("deletionPolicy: Orphan"), "{text}");
    assert!(!text.contains("adoptionPolicy: Never"), "{text}");
    assert!(!text.contains("principalId"), "{text}");
    let mut names: Vec<_> = parsed
        .deployments
        .iter()
        .map(|d| d.resource.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["chat-two-gpt4o", "embeddings", "gpt4o"], "{text}");
    let deployment = |name: &str| {
        let found = parsed
            .deployments
            .iter()
            .find(|d| d.resource.metadata.name.as_deref() == Some(name));
        serde_json::to_value(&found.unwrap().resource.spec).unwrap()
    };
    // Pinned where Azure never upgrades it; left to Azure where it does.
    let pinned = deployment("gpt4o");
    assert_eq!(
        pinned["model"],
        json!({"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"})
    );
    assert_eq!(
        pinned["sku"],
        json!({"name": "GlobalStandard", "capacity": 10})
    );
    assert_eq!(pinned["raiPolicyName"], "Microsoft.DefaultV2");
    assert_eq!(pinned["accountRef"]["name"], "chat");
    assert_eq!(pinned["deletionPolicy"], "Orphan");
    let upgraded = deployment("embeddings");
    assert_eq!(upgraded["model"].get("version"), None, "{upgraded}");
    assert_eq!(upgraded["tags"], json!({"cost": "shared"}));
    let other = deployment("chat-two-gpt4o");
    assert_eq!(other["azureName"], "gpt4o");
    assert_eq!(other["accountRef"]["name"], "chat-two");

    let file = write_manifests("all", &text);
    let (code, output, errors) = cli(&emulator, "plan", &file);
    assert_eq!(code, Some(2), "{output}{errors}");
    let report: Value = serde_json::from_str(&output).unwrap();
    let (accounts, planned_deployments) = assert_only_adoption(&report);
    assert_eq!((accounts, planned_deployments), (seeded, 3));
    eprintln!(
        "round trip: {accounts} accounts and {planned_deployments} deployments imported, drift found: 0"
    );

    emulator.clear_requests();
    let (code, _, errors) = cli(&emulator, "apply", &file);
    assert_eq!(code, Some(0), "{errors}");
    let writes = common::writes(&emulator.requests());
    assert!(writes.iter().all(|w| w.starts_with("PATCH ")), "{writes:?}");
    assert_eq!(writes.len(), seeded + 3, "{writes:#?}");

    let (code, output, errors) = cli(&emulator, "plan", &file);
    assert_eq!(code, Some(0), "after apply: {output}{errors}");
    // The JSON form (a List, as kubectl writes) plans the same.
    let json_file = file.with_extension("json");
    std::fs::write(&json_file, render(&estate, ImportFormat::Json)).unwrap();
    let (code, output, errors) = cli(&emulator, "plan", &json_file);
    assert_eq!(code, Some(0), "{output}{errors}");
    let report: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(report.as_array().unwrap().len(), seeded + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_accounts_are_skipped_and_soft_deleted_ones_noted_or_restored() {
    let emulator = common::emulator().await;
    emulator.seed_account(
        SUB,
        RG,
        "theirs",
        body(
            "OpenAI",
            &json!({"tags": {OWNER_TAG: "cluster-b/team-b/theirs"}}),
        ),
    );
    emulator.seed_account(SUB, RG, "ours", body("OpenAI", &json!({})));
    emulator.seed_deleted_account(SUB, RG, "gone", body("OpenAI", &json!({})));

    let estate = import(&emulator, &ImportOptions::default()).await;
    let names: Vec<_> = estate.accounts.iter().map(|a| a.arm_id.clone()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("/ours"));
    // What Azure fills in by itself is not in the spec.
    assert_eq!(estate.accounts[0].account.spec.properties, None);
    let text = render(&estate, ImportFormat::Yaml);
    assert!(text.contains("# skipped account theirs"), "{text}");
    assert!(text.contains("cluster-b/team-b/theirs"), "{text}");
    assert!(text.contains("# soft-deleted account gone"), "{text}");
    assert!(text.contains("Azure purges it on 20"), "{text}");

    let options = ImportOptions {
        include_owned: true,
        include_deleted: true,
        ..ImportOptions::default()
    };
    let estate = import(&emulator, &options).await;
    assert_eq!(estate.accounts.len(), 3);
    let text = render(&estate, ImportFormat::Yaml);
    let parsed = manifests::parse_all("imported.yaml", &text).expect("strict manifests");
    let gone = parsed
        .accounts
        .iter()
        .find(|a| a.resource.metadata.name.as_deref() == Some("gone"))
        .expect(&text);
    assert_eq!(
        gone.resource.spec.soft_delete_policy,
        cognitive_operator::api::SoftDeletePolicy::Restore
    );
    assert!(
        !text.contains(OWNER_TAG),
        "the owner tag is never in a spec: {text}"
    );
    let file = write_manifests("deleted", &text);
    let (_, output, _) = cli(&emulator, "plan", &file);
    assert!(output.contains("Restore"), "{output}");
}
