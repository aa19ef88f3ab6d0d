//! Microsoft.Resources resource groups: `PUT/GET/HEAD/DELETE /subscriptions/{s}/resourceGroups/{rg}`
//! and the Location URL of a deletion, `/subscriptions/{s}/operationresults/{token}`, at the
//! stable api-versions the SDKs send. Their own routes and api-version check, apart from the
//! Microsoft.CognitiveServices ones; the groups live in [`State`] (what seeding adds to as well).
//! Listing and PATCH are not emulated.

use std::collections::HashMap;

use axum::http::request::Parts;
use axum::http::{HeaderName, Method, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::ResourceGroupSeed;
use super::error::ArmError;
use super::model::{AccountKey, normalize_location, same_location};
use super::operations::Pacing;
use super::provider::{Reply, Settings};
use super::schema;
use super::store::State;

/// The oldest Microsoft.Resources api-version accepted; any later stable date is.
const OLDEST_API_VERSION: &str = "2016-09-01";

/// A resource group as the emulator keeps it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceGroup {
    #[serde(flatten)]
    pub seed: ResourceGroupSeed,
    pub tags: Map<String, Value>,
    /// The token of the deletion under way, if one is.
    #[serde(skip)]
    pub deleting: Option<String>,
}

impl ResourceGroup {
    pub(crate) fn seeded(seed: ResourceGroupSeed) -> Self {
        Self {
            seed,
            tags: Map::new(),
            deleting: None,
        }
    }

    fn provisioning_state(&self) -> &'static str {
        match self.deleting {
            Some(_) => "Deleting",
            None => "Succeeded",
        }
    }

    /// The body Azure answers for a group.
    fn render(&self) -> Value {
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}", self.seed.subscription_id, self.seed.name),
            "name": self.seed.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": normalize_location(&self.seed.location),
            "tags": self.tags,
            "properties": {"provisioningState": self.provisioning_state()},
        })
    }

    /// What `GET /_emulator/state` shows.
    pub(crate) fn summary(&self) -> Value {
        let mut summary = json!(self);
        summary["provisioningState"] = json!(self.provisioning_state());
        summary
    }
}

/// The deletion of a group: its accounts are soft-deleted at once, the group goes when it ends.
#[derive(Clone, Debug)]
pub(crate) struct GroupDeletion {
    subscription_id: String,
    group: (String, String),
    /// A client that waits the Retry-After it was given finds the deletion over, as both
    /// recordings show; nothing is left to wait for once the accounts are soft-deleted.
    ends_at: Timestamp,
    ended: bool,
}

/// The state key of a group: lowercased (subscription, name).
pub(crate) fn group_key(subscription: &str, name: &str) -> (String, String) {
    (subscription.to_ascii_lowercase(), name.to_ascii_lowercase())
}

/// The Microsoft.Resources endpoints the emulator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GroupRoute {
    /// The list of a subscription's groups, which is not emulated.
    Groups {
        subscription: String,
    },
    Group {
        subscription: String,
        name: String,
    },
    DeletionResult {
        subscription: String,
        token: String,
    },
}

impl GroupRoute {
    /// `None` when the path is not one of them.
    pub(crate) fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [subscriptions, subscription, groups]
                if subscriptions.eq_ignore_ascii_case("subscriptions")
                    && groups.eq_ignore_ascii_case("resourceGroups") =>
            {
                Some(Self::Groups {
                    subscription: subscription.to_string(),
                })
            }
            [subscriptions, subscription, groups, name]
                if subscriptions.eq_ignore_ascii_case("subscriptions")
                    && groups.eq_ignore_ascii_case("resourceGroups") =>
            {
                Some(Self::Group {
                    subscription: subscription.to_string(),
                    name: name.to_string(),
                })
            }
            [subscriptions, subscription, results, token]
                if subscriptions.eq_ignore_ascii_case("subscriptions")
                    && results.eq_ignore_ascii_case("operationresults") =>
            {
                Some(Self::DeletionResult {
                    subscription: subscription.to_string(),
                    token: token.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// One Microsoft.Resources request, authenticated and admitted, its api-version checked.
pub(crate) struct GroupCall<'a> {
    method: Method,
    api_version: String,
    body: &'a [u8],
    base_url: &'a str,
    now: Timestamp,
    retry_after_secs: u64,
}

impl<'a> GroupCall<'a> {
    pub(crate) fn of(
        parts: &Parts,
        body: &'a [u8],
        base_url: &'a str,
        now: Timestamp,
        settings: Settings,
    ) -> Result<Self, ArmError> {
        let query = parts.uri.query().unwrap_or("");
        let api_version = url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "api-version")
            .map(|(_, value)| value.into_owned())
            .ok_or(ArmError::MissingApiVersion)?;
        check_api_version(&api_version)?;
        Ok(Self {
            method: parts.method.clone(),
            api_version,
            body,
            base_url,
            now,
            retry_after_secs: settings.retry_after_secs,
        })
    }

    fn location_url(&self, subscription: &str, token: &str) -> String {
        format!(
            "{}/subscriptions/{subscription}/operationresults/{token}?api-version={}",
            self.base_url, self.api_version
        )
    }
}

/// Accepts any stable (no `-preview`) `YYYY-MM-DD` date from 2016-09-01: the SDKs send
/// 2020-06-01 (Azure Service Operator), 2021-04-01 (armresources) and later ones.
fn check_api_version(version: &str) -> Result<(), ArmError> {
    let well_formed = version.len() == 10
        && version.as_bytes()[4] == b'-'
        && version.as_bytes()[7] == b'-'
        && version.parse::<jiff::civil::Date>().is_ok();
    // Same-length ISO dates compare correctly as strings.
    if well_formed && version >= OLDEST_API_VERSION {
        Ok(())
    } else {
        Err(ArmError::InvalidResourcesApiVersion(version.to_string()))
    }
}

pub(crate) fn handle(
    state: &mut State,
    route: &GroupRoute,
    call: &GroupCall,
) -> Result<Reply, ArmError> {
    match (route, call.method.clone()) {
        (GroupRoute::Group { subscription, name }, Method::PUT) => {
            put(state, subscription, name, call)
        }
        (GroupRoute::Group { subscription, name }, Method::GET) => {
            let group = existing(state, subscription, name)?;
            Ok(reply(StatusCode::OK, Some(group.render()), Vec::new()))
        }
        (GroupRoute::Group { subscription, name }, Method::HEAD) => {
            let status = match existing(state, subscription, name) {
                Ok(_) => StatusCode::NO_CONTENT,
                Err(_) => StatusCode::NOT_FOUND,
            };
            Ok(reply(status, None, Vec::new()))
        }
        (GroupRoute::Group { subscription, name }, Method::DELETE) => {
            delete(state, subscription, name, call)
        }
        (
            GroupRoute::DeletionResult {
                subscription,
                token,
            },
            Method::GET,
        ) => deletion_result(state, subscription, token, call),
        (GroupRoute::Groups { subscription }, _) => Err(ArmError::NoRegisteredProviderFound(
            format!("/subscriptions/{subscription}/resourceGroups"),
        )),
        (_, method) => Err(ArmError::MethodNotAllowed(method.to_string())),
    }
}

fn reply(status: StatusCode, body: Option<Value>, headers: Vec<(HeaderName, String)>) -> Reply {
    Reply {
        status,
        body,
        headers,
    }
}

fn existing<'s>(
    state: &'s State,
    subscription: &str,
    name: &str,
) -> Result<&'s ResourceGroup, ArmError> {
    state
        .resource_groups
        .get(&group_key(subscription, name))
        .ok_or_else(|| ArmError::ResourceGroupNotFound(name.to_string()))
}

/// Creates (201) or updates (200) a group, synchronously: its tags are replaced by those sent
/// (none sent: none kept), and its location cannot change.
fn put(
    state: &mut State,
    subscription: &str,
    name: &str,
    call: &GroupCall,
) -> Result<Reply, ArmError> {
    let body = schema::parse_object(call.body)?;
    let location = match body.get("location") {
        Some(Value::String(location)) if !location.trim().is_empty() => {
            normalize_location(location)
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ArmError::LocationRequired);
        }
        Some(_) => {
            return Err(ArmError::invalid_content(
                "The value of property 'location' must be a string.".to_string(),
                Some("location"),
            ));
        }
    };
    let tags = tags_of(&body)?;
    let key = group_key(subscription, name);
    if let Some(group) = state.resource_groups.get_mut(&key) {
        if group.deleting.is_some() {
            return Err(ArmError::ResourceGroupBeingDeleted(group.seed.name.clone()));
        }
        if !same_location(&group.seed.location, &location) {
            return Err(ArmError::InvalidResourceGroupLocation {
                requested: location,
                existing: normalize_location(&group.seed.location),
            });
        }
        group.tags = tags;
        return Ok(reply(StatusCode::OK, Some(group.render()), Vec::new()));
    }
    let mut group = ResourceGroup::seeded(ResourceGroupSeed {
        subscription_id: subscription.to_string(),
        name: name.to_string(),
        location,
    });
    group.tags = tags;
    let body = group.render();
    state.resource_groups.insert(key, group);
    Ok(reply(StatusCode::CREATED, Some(body), Vec::new()))
}

fn tags_of(body: &Value) -> Result<Map<String, Value>, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(tags)) if tags.values().all(Value::is_string) => Ok(tags.clone()),
        Some(_) => Err(ArmError::invalid_content(
            "The value of property 'tags' must be an object of strings.".to_string(),
            Some("tags"),
        )),
    }
}

/// Starts deleting a group (202 + Location + Retry-After): its active accounts are soft-deleted
/// now, as Azure soft-deletes accounts removed with their group, and their deployments go.
fn delete(
    state: &mut State,
    subscription: &str,
    name: &str,
    call: &GroupCall,
) -> Result<Reply, ArmError> {
    let key = group_key(subscription, name);
    let group = state
        .resource_groups
        .get(&key)
        .ok_or_else(|| ArmError::ResourceGroupNotFound(name.to_string()))?;
    let token = match &group.deleting {
        Some(token) => token.clone(),
        None => start_deletion(state, subscription, name, call),
    };
    let headers = vec![
        (header::LOCATION, call.location_url(subscription, &token)),
        (header::RETRY_AFTER, call.retry_after_secs.to_string()),
    ];
    Ok(reply(StatusCode::ACCEPTED, None, headers))
}

fn start_deletion(state: &mut State, subscription: &str, name: &str, call: &GroupCall) -> String {
    let key = group_key(subscription, name);
    let accounts: Vec<AccountKey> = state
        .accounts_in_group(subscription, name)
        .map(|account| account.key())
        .collect();
    for account in &accounts {
        state.soft_delete(account, call.now);
        state.remove_deployments_of(account, call.now);
    }
    let location = state
        .resource_groups
        .get(&key)
        .map(|group| normalize_location(&group.seed.location))
        .unwrap_or_default();
    let token = deletion_token(name, &location);
    if let Some(group) = state.resource_groups.get_mut(&key) {
        group.deleting = Some(token.clone());
    }
    let ends_at = call
        .now
        .saturating_add(SignedDuration::from_secs(
            i64::try_from(call.retry_after_secs).unwrap_or(i64::MAX),
        ))
        .unwrap_or(Timestamp::MAX);
    state.group_deletions.insert(
        token.clone(),
        GroupDeletion {
            subscription_id: subscription.to_string(),
            group: key,
            ends_at,
            ended: false,
        },
    );
    token
}

/// Azure's form of the token: base64url of the deletion job's id and location.
fn deletion_token(name: &str, location: &str) -> String {
    let job = format!(
        "RESOURCEGROUPDELETIONJOB-{}-{}",
        name.to_ascii_uppercase().replace('-', ":2D"),
        location.to_ascii_uppercase()
    );
    URL_SAFE_NO_PAD.encode(json!({"jobId": job, "jobLocation": location}).to_string())
}

/// The Location URL of a deletion: 202 while it runs, then 200 with no body.
fn deletion_result(
    state: &State,
    subscription: &str,
    token: &str,
    call: &GroupCall,
) -> Result<Reply, ArmError> {
    let deletion = state
        .group_deletions
        .get(token)
        .filter(|deletion| deletion.subscription_id.eq_ignore_ascii_case(subscription))
        .ok_or_else(|| ArmError::OperationNotFound(token.to_string()))?;
    if deletion.ended {
        return Ok(reply(StatusCode::OK, None, Vec::new()));
    }
    let headers = vec![
        (header::LOCATION, call.location_url(subscription, token)),
        (header::RETRY_AFTER, call.retry_after_secs.to_string()),
    ];
    Ok(reply(StatusCode::ACCEPTED, None, headers))
}

impl State {
    /// Ends the deletions that are due (their groups go) and forgets those whose Location URL
    /// has expired, as operations' URLs do.
    pub(crate) fn settle_group_deletions(&mut self, now: Timestamp, pacing: Pacing) {
        if self.group_deletions.is_empty() {
            return;
        }
        let deletions: &mut HashMap<String, GroupDeletion> = &mut self.group_deletions;
        for (token, deletion) in deletions.iter_mut() {
            if !deletion.ended && deletion.ends_at <= now {
                deletion.ended = true;
                let deleting = self
                    .resource_groups
                    .get(&deletion.group)
                    .and_then(|group| group.deleting.as_ref());
                if deleting == Some(token) {
                    self.resource_groups.remove(&deletion.group);
                }
            }
        }
        if let Some(retention) = pacing.retention {
            let retention = SignedDuration::try_from(retention).unwrap_or(SignedDuration::MAX);
            deletions.retain(|_, deletion| {
                !deletion.ended || now.duration_since(deletion.ends_at) < retention
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_and_deletion_routes_case_insensitively() {
        assert_eq!(
            GroupRoute::parse("/subscriptions/s/resourcegroups/rg"),
            Some(GroupRoute::Group {
                subscription: "s".into(),
                name: "rg".into()
            })
        );
        assert_eq!(
            GroupRoute::parse("/subscriptions/s/operationResults/abc"),
            Some(GroupRoute::DeletionResult {
                subscription: "s".into(),
                token: "abc".into()
            })
        );
        assert_eq!(
            GroupRoute::parse("/subscriptions/s/resourceGroups"),
            Some(GroupRoute::Groups {
                subscription: "s".into()
            })
        );
        assert_eq!(
            GroupRoute::parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts"
            ),
            None
        );
    }

    #[test]
    fn stable_api_versions_from_2016_09_01_are_accepted() {
        for version in [
            "2016-09-01",
            "2020-06-01",
            "2021-04-01",
            "2025-04-01",
            "2030-01-01",
        ] {
            assert!(check_api_version(version).is_ok(), "{version}");
        }
        for version in [
            "2016-07-01",
            "2021-04-01-preview",
            "2021-13-01",
            "latest",
            "",
        ] {
            assert!(check_api_version(version).is_err(), "{version}");
        }
    }

    #[test]
    fn the_deletion_token_has_azures_form() {
        // What the recording's Location carries for asotest-rg-zorxyy in westus2.
        assert_eq!(
            deletion_token("asotest-rg-zorxyy", "westus2"),
            "eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQi1BU09URVNUOjJEUkc6MkRaT1JYWVktV0VTVFVTMiIsImpvYkxvY2F0aW9uIjoid2VzdHVzMiJ9"
        );
    }
}
