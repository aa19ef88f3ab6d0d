//! The additional TLS listener: a client that trusts the emulator's CA reaches it, and every
//! link answered over it (operation URLs, nextLinks, the admin state's URLs) stays on https,
//! while the plain listener keeps answering http links.

mod support;

use arm_emulator::{EmulatorConfig, ResourceGroupSeed, TlsConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{BEARER, Harness, client_trusting};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const RG: &str = "rg-tls";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, RG, "westus")],
        retry_after_secs: 0,
        throttling: None,
        page_size: 1,
        ..EmulatorConfig::default()
    }
}

fn account_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

fn account_body() -> Value {
    json!({"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}, "properties": {}})
}

#[tokio::test]
async fn an_account_created_over_tls_gets_https_operation_urls_and_next_links() {
    let harness = Harness::with_tls(config()).await;
    let tls_base = harness.emulator.tls_base_url().unwrap();
    assert!(tls_base.starts_with("https://127.0.0.1:"), "{tls_base}");
    assert_ne!(
        tls_base,
        harness.emulator.base_url().replace("http", "https")
    );
    let created = harness
        .call(
            Method::PUT,
            &account_path("secure-1"),
            Some(&account_body()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // The recorded form sends Azure-AsyncOperation alone; the contract form Location too.
    assert!(created.header("azure-asyncoperation").is_some());
    for header in ["azure-asyncoperation", "location"] {
        let Some(url) = created.header(header) else {
            continue;
        };
        assert!(
            url.starts_with(&format!("{tls_base}/subscriptions/")),
            "{header}: {url}"
        );
    }
    let status = harness.finish(&created).await;
    assert_eq!(status["status"], "Succeeded");
    harness
        .call(
            Method::PUT,
            &account_path("secure-2"),
            Some(&account_body()),
        )
        .await;
    let list = harness
        .get(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts"))
        .await;
    let next = list.body["nextLink"].as_str().expect("a second page");
    assert!(
        next.starts_with(&format!("{tls_base}/subscriptions/")),
        "{next}"
    );
    let second = harness.get_url(next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["value"].as_array().unwrap().len(), 1);
    let state: Value = harness
        .http
        .get(format!("{tls_base}/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = state["operations"][0]["statusUrl"].as_str().unwrap();
    assert!(url.starts_with("https://"), "{url}");
}

#[tokio::test]
async fn the_plain_listener_of_the_same_emulator_keeps_http_links() {
    let harness = Harness::with_tls(config()).await;
    let plain = reqwest::Client::new();
    let base = harness.emulator.base_url();
    let response = plain
        .put(format!(
            "{base}{}?api-version=2024-10-01",
            account_path("plain")
        ))
        .header("Authorization", BEARER)
        .json(&account_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let operation = response.headers()["azure-asyncoperation"].to_str().unwrap();
    assert!(
        operation.starts_with(&format!("{base}/subscriptions/")),
        "{operation}"
    );
    // The account is the same one over either listener.
    let over_tls = harness.get(&account_path("plain")).await;
    assert_eq!(over_tls.status, StatusCode::OK);
    assert!(
        harness.emulator.state()["operations"][0]["statusUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let harness = Harness::with_tls(config()).await;
    let stranger = client_trusting(TlsConfig::generated().ca_pem());
    let url = harness.url(&account_path("any"));
    let refused = stranger
        .get(url)
        .header("Authorization", BEARER)
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a foreign CA must not verify the emulator"
    );
    let plain_http_to_tls = reqwest::Client::new()
        .get(
            harness
                .url(&account_path("any"))
                .replace("https://", "http://"),
        )
        .send()
        .await;
    assert!(
        plain_http_to_tls.is_err() || !plain_http_to_tls.unwrap().status().is_success(),
        "the TLS listener speaks only TLS"
    );
}

#[tokio::test]
async fn a_given_certificate_is_served_and_trusted_as_given() {
    let dir = std::env::temp_dir().join(format!("arm-emulator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    let (chain_pem, key_pem) = own_certificate();
    std::fs::write(&chain, &chain_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let given = TlsConfig::from_files(&chain, &key).expect("a usable pair");
    let harness = Harness::with_tls(EmulatorConfig {
        tls: Some(given),
        ..config()
    })
    .await;
    assert_eq!(harness.emulator.ca_pem().unwrap(), chain_pem);
    let answer = harness.get(&account_path("absent")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(TlsConfig::from_files(&dir.join("missing.pem"), &key).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A user's own CA and a leaf it signed for 127.0.0.1, as the chain (leaf first) and the key.
fn own_certificate() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (format!("{}{}", leaf.pem(), ca.pem()), key.serialize_pem())
}
