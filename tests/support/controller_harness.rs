//! A controller under test: the reconciler wired to a fake Kubernetes API (kube-fake-client)
//! and to the in-process ARM emulator.
//!
//! The fake API has no watch, so the tests call the reconciler the way the Controller would
//! (read the object, reconcile it) and look at what a user would see: the object, its Secret,
//! its events, and the ARM requests the emulator received.
//! (The fake cannot set `deletionTimestamp` and treats server-side apply as a merge patch:
//! deletion and status are tested on a real API server in `tests/e2e.rs`.)

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::fixtures;
use arm_emulator::{Emulator, EmulatorConfig, Profile, RecordedRequest};
use cognitive_operator::api::{
    CognitiveServicesAccount, CognitiveServicesDeployment, LocalSecretReference,
};
use cognitive_operator::arm::{ArmClient, ArmClientConfig, ArmMetrics, Credential};
use cognitive_operator::controller::credentials::{CredentialFactory, Credentials, SecretIdentity};
use cognitive_operator::controller::grants::Grants;
use cognitive_operator::controller::metrics::Metrics;
use cognitive_operator::controller::reconciler::account_api_resource;
use cognitive_operator::controller::{Reconciler, Requeue};
use cognitive_operator::engine::Engine;
use cognitive_operator::tenancy::Grant;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube_fake_client::{ClientBuilder, PatchType, interceptor};
use serde_json::Value;

pub const SUB: &str = "00000000-0000-0000-0000-000000000001";
pub const RG: &str = "rg-controller";
pub const NS: &str = "team-a";
/// The one client id the operator's `--allowed-federated-client-ids` lists.
pub const FEDERATED_CLIENT_ID: &str = "team-a-app";
/// The token of the operator's own identity.
pub const OPERATOR_TOKEN: &str = "operator-token";

/// What the fake API saw of each write the reconciler made, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiWrite {
    /// A patch of `metadata.finalizers`, with the ARM writes the emulator had received by then.
    Finalizers {
        finalizers: Vec<String>,
        arm_writes_before: Vec<RecordedRequest>,
    },
    /// A patch of the status subresource.
    Status {
        patch_type: PatchType,
        field_manager: Option<String>,
    },
}

pub struct Harness {
    pub emulator: Arc<Emulator>,
    pub client: kube::Client,
    pub reconciler: Reconciler,
    pub api_writes: Arc<Mutex<Vec<ApiWrite>>>,
    /// The (namespace, name) of each GET the fake API answered, in order.
    pub api_reads: Arc<Mutex<Vec<(String, String)>>>,
    /// The reconciler's cache of Namespaces: what a cluster admin's annotation changes.
    namespaces: Mutex<NamespaceWriter>,
}

type NamespaceWriter = kube::runtime::reflector::store::Writer<
    kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>,
>;

/// The resources' Namespace, as the reconciler's cache holds it, with `annotations`.
fn namespace_with(
    annotations: BTreeMap<String, String>,
) -> kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace> {
    kube::core::PartialObjectMeta {
        types: None,
        metadata: kube::api::ObjectMeta {
            name: Some(NS.into()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        _phantom: Default::default(),
    }
}

/// A resource that creates an OpenAI account in the emulator's resource group.
pub fn account(name: &str) -> CognitiveServicesAccount {
    let mut resource = fixtures::bare_account(
        name,
        &fixtures::Place {
            subscription: SUB,
            resource_group: RG,
            location: "westus",
            namespace: NS,
        },
    );
    resource.metadata.generation = None;
    resource
}

pub fn with_connection_secret(
    mut resource: CognitiveServicesAccount,
    name: &str,
) -> CognitiveServicesAccount {
    resource.spec.connection_secret = Some(LocalSecretReference { name: name.into() });
    resource
}

/// A Secret with string entries.
pub fn secret(namespace: &str, name: &str, entries: &[(&str, &str)]) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.data = Some(
        entries
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    k8s_openapi::ByteString(v.as_bytes().to_vec()),
                )
            })
            .collect(),
    );
    secret
}

pub fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// Hands out `token-for-{clientId}` for a credentials Secret, so the emulator can tell which
/// identity a request used (tests never reach Entra ID).
pub fn emulator_tokens() -> CredentialFactory {
    Arc::new(|identity: &SecretIdentity| {
        Ok(Credential::static_token(format!(
            "token-for-{}",
            identity.client_id
        )))
    })
}

impl Harness {
    /// A new emulator (with the resource group) answering in the forms of the profile
    /// `ARM_EMULATOR_PROFILE` names, and a fake API holding `objects`.
    pub async fn start(objects: Vec<Value>) -> Harness {
        cognitive_operator::install_crypto_provider();
        let config = EmulatorConfig {
            profile: Profile::from_env().unwrap_or_else(|e| panic!("{e}")),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config).await.expect("emulator starts");
        emulator.seed_resource_group(SUB, RG, "westus");
        Harness::connect(Arc::new(emulator), objects).await
    }

    /// A fake API holding `objects`, and a reconciler talking to it and to `emulator`.
    pub async fn connect(emulator: Arc<Emulator>, objects: Vec<Value>) -> Harness {
        let api_writes = Arc::new(Mutex::new(Vec::new()));
        let api_reads = Arc::new(Mutex::new(Vec::new()));
        let client = fake_api(
            emulator.clone(),
            api_writes.clone(),
            api_reads.clone(),
            objects,
        )
        .await;
        let metrics = Arc::new(Metrics::new(ArmMetrics::default()));
        let template = ArmClientConfig {
            rate_limits: None,
            metrics: metrics.arm().clone(),
            ..ArmClientConfig::new(emulator.base_url())
        };
        let default = ArmClient::new(
            template.clone(),
            Arc::new(Credential::static_token(OPERATOR_TOKEN)),
        )
        .expect("ARM client");
        let credentials = Credentials::new(
            default,
            template,
            emulator_tokens(),
            vec![FEDERATED_CLIENT_ID.to_string()],
        );
        // The resources' namespace, cached without annotations: it gets the default grant,
        // which allows every scope.
        let mut writer = NamespaceWriter::default();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(namespace_with(
            BTreeMap::new(),
        )));
        let grants = Grants::new(Grant::parse("*").unwrap(), writer.as_reader());
        let reconciler = Reconciler::new(
            client.clone(),
            Engine::new(None),
            credentials,
            grants,
            metrics,
            "test-instance",
        );
        Harness {
            emulator,
            client,
            reconciler,
            api_writes,
            api_reads,
            namespaces: Mutex::new(writer),
        }
    }

    /// What a cluster admin's `kubectl annotate namespace` does: the resources' Namespace now
    /// has exactly `annotations` (grants among them), as the reconciler's cache sees it.
    pub fn set_namespace_annotations(&self, annotations: &[(&str, &str)]) {
        let annotations = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.namespaces
            .lock()
            .unwrap()
            .apply_watcher_event(&kube::runtime::watcher::Event::Apply(namespace_with(
                annotations,
            )));
    }

    pub fn accounts(&self) -> Api<CognitiveServicesAccount> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn secrets(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub async fn create(&self, resource: &CognitiveServicesAccount) -> CognitiveServicesAccount {
        self.accounts()
            .create(&PostParams::default(), resource)
            .await
            .expect("create resource")
    }

    pub async fn get(&self, name: &str) -> Option<CognitiveServicesAccount> {
        self.accounts().get_opt(name).await.expect("get resource")
    }

    /// One reconcile, exactly as the Controller runs it: the watched object, untyped, converted
    /// as the controller's cache converts it.
    pub async fn reconcile(&self, name: &str) -> Requeue {
        self.try_reconcile(name).await.expect("reconcile succeeds")
    }

    pub async fn try_reconcile(
        &self,
        name: &str,
    ) -> Result<Requeue, cognitive_operator::controller::Error> {
        let objects: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NS, &account_api_resource());
        let object = objects.get(name).await.expect("object exists");
        let cached = cognitive_operator::controller::cache_object(object);
        self.reconciler.reconcile(&cached).await
    }

    /// Reconciles (as the requeues would) until `done` holds, at most 20 times.
    pub async fn reconcile_until(
        &self,
        name: &str,
        done: impl Fn(&CognitiveServicesAccount) -> bool,
    ) -> CognitiveServicesAccount {
        for _ in 0..20 {
            self.reconcile(name).await;
            let resource = self.get(name).await.expect("resource exists");
            if done(&resource) {
                return resource;
            }
        }
        let resource = self.get(name).await;
        panic!(
            "{name} did not settle: {:#?}",
            resource.and_then(|r| r.status)
        );
    }

    pub async fn reconcile_until_ready(&self, name: &str) -> CognitiveServicesAccount {
        self.reconcile_until(name, |r| {
            condition(r, "Ready").is_some_and(|c| c.status == "True")
        })
        .await
    }

    /// Reconciles until the object is gone (its finalizer removed while being deleted).
    pub async fn reconcile_until_gone(&self, name: &str) {
        for _ in 0..20 {
            if self.get(name).await.is_none() {
                return;
            }
            self.reconcile(name).await;
        }
        panic!(
            "{name} still exists: {:#?}",
            self.get(name).await.and_then(|r| r.status)
        );
    }

    pub fn deployments(&self) -> Api<CognitiveServicesDeployment> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub async fn create_deployment(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> CognitiveServicesDeployment {
        self.deployments()
            .create(&PostParams::default(), resource)
            .await
            .expect("create deployment resource")
    }

    pub async fn get_deployment(&self, name: &str) -> Option<CognitiveServicesDeployment> {
        self.deployments()
            .get_opt(name)
            .await
            .expect("get deployment resource")
    }

    /// One reconcile of the deployment resource `name`, as the Controller runs it.
    pub async fn try_reconcile_deployment(
        &self,
        name: &str,
    ) -> Result<Requeue, cognitive_operator::controller::Error> {
        let resource = self.get_deployment(name).await.expect("deployment exists");
        self.reconciler.reconcile_deployment(&resource).await
    }

    pub async fn reconcile_deployment(&self, name: &str) -> Requeue {
        self.try_reconcile_deployment(name)
            .await
            .expect("deployment reconcile succeeds")
    }

    /// The names the fake API was asked to GET.
    pub fn api_reads(&self) -> Vec<String> {
        self.api_reads
            .lock()
            .unwrap()
            .iter()
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Requests the emulator received that change something in Azure (not GETs).
    pub fn arm_writes(&self) -> Vec<RecordedRequest> {
        self.emulator
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    pub fn arm_calls(&self, method: &str, path_suffix: &str) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }

    pub async fn events(&self) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), NS);
        events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
    }

    pub async fn event_reasons(&self) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    pub fn api_writes(&self) -> Vec<ApiWrite> {
        self.api_writes.lock().unwrap().clone()
    }
}

/// A deployment of gpt-4o into the account of the resource `account`.
pub fn deployment(name: &str, account: &str) -> CognitiveServicesDeployment {
    let spec = serde_json::from_value(serde_json::json!({
        "accountRef": {"name": account},
        "model": {"format": "OpenAI", "name": "gpt-4o"},
        "sku": {"name": "GlobalStandard", "capacity": 10},
    }))
    .expect("deployment spec");
    let mut resource = CognitiveServicesDeployment::new(name, spec);
    resource.metadata.namespace = Some(NS.into());
    resource
}

pub fn deployment_condition<'a>(
    resource: &'a CognitiveServicesDeployment,
    type_: &str,
) -> Option<&'a cognitive_operator::api::Condition> {
    resource
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn condition<'a>(
    resource: &'a CognitiveServicesAccount,
    type_: &str,
) -> Option<&'a cognitive_operator::api::Condition> {
    resource
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The fake API, recording finalizer and status writes as they arrive.
async fn fake_api(
    emulator: Arc<Emulator>,
    writes: Arc<Mutex<Vec<ApiWrite>>>,
    reads: Arc<Mutex<Vec<(String, String)>>>,
    objects: Vec<Value>,
) -> kube::Client {
    let finalizer_writes = writes.clone();
    let interceptors = interceptor::Funcs::new()
        .get(move |ctx| {
            reads
                .lock()
                .unwrap()
                .push((ctx.namespace.to_string(), ctx.name.to_string()));
            Ok(None)
        })
        .patch(move |ctx| {
            if let Some(finalizers) = ctx.patch.pointer("/metadata/finalizers") {
                let arm_writes_before = emulator
                    .requests()
                    .into_iter()
                    .filter(|r| r.method != "GET")
                    .collect();
                finalizer_writes.lock().unwrap().push(ApiWrite::Finalizers {
                    finalizers: serde_json::from_value(finalizers.clone()).unwrap_or_default(),
                    arm_writes_before,
                });
            }
            Ok(None)
        })
        .patch_status(move |ctx| {
            writes.lock().unwrap().push(ApiWrite::Status {
                patch_type: ctx.patch_type,
                field_manager: ctx.params.field_manager.clone(),
            });
            Ok(None)
        });
    // The fake turns on the status subresource of a kind when it first stores an object with a
    // status (`with_status_subresource` needs a `Default` the CRD type does not have): this one,
    // in a namespace of its own, does that.
    let mut sentinel = account("status-subresource");
    sentinel.metadata.namespace = Some("fake-api-setup".into());
    sentinel.status = Some(Default::default());
    let mut deployment_sentinel = deployment("status-subresource", "status-subresource");
    deployment_sentinel.metadata.namespace = Some("fake-api-setup".into());
    deployment_sentinel.status = Some(Default::default());
    ClientBuilder::new()
        .with_resource::<CognitiveServicesAccount>()
        .with_resource::<CognitiveServicesDeployment>()
        .with_object(sentinel)
        .with_object(deployment_sentinel)
        .with_return_managed_fields()
        .with_interceptor_funcs(interceptors)
        .with_runtime_objects(objects)
        .build()
        .await
        .expect("fake API")
}
