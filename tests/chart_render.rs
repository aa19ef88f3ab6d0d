//! The Helm chart (`charts/cognitive-operator`) and the kustomize base (`deploy/`), rendered by
//! the real `helm template` and `kubectl kustomize` (built by `tools/k8s/build.sh`).
//!
//! Every rendered document is parsed into its k8s-openapi type and serialized back: a field the
//! type does not know (a typo, a wrong indentation level) is lost on that round trip and fails
//! the test. On top of that the tests check what a cluster admin cares about: the security
//! context, probes and resources, the exact least-privilege RBAC (the verbs the code uses, no
//! more), the values schema, and that `kubectl kustomize deploy/` yields the same objects as the
//! chart's defaults. That the API server accepts every rendered object is checked in
//! `tests/e2e.rs`. Tests that need helm or kubectl are ignored under plain `cargo test`; run
//! them with `bash tools/test.sh` (or `cargo test --test chart_render -- --ignored`).

mod support {
    pub mod control_plane;
}

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const RELEASE: &str = "cognitive-operator";
const NAMESPACE: &str = "cognitive-operator";
const CRD_NAME: &str = "cognitiveservicesaccounts.cognitive-operator.dev";
const DEPLOYMENT_CRD_NAME: &str = "cognitiveservicesdeployments.cognitive-operator.dev";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/cognitive-operator")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(src: &str, what: &str) -> Value {
    serde_saphyr::from_str::<Value>(src)
        .unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}\n{src}"))
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------- rendering

struct Chart {
    /// Chart.yaml.
    meta: Value,
    /// values.yaml.
    defaults: Value,
}

fn load_chart() -> Chart {
    Chart {
        meta: yaml(&read(&chart_dir().join("Chart.yaml")), "Chart.yaml"),
        defaults: yaml(&read(&chart_dir().join("values.yaml")), "values.yaml"),
    }
}

/// Values merged as helm merges a values file over the defaults (maps deeply, null deletes).
fn merge_values(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            let mut merged = base.clone();
            for (key, value) in over {
                if value.is_null() {
                    merged.remove(key);
                    continue;
                }
                let next = match merged.get(key) {
                    Some(existing) => merge_values(existing, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

fn full_values() -> Value {
    yaml(
        &read(&chart_dir().join("ci/full-values.yaml")),
        "ci/full-values.yaml",
    )
}

/// A built tool (helm, kubectl) from `tools/k8s/build.sh`.
fn tool(name: &str) -> PathBuf {
    support::control_plane::assets().join(name)
}

impl Chart {
    /// Runs helm on the chart with `overrides` as a values file; helm's error output on failure.
    fn helm(&self, verb: &[&str], overrides: &Value) -> Result<String, String> {
        let dir = support::control_plane::TempDir::new("chart-values");
        let values = dir.path().join("values.json");
        std::fs::write(&values, overrides.to_string()).unwrap();
        let output = std::process::Command::new(tool("helm"))
            .args(verb)
            .arg(chart_dir())
            .arg("--values")
            .arg(&values)
            .output()
            .expect("run helm");
        if output.status.success() {
            Ok(String::from_utf8(output.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `helm template`, returning the YAML documents.
    fn render_in(
        &self,
        overrides: &Value,
        release: &str,
        namespace: &str,
    ) -> Result<Vec<Doc>, String> {
        let text = self.helm(&["template", release, "--namespace", namespace], overrides)?;
        Ok(split_documents(&text, "helm template"))
    }

    fn render(&self, overrides: &Value) -> Result<Vec<Doc>, String> {
        self.render_in(overrides, RELEASE, NAMESPACE)
    }

    /// What `helm install` prints after installing: NOTES.txt rendered by helm's template
    /// engine with these values. `helm template` leaves NOTES.txt out and `helm install
    /// --dry-run=client` (3.22) still asks a cluster for its version, so a copy of the chart
    /// carries NOTES.txt as a named template inside a YAML document, which `helm template
    /// --show-only` renders.
    fn notes(&self, overrides: &Value) -> String {
        let copy = support::control_plane::TempDir::new("chart-notes");
        let chart = copy.path().join("cognitive-operator");
        copy_dir(&chart_dir(), &chart);
        let notes = std::fs::read_to_string(chart.join("templates/NOTES.txt")).unwrap();
        std::fs::remove_file(chart.join("templates/NOTES.txt")).unwrap();
        std::fs::write(
            chart.join("templates/notes.yaml"),
            format!(
                "{{{{- define \"test.notes\" -}}}}\n{notes}{{{{- end }}}}\nnotes: {{{{ include \"test.notes\" . | toJson }}}}\n"
            ),
        )
        .unwrap();
        let values = copy.path().join("values.json");
        std::fs::write(&values, overrides.to_string()).unwrap();
        let output = std::process::Command::new(tool("helm"))
            .args(["template", RELEASE, "--namespace", NAMESPACE])
            .args(["--show-only", "templates/notes.yaml", "--values"])
            .arg(&values)
            .arg(&chart)
            .output()
            .expect("run helm");
        assert!(
            output.status.success(),
            "NOTES.txt renders: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rendered = yaml(&String::from_utf8(output.stdout).unwrap(), "NOTES.txt");
        rendered["notes"].as_str().unwrap().to_string()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[derive(Clone, Debug)]
struct Doc {
    source: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    }
    fn id(&self) -> (String, String, String) {
        (
            self.kind().to_string(),
            self.namespace().to_string(),
            self.name().to_string(),
        )
    }
}

/// Splits a multi-document YAML stream on `---` lines, dropping documents that are empty or only
/// comments (as Helm and kubectl do), and parses each.
fn split_documents(text: &str, source: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        let meaningful = current
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if meaningful {
            let value = yaml(current, source);
            docs.push(Doc {
                source: source.to_string(),
                value,
            });
        }
        current.clear();
    };
    for line in text.lines() {
        if line.trim_end() == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

// ---------------------------------------------------------------- typed parsing

/// Asserts that everything in `rendered` survived the typed round trip into `typed`.
fn assert_subset(rendered: &Value, typed: &Value, path: &str, source: &str) {
    match (rendered, typed) {
        (Value::Null, _) => {
            panic!("{source}: {path} renders as null (an empty value in the template?)")
        }
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                match t.get(k) {
                    Some(tv) => assert_subset(v, tv, &format!("{path}.{k}"), source),
                    None => panic!(
                        "{source}: field {path}.{k} is not part of the Kubernetes type (lost on round trip)"
                    ),
                }
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            assert_eq!(
                r.len(),
                t.len(),
                "{source}: {path} changed length on round trip"
            );
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                assert_subset(rv, tv, &format!("{path}[{i}]"), source);
            }
        }
        (Value::Number(r), Value::Number(t)) => {
            assert_eq!(
                r.as_f64(),
                t.as_f64(),
                "{source}: {path} changed on round trip"
            )
        }
        (r, t) => assert_eq!(r, t, "{source}: {path} changed on round trip (wrong type?)"),
    }
}

fn typed<K: DeserializeOwned + Serialize>(doc: &Doc) -> K {
    let object: K = serde_json::from_value(doc.value.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: {} {} does not parse: {e}\n{:#}",
            doc.source,
            doc.kind(),
            doc.name(),
            doc.value
        )
    });
    let back = serde_json::to_value(&object).expect("serializes");
    assert_subset(&doc.value, &back, "", &doc.source);
    object
}

/// The typed objects of one render, each document checked.
#[derive(Default)]
struct Objects {
    deployments: Vec<Deployment>,
    service_accounts: Vec<ServiceAccount>,
    services: Vec<Service>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    network_policies: Vec<NetworkPolicy>,
    pdbs: Vec<PodDisruptionBudget>,
    crds: Vec<CustomResourceDefinition>,
    namespaces: Vec<Namespace>,
    service_monitors: Vec<Value>,
    ids: BTreeSet<(String, String, String)>,
}

const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Namespace",
];

fn objects(docs: &[Doc]) -> Objects {
    let mut o = Objects::default();
    for doc in docs {
        assert!(
            !doc.name().is_empty(),
            "{}: {} without a name",
            doc.source,
            doc.kind()
        );
        if CLUSTER_SCOPED.contains(&doc.kind()) {
            assert!(
                doc.namespace().is_empty(),
                "{}: cluster-scoped {} has a namespace",
                doc.source,
                doc.kind()
            );
        } else {
            assert!(
                !doc.namespace().is_empty(),
                "{}: {} {} has no namespace",
                doc.source,
                doc.kind(),
                doc.name()
            );
        }
        assert!(
            o.ids.insert(doc.id()),
            "{}: duplicate {:?}",
            doc.source,
            doc.id()
        );
        let api_version = doc.value["apiVersion"].as_str().unwrap_or_default();
        match (api_version, doc.kind()) {
            ("apps/v1", "Deployment") => o.deployments.push(typed(doc)),
            ("v1", "ServiceAccount") => o.service_accounts.push(typed(doc)),
            ("v1", "Service") => o.services.push(typed(doc)),
            ("v1", "Namespace") => o.namespaces.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => o.cluster_roles.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                o.cluster_role_bindings.push(typed(doc))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => o.roles.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => o.role_bindings.push(typed(doc)),
            ("networking.k8s.io/v1", "NetworkPolicy") => o.network_policies.push(typed(doc)),
            ("policy/v1", "PodDisruptionBudget") => o.pdbs.push(typed(doc)),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => o.crds.push(typed(doc)),
            ("monitoring.coreos.com/v1", "ServiceMonitor") => {
                check_service_monitor(doc);
                o.service_monitors.push(doc.value.clone());
            }
            other => panic!("{}: unexpected object {other:?}", doc.source),
        }
    }
    o
}

/// ServiceMonitor has no k8s-openapi type: check the fields against the Prometheus Operator's CRD by hand.
fn check_service_monitor(doc: &Doc) {
    let v = &doc.value;
    let keys =
        |x: &Value| -> BTreeSet<String> { x.as_object().expect("a map").keys().cloned().collect() };
    let set = |ks: &[&str]| -> BTreeSet<String> { ks.iter().map(|s| s.to_string()).collect() };
    assert_eq!(keys(v), set(&["apiVersion", "kind", "metadata", "spec"]));
    assert!(keys(&v["metadata"]).is_subset(&set(&["name", "namespace", "labels", "annotations"])));
    assert!(keys(&v["spec"]).is_subset(&set(&[
        "selector",
        "namespaceSelector",
        "endpoints",
        "jobLabel"
    ])));
    let endpoints = v["spec"]["endpoints"].as_array().expect("endpoints list");
    assert!(!endpoints.is_empty());
    for e in endpoints {
        assert!(
            keys(e).is_subset(&set(&[
                "port",
                "path",
                "interval",
                "scrapeTimeout",
                "scheme"
            ])),
            "{e}"
        );
    }
}

fn only<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "expected exactly one {what}");
    &items[0]
}

fn container(d: &Deployment) -> &Container {
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1, "one container");
    &pod.containers[0]
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap_or_default()
}

fn env(c: &Container, name: &str) -> Option<Value> {
    c.env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .map(|e| serde_json::to_value(e).unwrap())
}

// ---------------------------------------------------------------- RBAC

/// One permission: (namespace or "" for cluster-wide, apiGroup, resource, verb, resourceName or "").
type Grant = (String, String, String, String, String);

fn grants(namespace: &str, rules: &[PolicyRule], out: &mut BTreeSet<Grant>) {
    for rule in rules {
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs");
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        let names = rule
            .resource_names
            .clone()
            .unwrap_or_else(|| vec![String::new()]);
        assert!(
            !groups.is_empty() && !resources.is_empty() && !rule.verbs.is_empty(),
            "incomplete rule {rule:?}"
        );
        for g in &groups {
            for r in &resources {
                for v in &rule.verbs {
                    for n in &names {
                        assert!(
                            ![g, r, v, n].iter().any(|s| s.contains('*')),
                            "wildcard in {rule:?}"
                        );
                        out.insert((namespace.into(), g.clone(), r.clone(), v.clone(), n.clone()));
                    }
                }
            }
        }
    }
}

/// The permissions the operator's ServiceAccount ends up with, following the bindings.
fn effective_grants(o: &Objects, sa_namespace: &str, sa_name: &str) -> BTreeSet<Grant> {
    let bound = |subjects: &Option<Vec<Subject>>| {
        let subjects = subjects.as_deref().unwrap_or_default();
        assert!(!subjects.is_empty(), "binding without subjects");
        for s in subjects {
            assert_eq!(
                (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
                ("ServiceAccount", sa_name, Some(sa_namespace)),
                "every binding is to the operator's ServiceAccount"
            );
        }
    };
    let mut out = BTreeSet::new();
    for b in &o.cluster_role_bindings {
        bound(&b.subjects);
        let role = find_role(o, &b.role_ref, None);
        grants("", &role, &mut out);
    }
    for b in &o.role_bindings {
        bound(&b.subjects);
        let ns = b.metadata.namespace.clone().unwrap();
        let role = find_role(o, &b.role_ref, Some(&ns));
        grants(&ns, &role, &mut out);
    }
    // Every role is used by a binding (no dangling permissions).
    let bound_roles: BTreeSet<(String, String)> = o
        .cluster_role_bindings
        .iter()
        .map(|b| (b.role_ref.kind.clone(), b.role_ref.name.clone()))
        .chain(
            o.role_bindings
                .iter()
                .map(|b| (b.role_ref.kind.clone(), b.role_ref.name.clone())),
        )
        .collect();
    // The user roles are bound by aggregation into the built-in edit/admin/view roles, whose
    // bindings are the cluster admins', never to the operator.
    for r in o.cluster_roles.iter().filter(|r| !aggregated(r)) {
        assert!(
            bound_roles.contains(&("ClusterRole".into(), r.metadata.name.clone().unwrap())),
            "unbound ClusterRole"
        );
    }
    for r in &o.roles {
        assert!(
            bound_roles.contains(&("Role".into(), r.metadata.name.clone().unwrap())),
            "unbound Role"
        );
    }
    out
}

/// A ClusterRole aggregated into a built-in user role (edit, admin, view).
fn aggregated(role: &ClusterRole) -> bool {
    role.metadata
        .labels
        .iter()
        .flatten()
        .any(|(k, _)| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
}

/// A user role: its name, its aggregation labels, the (resource, verb) pairs it grants.
type UserRole = (String, BTreeSet<String>, BTreeSet<(String, String)>);

fn user_roles(o: &Objects) -> Vec<UserRole> {
    o.cluster_roles
        .iter()
        .filter(|r| aggregated(r))
        .map(|r| {
            let labels = r
                .metadata
                .labels
                .iter()
                .flatten()
                .filter(|(k, v)| k.starts_with("rbac.authorization.k8s.io/") && *v == "true")
                .map(|(k, _)| k.clone())
                .collect();
            let mut granted = BTreeSet::new();
            grants("", r.rules.as_deref().unwrap_or_default(), &mut granted);
            let granted = granted
                .into_iter()
                .map(|(_, group, resource, verb, _)| {
                    assert_eq!(group, "cognitive-operator.dev");
                    (resource, verb)
                })
                .collect();
            (r.metadata.name.clone().unwrap(), labels, granted)
        })
        .collect()
}

fn find_role(o: &Objects, role_ref: &RoleRef, namespace: Option<&str>) -> Vec<PolicyRule> {
    assert_eq!(role_ref.api_group, "rbac.authorization.k8s.io");
    match role_ref.kind.as_str() {
        "ClusterRole" => o
            .cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(&role_ref.name))
            .unwrap_or_else(|| panic!("binding refers to missing ClusterRole {}", role_ref.name))
            .rules
            .clone()
            .unwrap_or_default(),
        "Role" => o
            .roles
            .iter()
            .find(|r| {
                r.metadata.name.as_deref() == Some(&role_ref.name)
                    && r.metadata.namespace.as_deref() == namespace
            })
            .unwrap_or_else(|| {
                panic!(
                    "binding refers to missing Role {} in {namespace:?}",
                    role_ref.name
                )
            })
            .rules
            .clone()
            .unwrap_or_default(),
        other => panic!("roleRef kind {other}"),
    }
}

/// The least-privilege set: the custom resources (with status and finalizers), Secrets and events
/// where the operator watches, its own CRD, and its Lease in its own namespace. Nothing else.
fn expected_grants(watch_namespace: &str, lease_namespace: &str, lease: &str) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    let mut add = |ns: &str, group: &str, resource: &str, verbs: &[&str], name: &str| {
        for v in verbs {
            out.insert((
                ns.into(),
                group.into(),
                resource.into(),
                v.to_string(),
                name.into(),
            ));
        }
    };
    let w = watch_namespace;
    add(
        w,
        "cognitive-operator.dev",
        "cognitiveservicesaccounts",
        &["get", "list", "watch", "patch"],
        "",
    );
    add(
        w,
        "cognitive-operator.dev",
        "cognitiveservicesdeployments",
        &["list", "watch", "patch"],
        "",
    );
    add(
        w,
        "cognitive-operator.dev",
        "cognitiveservicesdeployments/status",
        &["patch"],
        "",
    );
    add(
        w,
        "cognitive-operator.dev",
        "cognitiveservicesaccounts/status",
        &["patch"],
        "",
    );
    add(
        w,
        "cognitive-operator.dev",
        "cognitiveservicesaccounts/finalizers",
        &["update"],
        "",
    );
    add(
        w,
        "",
        "secrets",
        &["get", "list", "watch", "create", "update"],
        "",
    );
    add(w, "events.k8s.io", "events", &["create", "patch"], "");
    add(
        "",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get"],
        CRD_NAME,
    );
    add(
        "",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get"],
        "cognitiveservicesdeployments.cognitive-operator.dev",
    );
    add("", "", "namespaces", &["get", "list", "watch"], "");
    add(
        lease_namespace,
        "coordination.k8s.io",
        "leases",
        &["create"],
        "",
    );
    add(
        lease_namespace,
        "coordination.k8s.io",
        "leases",
        &["get", "update"],
        lease,
    );
    out
}

// ---------------------------------------------------------------- security

fn assert_locked_down(d: &Deployment) {
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "pod runAsNonRoot");
    assert_eq!(psc.run_as_user, Some(65532), "the image's non-root user");
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let c = container(d);
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(
        sc.read_only_root_filesystem,
        Some(true),
        "readOnlyRootFilesystem"
    );
    assert_eq!(
        sc.allow_privilege_escalation,
        Some(false),
        "allowPrivilegeEscalation"
    );
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.privileged, None);
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(
        caps.drop.as_deref(),
        Some(&["ALL".to_string()][..]),
        "drop ALL"
    );
    assert_eq!(caps.add, None, "no capability added");
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );

    let port = c.ports.as_deref().unwrap_or_default();
    assert!(
        port.iter()
            .any(|p| p.name.as_deref() == Some("http") && p.container_port == 8080),
        "container port http 8080"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("http".into()));
    }
    let resources = c.resources.as_ref().expect("resources");
    for (what, map) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let map = map.as_ref().unwrap_or_else(|| panic!("resources.{what}"));
        assert!(
            map.contains_key("cpu") && map.contains_key("memory"),
            "resources.{what} has cpu and memory"
        );
    }
    assert_eq!(
        c.args.as_ref().and_then(|a| a.first()).map(String::as_str),
        Some("run"),
        "runs `run`"
    );
    assert!(c.command.is_none(), "the image's entrypoint is used");
    let pod_ns = env(c, "POD_NAMESPACE").expect("POD_NAMESPACE for the lease namespace");
    assert_eq!(
        pod_ns["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(pod.host_network, None);
    assert_eq!(pod.host_pid, None);
}

/// The Service reaches the operator pods, on the container's http port.
fn assert_service_targets(service: &Service, d: &Deployment) {
    let spec = service.spec.as_ref().unwrap();
    let selector = spec.selector.clone().expect("service selector");
    let labels = pod_labels(d);
    for (k, v) in &selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "service selector {k} matches the pods"
        );
    }
    let deployment_selector = d
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(
        selector, deployment_selector,
        "Service and Deployment select the same pods"
    );
    let ports = spec.ports.as_deref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(
        ports[0].target_port,
        Some(IntOrString::String("http".into()))
    );
}

// ---------------------------------------------------------------- tests: CRDs and metadata

#[test]
fn crd_copies_are_byte_identical() {
    let sources = sorted_files(&root().join("crds"));
    assert!(!sources.is_empty(), "crds/ has the CRD");
    let names: Vec<String> = sources.iter().map(|p| file_name(p)).collect();
    for copy in [chart_dir().join("crds"), root().join("deploy/crds")] {
        let copies: Vec<String> = sorted_files(&copy).iter().map(|p| file_name(p)).collect();
        assert_eq!(
            copies,
            names,
            "{} holds exactly the files of crds/",
            copy.display()
        );
        for source in &sources {
            let a = std::fs::read(source).unwrap();
            let b = std::fs::read(copy.join(file_name(source))).unwrap();
            assert!(
                a == b,
                "{}/{} differs from crds/; copy it: cp crds/*.yaml {}/",
                copy.display(),
                file_name(source),
                copy.strip_prefix(root()).unwrap().display()
            );
        }
    }
}

#[test]
fn crd_is_the_operators_kind() {
    let path = chart_dir().join("crds").join(format!("{CRD_NAME}.yaml"));
    let docs = split_documents(&read(&path), "chart crds/");
    let o = objects(&docs);
    let crd = only(&o.crds, "CRD");
    assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
    assert_eq!(crd.spec.group, "cognitive-operator.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "CognitiveServicesAccount");
    assert_eq!(crd.spec.names.plural, "cognitiveservicesaccounts");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["csa".to_string()][..])
    );
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == "v1alpha1")
        .expect("v1alpha1");
    assert!(version.served && version.storage);
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "status subresource"
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart = load_chart();
    assert_eq!(chart.meta["name"], "cognitive-operator");
    assert_eq!(chart.meta["apiVersion"], "v2");
    assert_eq!(
        chart.meta["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion (the default image tag) must follow Cargo.toml's version"
    );
}

// ---------------------------------------------------------------- tests: default values

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn helm_lint_passes_with_default_and_full_values() {
    let chart = load_chart();
    for values in [json!({}), full_values()] {
        let linted = chart
            .helm(&["lint", "--strict"], &values)
            .unwrap_or_else(|error| panic!("helm lint --strict fails: {error}"));
        assert!(linted.contains("0 chart(s) failed"), "{linted}");
    }
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn default_values_render_the_expected_objects() {
    let chart = load_chart();
    let o = objects(&chart.render(&json!({})).expect("default values render"));
    let ids: BTreeSet<(String, String, String)> = [
        ("ServiceAccount", NAMESPACE, RELEASE),
        ("ClusterRole", "", RELEASE),
        ("ClusterRoleBinding", "", RELEASE),
        ("ClusterRole", "", "cognitive-operator-crd"),
        ("ClusterRoleBinding", "", "cognitive-operator-crd"),
        ("ClusterRole", "", "cognitive-operator-edit"),
        ("ClusterRole", "", "cognitive-operator-view"),
        ("Role", NAMESPACE, "cognitive-operator-leader-election"),
        (
            "RoleBinding",
            NAMESPACE,
            "cognitive-operator-leader-election",
        ),
        ("Deployment", NAMESPACE, RELEASE),
        ("Service", NAMESPACE, RELEASE),
    ]
    .iter()
    .map(|(k, ns, n)| (k.to_string(), ns.to_string(), n.to_string()))
    .collect();
    assert_eq!(
        o.ids, ids,
        "no ServiceMonitor, NetworkPolicy or PodDisruptionBudget by default"
    );

    let d = only(&o.deployments, "Deployment");
    assert_locked_down(d);
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(1));
    let c = container(d);
    assert_eq!(
        c.image.as_deref(),
        Some(concat!(
            "ghcr.io/cognitive-operator/cognitive-operator:",
            env!("CARGO_PKG_VERSION")
        ))
    );
    assert_eq!(
        c.args.clone().unwrap(),
        [
            "run",
            "--http-addr=0.0.0.0:8080",
            "--cloud=AzureCloud",
            "--credential=workload-identity",
            "--concurrency=8",
            "--default-scopes=",
            "--leader-election",
            "--lease-name=cognitive-operator",
            "--log-format=json",
            "--log-level=info",
        ]
    );
    assert_eq!(
        c.env.as_ref().map(Vec::len),
        Some(1),
        "only POD_NAMESPACE; the webhook injects the Azure ones"
    );
    // Workload identity: the webhook only mutates pods carrying this label.
    assert_eq!(
        pod_labels(d)
            .get("azure.workload.identity/use")
            .map(String::as_str),
        Some("true")
    );
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(RELEASE));
    assert_service_targets(only(&o.services, "Service"), d);
    let sa = only(&o.service_accounts, "ServiceAccount");
    assert_eq!(
        sa.metadata.annotations, None,
        "no client id configured, no annotation"
    );

    assert_eq!(
        effective_grants(&o, NAMESPACE, RELEASE),
        expected_grants("", NAMESPACE, "cognitive-operator"),
        "RBAC is exactly the least-privilege set"
    );
    let notes = chart.notes(&json!({}));
    assert!(notes.contains("watching all namespaces"));
    assert!(
        notes.contains("Azure scopes: none until a cluster admin grants them"),
        "the default grant is said plainly: {notes}"
    );
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn user_roles_aggregate_to_edit_and_view_without_status() {
    let chart = load_chart();
    let o = objects(&chart.render(&json!({})).expect("default values render"));
    let kinds = ["cognitiveservicesaccounts", "cognitiveservicesdeployments"];
    let rules = |verbs: &[&str]| -> BTreeSet<(String, String)> {
        kinds
            .iter()
            .flat_map(|k| verbs.iter().map(move |v| (k.to_string(), v.to_string())))
            .collect()
    };
    let labels = |names: &[&str]| -> BTreeSet<String> {
        names
            .iter()
            .map(|n| format!("rbac.authorization.k8s.io/aggregate-to-{n}"))
            .collect()
    };
    let edit = [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    assert_eq!(
        user_roles(&o),
        [
            (
                "cognitive-operator-edit".to_string(),
                labels(&["admin", "edit"]),
                rules(&edit)
            ),
            (
                "cognitive-operator-view".to_string(),
                labels(&["view"]),
                rules(&["get", "list", "watch"])
            ),
        ],
        "both kinds, never their status: the status is the operator's"
    );
    let off = objects(&chart.render(&json!({"rbac": {"create": false}})).unwrap());
    assert!(
        user_roles(&off).is_empty(),
        "rbac.create: false renders none"
    );
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn release_name_prefixes_object_names() {
    let chart = load_chart();
    let o = objects(&chart.render_in(&json!({}), "prod", "ops").expect("renders"));
    let d = only(&o.deployments, "Deployment");
    assert_eq!(d.metadata.name.as_deref(), Some("prod-cognitive-operator"));
    assert_eq!(d.metadata.namespace.as_deref(), Some("ops"));
    assert_eq!(
        effective_grants(&o, "ops", "prod-cognitive-operator"),
        expected_grants("", "ops", "cognitive-operator")
    );
}

// ---------------------------------------------------------------- tests: full values

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn full_values_switch_everything_on() {
    let chart = load_chart();
    let values = full_values();
    let o = objects(&chart.render(&values).expect("ci/full-values.yaml renders"));
    let fullname = "ai-accounts-operator";
    let kinds: BTreeSet<&str> = o.ids.iter().map(|(k, _, _)| k.as_str()).collect();
    for kind in [
        "ServiceMonitor",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
    ] {
        assert!(kinds.contains(kind), "{kind} rendered with the full values");
    }

    // Watching one namespace: a Role there instead of a ClusterRole; the CRD read stays cluster-wide.
    assert!(
        o.ids
            .contains(&("Role".into(), "team-a".into(), fullname.into()))
    );
    assert!(
        o.ids
            .contains(&("RoleBinding".into(), "team-a".into(), fullname.into()))
    );
    let cluster_roles: Vec<&str> = o
        .cluster_roles
        .iter()
        .filter(|r| !aggregated(r))
        .map(|r| r.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        cluster_roles,
        ["ai-accounts-operator-crd"],
        "the operator's own; the user roles are ClusterRoles in every mode"
    );
    assert_eq!(
        effective_grants(&o, NAMESPACE, "ai-accounts"),
        expected_grants("team-a", NAMESPACE, "ai-accounts-operator"),
        "namespace-scoped RBAC is exactly the least-privilege set"
    );

    let d = only(&o.deployments, "Deployment");
    assert_locked_down(d);
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let c = container(d);
    assert_eq!(
        c.image.as_deref(),
        Some(
            "registry.example.com/platform/cognitive-operator@sha256:4b1f5e0c3a1d9f1e6c2b7a8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
        ),
        "the digest wins over the tag"
    );
    assert_eq!(
        c.args.clone().unwrap(),
        [
            "run",
            "--http-addr=0.0.0.0:8080",
            "--cloud=AzureUSGovernment",
            "--arm-endpoint=https://management.usgovcloudapi.net",
            "--subscription-id=00000000-0000-0000-0000-000000000001",
            "--credential=client-secret",
            "--authority-host=https://login.microsoftonline.us",
            "--concurrency=16",
            "--namespace=team-a",
            "--default-scopes=00000000-0000-0000-0000-000000000001/rg-shared",
            "--cluster-id=prod-westeurope-1",
            "--allowed-federated-client-ids=44444444-4444-4444-4444-444444444444,55555555-5555-5555-5555-555555555555",
            "--label-selector=cognitive-operator.dev/managed in (true),tier!=dev",
            "--leader-election",
            "--lease-name=ai-accounts-operator",
            "--log-format=text",
            "--log-level=info,cognitive_operator=debug",
        ]
    );
    for (var, key) in [
        ("AZURE_TENANT_ID", "tenant"),
        ("AZURE_CLIENT_ID", "client"),
        ("AZURE_CLIENT_SECRET", "secret"),
    ] {
        let e = env(c, var).unwrap_or_else(|| panic!("{var} set for client-secret"));
        assert_eq!(
            e["valueFrom"]["secretKeyRef"],
            json!({"name": "cognitive-operator-sp", "key": key})
        );
    }
    assert_eq!(
        env(c, "HTTPS_PROXY").unwrap()["value"],
        "http://proxy.example.com:3128",
        "extraEnv"
    );
    let labels = pod_labels(d);
    assert_eq!(
        labels.get("example.com/team").map(String::as_str),
        Some("platform")
    );
    assert!(
        !labels.contains_key("azure.workload.identity/use"),
        "no workload identity with a client secret"
    );
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ai-accounts"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert!(
        pod.affinity.is_some()
            && pod.tolerations.is_some()
            && pod.topology_spread_constraints.is_some()
    );
    assert_eq!(pod.image_pull_secrets.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["cpu"].0,
        "1"
    );

    let service = only(&o.services, "Service");
    assert_service_targets(service, d);
    assert_eq!(
        service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        9090
    );

    // The ServiceMonitor scrapes that Service's http port.
    let sm = only(&o.service_monitors, "ServiceMonitor");
    let service_labels = service.metadata.labels.clone().unwrap();
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            service_labels.get(k).map(String::as_str),
            v.as_str(),
            "ServiceMonitor selects the Service"
        );
    }
    assert_eq!(
        sm["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");

    // The PodDisruptionBudget covers the operator pods.
    let pdb = only(&o.pdbs, "PodDisruptionBudget").spec.as_ref().unwrap();
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert_eq!(pdb.max_unavailable, None);
    for (k, v) in pdb
        .selector
        .as_ref()
        .unwrap()
        .match_labels
        .as_ref()
        .unwrap()
    {
        assert_eq!(labels.get(k), Some(v), "PDB selects the pods");
    }

    // The NetworkPolicy lets through DNS, the API server and HTTPS to Azure, and metrics in.
    let np = only(&o.network_policies, "NetworkPolicy")
        .spec
        .as_ref()
        .unwrap();
    for (k, v) in np
        .pod_selector
        .as_ref()
        .unwrap()
        .match_labels
        .as_ref()
        .unwrap()
    {
        assert_eq!(labels.get(k), Some(v), "NetworkPolicy selects the pods");
    }
    assert_eq!(np.policy_types.clone().unwrap(), ["Ingress", "Egress"]);
    let egress = serde_json::to_value(np.egress.as_ref().unwrap()).unwrap();
    let ports = |rule: &Value| -> Vec<(i64, String)> {
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        ports(&egress[0]),
        [(53, "UDP".to_string()), (53, "TCP".to_string())],
        "DNS"
    );
    assert_eq!(
        egress[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    assert_eq!(ports(&egress[1]), [(443, "TCP".to_string())], "API server");
    assert_eq!(
        egress[1]["to"],
        json!([{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "20.50.0.10/32"}}])
    );
    assert_eq!(
        ports(&egress[2]),
        [(443, "TCP".to_string())],
        "ARM and Entra ID"
    );
    assert_eq!(egress.as_array().unwrap().len(), 3, "no other egress");
    let ingress = serde_json::to_value(np.ingress.as_ref().unwrap()).unwrap();
    assert_eq!(
        ingress,
        json!([{
            "ports": [{"port": "http", "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        }])
    );

    let sa = only(&o.service_accounts, "ServiceAccount");
    let annotations = sa.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations.get("example.com/owner").map(String::as_str),
        Some("platform-team")
    );
    assert!(
        !annotations.contains_key("azure.workload.identity/client-id"),
        "only in workload-identity mode"
    );
    assert!(chart.notes(&values).contains("watching namespace team-a"));
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn network_policy_defaults_allow_any_destination_on_the_needed_ports() {
    let chart = load_chart();
    let o = objects(
        &chart
            .render(&json!({"networkPolicy": {"enabled": true}}))
            .expect("renders"),
    );
    let np = only(&o.network_policies, "NetworkPolicy")
        .spec
        .as_ref()
        .unwrap();
    let egress = serde_json::to_value(np.egress.as_ref().unwrap()).unwrap();
    assert_eq!(
        egress,
        json!([
            {
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
            },
            {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}]},
        ])
    );
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn workload_and_managed_identity_wiring() {
    let chart = load_chart();
    let wi = json!({"credentials": {"workloadIdentity": {"clientId": "11111111-1111-1111-1111-111111111111", "tenantId": "22222222-2222-2222-2222-222222222222"}}});
    let o = objects(&chart.render(&wi).expect("renders"));
    let annotations = only(&o.service_accounts, "ServiceAccount")
        .metadata
        .annotations
        .clone()
        .unwrap();
    assert_eq!(
        annotations["azure.workload.identity/client-id"],
        "11111111-1111-1111-1111-111111111111"
    );
    assert_eq!(
        annotations["azure.workload.identity/tenant-id"],
        "22222222-2222-2222-2222-222222222222"
    );
    assert!(!chart.notes(&wi).contains("WARNING"));
    assert!(
        chart.notes(&json!({})).contains("WARNING"),
        "NOTES warns about a missing client id"
    );

    let mi = json!({"credentials": {"mode": "managed-identity", "managedIdentity": {"clientId": "33333333-3333-3333-3333-333333333333"}}});
    let o = objects(&chart.render(&mi).expect("renders"));
    let d = only(&o.deployments, "Deployment");
    assert!(!pod_labels(d).contains_key("azure.workload.identity/use"));
    assert_eq!(
        env(container(d), "AZURE_CLIENT_ID").unwrap()["value"],
        "33333333-3333-3333-3333-333333333333"
    );
    assert!(
        container(d)
            .args
            .as_ref()
            .unwrap()
            .contains(&"--credential=managed-identity".to_string())
    );
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn leader_election_off_drops_the_lease_role() {
    let chart = load_chart();
    let o = objects(
        &chart
            .render(&json!({"leaderElection": {"enabled": false}}))
            .expect("renders"),
    );
    assert!(
        o.roles.is_empty() && o.role_bindings.is_empty(),
        "no Lease permissions without leader election"
    );
    let args = container(only(&o.deployments, "Deployment"))
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--no-leader-election".to_string()));
    assert!(!args.iter().any(|a| a.starts_with("--lease-name")));
}

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn misconfigurations_fail_with_a_clear_message() {
    let chart = load_chart();
    let cases = [
        (
            json!({"credentials": {"mode": "client-secret"}}),
            "credentials.clientSecret.existingSecret is required",
        ),
        (
            json!({"replicaCount": 3, "leaderElection": {"enabled": false}}),
            "replicaCount > 1 needs leaderElection.enabled",
        ),
        (
            json!({"serviceAccount": {"create": false}}),
            "serviceAccount.name is required",
        ),
    ];
    for (values, message) in cases {
        let error = chart
            .render(&values)
            .err()
            .unwrap_or_else(|| panic!("{values} should not render"));
        assert!(error.contains(message), "{values}: {error}");
    }
    // An existing ServiceAccount is used as is.
    let o = objects(
        &chart
            .render(&json!({"serviceAccount": {"create": false, "name": "existing"}}))
            .unwrap(),
    );
    assert!(o.service_accounts.is_empty());
    assert!(effective_grants(&o, NAMESPACE, "existing").len() > 1);
}

// ---------------------------------------------------------------- tests: values schema

fn schema() -> Value {
    serde_json::from_str(&read(&chart_dir().join("values.schema.json")))
        .expect("values.schema.json is JSON")
}

/// Validates like `helm install` does: values.schema.json (draft-07) against the merged values.
/// Each error reads "<instance path>: <message>", e.g. "/credentials/mode: \"x\" is not one of ...".
fn schema_errors(values: &Value) -> Vec<String> {
    let validator =
        jsonschema::draft7::new(&schema()).expect("values.schema.json is a valid draft-07 schema");
    validator
        .iter_errors(values)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn values_schema_covers_and_accepts_the_values_files() {
    let chart = load_chart();
    let schema = schema();
    let described: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let defaults: BTreeSet<&String> = chart.defaults.as_object().unwrap().keys().collect();
    assert_eq!(
        described, defaults,
        "values.schema.json describes exactly the keys of values.yaml"
    );

    assert_eq!(
        schema_errors(&chart.defaults),
        Vec::<String>::new(),
        "values.yaml"
    );
    let full = merge_values(&chart.defaults, &full_values());
    assert_eq!(
        schema_errors(&full),
        Vec::<String>::new(),
        "ci/full-values.yaml"
    );
    // The full values file sets every key values.yaml has.
    fn keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let path = format!("{prefix}.{k}");
                out.insert(path.clone());
                keys(child, &path, out);
            }
        }
    }
    let (mut default_keys, mut full_keys) = (BTreeSet::new(), BTreeSet::new());
    keys(&chart.defaults, "", &mut default_keys);
    keys(&full_values(), "", &mut full_keys);
    let unset: Vec<&String> = default_keys.difference(&full_keys).collect();
    assert!(
        unset.is_empty(),
        "ci/full-values.yaml leaves unset: {unset:?}"
    );
}

#[test]
fn values_schema_rejects_mistakes() {
    let chart = load_chart();
    // (bad values, the error's instance path, a word of its message)
    let cases = [
        (json!({"replicas": 2}), "", "'replicas' was unexpected"),
        (json!({"replicaCount": "2"}), "/replicaCount", "integer"),
        (
            json!({"credentials": {"mode": "password"}}),
            "/credentials/mode",
            "not one of",
        ),
        (
            json!({"azure": {"cloud": "AzurePublicCloud"}}),
            "/azure/cloud",
            "not one of",
        ),
        (
            json!({"azure": {"subscriptionId": "my-subscription"}}),
            "/azure/subscriptionId",
            "does not match",
        ),
        (
            json!({"logging": {"format": "xml"}}),
            "/logging/format",
            "not one of",
        ),
        (json!({"concurrency": 0}), "/concurrency", "minimum"),
        (
            json!({"watch": {"namespace": "Team_A"}}),
            "/watch/namespace",
            "does not match",
        ),
        (
            json!({"leaderElection": {"enable": true}}),
            "/leaderElection",
            "'enable' was unexpected",
        ),
        (
            json!({"service": {"port": 70000}}),
            "/service/port",
            "maximum",
        ),
        (
            json!({"podDisruptionBudget": {"minAvailable": "half"}}),
            "/podDisruptionBudget/minAvailable",
            "does not match",
        ),
        (
            json!({"image": {"digest": "latest"}}),
            "/image/digest",
            "does not match",
        ),
    ];
    for (bad, path, word) in cases {
        let errors = schema_errors(&merge_values(&chart.defaults, &bad));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(word)),
            "{bad} should be rejected at {path:?} ({word}), got {errors:?}"
        );
    }
}

// ---------------------------------------------------------------- tests: kustomize base

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn kustomize_base_matches_the_chart_defaults() {
    let output = std::process::Command::new(tool("kubectl"))
        .arg("kustomize")
        .arg(root().join("deploy"))
        .output()
        .expect("runs kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize deploy/ failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).unwrap();
    let base = objects(&split_documents(&rendered, "kubectl kustomize deploy/"));

    let chart = load_chart();
    let helm = objects(&chart.render(&json!({})).unwrap());
    let mut expected = helm.ids.clone();
    expected.insert(("Namespace".into(), String::new(), NAMESPACE.into()));
    for crd in [CRD_NAME, DEPLOYMENT_CRD_NAME] {
        expected.insert(("CustomResourceDefinition".into(), String::new(), crd.into()));
    }
    assert_eq!(
        base.ids, expected,
        "deploy/ holds the chart's default objects plus the Namespace and the CRDs"
    );

    // The same CRD bytes in both places make the same objects.
    for (i, crd) in [CRD_NAME, DEPLOYMENT_CRD_NAME].iter().enumerate() {
        let chart_crd = read(&chart_dir().join("crds").join(format!("{crd}.yaml")));
        let chart_crd = objects(&split_documents(&chart_crd, "chart crd"));
        assert_eq!(
            serde_json::to_value(&base.crds[i]).unwrap(),
            serde_json::to_value(only(&chart_crd.crds, "CRD")).unwrap()
        );
    }

    // Same workload and permissions; only metadata labels may differ (no Helm labels).
    let spec = |d: &Deployment| serde_json::to_value(d.spec.as_ref().unwrap()).unwrap();
    assert_eq!(
        spec(only(&base.deployments, "Deployment")),
        spec(only(&helm.deployments, "Deployment"))
    );
    let spec = |s: &Service| serde_json::to_value(s.spec.as_ref().unwrap()).unwrap();
    assert_eq!(
        spec(only(&base.services, "Service")),
        spec(only(&helm.services, "Service"))
    );
    assert_eq!(
        effective_grants(&base, NAMESPACE, RELEASE),
        effective_grants(&helm, NAMESPACE, RELEASE),
        "deploy/ RBAC equals the chart's"
    );
    assert_eq!(
        only(&base.service_accounts, "ServiceAccount")
            .metadata
            .annotations,
        only(&helm.service_accounts, "ServiceAccount")
            .metadata
            .annotations
    );
    assert_locked_down(only(&base.deployments, "Deployment"));
    for name in base.ids.iter().map(|(_, _, n)| n) {
        assert!(
            !name.contains("examples"),
            "deploy/examples stays out of the base"
        );
    }
}

// ---------------------------------------------------------------- tests: Dockerfile

#[test]
#[ignore = "needs helm and kubectl built from Go modules: bash tools/test.sh"]
fn dockerfile_builds_what_the_chart_runs() {
    let dockerfile = read(&root().join("Dockerfile"));
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(stages.len(), 2, "build and runtime stages");
    assert!(
        stages[1].starts_with("FROM gcr.io/distroless/cc-debian12:nonroot"),
        "glibc runtime"
    );
    // The builder's Rust is at least the crate's rust-version.
    let manifest = read(&root().join("Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("rust-version in Cargo.toml");
    let builder = stages[0]
        .strip_prefix("FROM rust:")
        .expect("rust builder image");
    let minor = |v: &str| -> u32 { v.split(['.', '-']).nth(1).unwrap().parse().unwrap() };
    assert!(
        minor(builder) >= minor(&rust_version),
        "{builder} builds rust-version {rust_version}"
    );
    assert!(
        dockerfile.contains("cargo build --release --locked --no-default-features"),
        "the image has no emulator in it"
    );

    // Everything copied into the build exists and is not excluded by .dockerignore.
    let ignored: Vec<String> = read(&root().join(".dockerignore"))
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"target".to_string()) && ignored.contains(&".git".to_string()));
    for line in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(
                root().join(source).exists(),
                "Dockerfile copies missing {source}"
            );
            assert!(
                !ignored.iter().any(|i| i == source),
                ".dockerignore excludes {source}"
            );
        }
    }
    // Files the source embeds with include_str! (the demo's manifests) must be copied too.
    let copied: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[1..parts.len() - 1]
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let embedded = embedded_files(&root().join("src"));
    assert!(!embedded.is_empty(), "the demo embeds deploy/examples/");
    for file in &embedded {
        assert!(
            copied
                .iter()
                .any(|source| file.starts_with(source.as_str())),
            "the source embeds {file}, which the Dockerfile does not copy"
        );
        assert!(
            !ignored
                .iter()
                .any(|i| file.starts_with(i.as_str()) && !i.ends_with('*')),
            ".dockerignore excludes {file}"
        );
    }
    // Cargo refuses a manifest whose declared targets are missing: each [[bench]] must be copied.
    for bench in manifest.split("[[bench]]").skip(1) {
        let name = bench
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"');
        assert!(
            root().join(format!("benches/{name}.rs")).exists()
                && dockerfile.contains("COPY benches")
        );
    }

    // The runtime matches the chart: binary as entrypoint, `run` as the command the chart
    // passes, and the numeric non-root user the pod security context asserts.
    assert!(lines.contains(&"COPY --from=build /out/cognitive-operator /cognitive-operator"));
    assert!(lines.contains(&r#"ENTRYPOINT ["/cognitive-operator"]"#));
    assert!(lines.contains(&r#"CMD ["run"]"#));
    assert!(lines.contains(&"USER 65532:65532"));
    let chart = load_chart();
    let o = objects(&chart.render(&json!({})).unwrap());
    let d = only(&o.deployments, "Deployment");
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_user,
        Some(65532)
    );
    assert_eq!(container(d).args.as_ref().unwrap()[0], "run");
}

/// Repository-relative paths of files that `include_str!` pulls into the binary from outside src/.
fn embedded_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(embedded_files(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for piece in text.split("include_str!(\"").skip(1) {
            let relative = piece.split('"').next().unwrap();
            let resolved = path.parent().unwrap().join(relative);
            let resolved = resolved.canonicalize().unwrap_or(resolved);
            if let Ok(inside) = resolved.strip_prefix(root().canonicalize().unwrap()) {
                let inside = inside.to_string_lossy().to_string();
                if !inside.starts_with("src/") {
                    found.push(inside);
                }
            }
        }
    }
    found
}
