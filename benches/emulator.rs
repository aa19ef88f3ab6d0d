//! Emulator throughput: GETs of one account from 32 concurrent tasks over keep-alive connections,
//! throttling off, for about 3 seconds. Run with `cargo bench --bench emulator`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arm_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

const TASKS: usize = 32;
const WARM_UP: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_secs(3);
/// Upper bound on requests, so a surprisingly fast machine still finishes promptly.
const MAX_REQUESTS: u64 = 2_000_000;

fn main() {
    cognitive_operator::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(measure());
}

async fn measure() {
    let config = EmulatorConfig {
        throttling: None,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let (subscription, group) = ("00000000-0000-0000-0000-000000000001", "bench");
    emulator.seed_account(
        subscription,
        group,
        "bench-account",
        json!({"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}, "tags": {"purpose": "bench"},
               "properties": {"customSubDomainName": "bench-account"}}),
    );
    let url = format!(
        "{}/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/bench-account?api-version=2024-10-01",
        emulator.base_url()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(TASKS)
        .build()
        .expect("client");

    run_for(&client, &url, WARM_UP).await;
    let started = Instant::now();
    let completed = run_for(&client, &url, MEASURE).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "emulator: {completed} GETs in {elapsed:.2} s = {:.0} GETs/s ({TASKS} concurrent tasks, keep-alive, throttling off)",
        completed as f64 / elapsed
    );
    emulator.shutdown().await;
}

/// Sends GETs from `TASKS` tasks until `duration` passes; returns how many succeeded.
async fn run_for(client: &reqwest::Client, url: &str, duration: Duration) -> u64 {
    let deadline = Instant::now() + duration;
    let completed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, url, completed) = (client.clone(), url.to_string(), completed.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline && completed.load(Ordering::Relaxed) < MAX_REQUESTS
                {
                    let response = client
                        .get(&url)
                        .bearer_auth("bench")
                        .send()
                        .await
                        .expect("GET answered");
                    assert!(
                        response.status().is_success(),
                        "GET failed: {}",
                        response.status()
                    );
                    response.bytes().await.expect("body");
                    completed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bench task");
    }
    completed.load(Ordering::Relaxed)
}
