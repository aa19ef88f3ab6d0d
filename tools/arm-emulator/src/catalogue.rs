//! The model catalogue deployments draw on: a fixed, small set of OpenAI models, the SKUs each
//! allows with their capacity ranges, and the default quota of each (model, SKU). The same in
//! every location (Azure's differs by region; tests need one answer).

/// The one model format the catalogue holds.
pub(crate) const OPENAI_FORMAT: &str = "OpenAI";

/// A deployment SKU: its capacity range and the quota a subscription gets per location.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SkuRange {
    pub name: &'static str,
    pub minimum: u32,
    pub maximum: u32,
    pub default: u32,
    /// Quota limit per (subscription, location, model) until `set_quota` changes it.
    pub default_limit: u32,
}

impl SkuRange {
    pub(crate) fn allows(&self, capacity: i64) -> bool {
        (i64::from(self.minimum)..=i64::from(self.maximum)).contains(&capacity)
    }

    /// Provisioned throughput is billed by the hour whether used or not; the other SKUs per token.
    pub(crate) fn bills_hourly(name: &str) -> bool {
        name.ends_with("ProvisionedManaged")
    }
}

const STANDARD: SkuRange = SkuRange {
    name: "Standard",
    minimum: 1,
    maximum: 1000,
    default: 1,
    default_limit: 1000,
};

const GLOBAL_STANDARD: SkuRange = SkuRange {
    name: "GlobalStandard",
    ..STANDARD
};

const PROVISIONED_MANAGED: SkuRange = SkuRange {
    name: "ProvisionedManaged",
    minimum: 15,
    maximum: 1000,
    default: 15,
    default_limit: 100,
};

const GLOBAL_PROVISIONED_MANAGED: SkuRange = SkuRange {
    name: "GlobalProvisionedManaged",
    ..PROVISIONED_MANAGED
};

const CHAT_SKUS: &[SkuRange] = &[
    STANDARD,
    GLOBAL_STANDARD,
    PROVISIONED_MANAGED,
    GLOBAL_PROVISIONED_MANAGED,
];

const EMBEDDING_SKUS: &[SkuRange] = &[STANDARD, GLOBAL_STANDARD];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Chat,
    Embedding,
}

/// One version of one model.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CatalogueModel {
    pub name: &'static str,
    pub version: &'static str,
    pub family: Family,
    pub is_default_version: bool,
    /// `lifecycleStatus` of the contract's `AccountModel`.
    pub lifecycle_status: &'static str,
    /// When inference stops (only for a deprecated version).
    pub deprecation: Option<&'static str>,
}

const GENERALLY_AVAILABLE: &str = "GenerallyAvailable";
const DEPRECATED: &str = "Deprecated";

const fn model(
    name: &'static str,
    version: &'static str,
    family: Family,
    is_default_version: bool,
) -> CatalogueModel {
    CatalogueModel {
        name,
        version,
        family,
        is_default_version,
        lifecycle_status: GENERALLY_AVAILABLE,
        deprecation: None,
    }
}

pub(crate) const MODELS: &[CatalogueModel] = &[
    CatalogueModel {
        lifecycle_status: DEPRECATED,
        deprecation: Some("2025-03-01T00:00:00Z"),
        ..model("gpt-4o", "2024-05-13", Family::Chat, false)
    },
    model("gpt-4o", "2024-08-06", Family::Chat, false),
    model("gpt-4o", "2024-11-20", Family::Chat, true),
    model("gpt-4o-mini", "2024-07-18", Family::Chat, true),
    model("text-embedding-3-small", "1", Family::Embedding, true),
    model("text-embedding-3-large", "1", Family::Embedding, true),
];

impl CatalogueModel {
    pub(crate) fn skus(&self) -> &'static [SkuRange] {
        match self.family {
            Family::Chat => CHAT_SKUS,
            Family::Embedding => EMBEDDING_SKUS,
        }
    }

    /// The SKU of that name (case-insensitive) if this model allows it.
    pub(crate) fn sku(&self, name: &str) -> Option<&'static SkuRange> {
        self.skus()
            .iter()
            .find(|sku| sku.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn is_deprecated(&self) -> bool {
        self.lifecycle_status == DEPRECATED
    }

    /// The `capabilities` map of the model and of its deployments: as recorded for gpt-4o
    /// 2024-08-06 and 2024-11-20 (spec/azure-recordings/), the 2024-08-06 map for the other chat
    /// versions (not recorded), the emulator's own for embeddings.
    pub(crate) fn capabilities(&self) -> &'static [(&'static str, &'static str)] {
        match (self.family, self.name, self.version) {
            (Family::Chat, "gpt-4o", "2024-11-20") => CHAT_WITHOUT_TOKEN_LIMITS,
            (Family::Chat, ..) => CHAT_CAPABILITIES,
            (Family::Embedding, ..) => &[("embeddings", "true"), ("maxContextToken", "8192")],
        }
    }
}

/// Recorded for gpt-4o 2024-08-06 (`area` is the region's geography: US in the recordings).
const CHAT_CAPABILITIES: &[(&str, &str)] = &[
    ("area", "US"),
    ("assistants", "true"),
    ("chatCompletion", "true"),
    ("jsonSchemaResponse", "true"),
    ("maxContextToken", "128000"),
    ("maxOutputToken", "16384"),
    ("responses", "true"),
];

/// Recorded for gpt-4o 2024-11-20: the same without the token limits.
const CHAT_WITHOUT_TOKEN_LIMITS: &[(&str, &str)] = &[
    ("area", "US"),
    ("assistants", "true"),
    ("chatCompletion", "true"),
    ("jsonSchemaResponse", "true"),
    ("responses", "true"),
];

/// A model by format, name and version (all case-insensitive); no version: the default one.
pub(crate) fn find(
    format: &str,
    name: &str,
    version: Option<&str>,
) -> Option<&'static CatalogueModel> {
    if !format.eq_ignore_ascii_case(OPENAI_FORMAT) {
        return None;
    }
    MODELS.iter().find(|model| {
        model.name.eq_ignore_ascii_case(name)
            && match version {
                Some(version) => model.version.eq_ignore_ascii_case(version),
                None => model.is_default_version,
            }
    })
}

/// Each model name once, with the SKUs it allows: the pairs quotas exist for.
pub(crate) fn quota_pairs() -> impl Iterator<Item = (&'static str, &'static SkuRange)> {
    MODELS
        .iter()
        .filter(|model| model.is_default_version)
        .flat_map(|model| model.skus().iter().map(move |sku| (model.name, sku)))
}

/// `OpenAI.{sku}.{model}`, the quota's `name.value` in the usages list.
pub(crate) fn usage_name(model: &str, sku: &str) -> String {
    format!("{OPENAI_FORMAT}.{sku}.{model}")
}

/// The friendly name of that quota (`name.localizedValue`).
pub(crate) fn usage_display_name(model: &str, sku: &str) -> String {
    if SkuRange::bills_hourly(sku) {
        format!("Provisioned Throughput Units ({sku}) - {model}")
    } else {
        format!("Tokens Per Minute (thousands) ({sku}) - {model}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_exactly_one_default_version() {
        for (name, _) in quota_pairs() {
            let defaults = MODELS
                .iter()
                .filter(|model| model.name == name && model.is_default_version)
                .count();
            assert_eq!(defaults, 1, "{name}");
        }
    }

    #[test]
    fn finds_models_case_insensitively_and_defaults_the_version() {
        let model = find("openai", "GPT-4o", None).unwrap();
        assert_eq!(model.version, "2024-11-20");
        assert!(
            find("OpenAI", "gpt-4o", Some("2024-05-13"))
                .unwrap()
                .is_deprecated()
        );
        assert!(find("Other", "gpt-4o", None).is_none());
        assert!(find("OpenAI", "gpt-4o", Some("2023-01-01")).is_none());
    }

    #[test]
    fn embeddings_allow_no_provisioned_sku() {
        let model = find(OPENAI_FORMAT, "text-embedding-3-small", None).unwrap();
        assert!(model.sku("standard").is_some());
        assert!(model.sku("ProvisionedManaged").is_none());
    }
}
