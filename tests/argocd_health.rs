//! The Argo CD health check `deploy/argocd/health.lua`, run on sample objects.
//!
//! Argo CD runs health scripts in gopher-lua (Lua 5.1) with the live object as the global `obj`
//! (JSON numbers become Lua numbers, JSON null becomes nil) and reads `status` and `message` from
//! the table the script returns. This test does the same with Lua 5.1 and only the base, table,
//! string and math libraries.

use k8s_openapi::api::core::v1::ConfigMap;
use mlua::{Lua, LuaOptions, StdLib, Table};
use serde_json::{Value, json};
use std::path::Path;

const KEY: &str = "resource.customizations.health.cognitive-operator.dev_CognitiveServicesAccount";

fn script() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/health.lua");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().expect("finite number")),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

/// Runs the health script on `obj`, returning (status, message).
fn health(obj: &Value) -> (String, String) {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .expect("Lua state");
    lua.globals()
        .set("obj", to_lua(&lua, obj).unwrap())
        .unwrap();
    let hs: Table = lua
        .load(script())
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {obj}: {e}"));
    let keys: Vec<String> = hs
        .pairs::<String, mlua::Value>()
        .map(|p| p.unwrap().0)
        .collect();
    assert!(
        keys.iter().all(|k| k == "status" || k == "message"),
        "unexpected keys {keys:?}"
    );
    let status: String = hs.get("status").expect("status is a string");
    let message: String = hs.get("message").expect("message is a string");
    assert!(
        ["Healthy", "Progressing", "Degraded", "Suspended"].contains(&status.as_str()),
        "not an Argo CD health status: {status}"
    );
    (status, message)
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn account(generation: i64, observed: Option<i64>, conditions: Vec<Value>) -> Value {
    let mut status = json!({"conditions": conditions});
    if let Some(observed) = observed {
        status["observedGeneration"] = json!(observed);
    }
    json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesAccount",
        "metadata": {"name": "openai", "namespace": "team-a", "generation": generation},
        "spec": {"kind": "OpenAI", "location": "westeurope", "reconcilePolicy": "Manage"},
        "status": status,
    })
}

fn assert_health(obj: &Value, status: &str, message: &str) {
    assert_eq!(
        health(obj),
        (status.to_string(), message.to_string()),
        "for {obj:#}"
    );
}

#[test]
fn ready_and_observed_is_healthy() {
    let obj = account(
        3,
        Some(3),
        vec![
            condition(
                "Ready",
                "True",
                "Succeeded",
                "Account openai is provisioned",
            ),
            condition("Reconciling", "False", "Succeeded", ""),
            condition("Stalled", "False", "Succeeded", ""),
        ],
    );
    assert_health(&obj, "Healthy", "Account openai is provisioned");
    // The reason stands in for an empty message.
    let obj = account(
        1,
        Some(1),
        vec![condition("Ready", "True", "Succeeded", "")],
    );
    assert_health(&obj, "Healthy", "Succeeded");
}

#[test]
fn stalled_is_degraded_with_its_message() {
    let obj = account(
        2,
        Some(2),
        vec![
            condition("Ready", "False", "QuotaExceeded", "Not ready"),
            condition(
                "Stalled",
                "True",
                "QuotaExceeded",
                "Subscription quota for OpenAI in westeurope is exhausted",
            ),
        ],
    );
    assert_health(
        &obj,
        "Degraded",
        "Subscription quota for OpenAI in westeurope is exhausted",
    );
}

#[test]
fn reconciling_or_not_ready_is_progressing() {
    let obj = account(
        2,
        Some(2),
        vec![
            condition("Ready", "False", "Provisioning", "Waiting for ARM"),
            condition(
                "Reconciling",
                "True",
                "Provisioning",
                "Creating account (operation 2 of 3)",
            ),
        ],
    );
    assert_health(&obj, "Progressing", "Creating account (operation 2 of 3)");
    // Reconciling wins over a Ready left from the last pass.
    let obj = account(
        2,
        Some(2),
        vec![
            condition("Ready", "True", "Succeeded", "ok"),
            condition("Reconciling", "True", "Updating", "Patching tags"),
        ],
    );
    assert_health(&obj, "Progressing", "Patching tags");
    let obj = account(
        2,
        Some(2),
        vec![condition(
            "Ready",
            "False",
            "Deleting",
            "Purging soft-deleted account",
        )],
    );
    assert_health(&obj, "Progressing", "Purging soft-deleted account");
    let obj = account(
        2,
        Some(2),
        vec![condition("Ready", "Unknown", "Pending", "")],
    );
    assert_health(&obj, "Progressing", "Pending");
}

#[test]
fn missing_status_or_ready_is_progressing() {
    let mut obj = account(1, None, vec![]);
    obj.as_object_mut().unwrap().remove("status");
    assert_health(
        &obj,
        "Progressing",
        "Waiting for the operator to observe generation 1",
    );
    let obj = account(1, Some(1), vec![]);
    assert_health(&obj, "Progressing", "Waiting for the Ready condition");
    let mut obj = account(1, Some(1), vec![]);
    obj["status"]["conditions"] = Value::Null;
    assert_health(&obj, "Progressing", "Waiting for the Ready condition");
}

#[test]
fn stale_observed_generation_is_progressing() {
    // Ready for the old spec is not healthy for the new one.
    let obj = account(
        4,
        Some(3),
        vec![condition("Ready", "True", "Succeeded", "ok")],
    );
    assert_health(
        &obj,
        "Progressing",
        "Waiting for the operator to observe generation 4",
    );
    // Nor is a Stalled from the old spec Degraded (kstatus order).
    let obj = account(
        4,
        Some(3),
        vec![condition(
            "Stalled",
            "True",
            "BadSku",
            "SKU F0 is not offered",
        )],
    );
    assert_health(
        &obj,
        "Progressing",
        "Waiting for the operator to observe generation 4",
    );
}

#[test]
fn pause_is_suspended() {
    let mut obj = account(
        5,
        Some(2),
        vec![condition("Stalled", "True", "Boom", "broken")],
    );
    obj["spec"]["reconcilePolicy"] = json!("Pause");
    assert_health(&obj, "Suspended", "reconcilePolicy is Pause");
}

#[test]
fn argocd_cm_carries_the_script_verbatim() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/argocd-cm.yaml");
    let text = std::fs::read_to_string(&path).expect("argocd-cm.yaml");
    let cm: ConfigMap = serde_saphyr::from_str(&text).expect("argocd-cm.yaml is a ConfigMap");
    assert_eq!(cm.metadata.name.as_deref(), Some("argocd-cm"));
    let data = cm.data.expect("data");
    let deployment_key = KEY.replace("CognitiveServicesAccount", "CognitiveServicesDeployment");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        [KEY, deployment_key.as_str()],
        "one health customization per kind"
    );
    for key in [KEY, deployment_key.as_str()] {
        assert!(
            data[key] == script(),
            "argocd-cm.yaml's {key} differs from health.lua; regenerate it"
        );
    }
}
