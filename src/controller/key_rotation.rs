//! Key rotation that never rotates twice for one request and never loses the key it published.
//!
//! `regenerateKey` is the one ARM call whose repetition does harm: each call invalidates the key
//! the previous one returned. So before regenerating, the operator marks the resource
//! ([`ROTATION_ANNOTATION`]: which key, and a fingerprint of the key being replaced). The marker
//! goes only together with the request, in one patch, after the new keys are in the Secret.
//! A reconcile that finds a marker finishes that rotation instead of starting another, by what
//! Azure has (the marker's fingerprint is of Azure's key when the rotation began):
//! - Azure's key differs from the replaced one: it was regenerated; publish what Azure has (a
//!   no-op when an earlier reconcile already did);
//! - Azure still has the replaced key: the regeneration never happened: regenerate now.
//!
//! The fingerprint is a truncated SHA-256 of the key: it tells keys apart and reveals nothing.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::error::Error;
use crate::api::CognitiveServicesAccount;
use crate::arm::{AccountRef, ApiKeys, ArmClient, KeyName};

/// On the resource, set by the operator: a rotation started and not yet published,
/// `Key1 <fingerprint of the replaced key>` (with ` switch` when `key` moves to it after).
pub const ROTATION_ANNOTATION: &str = "cognitive-operator.dev/rotation-in-progress";

/// One rotation: the key regenerated, whether the Secret's `key` switches to it, and which key
/// value it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub key: KeyName,
    pub switch: bool,
    pub replaces: String,
}

impl Rotation {
    pub fn parse(text: &str) -> Option<Rotation> {
        let mut words = text.split_whitespace();
        let key = words.next()?.parse().ok()?;
        let replaces = words.next()?.to_string();
        let switch = match words.next() {
            None => false,
            Some("switch") => true,
            Some(_) => return None,
        };
        words.next().is_none().then_some(Rotation {
            key,
            switch,
            replaces,
        })
    }

    fn annotation(&self) -> String {
        let switch = if self.switch { " switch" } else { "" };
        format!("{:?} {}{switch}", self.key, self.replaces)
    }
}

/// A rotation to begin or one a failed reconcile began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    New { key: KeyName, switch: bool },
    Resume(Rotation),
}

/// The keys once the rotation is done, the rotation, and whether these keys are news to the
/// Secret (false when an earlier reconcile already published them).
pub struct Rotated {
    pub keys: ApiKeys,
    pub rotation: Rotation,
    pub newly_published: bool,
}

/// Runs `start` to its end. `published` are the keys the Secret holds for this account.
pub async fn rotate(
    accounts: &Api<CognitiveServicesAccount>,
    resource: &CognitiveServicesAccount,
    arm: &ArmClient,
    target: &AccountRef,
    published: Option<&ApiKeys>,
    start: Start,
) -> Result<Rotated, Error> {
    let rotation = match start {
        Start::New { key, switch } => {
            // What Azure has now, not the Secret's copy: if the two differ, only Azure's tells a
            // regeneration that happened from one that did not.
            let current = arm.list_keys(target).await?;
            let rotation = Rotation {
                key,
                switch,
                replaces: fingerprint(key_of(&current, key)),
            };
            mark(accounts, resource, &rotation).await?;
            rotation
        }
        Start::Resume(rotation) => {
            // Azure's key alone tells whether the regeneration happened: the Secret may have
            // been stale before the rotation began.
            let listed = arm.list_keys(target).await?;
            if fingerprint(key_of(&listed, rotation.key)) != rotation.replaces {
                let newly_published = published != Some(&listed);
                return Ok(Rotated {
                    keys: listed,
                    rotation,
                    newly_published,
                });
            }
            rotation
        }
    };
    let keys = arm.regenerate_key(target, rotation.key).await?;
    Ok(Rotated {
        keys,
        rotation,
        newly_published: true,
    })
}

/// Records the rotation on the resource before the ARM call that makes it, conditional on the
/// resourceVersion read: a reconcile working from a stale copy (one that does not show the
/// marker an earlier reconcile set) gets a conflict and retries, never a second rotation.
async fn mark(
    accounts: &Api<CognitiveServicesAccount>,
    resource: &CognitiveServicesAccount,
    rotation: &Rotation,
) -> Result<(), Error> {
    let patch = json!({"metadata": {
        "annotations": {ROTATION_ANNOTATION: rotation.annotation()},
        "resourceVersion": resource.resource_version(),
    }});
    accounts
        .patch(
            &resource.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

pub fn key_of(keys: &ApiKeys, name: KeyName) -> Option<&str> {
    match name {
        KeyName::Key1 => keys.key1.as_deref(),
        KeyName::Key2 => keys.key2.as_deref(),
    }
}

pub fn other(name: KeyName) -> KeyName {
    match name {
        KeyName::Key1 => KeyName::Key2,
        KeyName::Key2 => KeyName::Key1,
    }
}

/// 16 hex digits of the key's SHA-256 (`none` for no key).
pub fn fingerprint(key: Option<&str>) -> String {
    let Some(key) = key else {
        return "none".into();
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_a_hand_edited_one_is_not_trusted() {
        for rotation in [
            Rotation {
                key: KeyName::Key2,
                switch: true,
                replaces: fingerprint(Some("old")),
            },
            Rotation {
                key: KeyName::Key1,
                switch: false,
                replaces: "none".into(),
            },
        ] {
            assert_eq!(Rotation::parse(&rotation.annotation()), Some(rotation));
        }
        for bad in [
            "",
            "Key3 abc",
            "Key1",
            "Key1 abc please",
            "Key1 abc switch x",
        ] {
            assert_eq!(Rotation::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_do_not_contain_them() {
        let a = fingerprint(Some("0123456789abcdef0123456789abcdef"));
        assert_ne!(a, fingerprint(Some("0123456789abcdef0123456789abcdee")));
        assert_eq!(a.len(), 16);
        assert!(!"0123456789abcdef0123456789abcdef".contains(&a));
    }
}
