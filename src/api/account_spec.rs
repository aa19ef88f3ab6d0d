//! What a `CognitiveServicesAccount` spec means (its Azure name, its resync period) and the
//! checks of it that the CRD schema makes too: for manifests that never met an API server, and
//! for the field errors both kinds report.

use std::time::Duration;

use super::account::*;
use crate::arm::models::{AccountWritableProperties, is_guid};

/// A spec field that fails validation, named by its path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub(super) fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Parses a duration like `10m`, `1h30m`, `90s`, `500ms` or `0`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        total += unit.checked_mul(u32::try_from(value).ok()?)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// Checks a name against ARM's account-name rule.
pub fn valid_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    (2..=64).contains(&name.chars().count())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub(super) fn check_enum(
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<(), FieldError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(field_error(
            field,
            format!(
                "unsupported value {v:?}: expected one of {}",
                allowed.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

impl CognitiveServicesAccountSpec {
    /// The name of the account in Azure.
    pub fn azure_name<'a>(&'a self, metadata_name: &'a str) -> &'a str {
        self.azure_name.as_deref().unwrap_or(metadata_name)
    }

    /// The drift-check period; `None` when periodic checks are off.
    pub fn resync(&self) -> Option<Duration> {
        resync_period(self.resync_interval.as_deref())
    }

    /// Checks what the CRD schema checks (for manifests that never met an API server, and for
    /// objects stored before a schema change), naming the first bad field.
    pub fn validate(&self, metadata_name: &str) -> Result<(), FieldError> {
        self.validate_name(metadata_name)?;
        self.validate_required()?;
        self.validate_scope()?;
        self.validate_settings()?;
        self.validate_references()
    }

    /// The account name: `spec.azureName`, or `metadata.name` when it is not set.
    fn validate_name(&self, metadata_name: &str) -> Result<(), FieldError> {
        check_azure_name("account", self.azure_name.as_deref(), metadata_name)
    }

    /// Fields without which nothing can be planned.
    fn validate_required(&self) -> Result<(), FieldError> {
        for (field, value) in [
            ("spec.resourceGroup", &self.resource_group),
            ("spec.location", &self.location),
            ("spec.kind", &self.kind),
            ("spec.sku.name", &self.sku.name),
        ] {
            if value.trim().is_empty() {
                return Err(field_error(field, "is required"));
            }
        }
        Ok(())
    }

    /// Where the account is. These become segments of ARM paths, and the namespace's grant is
    /// checked against them: a value with '/' or '..' could walk the path to another scope.
    fn validate_scope(&self) -> Result<(), FieldError> {
        if let Some(subscription) = &self.subscription_id
            && !is_guid(subscription)
        {
            return Err(field_error(
                "spec.subscriptionId",
                format!(
                    "{subscription:?} is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)"
                ),
            ));
        }
        if !valid_resource_group(&self.resource_group) {
            return Err(field_error(
                "spec.resourceGroup",
                format!(
                    "{:?} is not a valid resource group name: 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.'",
                    self.resource_group
                ),
            ));
        }
        if !self
            .location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            return Err(field_error(
                "spec.location",
                format!(
                    "{:?} is not an Azure location such as westus or \"West US\"",
                    self.location
                ),
            ));
        }
        Ok(())
    }

    /// Enums and durations.
    fn validate_settings(&self) -> Result<(), FieldError> {
        check_resync_interval(self.resync_interval.as_deref())?;
        check_enum(
            "spec.sku.tier",
            self.sku.tier.as_deref(),
            &["Free", "Basic", "Standard", "Premium", "Enterprise"],
        )?;
        if let Some(identity) = &self.identity {
            check_enum(
                "spec.identity.type",
                identity.identity_type.as_deref(),
                &[
                    "None",
                    "SystemAssigned",
                    "UserAssigned",
                    "SystemAssigned, UserAssigned",
                ],
            )?;
        }
        Ok(())
    }

    /// The tags, the writable properties and the Secret names.
    fn validate_references(&self) -> Result<(), FieldError> {
        if let Some(tags) = &self.tags {
            check_tags(tags.len(), tags.iter().map(|(name, _)| name))?;
        }
        if let Some(properties) = &self.properties {
            validate_properties(properties)?;
        }
        for (field, reference) in [
            (
                "spec.credentialsSecretRef.name",
                &self.credentials_secret_ref,
            ),
            ("spec.connectionSecret.name", &self.connection_secret),
        ] {
            if let Some(r) = reference
                && !valid_dns_subdomain(&r.name)
            {
                return Err(field_error(
                    field,
                    format!("{:?} is not a valid Secret name", r.name),
                ));
            }
        }
        Ok(())
    }
}

/// `spec.tags`: within Azure's count, and never the owner tag, whose value says who manages the
/// resource (a spec could otherwise claim, or disown, what it names).
pub(super) fn check_tags<'a>(
    count: usize,
    mut names: impl Iterator<Item = &'a str>,
) -> Result<(), FieldError> {
    if count > MAX_SPEC_TAGS {
        return Err(field_error(
            "spec.tags",
            format!(
                "{count} tags is too many: Azure allows 50 on a resource, one of them the operator's own, so at most {MAX_SPEC_TAGS}"
            ),
        ));
    }
    match names.find(|name| is_owner_tag(name)) {
        Some(name) => Err(field_error(
            "spec.tags",
            format!(
                "may not set {name}: {OWNER_TAG}, in any letter case, is the tag the operator sets itself"
            ),
        )),
        None => Ok(()),
    }
}

/// The drift-check period `spec.resyncInterval` asks for (default [`DEFAULT_RESYNC`]); `None`
/// when periodic checks are off.
pub(super) fn resync_period(interval: Option<&str>) -> Option<Duration> {
    let interval = interval.map_or(DEFAULT_RESYNC, |text| {
        parse_duration(text).unwrap_or(DEFAULT_RESYNC)
    });
    (!interval.is_zero()).then_some(interval)
}

pub(super) fn check_resync_interval(interval: Option<&str>) -> Result<(), FieldError> {
    match interval {
        Some(text) if parse_duration(text).is_none() => Err(field_error(
            "spec.resyncInterval",
            format!("{text:?} is not a duration like 10m, 1h, 90s or 0"),
        )),
        _ => Ok(()),
    }
}

/// The Azure name of a resource (`what`: account or deployment): `spec.azureName`, or
/// `metadata.name` when it is not set, against ARM's naming rule.
pub(super) fn check_azure_name(
    what: &str,
    azure_name: Option<&str>,
    metadata_name: &str,
) -> Result<(), FieldError> {
    let name = azure_name.unwrap_or(metadata_name);
    if valid_account_name(name) {
        return Ok(());
    }
    let field = if azure_name.is_some() {
        "spec.azureName"
    } else {
        "metadata.name"
    };
    Err(field_error(
        field,
        format!(
            "{name:?} is not a valid {what} name: 2-64 characters, letters, digits, '_', '.' and '-', starting with a letter or digit"
        ),
    ))
}

/// Azure's rule for resource group names (Unicode letters and digits are allowed).
fn valid_resource_group(name: &str) -> bool {
    (1..=90).contains(&name.chars().count())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'))
}

fn validate_properties(p: &AccountWritableProperties) -> Result<(), FieldError> {
    check_enum(
        "spec.properties.publicNetworkAccess",
        p.public_network_access.as_deref(),
        &["Enabled", "Disabled"],
    )?;
    if let Some(acls) = &p.network_acls {
        check_enum(
            "spec.properties.networkAcls.defaultAction",
            acls.default_action.as_deref(),
            &["Allow", "Deny"],
        )?;
        check_enum(
            "spec.properties.networkAcls.bypass",
            acls.bypass.as_deref(),
            &["None", "AzureServices"],
        )?;
    }
    if let Some(encryption) = &p.encryption {
        check_enum(
            "spec.properties.encryption.keySource",
            encryption.key_source.as_deref(),
            &["Microsoft.CognitiveServices", "Microsoft.KeyVault"],
        )?;
    }
    if let Some(locations) = &p.locations {
        check_enum(
            "spec.properties.locations.routingMethod",
            locations.routing_method.as_deref(),
            &["Priority", "Weighted", "Performance"],
        )?;
    }
    if let Some(sub) = &p.custom_sub_domain_name {
        let ok = (2..=64).contains(&sub.len())
            && sub.starts_with(|c: char| c.is_ascii_alphanumeric())
            && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(field_error(
                "spec.properties.customSubDomainName",
                format!(
                    "{sub:?} is not a valid subdomain: 2-64 letters, digits and '-', starting with a letter or digit"
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn valid_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CognitiveServicesAccountSpec {
        crate::test_fixtures::openai_spec()
    }

    #[test]
    fn durations_parse_like_kubernetes_ones() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("ten minutes"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn resync_defaults_to_ten_minutes_and_zero_disables_it() {
        let mut s = spec();
        assert_eq!(s.resync(), Some(DEFAULT_RESYNC));
        s.resync_interval = Some("0".into());
        assert_eq!(s.resync(), None);
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(spec().validate("docs-openai"), Ok(()));
        let err = spec().validate("x").unwrap_err();
        assert_eq!(err.field, "metadata.name");
        let mut s = spec();
        s.properties = Some(AccountWritableProperties {
            public_network_access: Some("Maybe".into()),
            ..Default::default()
        });
        let err = s.validate("docs").unwrap_err();
        assert_eq!(err.field, "spec.properties.publicNetworkAccess");
        assert!(err.message.contains("Enabled, Disabled"), "{err}");
        let mut s = spec();
        s.resync_interval = Some("soon".into());
        assert_eq!(s.validate("docs").unwrap_err().field, "spec.resyncInterval");
        let mut s = spec();
        s.connection_secret = Some(LocalSecretReference {
            name: "Not_A_Name".into(),
        });
        assert_eq!(
            s.validate("docs").unwrap_err().field,
            "spec.connectionSecret.name"
        );
    }

    #[test]
    fn the_owner_tag_is_refused_in_any_letter_case() {
        for key in [
            OWNER_TAG,
            "Cognitive-Operator-Owner",
            "COGNITIVE-OPERATOR-OWNER",
        ] {
            let mut s = spec();
            s.tags = Some([(key.to_string(), "team-b/theirs".to_string())].into());
            let error = s.validate("docs").unwrap_err();
            assert_eq!(error.field, "spec.tags", "{key}");
            assert!(error.message.contains(key), "{error}");
        }
        let mut s = spec();
        s.tags = Some((0..50).map(|i| (format!("t{i}"), String::new())).collect());
        assert_eq!(s.validate("docs").unwrap_err().field, "spec.tags");
        s.tags = Some((0..49).map(|i| (format!("t{i}"), String::new())).collect());
        assert_eq!(s.validate("docs"), Ok(()));
    }

    #[test]
    fn scope_fields_that_could_walk_an_arm_path_are_refused() {
        let other = "../../../subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/x";
        for (field, bad) in [
            ("spec.resourceGroup", other),
            ("spec.resourceGroup", ".."),
            ("spec.resourceGroup", "rg%2f.."),
            (
                "spec.subscriptionId",
                "11111111-1111-1111-1111-111111111111/..",
            ),
            ("spec.subscriptionId", "not-a-guid"),
            ("spec.location", "westus/../eastus"),
        ] {
            let mut s = spec();
            match field {
                "spec.resourceGroup" => s.resource_group = bad.into(),
                "spec.subscriptionId" => s.subscription_id = Some(bad.into()),
                _ => s.location = bad.into(),
            }
            let error = s.validate("docs").unwrap_err();
            assert_eq!(error.field, field, "{bad}");
            assert!(error.message.contains(bad), "{error}");
        }
        let mut s = spec();
        s.subscription_id = Some("0A1b2C3d-0000-0000-0000-000000000000".into());
        s.resource_group = "rg_(prod).eu-1".into();
        s.location = "West US 2".into();
        assert_eq!(s.validate("docs"), Ok(()));
    }
}
