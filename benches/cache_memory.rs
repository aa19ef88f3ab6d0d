//! Memory of the operator's cache: RSS with 10,000 resources held in the controller's reflector
//! store, as the controller holds them (each watched `DynamicObject` converted by
//! `controller::cache_object`: a typed `CognitiveServicesAccount` with no managedFields, no
//! labels and only the operator's own `cognitive-operator.dev/*` annotations).
//!
//! `cargo bench --bench cache_memory [-- --resources 10000 --json]`
//!
//! The objects are shaped like real CRs: metadata with labels, the kubectl last-applied
//! annotation, a finalizer and three managedFields entries; a spec with tags, network rules and
//! properties; a status with three conditions, endpoint(s) and no drift. Each object is
//! serialized to JSON and parsed back as a `DynamicObject` (as the watcher does with the API
//! server's bytes), then applied to the store through an initial list (Init, InitApply…,
//! InitDone), the way a controller start fills it.
//!
//! Four variants, each in a fresh child process: the store as the controller fills it (the
//! headline figure), and for comparison `DynamicObject`s as the watch delivers them, the same
//! with managedFields and the last-applied copy dropped (the controller's cache before it was
//! typed), and typed objects with only managedFields and the last-applied copy dropped.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::DynamicObject;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::{Args, machine, peak_rss_mib, round, rss_mib};

use cognitive_operator::api::CognitiveServicesAccount;
use cognitive_operator::controller::reconciler::{
    account_api_resource, invalid_resource, parse_account,
};
use cognitive_operator::controller::{cache_event, cache_object};

const TARGET_MIB: f64 = 48.0;

/// Counts the bytes live on the heap (requested sizes, without the allocator's own overhead),
/// to tell the objects' size apart from what the allocator adds on top in RSS.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_mib() -> f64 {
    LIVE_BYTES.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// What the store holds.
const VARIANTS: &[(&str, &str)] = &[
    (
        "controller",
        "DynamicObject converted by controller::cache_object (what the controller caches)",
    ),
    (
        "dynamic",
        "DynamicObject as watched, managedFields and last-applied kept",
    ),
    (
        "dynamic-pruned",
        "DynamicObject, managedFields and last-applied dropped (the cache before it was typed)",
    ),
    (
        "typed-pruned",
        "typed CognitiveServicesAccount, managedFields and last-applied dropped",
    ),
];

fn main() {
    let args = Args::from_env();
    let count: usize = args.value("--resources", 10_000);
    let variant: String = args.value("--variant", String::new());
    if !variant.is_empty() {
        // A child process: fill one store and print its figures as one JSON line.
        println!("{}", measure(&variant, count));
        return;
    }
    // Each variant in a fresh process, so that one's freed memory does not flatter the next.
    let exe = std::env::current_exe().expect("own executable");
    let mut results = Vec::new();
    for (variant, description) in VARIANTS {
        let output = std::process::Command::new(&exe)
            .args(["--variant", variant, "--resources", &count.to_string()])
            .output()
            .expect("child runs");
        assert!(
            output.status.success(),
            "variant {variant} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut result: Value = serde_json::from_slice(&output.stdout).expect("child prints JSON");
        result["description"] = json!(description);
        results.push(result);
    }
    let headline = &results[0];
    let report = json!({
        "benchmark": "cache_memory",
        "machine": machine(),
        "resources": count,
        "targetMiB": TARGET_MIB,
        "rssMiB": headline["rssAfterMiB"],
        "withinTarget": headline["withinTarget"],
        "variants": results,
    });
    if args.flag("--json") {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        return;
    }
    println!(
        "cache_memory: {count} CognitiveServicesAccounts in a kube-runtime reflector store ({}); target RSS ≤ {TARGET_MIB} MiB",
        machine()
    );
    println!(
        "  {:<15} {:>10} {:>8} {:>10} {:>11} {:>10} {:>11} {:>7}  what",
        "variant",
        "JSON B/obj",
        "RSS MiB",
        "added MiB",
        "B/resource",
        "heap MiB",
        "heap B/res",
        "target"
    );
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for r in &results {
        println!(
            "  {:<15} {:>10} {:>8} {:>10} {:>11} {:>10} {:>11} {:>7}  {}",
            text(&r["variant"]),
            text(&r["objectJsonBytes"]),
            text(&r["rssAfterMiB"]),
            text(&r["rssDeltaMiB"]),
            text(&r["bytesPerResource"]),
            text(&r["heapLiveMiB"]),
            text(&r["heapBytesPerResource"]),
            if r["withinTarget"] == json!(true) {
                "PASS"
            } else {
                "MISS"
            },
            text(&r["description"])
        );
    }
}

/// Drops what a controller does not need to keep: managedFields and kubectl's copy of the spec.
fn prune(meta: &mut kube::api::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn measure(variant: &str, count: usize) -> Value {
    // The shape check: one object parses as the typed resource the reconciler works with.
    let sample_bytes = serde_json::to_vec(&cr(0)).expect("serialize");
    let sample: DynamicObject = serde_json::from_slice(&sample_bytes).expect("dynamic object");
    let typed = parse_account(&sample).expect("the sample is a valid CognitiveServicesAccount");
    assert_eq!(typed.status.as_ref().map(|s| s.conditions.len()), Some(3));
    let cached = cache_object(sample.clone());
    assert_eq!(
        invalid_resource(&cached),
        None,
        "the controller caches the sample as a typed object, not a placeholder"
    );
    drop((sample, typed));

    let rss_before = rss_mib();
    let live_before = live_mib();
    let (held, rss_after, live_after) = match variant {
        "dynamic" | "dynamic-pruned" => {
            let mut writer: Writer<DynamicObject> = Writer::new(account_api_resource());
            writer.apply_watcher_event(&Event::Init);
            for i in 0..count {
                let bytes = serde_json::to_vec(&cr(i)).expect("serialize");
                let mut object: DynamicObject =
                    serde_json::from_slice(&bytes).expect("dynamic object");
                if variant == "dynamic-pruned" {
                    prune(&mut object.metadata);
                }
                writer.apply_watcher_event(&Event::InitApply(object));
            }
            writer.apply_watcher_event(&Event::InitDone);
            (writer.as_reader().len(), rss_mib(), live_mib())
        }
        "controller" => {
            // As `controller::run_controller` fills it: the watcher's untyped events, each
            // converted by `controller::cache_event` (`cache_object` on its object).
            let mut writer: Writer<CognitiveServicesAccount> = Writer::default();
            writer.apply_watcher_event(&cache_event(Event::Init));
            for i in 0..count {
                let bytes = serde_json::to_vec(&cr(i)).expect("serialize");
                let object: DynamicObject = serde_json::from_slice(&bytes).expect("dynamic object");
                writer.apply_watcher_event(&cache_event(Event::InitApply(object)));
            }
            writer.apply_watcher_event(&cache_event(Event::InitDone));
            (writer.as_reader().len(), rss_mib(), live_mib())
        }
        "typed-pruned" => {
            let mut writer: Writer<CognitiveServicesAccount> = Writer::default();
            writer.apply_watcher_event(&Event::Init);
            for i in 0..count {
                let bytes = serde_json::to_vec(&cr(i)).expect("serialize");
                let mut object: CognitiveServicesAccount =
                    serde_json::from_slice(&bytes).expect("typed object");
                prune(&mut object.metadata);
                writer.apply_watcher_event(&Event::InitApply(object));
            }
            writer.apply_watcher_event(&Event::InitDone);
            (writer.as_reader().len(), rss_mib(), live_mib())
        }
        other => panic!("unknown variant {other}"),
    };
    assert_eq!(held, count, "every object is in the store");
    let delta = rss_after - rss_before;
    json!({
        "variant": variant,
        "resources": count,
        "objectJsonBytes": sample_bytes.len(),
        "rssBeforeMiB": round(rss_before, 1),
        "rssAfterMiB": round(rss_after, 1),
        "rssDeltaMiB": round(delta, 1),
        "bytesPerResource": round(delta * 1024.0 * 1024.0 / count.max(1) as f64, 0),
        "heapLiveMiB": round(live_after - live_before, 1),
        "heapBytesPerResource": round((live_after - live_before) * 1024.0 * 1024.0 / count.max(1) as f64, 0),
        "peakRssMiB": round(peak_rss_mib(), 1),
        "withinTarget": rss_after <= TARGET_MIB,
    })
}

/// A CognitiveServicesAccount as the API server returns it after `kubectl apply` and a few
/// reconciles by the operator.
fn cr(i: usize) -> Value {
    let name = format!("account-{i:05}");
    let namespace = format!("team-{:02}", i % 40);
    let sub = "5f1c9a7e-3b1d-4c6e-9f2a-7d8e1b2c3a4f";
    let rg = format!("rg-ai-{:02}", i % 40);
    let spec = json!({
        "subscriptionId": sub,
        "resourceGroup": rg,
        "location": "westeurope",
        "kind": "OpenAI",
        "sku": {"name": "S0"},
        "tags": {"team": namespace, "cost-center": format!("cc-{:04}", i % 977), "environment": "production", "owner": "platform-ai@example.com"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "customSubDomainName": name,
            "publicNetworkAccess": "Disabled",
            "disableLocalAuth": true,
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "AzureServices",
                "ipRules": [{"value": "203.0.113.0/24"}, {"value": "198.51.100.17"}, {"value": format!("192.0.2.{}", i % 250)}],
                "virtualNetworkRules": [
                    {"id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/vnet-ai/subnets/snet-apps"), "ignoreMissingVnetServiceEndpoint": false},
                    {"id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/vnet-ai/subnets/snet-jobs"), "ignoreMissingVnetServiceEndpoint": false},
                ],
            },
        },
        "softDeletePolicy": "Restore",
        "deletionPolicy": "Delete",
        "resyncInterval": "10m",
        "connectionSecret": {"name": format!("{name}-connection")},
    });
    let last_applied = json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "ai-platform", "team": namespace}},
        "spec": spec,
    });
    let time = |minute: usize| {
        format!(
            "2025-06-{:02}T{:02}:{:02}:{:02}Z",
            1 + i % 28,
            i % 24,
            minute % 60,
            i % 60
        )
    };
    let condition = |type_: &str, status: &str, reason: &str, message: &str| json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 3, "lastTransitionTime": time(7)});
    json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "resourceVersion": format!("{}", 18_000_000 + i * 7),
            "generation": 3,
            "creationTimestamp": time(1),
            "labels": {"app.kubernetes.io/part-of": "ai-platform", "app.kubernetes.io/managed-by": "argocd", "team": namespace, "environment": "production"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string(),
                "argocd.argoproj.io/tracking-id": format!("ai-platform:cognitive-operator.dev/CognitiveServicesAccount:{namespace}/{name}"),
            },
            "finalizers": ["cognitive-operator.dev/cleanup"],
            "managedFields": managed_fields(&time),
        },
        "spec": spec,
        "status": {
            "observedGeneration": 3,
            "conditions": [
                condition("Ready", "True", "Ready", "the account matches the spec"),
                condition("Reconciling", "False", "Ready", ""),
                condition("Stalled", "False", "Ready", ""),
            ],
            "armId": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"),
            "endpoint": format!("https://{name}.openai.azure.com/"),
            "endpoints": {
                "OpenAI Language Model Instance API": format!("https://{name}.openai.azure.com/"),
                "OpenAI Dall-E API": format!("https://{name}.openai.azure.com/"),
                "OpenAI Realtime API": format!("https://{name}.openai.azure.com/"),
                "Token Service API": format!("https://{name}.openai.azure.com/"),
            },
            "provisioningState": "Succeeded",
        },
    })
}

/// kubectl's client-side apply, the operator's finalizer patch and its status apply.
fn managed_fields(time: &dyn Fn(usize) -> String) -> Value {
    let kubectl = json!({
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}, "f:argocd.argoproj.io/tracking-id": {}}, "f:labels": {".": {}, "f:app.kubernetes.io/part-of": {}, "f:app.kubernetes.io/managed-by": {}, "f:team": {}, "f:environment": {}}},
        "f:spec": {".": {}, "f:subscriptionId": {}, "f:resourceGroup": {}, "f:location": {}, "f:kind": {}, "f:sku": {".": {}, "f:name": {}}, "f:tags": {".": {}, "f:team": {}, "f:cost-center": {}, "f:environment": {}, "f:owner": {}}, "f:identity": {".": {}, "f:type": {}},
                   "f:properties": {".": {}, "f:customSubDomainName": {}, "f:publicNetworkAccess": {}, "f:disableLocalAuth": {}, "f:networkAcls": {".": {}, "f:defaultAction": {}, "f:bypass": {}, "f:ipRules": {}, "f:virtualNetworkRules": {}}},
                   "f:softDeletePolicy": {}, "f:deletionPolicy": {}, "f:resyncInterval": {}, "f:connectionSecret": {".": {}, "f:name": {}}},
    });
    let finalizer = json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"cognitive-operator.dev/cleanup\"": {}}}});
    let status = json!({"f:status": {"f:observedGeneration": {}, "f:conditions": {}, "f:armId": {}, "f:endpoint": {}, "f:endpoints": {}, "f:provisioningState": {}}});
    let api_version = "cognitive-operator.dev/v1alpha1";
    json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": api_version, "time": time(1), "fieldsType": "FieldsV1", "fieldsV1": kubectl},
        {"manager": "cognitive-operator", "operation": "Update", "apiVersion": api_version, "time": time(2), "fieldsType": "FieldsV1", "fieldsV1": finalizer},
        {"manager": "cognitive-operator", "operation": "Apply", "apiVersion": api_version, "time": time(7), "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": status},
    ])
}
