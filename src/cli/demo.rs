//! `cognitive-operator demo`: the whole job on an embedded ARM emulator, printed as it happens.
//!
//! Seeds a resource group, two soft-deleted accounts and one unmanaged account, reconciles the
//! manifests of `deploy/examples/` through the real engine (restore, purge-and-recreate, create,
//! observe), shows the steady state (one GET each, no writes), then deletes with DeleteAndPurge.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use serde_json::json;
use tokio::sync::broadcast;

use super::converge::converge;
use super::embedded::{EMULATOR_SUBSCRIPTION, client_for};
use super::manifests::{self, Loaded};
use crate::api::{CognitiveServicesAccount, DeletionPolicy, ReconcilePolicy};
use crate::engine::{Engine, Outcome};
use crate::planner::status;
use arm_emulator::{Emulator, EmulatorConfig, RecordedRequest};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Reconcile the manifests in this directory instead of the built-in copy of deploy/examples/.
    #[arg(long)]
    pub examples: Option<PathBuf>,
}

/// The manifests of deploy/examples/, built in so the demo runs from any directory.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "deploy/examples/observe-only.yaml",
        include_str!("../../deploy/examples/observe-only.yaml"),
    ),
    (
        "deploy/examples/openai-network-rules.yaml",
        include_str!("../../deploy/examples/openai-network-rules.yaml"),
    ),
    (
        "deploy/examples/per-namespace-credentials.yaml",
        include_str!("../../deploy/examples/per-namespace-credentials.yaml"),
    ),
    (
        "deploy/examples/purge-and-recreate.yaml",
        include_str!("../../deploy/examples/purge-and-recreate.yaml"),
    ),
];

const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(args: DemoArgs) -> i32 {
    match demo(args).await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            1
        }
    }
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let started = Instant::now();
    let loaded = load_examples(&args)?;
    let config = EmulatorConfig {
        polls_to_complete: Some(1),
        retry_after_secs: 0,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config)
        .await
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    let client = client_for(&emulator).map_err(|e| e.to_string())?;
    let mut calls = emulator.subscribe_requests();
    let engine = Engine::new(Some(EMULATOR_SUBSCRIPTION.to_string()));
    println!(
        "ARM emulator listening on {} (subscription {EMULATOR_SUBSCRIPTION})\n",
        emulator.base_url()
    );
    seed(&emulator, &loaded);

    let mut resources: Vec<CognitiveServicesAccount> =
        loaded.into_iter().map(|l| l.resource).collect();
    println!(
        "== 1. Reconcile {} resources from deploy/examples/\n",
        resources.len()
    );
    for resource in &mut resources {
        heading(resource);
        let outcome = converge(&engine, &client, resource, false, TIMEOUT, |_| {
            print_calls(&mut calls);
        })
        .await;
        print_result(&outcome);
    }

    println!("== 2. Steady state: a drift check costs one GET and no write\n");
    let mut steady_writes = 0;
    for resource in &mut resources {
        heading(resource);
        let outcome = engine
            .reconcile(&client, resource, false, jiff::Timestamp::now())
            .await;
        resource.status = Some(outcome.status.clone());
        let seen = print_calls(&mut calls);
        let writes = seen.iter().filter(|r| r.method != "GET").count();
        steady_writes += writes;
        println!("    {} GET, {writes} writes\n", seen.len() - writes);
    }

    println!("== 3. Delete the resources with deletionPolicy: DeleteAndPurge\n");
    for resource in &mut resources {
        heading(resource);
        if resource.spec.reconcile_policy == ReconcilePolicy::Observe {
            println!("    reconcilePolicy is Observe: the account is left in Azure, no ARM call");
        }
        resource.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
        let outcome = converge(&engine, &client, resource, true, TIMEOUT, |_| {
            print_calls(&mut calls);
        })
        .await;
        if !outcome.deletion_finished {
            return Err(format!(
                "deleting {} did not finish: {}",
                resource.name_any(),
                super::apply::progress_line(&outcome)
            ));
        }
        println!("    finalizer can be removed\n");
    }

    let total = emulator.requests();
    println!(
        "Done in {:.1}s: {} ARM calls, {} throttled, {steady_writes} writes in steady state.",
        started.elapsed().as_secs_f64(),
        total.len(),
        emulator.throttled_count()
    );
    if steady_writes > 0 {
        return Err("the steady state wrote to ARM".into());
    }
    Ok(())
}

fn load_examples(args: &DemoArgs) -> Result<Vec<Loaded>, String> {
    if let Some(dir) = &args.examples {
        return manifests::load(std::slice::from_ref(dir)).map_err(|e| e.to_string());
    }
    let mut loaded = Vec::new();
    for (file, text) in EXAMPLES {
        loaded.extend(manifests::parse(file, text).map_err(|e| e.to_string())?);
    }
    Ok(loaded)
}

/// The world the examples meet: their resource groups, soft-deleted copies of the accounts that
/// restore or purge them, and an account created by hand for the Observe example.
fn seed(emulator: &Emulator, loaded: &[Loaded]) {
    for l in loaded {
        let spec = &l.resource.spec;
        emulator.seed_resource_group(EMULATOR_SUBSCRIPTION, &spec.resource_group, &spec.location);
    }
    for l in loaded {
        let (resource, spec) = (&l.resource, &l.resource.spec);
        let name = spec
            .azure_name(&resource.metadata.name.clone().unwrap_or_default())
            .to_string();
        let mut body = json!({"location": spec.location, "kind": spec.kind, "sku": {"name": spec.sku.name}, "tags": {"created-by": "someone, long ago"}});
        if let Some(sub) = spec
            .properties
            .as_ref()
            .and_then(|p| p.custom_sub_domain_name.as_ref())
        {
            body["properties"] = json!({"customSubDomainName": sub});
        }
        let seeded = if spec.reconcile_policy == ReconcilePolicy::Observe {
            emulator.seed_account(EMULATOR_SUBSCRIPTION, &spec.resource_group, &name, body);
            "an account created by hand (unmanaged)"
        } else if spec.connection_secret.is_some() && spec.credentials_secret_ref.is_none()
            || spec.soft_delete_policy == crate::api::SoftDeletePolicy::Purge
        {
            // The resource's own account, deleted earlier: its owner tag survived, so the
            // soft-delete policy may act on it without adopting anything.
            body["tags"][crate::api::OWNER_TAG] = json!(crate::engine::owner_id(resource));
            emulator.seed_deleted_account(EMULATOR_SUBSCRIPTION, &spec.resource_group, &name, body);
            "a soft-deleted copy (this resource's account, deleted earlier)"
        } else {
            continue;
        };
        println!("seeded {seeded} of {name} in {}", spec.resource_group);
    }
    println!();
}

fn heading(resource: &CognitiveServicesAccount) {
    let spec = &resource.spec;
    println!(
        "  {}/{}  (softDeletePolicy {:?}, reconcilePolicy {:?})",
        resource.namespace().unwrap_or_default(),
        resource.name_any(),
        spec.soft_delete_policy,
        spec.reconcile_policy
    );
}

/// Prints the ARM calls made since the last look and returns them.
fn print_calls(calls: &mut broadcast::Receiver<RecordedRequest>) -> Vec<RecordedRequest> {
    let mut seen = Vec::new();
    while let Ok(call) = calls.try_recv() {
        println!(
            "    {:<6} {:<78} {}",
            call.method,
            short_path(&call.path),
            call.status
        );
        seen.push(call);
    }
    seen
}

/// `/subscriptions/{s}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x`
/// → `resourceGroups/rg/accounts/x`.
fn short_path(path: &str) -> String {
    let without_subscription = path
        .strip_prefix("/subscriptions/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(path, |(_, rest)| rest);
    without_subscription
        .replace("providers/Microsoft.CognitiveServices/", "")
        .replace("/providers/Microsoft.CognitiveServices", "")
}

fn print_result(outcome: &Outcome) {
    for condition in &outcome.status.conditions {
        if condition.status == "True" || condition.type_ == status::READY {
            println!(
                "    {}={} {}: {}",
                condition.type_, condition.status, condition.reason, condition.message
            );
        }
    }
    for drift in &outcome.status.drift {
        println!(
            "    drift {}: spec {} / Azure {}",
            drift.field, drift.desired, drift.observed
        );
    }
    if let Some(endpoint) = &outcome.status.endpoint {
        println!("    endpoint {endpoint}");
    }
    if let Some(when) = &outcome.status.last_restore_time {
        println!("    restored at {when}");
    }
    if let Some(when) = &outcome.status.last_purge_time {
        println!("    purged a soft-deleted copy at {when}");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shortened_for_reading() {
        assert_eq!(
            short_path(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x"
            ),
            "resourceGroups/rg/accounts/x"
        );
        assert_eq!(
            short_path(
                "/subscriptions/s/providers/Microsoft.CognitiveServices/locations/l/resourceGroups/rg/deletedAccounts/x"
            ),
            "locations/l/resourceGroups/rg/deletedAccounts/x"
        );
    }
}
