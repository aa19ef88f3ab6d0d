//! Twenty deployments applied at once on one account: time to all Ready against the sum of
//! their operation times (ARM takes one write at a time per account), 409s provoked, and what a
//! resync of them costs at rest.
//!
//! `cargo bench --bench deployments -- [--deployments 20] [--operation-ms 900] [--latency-ms 30] [--json]`
//!
//! Under `ARM_EMULATOR_PROFILE=long-running` the emulator answers each deployment write with an
//! operation that completes `--operation-ms` after it starts and asks for a poll every second
//! (`Retry-After: 1`); the engine's write gate holds each write until its operation ends, and a
//! waiting deployment goes as soon as the gate frees. Under the default `recorded` profile the
//! writes are answered done at once, as recorded Azure answers them: there is no operation time,
//! and what is left is `--latency-ms` per call. See docs/performance.md.

mod support;

use std::time::{Duration, Instant};

use arm_emulator::EmulatorConfig;
use cognitive_operator::api::{
    AccountReference, CognitiveServicesDeployment, CognitiveServicesDeploymentSpec, DeploymentSku,
    ModelSpec, SoftDeletePolicy,
};
use cognitive_operator::arm::RetryPolicy;
use cognitive_operator::cli::converge::{converge, converge_deployment};
use cognitive_operator::engine::Engine;
use serde_json::json;
use support::*;

const TIMEOUT: Duration = Duration::from_secs(600);

fn main() {
    let args = Args::from_env();
    let count: usize = args.value("--deployments", 20);
    let operation = Duration::from_millis(args.value("--operation-ms", 900));
    let latency = Duration::from_millis(args.value("--latency-ms", 30));
    let host = EmulatorHost::start(EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(operation),
        retry_after_secs: 1,
        throttling: None,
        latency,
        ..EmulatorConfig::default()
    });
    let runtime = operator_runtime();
    let report = runtime.block_on(async {
        let emulator = &host.emulator;
        let client = client(
            emulator,
            1.0,
            RetryPolicy::default(),
            Duration::from_secs(30),
        );
        let engine = Engine::default();
        let mut account = account("bench-openai", "10m", SoftDeletePolicy::Restore);
        account.metadata.generation = Some(1);
        let created = converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
        assert!(created.ready(), "{:?}", created.status.conditions);
        emulator.clear_requests();

        let started = Instant::now();
        let context = engine.account_context(Some(&account));
        let mut deployments: Vec<_> = (0..count).map(deployment).collect();
        let outcomes =
            futures::future::join_all(deployments.iter_mut().map(|d| {
                let (engine, client, context) = (&engine, &client, &context);
                async move {
                    converge_deployment(engine, client, d, context, false, TIMEOUT, |_| {}).await
                }
            }))
            .await;
        let elapsed = started.elapsed();
        let ready = outcomes.iter().filter(|o| o.ready()).count();
        let requests = emulator.requests();
        let conflicts = requests.iter().filter(|r| r.status == 409).count();
        let converge_reads = requests.iter().filter(|r| r.method == "GET").count();
        let operation_polls = requests
            .iter()
            .filter(|r| {
                r.path.contains("/operationStatuses/") || r.path.contains("/operationResults/")
            })
            .count();
        let calls = requests.len();
        let bound = operation * count as u32;

        // At rest: the account's resync lists its deployments; theirs are answered by that list.
        converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
        let account_reads = emulator.requests().len() - requests.len();
        emulator.clear_requests();
        for d in &mut deployments {
            converge_deployment(&engine, &client, d, &context, false, TIMEOUT, |_| {}).await;
        }
        let rest_reads = emulator.requests().len();
        json!({
            "deployments": count,
            "ready": ready,
            "operationMs": operation.as_millis() as u64,
            "secondsToAllReady": elapsed.as_secs_f64(),
            "sumOfOperationSeconds": bound.as_secs_f64(),
            "ratioToSum": elapsed.as_secs_f64() / bound.as_secs_f64(),
            "conflicts409": conflicts,
            "latencyMs": latency.as_millis() as u64,
            "callsWhileConverging": calls,
            "operationPollsWhileConverging": operation_polls,
            "readsPerDeploymentWhileConverging": converge_reads as f64 / count as f64,
            "restReadsOfTheAccount": account_reads,
            "restReadsOfTheDeployments": rest_reads,
            "restReadsPerDeploymentPerResync": (account_reads + rest_reads) as f64 / count as f64,
        })
    });
    drop(runtime);
    drop(host);
    if args.flag("--json") {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        println!(
            "{} deployments on one account: all {} Ready in {:.2} s, {:.2} x the sum of their operation times if each were long-running ({:.1} s); {} x 409; {:.1} reads per deployment while converging; {} calls in all ({} ms latency each), {} of them operation polls",
            report["deployments"],
            report["ready"],
            report["secondsToAllReady"].as_f64().unwrap(),
            report["ratioToSum"].as_f64().unwrap(),
            report["sumOfOperationSeconds"].as_f64().unwrap(),
            report["conflicts409"],
            report["readsPerDeploymentWhileConverging"]
                .as_f64()
                .unwrap(),
            report["callsWhileConverging"],
            report["latencyMs"],
            report["operationPollsWhileConverging"],
        );
        println!(
            "at rest, one resync of the account and its deployments: {} reads of the account (GET + list), {} of the deployments = {:.2} reads per deployment",
            report["restReadsOfTheAccount"],
            report["restReadsOfTheDeployments"],
            report["restReadsPerDeploymentPerResync"].as_f64().unwrap(),
        );
    }
}

fn deployment(i: usize) -> CognitiveServicesDeployment {
    let spec = CognitiveServicesDeploymentSpec {
        account_ref: AccountReference {
            name: "bench-openai".into(),
        },
        model: ModelSpec {
            format: "OpenAI".into(),
            name: "gpt-4o".into(),
            version: None,
        },
        sku: DeploymentSku {
            name: "GlobalStandard".into(),
            capacity: Some(1),
        },
        ..Default::default()
    };
    let mut resource = CognitiveServicesDeployment::new(&format!("chat-{i}"), spec);
    resource.metadata.namespace = Some(NAMESPACE.into());
    resource.metadata.generation = Some(1);
    resource
}
