//! Account kinds: which ones an account may have, the SKU names accounts take, and the read-only
//! properties Azure fills per kind (endpoints, capabilities, callRateLimit). OpenAI's are as
//! recorded (spec/azure-recordings/, the 2025-07 cassette); the others' are the emulator's
//! guesses, listed in docs/emulator.md.

use serde_json::{Map, Value, json};

use super::model::{Account, normalize_location};

/// The kinds Azure offers today, plus retired ones the official examples and our tests still
/// use (Emotion, Bing.Search, CRIS): an account of another kind is refused with
/// `InvalidApiSetId`. Matched case-insensitively.
pub const KINDS: &[&str] = &[
    "AIServices",
    "AnomalyDetector",
    "CognitiveServices",
    "ComputerVision",
    "ContentModerator",
    "ContentSafety",
    "ConversationalLanguageUnderstanding",
    "CustomVision.Prediction",
    "CustomVision.Training",
    "Face",
    "FormRecognizer",
    "HealthInsights",
    "ImmersiveReader",
    "LanguageAuthoring",
    "LUIS",
    "LUIS.Authoring",
    "MetricsAdvisor",
    "OpenAI",
    "Personalizer",
    "QnAMaker.v2",
    "SpeechServices",
    "TextAnalytics",
    "TextTranslation",
    // Retired in Azure, kept because the contract's examples and the operator's tests use them.
    "Bing.Search",
    "Bing.Search.v7",
    "CRIS",
    "Emotion",
];

/// Every account SKU name of any kind; per-kind availability (the account's `skus` list) is
/// not enforced.
const SKU_NAMES: &[&str] = &[
    "F0", "F1", "S", "S0", "S1", "S2", "S3", "S4", "E0", "P0", "P1", "P2", "C2", "C3", "C4", "D3",
    "DC0",
];

pub(crate) fn is_known_kind(kind: &str) -> bool {
    KINDS.iter().any(|known| known.eq_ignore_ascii_case(kind))
}

pub(crate) fn is_known_sku(name: &str) -> bool {
    SKU_NAMES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
}

pub(crate) fn is_openai(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("OpenAI")
}

fn is_ai_services(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("AIServices")
}

/// The account's main endpoint: on its custom subdomain when it has one, else regional.
pub(crate) fn endpoint(account: &Account) -> String {
    match account.spec.custom_subdomain() {
        Some(subdomain) if is_openai(&account.spec.kind) => openai_endpoint(subdomain),
        Some(subdomain) => format!(
            "https://{}.cognitiveservices.azure.com/",
            subdomain.to_ascii_lowercase()
        ),
        None => match normalize_location(&account.location).as_str() {
            "global" => "https://api.cognitive.microsoft.com/".to_string(),
            region => format!("https://{region}.api.cognitive.microsoft.com/"),
        },
    }
}

fn openai_endpoint(subdomain: &str) -> String {
    format!(
        "https://{}.openai.azure.com/",
        subdomain.to_ascii_lowercase()
    )
}

/// The named endpoints recorded for an OpenAI account, all on its main endpoint.
const OPENAI_ENDPOINTS: &[&str] = &[
    "OpenAI Language Model Instance API",
    "OpenAI Dall-E API",
    "OpenAI Sora API",
    "OpenAI Moderations API",
    "OpenAI Whisper API",
    "OpenAI Model Scaleset API",
    "OpenAI Realtime API",
    "Token Service API",
];

/// OpenAI: the recorded names on the main endpoint. AIServices (a guess): "Cognitive Services"
/// on the main endpoint plus the OpenAI names on the `openai.azure.com` form of its subdomain
/// (the main endpoint without one). Other kinds: "Cognitive Services".
pub(crate) fn endpoints(account: &Account, endpoint: &str) -> Value {
    let kind = &account.spec.kind;
    let mut endpoints = Map::new();
    let openai = match account.spec.custom_subdomain() {
        Some(subdomain) if is_ai_services(kind) => openai_endpoint(subdomain),
        _ => endpoint.to_string(),
    };
    if !is_openai(kind) {
        endpoints.insert("Cognitive Services".into(), json!(endpoint));
    }
    if is_openai(kind) || is_ai_services(kind) {
        for name in OPENAI_ENDPOINTS {
            endpoints.insert((*name).into(), json!(openai));
        }
    }
    Value::Object(endpoints)
}

/// OpenAI (and, a guess, AIServices): the recorded list. Other kinds: network and key
/// capabilities only (a guess).
pub(crate) fn capabilities(kind: &str) -> Value {
    let trusted = json!({"name": "TrustedServices", "value": "Microsoft.CognitiveServices,Microsoft.MachineLearningServices,Microsoft.Search,Microsoft.VideoIndexer"});
    if !(is_openai(kind) || is_ai_services(kind)) {
        return json!([{"name": "VirtualNetworks"}, {"name": "CustomerManagedKey"}, trusted]);
    }
    let mut capabilities = vec![
        json!({"name": "VirtualNetworks"}),
        json!({"name": "CustomerManagedKey"}),
    ];
    for (name, value) in [
        ("MaxFineTuneCount", "500"),
        ("MaxRunningFineTuneCount", "3"),
        ("MaxUserFileCount", "100"),
        ("MaxTrainingFileSize", "512000000"),
        ("MaxUserFileImportDurationInHours", "1"),
        ("MaxFineTuneJobDurationInHours", "720"),
        ("MaxEvaluationRunDurationInHours", "5"),
        ("MaxRunningEvaluationCount", "5"),
        ("MaxRunningGlobalStandardFineTuneCount", "3"),
    ] {
        capabilities.push(json!({"name": name, "value": value}));
    }
    capabilities.push(trusted);
    capabilities.push(json!({"name": "RaiMonitor"}));
    capabilities.push(json!({"name": "quotaRefundsEnabled", "value": "false"}));
    Value::Array(capabilities)
}

/// A throttling rule: `count` requests per `renewal_period` seconds on the (path, method) pairs.
fn rule(key: &str, renewal_period: u32, count: u32, patterns: &[(&str, &str)]) -> Value {
    let patterns: Vec<Value> = patterns
        .iter()
        .map(|(path, method)| json!({"path": path, "method": method}))
        .collect();
    json!({"key": key, "renewalPeriod": renewal_period, "count": count, "matchPatterns": patterns})
}

/// OpenAI (and, a guess, AIServices): the recorded rules. Other kinds (a guess): the recorded
/// catch-all rule alone.
pub(crate) fn call_rate_limit(kind: &str) -> Value {
    let default = rule("default", 1, 30, &[("*", "*")]);
    if !(is_openai(kind) || is_ai_services(kind)) {
        return json!({"rules": [default]});
    }
    let rules = [
        rule(
            "openai.dalle.post",
            1,
            30,
            &[("dalle/*", "POST"), ("openai/images/*", "POST")],
        ),
        rule(
            "openai.dalle.other",
            1,
            30,
            &[("dalle/*", "*"), ("openai/operations/images/*", "*")],
        ),
        rule(
            "openai.assistants.list",
            60,
            120,
            &[("openai/assistants", "GET")],
        ),
        rule("openai.threads.list", 60, 120, &[("openai/threads", "GET")]),
        rule(
            "openai.vectorstores.list",
            60,
            120,
            &[("openai/vector_stores", "GET")],
        ),
        rule(
            "openai.assistants.default",
            1,
            100_000,
            &[
                ("openai/assistants", "*"),
                ("openai/assistants/*", "*"),
                ("openai/threads", "*"),
                ("openai/threads/*", "*"),
                ("openai/vector_stores", "*"),
                ("openai/vector_stores/*", "*"),
            ],
        ),
        rule(
            "openai.responses.default",
            1,
            100_000,
            &[("openai/responses", "*"), ("openai/responses/*", "*")],
        ),
        rule(
            "openai.batches.post",
            60,
            30,
            &[("openai/v1/batches", "POST"), ("openai/batches", "POST")],
        ),
        rule(
            "openai.batches.get",
            60,
            500,
            &[("openai/v1/batches/*", "GET"), ("openai/batches/*", "GET")],
        ),
        rule(
            "openai.batches.list",
            60,
            100,
            &[("openai/v1/batches", "GET"), ("openai/batches", "GET")],
        ),
        rule("openai", 1, 30, &[("openai/*", "*")]),
        default,
    ];
    json!({"rules": rules})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_skus_match_case_insensitively() {
        assert!(is_known_kind("openai") && is_known_kind("Bing.Search"));
        assert!(!is_known_kind("OpenAi2"));
        assert!(is_known_sku("s0") && is_known_sku("DC0"));
        assert!(!is_known_sku("S9") && !is_known_sku("Standard"));
    }

    #[test]
    fn openai_accounts_have_the_recorded_rules_and_capabilities() {
        assert_eq!(
            call_rate_limit("OpenAI")["rules"].as_array().unwrap().len(),
            12
        );
        assert_eq!(capabilities("OpenAI").as_array().unwrap().len(), 14);
        assert_eq!(call_rate_limit("Face")["rules"][0]["key"], "default");
    }
}
