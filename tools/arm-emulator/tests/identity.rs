//! The offline Entra ID: Azure's own credentials (azure_identity, as the operator builds them)
//! get tokens from the emulator over TLS, the App Service managed-identity endpoint answers as
//! azure_identity expects, errors come in Entra's JSON, and with issued tokens required only
//! those tokens reach the resource provider, whose log names the caller.

mod support;

use std::sync::Arc;

use arm_emulator::{Caller, EmulatorConfig, ResourceGroupSeed};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientMethodOptions, ClientOptions, Transport};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::Harness;

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const RG: &str = "rg-identity";
const TENANT: &str = "22222222-2222-2222-2222-222222222222";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "the-client-secret";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const ISSUER: &str = "https://oidc.cluster.example/";
const SUBJECT: &str = "system:serviceaccount:cognitive-operator:operator";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, RG, "westus")],
        throttling: None,
        ..EmulatorConfig::default()
    }
}

fn account_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

/// azure_identity's client options: the emulator as a custom cloud's authority host, reached
/// through the harness's client (which trusts the emulator's CA).
fn client_options(harness: &Harness) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = harness.emulator.tls_base_url().unwrap();
    ClientOptions {
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        transport: Some(Transport::new(Arc::new(harness.http.clone()))),
        ..Default::default()
    }
}

/// A federated token as a cluster's OIDC issuer would sign it (the emulator does not check
/// the signature).
fn federated_token(claims: Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode("signature")
    )
}

fn current_federated_token() -> String {
    let now = jiff::Timestamp::now().as_second();
    federated_token(json!({
        "aud": ["api://AzureADTokenExchange"],
        "iss": ISSUER,
        "sub": SUBJECT,
        "iat": now,
        "exp": now + 3600,
    }))
}

#[derive(Debug)]
struct FixedAssertion(String);

#[async_trait::async_trait]
impl ClientAssertion for FixedAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.clone())
    }
}

/// A form post to the token endpoint, as a client would send it by hand.
async fn token_post(
    harness: &Harness,
    tenant: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let response = harness
        .http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", harness.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The fields of a token request.
type Fields = Vec<(&'static str, String)>;

fn secret_grant(secret: &str, scope: &str) -> Fields {
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", CLIENT.into()),
        ("client_secret", secret.into()),
        ("scope", scope.into()),
    ]
}

async fn post_grant(harness: &Harness, tenant: &str, fields: &Fields) -> (StatusCode, Value) {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_post(harness, tenant, &fields).await
}

async fn get_account_with(harness: &Harness, token: &str) -> support::http::Answer {
    let auth = format!("Bearer {token}");
    harness
        .raw(
            Method::GET,
            &harness.url(&account_path("absent")),
            None,
            Some(&auth),
        )
        .await
}

#[tokio::test]
async fn a_client_secret_credential_gets_a_token_arm_accepts_and_the_log_names_the_caller() {
    let harness = Harness::with_tls(config()).await;
    let object_id = harness
        .emulator
        .add_service_principal(TENANT, CLIENT, SECRET);
    harness.emulator.require_issued_tokens(true);
    let options = ClientSecretCredentialOptions {
        client_options: client_options(&harness),
    };
    let credential =
        ClientSecretCredential::new(TENANT, CLIENT.into(), Secret::new(SECRET), Some(options))
            .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("a token");
    let remaining = token.expires_on - azure_core::time::OffsetDateTime::now_utc();
    assert!(remaining.whole_minutes() >= 55, "{remaining}");

    let answer = get_account_with(&harness, token.token.secret()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert_eq!(answer.error_code(), "ResourceNotFound");
    let logged = harness.emulator.requests().pop().unwrap();
    assert_eq!(
        logged.caller,
        Some(Caller {
            client_id: CLIENT.into(),
            object_id,
            tenant_id: TENANT.into(),
            kind: "servicePrincipal".into(),
            grant: "client_secret".into(),
        })
    );

    let refused = get_account_with(&harness, "test-token").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error_code(), "InvalidAuthenticationToken");
    let logged = harness.emulator.requests().pop().unwrap();
    assert_eq!((logged.status, logged.caller), (401, None));
    let requests = harness.emulator.token_requests();
    assert_eq!(
        requests.len(),
        1,
        "the credential caches its token: {requests:?}"
    );
    assert_eq!(requests[0].grant.as_deref(), Some("client_secret"));
}

#[tokio::test]
async fn a_client_assertion_credential_exchanges_a_federated_token() {
    let harness = Harness::with_tls(config()).await;
    let object_id = harness
        .emulator
        .add_federated_identity(TENANT, CLIENT, ISSUER, Some(SUBJECT));
    harness.emulator.require_issued_tokens(true);
    let options = ClientAssertionCredentialOptions {
        client_options: client_options(&harness),
    };
    let credential = ClientAssertionCredential::new(
        TENANT.into(),
        CLIENT.into(),
        FixedAssertion(current_federated_token()),
        Some(options),
    )
    .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("a token");
    let answer = get_account_with(&harness, token.token.secret()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let caller = harness.emulator.requests().pop().unwrap().caller.unwrap();
    assert_eq!(
        (caller.object_id, caller.grant.as_str()),
        (object_id, "client_assertion")
    );

    let strangers = ClientAssertionCredential::new(
        TENANT.into(),
        CLIENT.into(),
        FixedAssertion(federated_token(json!({
            "aud": "api://AzureADTokenExchange",
            "iss": ISSUER,
            "sub": "system:serviceaccount:other:sa",
            "exp": jiff::Timestamp::now().as_second() + 60,
        }))),
        Some(ClientAssertionCredentialOptions {
            client_options: client_options(&harness),
        }),
    )
    .unwrap();
    let refused = strangers.get_token(&[ARM_SCOPE], None).await.unwrap_err();
    assert!(refused.to_string().contains("AADSTS700213"), "{refused}");
}

#[tokio::test]
async fn token_errors_are_entras_json_with_its_statuses() {
    let harness = Harness::with_tls(config()).await;
    harness
        .emulator
        .add_service_principal(TENANT, CLIENT, SECRET);
    harness
        .emulator
        .add_federated_identity(TENANT, CLIENT, ISSUER, None);

    let (status, body) = post_grant(&harness, TENANT, &secret_grant("wrong", ARM_SCOPE)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }

    let other_tenant = "33333333-3333-3333-3333-333333333333";
    let cases: [(&str, Fields, &str, u64); 4] = [
        (
            other_tenant,
            secret_grant(SECRET, ARM_SCOPE),
            "invalid_request",
            90002,
        ),
        (
            TENANT,
            secret_grant(SECRET, "https://management.azure.com"),
            "invalid_scope",
            1002012,
        ),
        (
            TENANT,
            secret_grant(SECRET, "https://vault.azure.net/.default"),
            "invalid_resource",
            500011,
        ),
        (
            TENANT,
            vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", "44444444-4444-4444-4444-444444444444".into()),
                ("client_secret", SECRET.into()),
                ("scope", ARM_SCOPE.into()),
            ],
            "unauthorized_client",
            700016,
        ),
    ];
    for (tenant, fields, error, code) in cases {
        let (status, body) = post_grant(&harness, tenant, &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            (
                body["error"].as_str().unwrap(),
                body["error_codes"][0].as_u64().unwrap()
            ),
            (error, code)
        );
    }

    let expired = federated_token(
        json!({"aud": "api://AzureADTokenExchange", "iss": ISSUER, "sub": "s", "exp": 1}),
    );
    for (assertion, code) in [(expired.as_str(), 700024), ("not-a-jwt", 50027)] {
        let fields = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", ARM_SCOPE),
        ];
        let (status, body) = token_post(&harness, TENANT, &fields).await;
        assert_eq!(
            (status, body["error_codes"][0].as_u64()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    let refused = harness.emulator.token_requests();
    assert_eq!(refused.len(), 7);
    assert!(
        refused
            .iter()
            .all(|request| request.status >= 400 && request.grant.is_none())
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_on_the_plain_listener_too_and_identities_register_over_admin() {
    let harness = Harness::with(config()).await;
    let registered = harness
        .http
        .post(format!("{}/_emulator/identities", harness.base))
        .json(&json!({
            "servicePrincipals": [{"tenantId": TENANT, "clientId": CLIENT, "secret": SECRET}],
            "requireIssuedTokens": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["servicePrincipals"][0]["clientId"], CLIENT);
    assert!(
        registered["servicePrincipals"][0].get("secrets").is_none(),
        "no secrets shown"
    );
    let (status, body) = post_grant(
        &harness,
        TENANT,
        &secret_grant(SECRET, "https://management.core.windows.net//.default"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_i64()),
        (Some("Bearer"), Some(3599))
    );
    assert_eq!(body["ext_expires_in"], 3599);
    let answer = get_account_with(&harness, body["access_token"].as_str().unwrap()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let bad = harness
        .http
        .post(format!("{}/_emulator/identities", harness.base))
        .json(&json!({"servicePrincipal": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// The App Service managed-identity request azure_identity makes.
async fn msi_get(harness: &Harness, header: Option<&str>, query: &str) -> (StatusCode, Value) {
    let mut request = harness.http.get(format!(
        "{}/_emulator/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com{query}",
        harness.base
    ));
    if let Some(header) = header {
        request = request
            .header("X-IDENTITY-HEADER", header)
            .header("metadata", "true");
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_managed_identity_endpoint_mints_tokens_for_the_identity_asked_for() {
    let harness = Harness::with_tls(config()).await;
    let system = harness
        .emulator
        .add_managed_identity("aaaaaaaa-0000-0000-0000-000000000001", None);
    harness.emulator.add_managed_identity(
        "aaaaaaaa-0000-0000-0000-000000000002",
        Some("bbbbbbbb-0000-0000-0000-000000000002"),
    );
    harness.emulator.set_identity_header("identity-secret");
    harness.emulator.require_issued_tokens(true);

    let (status, body) = msi_get(&harness, Some("identity-secret"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expires_on = body["expires_on"]
        .as_str()
        .expect("expires_on is a string of seconds");
    let expires_on: i64 = expires_on.parse().unwrap();
    assert!(expires_on > jiff::Timestamp::now().as_second() + 3000);
    assert_eq!(
        (body["token_type"].as_str(), body["resource"].as_str()),
        (Some("Bearer"), Some("https://management.azure.com"))
    );
    assert_eq!(body["client_id"], "aaaaaaaa-0000-0000-0000-000000000001");
    let answer = get_account_with(&harness, body["access_token"].as_str().unwrap()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let caller = harness.emulator.requests().pop().unwrap().caller.unwrap();
    assert_eq!(
        (
            caller.kind.as_str(),
            caller.grant.as_str(),
            caller.object_id
        ),
        ("managedIdentity", "managed_identity", system)
    );

    let (_, user) = msi_get(
        &harness,
        Some("identity-secret"),
        "&client_id=aaaaaaaa-0000-0000-0000-000000000002",
    )
    .await;
    assert_eq!(user["client_id"], "aaaaaaaa-0000-0000-0000-000000000002");
    let (_, by_principal) = msi_get(
        &harness,
        Some("identity-secret"),
        "&object_id=bbbbbbbb-0000-0000-0000-000000000002",
    )
    .await;
    assert_eq!(
        by_principal["client_id"],
        "aaaaaaaa-0000-0000-0000-000000000002"
    );

    let (status, _) = msi_get(&harness, Some("wrong"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = msi_get(&harness, None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = msi_get(
        &harness,
        Some("identity-secret"),
        "&client_id=cccccccc-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused_by_arm() {
    let harness = Harness::with_tls(config()).await;
    harness
        .emulator
        .add_managed_identity("aaaaaaaa-0000-0000-0000-000000000001", None);
    harness.emulator.require_issued_tokens(true);
    let response = harness
        .http
        .get(format!(
            "{}/_emulator/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net",
            harness.base
        ))
        .header("X-IDENTITY-HEADER", "anything")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let answer = get_account_with(&harness, body["access_token"].as_str().unwrap()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.error_code(), "InvalidAuthenticationTokenAudience");
    harness.emulator.require_issued_tokens(false);
    let answer = get_account_with(&harness, "test-token").await;
    assert_eq!(
        answer.status,
        StatusCode::NOT_FOUND,
        "any token again once not required"
    );
    let logged = serde_json::to_value(harness.emulator.requests().pop().unwrap()).unwrap();
    assert!(
        logged.get("caller").is_none(),
        "no caller key for a token not minted: {logged}"
    );
}
