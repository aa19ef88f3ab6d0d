//! `cognitive-operator import` end to end: the manifests it writes of an estate made outside the
//! operator are accepted by a real API server (`kubectl apply --dry-run=server`), CRD schema,
//! CEL rules and all.

use serde_json::json;

use crate::support::e2e::*;

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn imported_manifests_are_accepted_by_the_api_server() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-import");
    let emulator = &cluster.emulator;
    emulator
        .seed(
            "Chat_OpenAI",
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"},
                   "tags": {"team": "search"},
                   "properties": {"customSubDomainName": "imported-chat", "disableLocalAuth": true,
                       "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}}}),
            false,
        )
        .await;
    emulator
        .seed(
            "speech",
            json!({"location": LOCATION, "kind": "SpeechServices", "sku": {"name": "S0"},
                   "identity": {"type": "SystemAssigned"}}),
            false,
        )
        .await;
    emulator
        .seed(
            "gone",
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
            true,
        )
        .await;
    let seed = json!({"subscriptionId": SUB, "resourceGroup": RG, "account": "Chat_OpenAI",
        "name": "gpt-4o", "deployment": {"sku": {"name": "GlobalStandard", "capacity": 10},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"}}}});
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/deployments", emulator.url))
        .json(&seed)
        .send()
        .await
        .expect("the emulator answers");
    assert!(response.status().is_success(), "{}", response.status());

    let output = std::process::Command::new(BINARY)
        .args(["import", "--subscription", SUB, "--resource-group", RG])
        .args(["--namespace", "team-import", "--include-deleted"])
        .args(["--arm-endpoint", &emulator.url])
        .args(["--credential", "static-token", "--static-token", "t"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifests = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        manifests.matches("kind: CognitiveServicesAccount").count(),
        3,
        "{manifests}"
    );
    assert_eq!(
        manifests
            .matches("kind: CognitiveServicesDeployment")
            .count(),
        1,
        "{manifests}"
    );
    assert_eq!(
        super::accepted_by_the_api_server(&cluster, "the imported manifests", &manifests),
        4,
        "{manifests}"
    );
    let writes: Vec<String> = emulator
        .writes()
        .await
        .into_iter()
        .filter(|w| !w.contains("/_emulator/"))
        .collect();
    assert!(writes.is_empty(), "import wrote to ARM: {writes:?}");
}
