//! The connection Secret: `endpoint` and, with local auth enabled, `key1`/`key2`, in a Secret the
//! operator owns (controller ownerReference to the resource, so it goes when the resource goes).
//!
//! Keys are read from ARM once per account: the Secret records which account they belong to
//! (`properties.internalId`, which survives soft-delete and restore), so a restored account
//! keeps the keys already stored, and a new account with the same name gets fresh ones. The
//! resource's annotations ask for a re-read (`refresh-keys`) or a regeneration (`rotate-key`,
//! see [`super::key_rotation`]). The Secret's `key` holds one of the two keys (the active one,
//! named by its `active-key` annotation): `rotate-key: Standby` regenerates the other one and
//! then switches `key` to it, so `key` works at every moment of a rotation.
//!
//! Nothing here formats Secret data: keys never reach logs, events or status.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};

use super::error::Error;
use super::key_rotation::{self, ROTATION_ANNOTATION, Rotation, Start};
use crate::api::CognitiveServicesAccount;
use crate::arm::{Account, AccountRef, ApiKeys, ArmClient, KeyName};

/// On the resource: re-read both keys from ARM into the Secret (any value), once.
pub const REFRESH_KEYS_ANNOTATION: &str = "cognitive-operator.dev/refresh-keys";
/// On the resource: regenerate `Key1` or `Key2` in Azure and store the new keys, once; or
/// `Standby`: regenerate the key the Secret's `key` does not hold, then switch `key` to it.
pub const ROTATE_KEY_ANNOTATION: &str = "cognitive-operator.dev/rotate-key";
/// On the Secret: which of the two keys its `key` holds (`Key1` unless a rotation switched it).
pub const ACTIVE_KEY_ANNOTATION: &str = "cognitive-operator.dev/active-key";
/// On the Secret: the account its keys belong to.
pub const ACCOUNT_ANNOTATION: &str = "cognitive-operator.dev/account";
/// On the Secret: lets the controller watch only its own Secrets.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "cognitive-operator";

pub const ENDPOINT_KEY: &str = "endpoint";
pub const KEY1: &str = "key1";
pub const KEY2: &str = "key2";
/// The active key: what workloads should read.
pub const ACTIVE_KEY: &str = "key";

/// What the resource's annotations ask of the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRequest {
    None,
    Refresh,
    Rotate(KeyName),
    /// Regenerate the key the Secret's `key` does not hold, then switch `key` to it.
    RotateStandby,
    /// Finish the rotation a failed reconcile started (the operator's marker).
    Resume(Rotation),
    /// A `rotate-key` value that is neither Key1, Key2 nor Standby.
    InvalidRotate(String),
}

impl KeyRequest {
    /// A rotation in progress comes first; rotation wins over a refresh (it returns fresh
    /// keys anyway).
    pub fn of(resource: &CognitiveServicesAccount) -> Self {
        let annotations = resource.annotations();
        if let Some(rotation) = annotations
            .get(ROTATION_ANNOTATION)
            .and_then(|marker| Rotation::parse(marker))
        {
            return KeyRequest::Resume(rotation);
        }
        if let Some(request) = Self::rotate_request(resource) {
            return request;
        }
        if annotations.contains_key(REFRESH_KEYS_ANNOTATION) {
            return KeyRequest::Refresh;
        }
        KeyRequest::None
    }

    /// What the `rotate-key` annotation alone asks for, marker or not.
    fn rotate_request(resource: &CognitiveServicesAccount) -> Option<KeyRequest> {
        let value = resource.annotations().get(ROTATE_KEY_ANNOTATION)?;
        if value.trim().eq_ignore_ascii_case("standby") {
            return Some(KeyRequest::RotateStandby);
        }
        Some(match value.parse() {
            Ok(key) => KeyRequest::Rotate(key),
            Err(_) => KeyRequest::InvalidRotate(value.clone()),
        })
    }

    /// A `rotate-key` request that is not the rotation this one resumes: it waits for that
    /// rotation to finish and is answered by the next reconcile, never dropped. A request for
    /// what the marker records (the same key; Standby for a switching rotation) is taken for
    /// the one that set it: made again while its rotation runs, it cannot be told apart.
    fn waits_behind_marker(&self, resource: &CognitiveServicesAccount) -> bool {
        let KeyRequest::Resume(rotation) = self else {
            return false;
        };
        match Self::rotate_request(resource) {
            None => false,
            Some(KeyRequest::Rotate(key)) => key != rotation.key || rotation.switch,
            Some(KeyRequest::RotateStandby) => !rotation.switch,
            Some(_) => true,
        }
    }

    /// The rotation this request asks for, given the key the Secret's `key` holds.
    fn rotation(&self, active: KeyName) -> Option<Start> {
        match self {
            KeyRequest::Rotate(key) => Some(Start::New {
                key: *key,
                switch: false,
            }),
            KeyRequest::RotateStandby => Some(Start::New {
                key: key_rotation::other(active),
                switch: true,
            }),
            KeyRequest::Resume(rotation) => Some(Start::Resume(rotation.clone())),
            _ => None,
        }
    }
}

/// What syncing the Secret did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretSync {
    /// The Secret was created or updated.
    pub written: bool,
    /// A key regenerated in Azure (an ARM write: the caller records an event).
    pub regenerated: Option<KeyName>,
    /// The Secret's `key` switched to this key.
    pub switched_to: Option<KeyName>,
    /// Annotations of the resource that are now handled and should be removed.
    pub handled_annotations: Vec<&'static str>,
    /// Requests that could not be honoured: (reason, message) for a Warning event.
    pub refused: Vec<(&'static str, String)>,
    /// The Secret held keys and the right to them ended: why (for a `KeysWithdrawn` event).
    pub withdrawn: Option<String>,
    /// A `rotate-key` request waits behind the rotation this sync finished: reconcile again
    /// soon (removing the marker is no change the watch passes on).
    pub request_waits: bool,
}

/// Where the Secret goes and what it holds.
pub struct ConnectionSecret<'a> {
    pub resource: &'a CognitiveServicesAccount,
    pub name: &'a str,
    pub target: &'a AccountRef,
    pub account: &'a Account,
    /// Regenerating a key is a write; Observe mode never writes to Azure.
    pub may_write_to_azure: bool,
    /// Ok: the resource manages the account, or its namespace may read keys in that scope.
    /// Else why not, and the Secret holds only the endpoint.
    pub may_read_keys: Result<(), String>,
}

/// Creates or updates the connection Secret. A Secret of that name that this resource does not
/// own is never touched: [`Error::SecretConflict`].
pub async fn sync_connection_secret(
    kube: &kube::Client,
    arm: &ArmClient,
    wanted: &ConnectionSecret<'_>,
) -> Result<SecretSync, Error> {
    let resource = wanted.resource;
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    let existing = secrets.get_opt(wanted.name).await?;
    if let Some(secret) = &existing
        && !owned_by(secret, resource)
    {
        return Err(Error::SecretConflict(format!(
            "Secret {namespace}/{} (spec.connectionSecret) already exists and is not owned by this resource; the operator never overwrites it: delete it or choose another name",
            wanted.name
        )));
    }
    let mut sync = SecretSync::default();
    let accounts: Api<CognitiveServicesAccount> = Api::namespaced(kube.clone(), &namespace);
    let keys = keys_to_store(&accounts, arm, wanted, existing.as_ref(), &mut sync).await?;
    if keys.is_none()
        && existing.as_ref().is_some_and(holds_keys)
        && let Err(why) = &wanted.may_read_keys
    {
        sync.withdrawn = Some(why.clone());
    }
    let active = sync
        .switched_to
        .unwrap_or_else(|| active_key(existing.as_ref()));
    let desired = desired_secret(wanted, existing.as_ref(), keys, active);
    match &existing {
        Some(current) if same_content(current, &desired) => {}
        Some(_) => {
            // Replace carries the resourceVersion read above: a concurrent change is a conflict.
            secrets
                .replace(wanted.name, &PostParams::default(), &desired)
                .await?;
            sync.written = true;
        }
        None => {
            secrets.create(&PostParams::default(), &desired).await?;
            sync.written = true;
        }
    }
    Ok(sync)
}

/// Removes the keys (`key`, `key1`, `key2`) from the connection Secret `name` of `resource`,
/// keeping its endpoint: the right to them ended. A Secret this resource does not own is never
/// touched. True when there were keys to remove.
pub async fn withdraw_keys(
    kube: &kube::Client,
    resource: &CognitiveServicesAccount,
    name: &str,
) -> Result<bool, Error> {
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    let Some(mut secret) = secrets.get_opt(name).await? else {
        return Ok(false);
    };
    if !owned_by(&secret, resource) || !holds_keys(&secret) {
        return Ok(false);
    }
    if let Some(data) = secret.data.as_mut() {
        for key in [ACTIVE_KEY, KEY1, KEY2] {
            data.remove(key);
        }
    }
    if let Some(annotations) = secret.metadata.annotations.as_mut() {
        annotations.remove(ACCOUNT_ANNOTATION);
        annotations.remove(ACTIVE_KEY_ANNOTATION);
    }
    secret.metadata.managed_fields = None;
    // Replace carries the resourceVersion read above: a concurrent change is a conflict.
    secrets
        .replace(name, &PostParams::default(), &secret)
        .await?;
    Ok(true)
}

fn holds_keys(secret: &Secret) -> bool {
    secret.data.as_ref().is_some_and(|data| {
        [ACTIVE_KEY, KEY1, KEY2]
            .iter()
            .any(|k| data.contains_key(*k))
    })
}

/// The keys the Secret should hold (`None`: no keys, local auth is disabled).
async fn keys_to_store(
    accounts: &Api<CognitiveServicesAccount>,
    arm: &ArmClient,
    wanted: &ConnectionSecret<'_>,
    existing: Option<&Secret>,
    sync: &mut SecretSync,
) -> Result<Option<ApiKeys>, Error> {
    let request = KeyRequest::of(wanted.resource);
    let annotations = wanted.resource.annotations();
    let refresh = annotations.contains_key(REFRESH_KEYS_ANNOTATION);
    sync.request_waits = request.waits_behind_marker(wanted.resource);
    // Every request present is answered by this sync (a rotation returns fresh keys too),
    // except a rotate-key request waiting behind the marker's rotation.
    sync.handled_annotations.extend(
        [ROTATE_KEY_ANNOTATION, REFRESH_KEYS_ANNOTATION]
            .into_iter()
            .filter(|a| annotations.contains_key(*a))
            .filter(|a| !(sync.request_waits && *a == ROTATE_KEY_ANNOTATION)),
    );
    if annotations.contains_key(ROTATION_ANNOTATION) {
        // Answered by this sync, whatever happens below: finished, or refused (Observe, no key
        // grant, local auth off), or a marker that does not parse (edited by hand: not trusted).
        // It stays only if the sync fails, for the next reconcile to finish.
        sync.handled_annotations.push(ROTATION_ANNOTATION);
    }
    if let Some(refusal) = no_keys_for(wanted) {
        if request != KeyRequest::None {
            sync.refused.push(refusal);
        }
        return Ok(None);
    }
    let recorded_account = existing.and_then(|s| s.annotations().get(ACCOUNT_ANNOTATION));
    let same_account =
        recorded_account.is_some() && recorded_account.cloned() == account_identity(wanted.account);
    let published = stored_keys(existing).filter(|_| same_account);
    // Stored keys are reused only for the same account and when no re-read was asked for.
    let stored = published.clone().filter(|_| !refresh);
    if let Some(start) = request.rotation(active_key(existing))
        && wanted.may_write_to_azure
    {
        let rotated = key_rotation::rotate(
            accounts,
            wanted.resource,
            arm,
            wanted.target,
            published.as_ref(),
            start,
        )
        .await?;
        if rotated.newly_published {
            sync.regenerated = Some(rotated.rotation.key);
        }
        if rotated.rotation.switch {
            sync.switched_to = Some(rotated.rotation.key);
        }
        if !sync.handled_annotations.contains(&ROTATION_ANNOTATION) {
            sync.handled_annotations.push(ROTATION_ANNOTATION);
        }
        return Ok(Some(rotated.keys));
    }
    let keys = match request {
        KeyRequest::Rotate(_) | KeyRequest::RotateStandby | KeyRequest::Resume(_) => {
            sync.refused.push((
                "KeyRotationRefused",
                "reconcilePolicy is Observe: the operator does not regenerate keys".into(),
            ));
            reuse_or_list(arm, wanted.target, stored.clone()).await?
        }
        KeyRequest::InvalidRotate(value) => {
            sync.refused.push((
                "InvalidKeyName",
                format!(
                    "annotation {ROTATE_KEY_ANNOTATION}={value:?} names no key: use Key1, Key2 or Standby"
                ),
            ));
            reuse_or_list(arm, wanted.target, stored.clone()).await?
        }
        KeyRequest::Refresh | KeyRequest::None => reuse_or_list(arm, wanted.target, stored).await?,
    };
    Ok(Some(keys))
}

/// Why the Secret gets no keys at all, if it does not: no right to them, or none to have.
fn no_keys_for(wanted: &ConnectionSecret<'_>) -> Option<(&'static str, String)> {
    if let Err(why) = &wanted.may_read_keys {
        return Some(("KeysNotPublished", why.clone()));
    }
    (!local_auth_enabled(wanted.resource)).then(|| {
        (
            "KeysNotAvailable",
            "spec.properties.disableLocalAuth is true: the account has no usable keys, so none are read, rotated or stored".into(),
        )
    })
}

/// Reusable stored keys, or one `listKeys` call.
async fn reuse_or_list(
    arm: &ArmClient,
    target: &AccountRef,
    stored: Option<ApiKeys>,
) -> Result<ApiKeys, Error> {
    match stored {
        Some(keys) => Ok(keys),
        None => Ok(arm.list_keys(target).await?),
    }
}

pub fn local_auth_enabled(resource: &CognitiveServicesAccount) -> bool {
    let disabled = resource
        .spec
        .properties
        .as_ref()
        .and_then(|p| p.disable_local_auth);
    disabled != Some(true)
}

/// Which account keys belong to: `properties.internalId` (kept through soft-delete and restore,
/// new for a new account), or the ARM id with the creation date when ARM gives no internalId.
pub fn account_identity(account: &Account) -> Option<String> {
    let properties = account.properties.as_ref();
    if let Some(internal_id) = properties.and_then(|p| p.internal_id.clone()) {
        return Some(internal_id);
    }
    let id = account.id.clone()?;
    match properties.and_then(|p| p.date_created.as_deref()) {
        Some(created) => Some(format!("{id}@{created}")),
        None => Some(id),
    }
}

/// Whether `secret` has a controller reference to `resource` (by uid).
pub fn owned_by(secret: &Secret, resource: &CognitiveServicesAccount) -> bool {
    let Some(uid) = resource.meta().uid.as_deref() else {
        return false;
    };
    secret
        .owner_references()
        .iter()
        .any(|owner| owner.uid == uid && owner.controller == Some(true))
}

/// The key the Secret's `key` holds (`Key1` for a Secret without the annotation).
fn active_key(existing: Option<&Secret>) -> KeyName {
    existing
        .and_then(|s| s.annotations().get(ACTIVE_KEY_ANNOTATION))
        .and_then(|name| name.parse().ok())
        .unwrap_or(KeyName::Key1)
}

fn stored_keys(existing: Option<&Secret>) -> Option<ApiKeys> {
    let data = existing?.data.as_ref()?;
    let read = |key: &str| {
        data.get(key)
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
            .filter(|v| !v.is_empty())
    };
    Some(ApiKeys {
        key1: Some(read(KEY1)?),
        key2: Some(read(KEY2)?),
    })
}

/// The Secret as it should be: the existing object (keeping others' labels and annotations)
/// with our data, label, account annotation and controller reference.
fn desired_secret(
    wanted: &ConnectionSecret<'_>,
    existing: Option<&Secret>,
    keys: Option<ApiKeys>,
    active: KeyName,
) -> Secret {
    let resource = wanted.resource;
    let mut secret = existing.cloned().unwrap_or_else(|| Secret {
        type_: Some("Opaque".into()),
        ..Default::default()
    });
    let meta = &mut secret.metadata;
    meta.name = Some(wanted.name.to_string());
    meta.namespace = resource.namespace();
    meta.managed_fields = None;
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    match (keys.is_some(), account_identity(wanted.account)) {
        (true, Some(identity)) => {
            annotations.insert(ACCOUNT_ANNOTATION.into(), identity);
            annotations.insert(ACTIVE_KEY_ANNOTATION.into(), format!("{active:?}"));
        }
        _ => {
            annotations.remove(ACCOUNT_ANNOTATION);
            annotations.remove(ACTIVE_KEY_ANNOTATION);
        }
    }
    if !owned_by(&secret, resource)
        && let Some(owner) = resource.controller_owner_ref(&())
    {
        secret
            .metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(owner);
    }
    secret.string_data = None;
    secret.data = Some(secret_data(wanted.account.endpoint(), keys, active));
    secret
}

fn secret_data(
    endpoint: Option<&str>,
    keys: Option<ApiKeys>,
    active: KeyName,
) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            data.insert(key.to_string(), ByteString(value.into_bytes()));
        }
    };
    put(ENDPOINT_KEY, endpoint.map(str::to_string));
    if let Some(keys) = keys {
        put(
            ACTIVE_KEY,
            key_rotation::key_of(&keys, active).map(str::to_string),
        );
        put(KEY1, keys.key1);
        put(KEY2, keys.key2);
    }
    data
}

fn same_content(current: &Secret, desired: &Secret) -> bool {
    current.data == desired.data
        && current.metadata.labels == desired.metadata.labels
        && current.metadata.annotations == desired.metadata.annotations
        && current.metadata.owner_references == desired.metadata.owner_references
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::models::AccountProperties;

    fn account(internal_id: Option<&str>, created: Option<&str>) -> Account {
        Account {
            id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a".into()),
            properties: Some(AccountProperties {
                internal_id: internal_id.map(Into::into),
                date_created: created.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_account_is_identified_by_internal_id_then_id_and_creation_date() {
        assert_eq!(
            account_identity(&account(Some("abc"), Some("2024"))).as_deref(),
            Some("abc")
        );
        let fallback = account_identity(&account(None, Some("2024-01-01T00:00:00Z"))).unwrap();
        assert!(
            fallback.ends_with("/accounts/a@2024-01-01T00:00:00Z"),
            "{fallback}"
        );
    }

    #[test]
    fn data_holds_keys_only_when_given() {
        let keys = ApiKeys {
            key1: Some("k1".into()),
            key2: Some("k2".into()),
        };
        let with_keys = secret_data(Some("https://e/"), Some(keys.clone()), KeyName::Key1);
        assert_eq!(
            with_keys.keys().collect::<Vec<_>>(),
            ["endpoint", "key", "key1", "key2"]
        );
        assert_eq!(with_keys["key"].0, b"k1");
        let switched = secret_data(None, Some(keys), KeyName::Key2);
        assert_eq!(switched["key"].0, b"k2");
        let without = secret_data(Some("https://e/"), None, KeyName::Key1);
        assert_eq!(without.keys().collect::<Vec<_>>(), ["endpoint"]);
    }

    #[test]
    fn rotation_wins_over_refresh_and_bad_names_are_reported() {
        let mut resource = CognitiveServicesAccount::new("a", Default::default());
        assert_eq!(KeyRequest::of(&resource), KeyRequest::None);
        let annotations = resource.annotations_mut();
        annotations.insert(REFRESH_KEYS_ANNOTATION.into(), "now".into());
        assert_eq!(KeyRequest::of(&resource), KeyRequest::Refresh);
        resource
            .annotations_mut()
            .insert(ROTATE_KEY_ANNOTATION.into(), "key2".into());
        assert_eq!(KeyRequest::of(&resource), KeyRequest::Rotate(KeyName::Key2));
        resource
            .annotations_mut()
            .insert(ROTATE_KEY_ANNOTATION.into(), "Key3".into());
        assert_eq!(
            KeyRequest::of(&resource),
            KeyRequest::InvalidRotate("Key3".into())
        );
    }
}
