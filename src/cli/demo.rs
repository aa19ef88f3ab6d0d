//! `cognitive-operator demo`: the whole job on an embedded ARM emulator, printed as it happens.
//!
//! Seeds a resource group, two soft-deleted accounts and one unmanaged account, reconciles the
//! manifests of `deploy/examples/` through the real engine (restore, purge-and-recreate, create,
//! observe, model deployments), shows the steady state (one GET each, or a GET and a list of
//! deployments; the deployments themselves need none; no writes), scales a deployment with one
//! PATCH, imports the account made by hand (plan of the manifest: the adoption only), then
//! deletes with DeleteAndPurge — an account's deployments first, also one nobody
//! manages, so that the emulator's billing meter stops.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use serde_json::json;
use tokio::sync::broadcast;

use super::converge::{converge, converge_deployment};
use super::embedded::{EMULATOR_SUBSCRIPTION, client_for};
use super::manifests::{self, Loaded, Manifests};
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesDeployment, DeletionPolicy, ReconcilePolicy,
};
use crate::arm::ArmClient;
use crate::engine::{Engine, Outcome};
use crate::planner::status;
use arm_emulator::{Emulator, EmulatorConfig, Profile, RecordedRequest};

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
    (
        "deploy/examples/openai-deployments.yaml",
        include_str!("../../deploy/examples/openai-deployments.yaml"),
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
    let examples = load_examples(&args)?;
    let loaded = examples.accounts.clone();
    let config = EmulatorConfig {
        polls_to_complete: Some(1),
        retry_after_secs: 0,
        profile: Profile::from_env()?,
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
    let mut deployments: Vec<CognitiveServicesDeployment> = examples
        .deployments
        .iter()
        .map(|l| l.resource.clone())
        .collect();
    println!(
        "== 1. Reconcile {} resources from deploy/examples/\n",
        resources.len() + deployments.len()
    );
    for resource in &mut resources {
        heading(resource);
        let outcome = converge(&engine, &client, resource, false, TIMEOUT, |_| {
            print_calls(&mut calls);
        })
        .await;
        print_result(&outcome);
    }
    for deployment in &mut deployments {
        reconcile_deployment(&engine, &client, &resources, deployment, &mut calls).await?;
    }

    println!(
        "== 2. Steady state: a drift check costs one GET (and, for an account with deployments, a list of them, which answers theirs) and no write\n"
    );
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
    for deployment in &mut deployments {
        deployment_heading(deployment);
        let account = account_of(&resources, deployment);
        let outcome = engine
            .reconcile_deployment(
                &client,
                deployment,
                &engine.account_context(account),
                false,
                jiff::Timestamp::now(),
            )
            .await;
        deployment.status = Some(outcome.status.clone());
        let seen = print_calls(&mut calls);
        let writes = seen.iter().filter(|r| r.method != "GET").count();
        steady_writes += writes;
        println!(
            "    {} GET, {writes} writes (its account's list of deployments answered)\n",
            seen.len() - writes
        );
    }

    if let Some(first) = deployments.first_mut() {
        let capacity = first.spec.sku.capacity.unwrap_or(1);
        println!(
            "== 2b. Scale deployment {} from capacity {capacity} to {}: one PATCH\n",
            first.name_any(),
            capacity * 2
        );
        first.spec.sku.capacity = Some(capacity * 2);
        first.metadata.generation = first.metadata.generation.map(|g| g + 1);
        reconcile_deployment(&engine, &client, &resources, first, &mut calls).await?;
        let account = account_of(&resources, first).cloned();
        if let Some(account) = account {
            seed_provisioned(&emulator, &engine, &account);
        }
    }

    if let Some(hand_made) = resources
        .iter()
        .find(|r| r.spec.reconcile_policy == ReconcilePolicy::Observe)
    {
        println!(
            "== 2c. Import what exists: the account made by hand, read-only; plan of the manifest shows only the adoption\n"
        );
        let group = hand_made.spec.resource_group.clone();
        super::demo_import::import_and_plan(&emulator, &client, &engine, &group).await?;
        print_calls(&mut calls);
    }

    println!(
        "== 3. Delete the resources with deletionPolicy: DeleteAndPurge (an account's deployments first)\n"
    );
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
                super::apply::progress_line(&outcome.status.conditions)
            ));
        }
        println!("    finalizer can be removed\n");
    }
    for deployment in &mut deployments {
        deployment_heading(deployment);
        let context = engine.account_context(None);
        let outcome = converge_deployment(
            &engine,
            &client,
            deployment,
            &context,
            true,
            TIMEOUT,
            |_| {
                print_calls(&mut calls);
            },
        )
        .await;
        if !outcome.deletion_finished {
            return Err(format!(
                "deleting deployment {} did not finish",
                deployment.name_any()
            ));
        }
        println!("    gone with its account; finalizer can be removed\n");
    }
    let billing_after = stops_billing(&emulator)?;

    let total = emulator.requests();
    println!(
        "Done in {:.1}s: {} ARM calls, {} throttled, {steady_writes} writes in steady state, {billing_after} capacity-hours billed after deletion.",
        started.elapsed().as_secs_f64(),
        total.len(),
        emulator.throttled_count()
    );
    if steady_writes > 0 {
        return Err("the steady state wrote to ARM".into());
    }
    Ok(())
}

fn load_examples(args: &DemoArgs) -> Result<Manifests, String> {
    if let Some(dir) = &args.examples {
        return manifests::load(std::slice::from_ref(dir)).map_err(|e| e.to_string());
    }
    let mut loaded = Manifests::default();
    for (file, text) in EXAMPLES {
        let parsed = manifests::parse_all(file, text).map_err(|e| e.to_string())?;
        loaded.accounts.extend(parsed.accounts);
        loaded.deployments.extend(parsed.deployments);
    }
    Ok(loaded)
}

fn account_of<'a>(
    accounts: &'a [CognitiveServicesAccount],
    deployment: &CognitiveServicesDeployment,
) -> Option<&'a CognitiveServicesAccount> {
    accounts.iter().find(|a| {
        a.namespace() == deployment.namespace() && a.name_any() == deployment.spec.account_ref.name
    })
}

async fn reconcile_deployment(
    engine: &Engine,
    client: &ArmClient,
    accounts: &[CognitiveServicesAccount],
    deployment: &mut CognitiveServicesDeployment,
    calls: &mut broadcast::Receiver<RecordedRequest>,
) -> Result<(), String> {
    deployment_heading(deployment);
    let context = engine.account_context(account_of(accounts, deployment));
    let outcome = converge_deployment(engine, client, deployment, &context, false, TIMEOUT, |_| {
        print_calls(calls);
    })
    .await;
    println!(
        "    {}",
        super::apply::progress_line(&outcome.status.conditions)
    );
    if let (Some(version), Some(capacity)) =
        (&outcome.status.model_version, outcome.status.capacity)
    {
        println!("    model version {version}, capacity {capacity}");
    }
    println!();
    if outcome.ready() {
        Ok(())
    } else {
        Err(format!("deployment {} is not Ready", deployment.name_any()))
    }
}

/// A provisioned deployment someone made by hand: it bills by the hour, and deleting the
/// account must delete it first all the same.
fn seed_provisioned(emulator: &Emulator, engine: &Engine, account: &CognitiveServicesAccount) {
    let Ok(target) = engine.target(account) else {
        return;
    };
    emulator.seed_deployment(
        &target.subscription_id,
        &target.resource_group,
        &target.name,
        "batch-ptu",
        json!({"sku": {"name": "ProvisionedManaged", "capacity": 15},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
    emulator.advance_clock(Duration::from_secs(3600));
    println!(
        "seeded deployment batch-ptu (ProvisionedManaged, 15 PTU, unmanaged) in {}: billing {:.1} capacity-hours so far\n",
        target.name,
        accrued(emulator)
    );
}

/// After deletion nothing bills: an hour later the meter has not moved.
fn stops_billing(emulator: &Emulator) -> Result<f64, String> {
    let before = accrued(emulator);
    emulator.advance_clock(Duration::from_secs(3600));
    let after = accrued(emulator);
    let billing = emulator.billing()["billingCapacity"]
        .as_f64()
        .unwrap_or(-1.0);
    println!(
        "billing meter: {billing} capacity billing now; an hour later {:.1} capacity-hours accrued after deletion\n",
        after - before
    );
    if billing != 0.0 || after != before {
        return Err("something still bills after deletion".into());
    }
    Ok(after - before)
}

fn accrued(emulator: &Emulator) -> f64 {
    emulator.billing()["accruedCapacityHours"]
        .as_f64()
        .unwrap_or_default()
}

fn deployment_heading(deployment: &CognitiveServicesDeployment) {
    let spec = &deployment.spec;
    println!(
        "  {}/{}  (deployment of {}: {} {}, capacity {})",
        deployment.namespace().unwrap_or_default(),
        deployment.name_any(),
        spec.account_ref.name,
        spec.model.name,
        spec.sku.name,
        spec.sku
            .capacity
            .map_or("default".to_string(), |c| c.to_string())
    );
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
