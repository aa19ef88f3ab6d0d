//! Which ARM client reconciles a resource: the operator's own identity, or the identity in the
//! resource's `credentialsSecretRef` — a Secret read from the resource's own namespace only
//! (`LocalSecretReference` has no namespace field, and none is ever added here).
//!
//! Clients are cached per (namespace, Secret name, Secret resourceVersion): an unchanged Secret
//! reuses its client (and its token cache); an edited one gets a new client. A client is kept
//! while some resource uses its Secret: the cache forgets it when the last one is deleted or
//! names another Secret.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::error::Error;
use super::grants::describe_unreadable;
use crate::api::CognitiveServicesAccount;
use crate::arm::{
    ArmClient, ArmClientConfig, ArmError, Cloud, Credential, CredentialMode, IdentitySettings,
};
use crate::tenancy::{AnnotationError, FEDERATED_CLIENT_IDS_ANNOTATION};

/// Keys of a credentials Secret.
pub const TENANT_ID_KEY: &str = "tenantId";
pub const CLIENT_ID_KEY: &str = "clientId";
pub const CLIENT_SECRET_KEY: &str = "clientSecret";

/// The identity a credentials Secret names. `Debug` never shows the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretIdentity {
    pub tenant_id: String,
    pub client_id: String,
    /// `None`: workload identity federated for `client_id`, with the pod's token file.
    pub client_secret: Option<String>,
}

impl fmt::Debug for SecretIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretIdentity")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Builds a token source for a Secret's identity. Replaceable so tests can hand out emulator
/// tokens instead of calling Entra ID.
pub type CredentialFactory =
    Arc<dyn Fn(&SecretIdentity) -> Result<Credential, ArmError> + Send + Sync>;

/// The production factory: a service principal, or workload identity for the Secret's client id
/// using the pod's AZURE_FEDERATED_TOKEN_FILE. (Which client ids a Secret may name is checked
/// before, by [`Credentials`], on every call.)
pub fn azure_credential_factory(
    cloud: Cloud,
    token_scope: Option<String>,
    authority_host: Option<String>,
) -> CredentialFactory {
    Arc::new(move |identity: &SecretIdentity| {
        let federated_token_file = std::env::var_os("AZURE_FEDERATED_TOKEN_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let mode = if identity.client_secret.is_some() {
            CredentialMode::ClientSecret
        } else if federated_token_file.is_some() {
            CredentialMode::WorkloadIdentity
        } else {
            return Err(ArmError::Credential(format!(
                "the Secret has no {CLIENT_SECRET_KEY}, and workload identity needs AZURE_FEDERATED_TOKEN_FILE, which the operator pod does not have"
            )));
        };
        let settings = IdentitySettings {
            tenant_id: Some(identity.tenant_id.clone()),
            client_id: Some(identity.client_id.clone()),
            client_secret: identity.client_secret.clone(),
            federated_token_file,
            authority_host: authority_host.clone(),
        };
        let credential = Credential::new(mode, cloud, &settings, None)?;
        Ok(match &token_scope {
            Some(scope) => credential.with_scope(scope.clone()),
            None => credential,
        })
    })
}

/// Client ids compare case-insensitively (they are GUIDs).
pub fn federated_client_id_allowed(allowed: &[String], client_id: &str) -> bool {
    allowed
        .iter()
        .any(|id| id.trim().eq_ignore_ascii_case(client_id.trim()))
}

struct CachedClient {
    resource_version: Option<String>,
    client: ArmClient,
}

/// (namespace, Secret name).
type SecretKey = (String, String);

#[derive(Default)]
struct Cache {
    clients: HashMap<SecretKey, CachedClient>,
    /// Which Secret each resource (`namespace/name`) last used.
    users: HashMap<String, SecretKey>,
}

impl Cache {
    /// `resource` now uses `secret`; the Secret it used before goes when nobody else does.
    fn note_user(&mut self, resource: String, secret: &SecretKey) {
        if let Some(previous) = self.users.insert(resource, secret.clone())
            && &previous != secret
        {
            self.drop_if_unused(&previous);
        }
    }

    fn release(&mut self, resource: &str) {
        if let Some(previous) = self.users.remove(resource) {
            self.drop_if_unused(&previous);
        }
    }

    fn drop_if_unused(&mut self, secret: &SecretKey) {
        if !self.users.values().any(|used| used == secret) {
            self.clients.remove(secret);
        }
    }
}

/// Hands out the ARM client for each resource.
pub struct Credentials {
    default: ArmClient,
    /// Endpoint, limits and shared metrics for clients built from Secrets.
    template: ArmClientConfig,
    factory: CredentialFactory,
    /// `--allowed-federated-client-ids`: for namespaces without their own list.
    allowed_federated_client_ids: Vec<String>,
    cache: Mutex<Cache>,
}

/// Which client ids a namespace's credentials Secrets may name for workload identity: its
/// annotation's list (`Some`), else the operator's (`None`); `Err`: the annotation does not
/// parse. Workload identity acts with the operator pod's own federated token, so a Secret may
/// name only a client id an admin allowed.
pub type FederatedClientIds = Result<Option<Vec<String>>, AnnotationError>;

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials(default {:?})", self.default)
    }
}

impl Credentials {
    /// `default` serves resources without `credentialsSecretRef`; clients for Secrets are built
    /// from `template` (give it the same `metrics` as `default`, so /metrics adds them up).
    pub fn new(
        default: ArmClient,
        template: ArmClientConfig,
        factory: CredentialFactory,
        allowed_federated_client_ids: Vec<String>,
    ) -> Self {
        Credentials {
            default,
            template,
            factory,
            allowed_federated_client_ids,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The resource `namespace/name` is gone: its Secret's client goes unless another uses it.
    pub fn release(&self, resource: &str) {
        self.cache
            .lock()
            .expect("credentials lock")
            .release(resource);
    }

    pub fn default_client(&self) -> &ArmClient {
        &self.default
    }

    /// The client for `resource`. A missing or incomplete Secret, or one naming a client id
    /// for workload identity that `federated` does not allow, is [`Error::CredentialsInvalid`],
    /// naming the Secret and what is wrong.
    pub async fn client_for(
        &self,
        kube: &kube::Client,
        resource: &CognitiveServicesAccount,
        federated: &FederatedClientIds,
    ) -> Result<ArmClient, Error> {
        let user = format!(
            "{}/{}",
            resource.namespace().unwrap_or_else(|| "default".into()),
            resource.name_any()
        );
        let Some(reference) = &resource.spec.credentials_secret_ref else {
            // A resource that dropped its credentialsSecretRef no longer keeps that client.
            self.release(&user);
            return Ok(self.default.clone());
        };
        // The resource's own namespace, always: there is no way to name another one.
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
        let secret = match secrets.get_opt(&reference.name).await? {
            Some(secret) => secret,
            None => {
                // Whatever client it used before is not its any more.
                self.release(&user);
                return Err(Error::CredentialsInvalid(format!(
                    "credentials Secret {namespace}/{} (spec.credentialsSecretRef) does not exist",
                    reference.name
                )));
            }
        };
        let client = self.client_from_secret(&namespace, &secret, federated, user.clone());
        if client.is_err() {
            self.release(&user);
        }
        client
    }

    /// The cached client for the Secret's version, or a new one; `user` is noted in the same
    /// critical section that inserts it, so a concurrent release cannot orphan it.
    fn client_from_secret(
        &self,
        namespace: &str,
        secret: &Secret,
        federated: &FederatedClientIds,
        user: String,
    ) -> Result<ArmClient, Error> {
        let name = secret.name_any();
        let key = (namespace.to_string(), name.clone());
        let version = secret.resource_version();
        // Before the cache: an allow-list changed since the client was built counts now.
        let identity = read_identity(namespace, secret)?;
        self.check_federated(namespace, &identity, federated)?;
        {
            let mut cache = self.cache.lock().expect("credentials lock");
            if let Some(cached) = cache.clients.get(&key)
                && cached.resource_version == version
            {
                let client = cached.client.clone();
                cache.note_user(user, &key);
                return Ok(client);
            }
        }
        let invalid = |e: ArmError| {
            Error::CredentialsInvalid(format!(
                "credentials Secret {namespace}/{name} cannot be used: {e}"
            ))
        };
        let credential = (self.factory)(&identity).map_err(invalid)?;
        let client =
            ArmClient::new(self.template.clone(), Arc::new(credential)).map_err(invalid)?;
        let mut cache = self.cache.lock().expect("credentials lock");
        cache.clients.insert(
            key.clone(),
            CachedClient {
                resource_version: version,
                client: client.clone(),
            },
        );
        cache.note_user(user, &key);
        Ok(client)
    }
}

impl Credentials {
    /// A Secret asking for workload identity names a client id its namespace's list allows,
    /// or, without one, the operator's.
    fn check_federated(
        &self,
        namespace: &str,
        identity: &SecretIdentity,
        federated: &FederatedClientIds,
    ) -> Result<(), Error> {
        if identity.client_secret.is_some() {
            return Ok(());
        }
        let (allowed, list) = match federated {
            Err(error) => {
                return Err(Error::GrantInvalid(describe_unreadable(namespace, error)));
            }
            Ok(Some(ids)) => (
                ids.as_slice(),
                format!("namespace {namespace}'s annotation {FEDERATED_CLIENT_IDS_ANNOTATION}"),
            ),
            Ok(None) => (
                self.allowed_federated_client_ids.as_slice(),
                "the operator's --allowed-federated-client-ids".to_string(),
            ),
        };
        if federated_client_id_allowed(allowed, &identity.client_id) {
            return Ok(());
        }
        Err(Error::CredentialsInvalid(format!(
            "the credentials Secret has no {CLIENT_SECRET_KEY}, so it asks for workload identity as client id {}, which is not among {list}; a cluster admin adds it there",
            identity.client_id
        )))
    }
}

/// Reads `tenantId`, `clientId` and the optional `clientSecret`, naming the first missing key.
pub fn read_identity(namespace: &str, secret: &Secret) -> Result<SecretIdentity, Error> {
    let name = secret.name_any();
    let value = |key: &str| -> Option<String> {
        let from_data = secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok());
        let from_string_data = || secret.string_data.as_ref()?.get(key).cloned();
        from_data
            .or_else(from_string_data)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let required = |key: &str| {
        value(key).ok_or_else(|| {
            Error::CredentialsInvalid(format!(
                "credentials Secret {namespace}/{name} has no key {key:?} (it needs {TENANT_ID_KEY}, {CLIENT_ID_KEY} and, unless the operator uses workload identity, {CLIENT_SECRET_KEY})"
            ))
        })
    };
    Ok(SecretIdentity {
        tenant_id: required(TENANT_ID_KEY)?,
        client_id: required(CLIENT_ID_KEY)?,
        client_secret: value(CLIENT_SECRET_KEY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(entries: &[(&str, &str)]) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("azure".into());
        secret.data = Some(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        );
        secret
    }

    fn credentials(global: &[&str]) -> Credentials {
        let config = ArmClientConfig::new("http://127.0.0.1:9");
        let default =
            ArmClient::new(config.clone(), Arc::new(Credential::static_token("t"))).unwrap();
        let factory: CredentialFactory =
            Arc::new(|_: &SecretIdentity| Ok(Credential::static_token("secret-token")));
        let global = global.iter().map(|id| id.to_string()).collect();
        Credentials::new(default, config, factory, global)
    }

    fn federated(client_id: &str) -> SecretIdentity {
        SecretIdentity {
            tenant_id: "t".into(),
            client_id: client_id.into(),
            client_secret: None,
        }
    }

    #[test]
    fn a_federated_client_id_must_be_on_the_admins_list() {
        let credentials = credentials(&["AAAA-1"]);
        let refused = credentials
            .check_federated("team", &federated("bbbb-2"), &Ok(None))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("bbbb-2") && refused.contains("--allowed-federated-client-ids"),
            "{refused}"
        );
        assert!(
            credentials
                .check_federated("team", &federated("aaaa-1"), &Ok(None))
                .is_ok()
        );
        let with_secret = SecretIdentity {
            client_secret: Some("s".into()),
            ..federated("bbbb-2")
        };
        assert!(
            credentials
                .check_federated("team", &with_secret, &Ok(None))
                .is_ok(),
            "a service principal is no workload identity"
        );
        assert!(federated_client_id_allowed(&["AAAA-1".into()], "aaaa-1"));
        assert!(!federated_client_id_allowed(&[], "aaaa-1"));
    }

    #[test]
    fn a_namespace_list_replaces_the_global_one() {
        let credentials = credentials(&["aaaa-1"]);
        let own = Ok(Some(vec!["bbbb-2".to_string()]));
        assert!(
            credentials
                .check_federated("team", &federated("bbbb-2"), &own)
                .is_ok()
        );
        let refused = credentials
            .check_federated("team", &federated("aaaa-1"), &own)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(FEDERATED_CLIENT_IDS_ANNOTATION) && refused.contains("team"),
            "the global list no longer applies: {refused}"
        );
        let unreadable = Err(AnnotationError {
            annotation: FEDERATED_CLIENT_IDS_ANNOTATION,
            error: crate::tenancy::parse_client_ids("x").unwrap_err(),
        });
        let error = credentials
            .check_federated("team", &federated("aaaa-1"), &unreadable)
            .unwrap_err();
        assert!(matches!(error, Error::GrantInvalid(_)), "{error}");
    }

    #[test]
    fn a_secret_client_is_kept_while_some_resource_uses_it() {
        let mut cache = Cache::default();
        let (shared, own) = (
            ("team".to_string(), "shared".to_string()),
            ("team".to_string(), "own".to_string()),
        );
        let client = || CachedClient {
            resource_version: None,
            client: ArmClient::new(
                ArmClientConfig::new("http://127.0.0.1:9"),
                Arc::new(Credential::static_token("t")),
            )
            .unwrap(),
        };
        cache.clients.insert(shared.clone(), client());
        cache.clients.insert(own.clone(), client());
        cache.note_user("team/a".into(), &shared);
        cache.note_user("team/b".into(), &shared);
        cache.note_user("team/c".into(), &own);
        cache.note_user("team/c".into(), &shared);
        assert!(
            !cache.clients.contains_key(&own),
            "c moved to another Secret"
        );
        cache.release("team/a");
        cache.release("team/b");
        assert!(cache.clients.contains_key(&shared), "c still uses it");
        cache.release("team/c");
        assert!(cache.clients.is_empty() && cache.users.is_empty());
    }

    #[test]
    fn the_first_missing_key_is_named() {
        let err = read_identity("team", &secret(&[("tenantId", "t")])).unwrap_err();
        assert!(err.to_string().contains("team/azure"), "{err}");
        assert!(err.to_string().contains("\"clientId\""), "{err}");
        let err = read_identity("team", &secret(&[("clientId", "c")])).unwrap_err();
        assert!(err.to_string().contains("\"tenantId\""), "{err}");
    }

    #[test]
    fn the_client_secret_is_optional_and_never_printed() {
        let identity = read_identity(
            "team",
            &secret(&[
                ("tenantId", "t"),
                ("clientId", "c"),
                ("clientSecret", "s3cr3t"),
            ]),
        )
        .unwrap();
        assert_eq!(identity.client_secret.as_deref(), Some("s3cr3t"));
        assert!(!format!("{identity:?}").contains("s3cr3t"));
        let federated =
            read_identity("team", &secret(&[("tenantId", "t"), ("clientId", "c")])).unwrap();
        assert_eq!(federated.client_secret, None);
    }
}
