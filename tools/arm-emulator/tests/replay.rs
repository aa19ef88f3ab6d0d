//! Replays what real Azure was recorded answering (the go-vcr cassettes of Azure Service
//! Operator's test suite, vendored in `spec/azure-recordings/aso/`) against the emulator, and
//! compares each interaction (Microsoft.CognitiveServices and the Microsoft.Resources group
//! around it): the status code, the operation headers and the shape of the operation URL, the
//! `ETag` and `X-Ms-Failure-Cause` headers, the provisioning state (or operation status, or
//! error code) and the key sets of the body. Values (ids, dates, etags, keys) are not compared.
//! It runs as Azure's clients do: over TLS, with a token the emulator's Entra ID issued (and
//! only such tokens accepted).
//!
//! Every difference found must be listed in [`KNOWN_DIFFERENCES`] with its reason, and every
//! entry there must still differ: the list is the emulator's debt to recorded Azure, kept honest
//! in both directions (docs/emulator.md). `-- --nocapture` prints the whole table.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arm_emulator::{EmulatorConfig, Profile, ResourceGroupSeed};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use support::http::{Answer, Harness};

const RECORDINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/azure-recordings/aso"
);

const AZURE: &str = "https://management.azure.com";

/// The cassettes, each with the letter that names it in the report.
const CASSETTES: &[(&str, &str)] = &[
    ("D", "Test_CognitiveServices_Deployment_CRUD.yaml"),
    ("A", "Test_CognitiveServices_Account_20250601_CRUD.yaml"),
];

/// What the emulator answers differently from recorded Azure today: (kind of interaction,
/// aspect, why); a difference found must be fixed or listed here with its reason. Empty: every
/// compared aspect of the 39 interactions matches. Values are not compared (etag
/// formats, `systemData.createdByType`, callRateLimit and capability values differ).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

#[derive(Deserialize)]
struct Cassette {
    interactions: Vec<Interaction>,
}

#[derive(Deserialize)]
struct Interaction {
    id: u32,
    request: Request,
    response: Response,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Response {
    code: u16,
    #[serde(default)]
    headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    body: String,
}

/// What is compared of one answer, recorded or replayed.
#[derive(Debug, PartialEq)]
struct Shape {
    status: u16,
    operation_headers: BTreeSet<&'static str>,
    /// The Azure-AsyncOperation URL has Azure's form (see [`azure_operation_url`]).
    operation_url: Option<bool>,
    etag_header: bool,
    /// `X-Ms-Failure-Cause` (recorded Azure sends `gateway` with an account's 404).
    failure_cause: Option<String>,
    state: Option<String>,
    keys: BTreeSet<String>,
}

const OPERATION_HEADERS: [&str; 3] = ["azure-asyncoperation", "location", "retry-after"];

impl Shape {
    fn of(status: u16, header: impl Fn(&str) -> Option<String>, body: &Value) -> Self {
        let operation_headers = OPERATION_HEADERS
            .into_iter()
            .filter(|name| header(name).is_some())
            .collect();
        Shape {
            status,
            operation_headers,
            operation_url: header("azure-asyncoperation").map(|url| azure_operation_url(&url)),
            etag_header: header("etag").is_some(),
            failure_cause: header("x-ms-failure-cause"),
            state: state(body),
            keys: key_paths(body),
        }
    }

    fn recorded(response: &Response) -> Self {
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, values)| values.first().cloned())
        };
        Shape::of(response.code, header, &parse(&response.body))
    }

    fn replayed(answer: &Answer) -> Self {
        let header = |name: &str| answer.header(name).map(str::to_string);
        Shape::of(answer.status.as_u16(), header, &answer.body)
    }

    /// The aspects in which `replayed` differs from `self`, each with what both said.
    fn differences(&self, replayed: &Shape) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let mut compare = |aspect, recorded: String, emulated: String| {
            if recorded != emulated {
                found.push((aspect, format!("recorded {recorded}, emulator {emulated}")));
            }
        };
        compare(
            "status",
            self.status.to_string(),
            replayed.status.to_string(),
        );
        compare(
            "operation headers",
            format!("{:?}", self.operation_headers),
            format!("{:?}", replayed.operation_headers),
        );
        if self.operation_url == Some(true) {
            compare(
                "operation URL",
                "Azure's form".into(),
                match replayed.operation_url {
                    Some(true) => "Azure's form".into(),
                    Some(false) => "another form".into(),
                    None => "none".into(),
                },
            );
        }
        compare(
            "etag header",
            self.etag_header.to_string(),
            replayed.etag_header.to_string(),
        );
        compare(
            "failure cause header",
            format!("{:?}", self.failure_cause),
            format!("{:?}", replayed.failure_cause),
        );
        compare(
            "state",
            format!("{:?}", self.state),
            format!("{:?}", replayed.state),
        );
        let missing: Vec<_> = self.keys.difference(&replayed.keys).collect();
        let extra: Vec<_> = replayed.keys.difference(&self.keys).collect();
        if !missing.is_empty() || !extra.is_empty() {
            found.push(("keys", format!("missing {missing:?}, extra {extra:?}")));
        }
        found
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// `provisioningState`, an operation's `status`, or an error's code.
fn state(body: &Value) -> Option<String> {
    [
        &body["properties"]["provisioningState"],
        &body["status"],
        &body["error"]["code"],
    ]
    .into_iter()
    .find_map(|value| value.as_str().map(str::to_string))
}

/// The key paths compared: the top level and the objects a reconcile reads.
fn key_paths(body: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let Value::Object(top) = body else {
        return paths;
    };
    for (key, value) in top {
        paths.insert(key.clone());
        if key == "error" {
            continue;
        }
        let nested = match (key.as_str(), value) {
            ("properties" | "sku" | "identity" | "systemData", Value::Object(inner)) => inner,
            _ => continue,
        };
        for (inner, inner_value) in nested {
            paths.insert(format!("{key}.{inner}"));
            if let ("properties", "model", Value::Object(model)) =
                (key.as_str(), inner.as_str(), inner_value)
            {
                paths.extend(model.keys().map(|k| format!("properties.model.{k}")));
            }
        }
    }
    paths
}

/// Azure's operation URL: location-scoped `operationResults`, api-version 2017-04-18, and the
/// signed query parameters t, c, s, h.
fn azure_operation_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let segments: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
    let path = matches!(
        segments.as_slice(),
        ["subscriptions", _, "providers", provider, "locations", _, "operationResults", _]
            if provider.eq_ignore_ascii_case("Microsoft.CognitiveServices")
    );
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let keys: BTreeSet<&str> = query.keys().map(String::as_str).collect();
    path && query.get("api-version").map(String::as_str) == Some("2017-04-18")
        && keys == BTreeSet::from(["api-version", "c", "h", "s", "t"])
}

fn is_operation_poll(interaction: &Interaction) -> bool {
    interaction.request.url.contains("/operationResults/")
}

fn is_cognitive_services(interaction: &Interaction) -> bool {
    interaction
        .request
        .url
        .contains("/providers/Microsoft.CognitiveServices")
}

/// A poll of a resource group deletion's Location (`/subscriptions/{s}/operationresults/…`).
fn is_group_deletion_poll(interaction: &Interaction) -> bool {
    !is_cognitive_services(interaction) && interaction.request.url.contains("/operationresults/")
}

/// The resource group the cassette's first request PUTs, when Azure answered that it existed
/// already (200): the emulator must have it too. `None` when the PUT created it (201).
fn existing_resource_group(cassette: &Cassette) -> Option<ResourceGroupSeed> {
    let first = &cassette.interactions[0];
    if first.response.code != 200 {
        return None;
    }
    let path = first.request.url.trim_start_matches(AZURE);
    let segments: Vec<&str> = path.split(['/', '?']).collect();
    Some(ResourceGroupSeed {
        subscription_id: segments[2].to_string(),
        name: segments[4].to_string(),
        location: parse(&first.request.body)["location"]
            .as_str()
            .unwrap_or("eastus")
            .to_string(),
    })
}

const TENANT: &str = "22222222-2222-2222-2222-222222222222";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

/// A token of the emulator's Entra ID for a service principal, as an SDK client gets one.
async fn issued_token(harness: &Harness) -> String {
    harness
        .emulator
        .add_service_principal(TENANT, CLIENT, "secret");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "secret"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .finish();
    let response: Value = harness
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", harness.base))
        .body(form)
        .send()
        .await
        .expect("the token endpoint answers")
        .json()
        .await
        .expect("a token response");
    response["access_token"]
        .as_str()
        .expect("a token")
        .to_string()
}

/// One row of the report.
struct Row {
    label: String,
    outcome: String,
}

struct Replay {
    harness: Harness,
    /// The emulator's operation URL of the latest write, polled where the recording polls.
    operation: Option<String>,
    /// The emulator's Location of the latest group deletion, and its Retry-After.
    group_deletion: Option<(String, u64)>,
    rows: Vec<Row>,
    differences: BTreeSet<(String, String)>,
}

impl Replay {
    async fn start(cassette: &Cassette) -> Self {
        // The emulator completes the create at the poll where Azure did.
        let polls = cassette
            .interactions
            .iter()
            .filter(|i| is_operation_poll(i))
            .count();
        let config = EmulatorConfig {
            resource_groups: existing_resource_group(cassette).into_iter().collect(),
            polls_to_complete: Some(polls as u32),
            operation_duration: None,
            throttling: None,
            profile: Profile::Recorded,
            ..EmulatorConfig::default()
        };
        let mut harness = Harness::with_tls(config).await;
        harness.auth = format!("Bearer {}", issued_token(&harness).await);
        harness.emulator.require_issued_tokens(true);
        Replay {
            harness,
            operation: None,
            group_deletion: None,
            rows: Vec::new(),
            differences: BTreeSet::new(),
        }
    }

    async fn run(&mut self, letter: &str, interaction: &Interaction) {
        let request = &interaction.request;
        let label = format!(
            "{letter}{:<3} {:<6} {}",
            interaction.id,
            request.method,
            short_path(&request.url)
        );
        let answer = self.send(interaction).await;
        let differences =
            Shape::recorded(&interaction.response).differences(&Shape::replayed(&answer));
        let outcome = if differences.is_empty() {
            "match".to_string()
        } else {
            differences
                .iter()
                .map(|(aspect, detail)| format!("{aspect}: {detail}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        for (aspect, _) in &differences {
            self.differences
                .insert((kind(interaction), aspect.to_string()));
        }
        self.rows.push(Row { label, outcome });
        self.note_operation(interaction, &answer).await;
    }

    async fn send(&self, interaction: &Interaction) -> Answer {
        let request = &interaction.request;
        let method = Method::from_bytes(request.method.as_bytes()).expect("an HTTP method");
        let url = match (&self.operation, &self.group_deletion) {
            (Some(operation), _) if is_operation_poll(interaction) => operation.clone(),
            (_, Some((location, retry_after))) if is_group_deletion_poll(interaction) => {
                // As a client does, the replay waits the Retry-After it was given.
                self.harness
                    .emulator
                    .advance_clock(Duration::from_secs(*retry_after));
                location.clone()
            }
            _ => request.url.replace(AZURE, &self.harness.base),
        };
        let body = (!request.body.is_empty()).then(|| parse(&request.body));
        self.harness.send(method, &url, body.as_ref()).await
    }

    /// Keeps the operation a write started for the polls the recording makes of it; one the
    /// recording never polls (Azure answered synchronously) is run to its end, so that the next
    /// interaction meets what it met in Azure rather than a write in flight.
    async fn note_operation(&mut self, interaction: &Interaction, answer: &Answer) {
        if is_operation_poll(interaction) || is_group_deletion_poll(interaction) {
            return;
        }
        if !is_cognitive_services(interaction) && interaction.request.method == "DELETE" {
            let retry_after = answer.header("retry-after").and_then(|s| s.parse().ok());
            self.group_deletion = answer
                .header("location")
                .map(|location| (location.to_string(), retry_after.unwrap_or(0)));
            return;
        }
        self.operation = answer.header("azure-asyncoperation").map(str::to_string);
        let recorded_polls = interaction
            .response
            .headers
            .keys()
            .any(|key| key.eq_ignore_ascii_case("azure-asyncoperation"));
        if self.operation.is_some() && !recorded_polls {
            self.harness.finish(answer).await;
            self.operation = None;
        }
    }
}

/// The kind of an interaction, as [`KNOWN_DIFFERENCES`] names it.
fn kind(interaction: &Interaction) -> String {
    let request = &interaction.request;
    let path = short_path(&request.url);
    let resource = if is_group_deletion_poll(interaction) {
        "resource group operation"
    } else if !is_cognitive_services(interaction) {
        "resource group"
    } else if path.contains("/operationResults/") {
        "operation"
    } else if path.ends_with("/listKeys") {
        "listKeys"
    } else if path.contains("/deployments/") {
        "deployment"
    } else {
        "account"
    };
    let situation = match (request.method.as_str(), interaction.response.code) {
        ("PUT", 201) => " (create)",
        ("PUT", _) => " (update)",
        ("GET", 404) => " (absent)",
        _ => "",
    };
    format!("{} {resource}{situation}", request.method)
}

fn short_path(url: &str) -> String {
    let path = url.trim_start_matches(AZURE);
    let path = path.split('?').next().unwrap_or(path);
    match path.find("/providers/") {
        Some(at) => path[at..].to_string(),
        None => path.to_string(),
    }
}

#[tokio::test]
async fn the_emulator_answers_as_recorded_azure_did_but_for_its_known_differences() {
    let mut rows = Vec::new();
    let mut found = BTreeSet::new();
    let mut cognitive_services = 0;
    for (letter, file) in CASSETTES {
        let text = std::fs::read_to_string(format!("{RECORDINGS}/{file}")).expect("cassette");
        let cassette: Cassette = serde_saphyr::from_str(&text).expect("a go-vcr cassette");
        let mut replay = Replay::start(&cassette).await;
        for interaction in &cassette.interactions {
            cognitive_services += usize::from(is_cognitive_services(interaction));
            replay.run(letter, interaction).await;
        }
        rows.extend(replay.rows);
        found.extend(replay.differences);
    }
    let matching = rows.iter().filter(|row| row.outcome == "match").count();
    println!("{:<70} outcome", "interaction");
    for row in &rows {
        println!("{:<70} {}", row.label, row.outcome);
    }
    println!(
        "{} interactions replayed ({cognitive_services} Microsoft.CognitiveServices, {} Microsoft.Resources), {matching} matching, {} with differences",
        rows.len(),
        rows.len() - cognitive_services,
        rows.len() - matching,
    );
    let known: BTreeSet<(String, String)> = KNOWN_DIFFERENCES
        .iter()
        .map(|(kind, aspect, _)| (kind.to_string(), aspect.to_string()))
        .collect();
    let unexplained: Vec<_> = found.difference(&known).collect();
    let mended: Vec<_> = known.difference(&found).collect();
    assert!(
        unexplained.is_empty(),
        "differences from recorded Azure that KNOWN_DIFFERENCES does not list: {unexplained:?}"
    );
    assert!(
        mended.is_empty(),
        "KNOWN_DIFFERENCES lists differences that are gone (remove them): {mended:?}"
    );
}
