//! Converging N new accounts at ARM's throttling limit, and what the steady state costs.
//!
//! `cargo bench --bench converge -- --accounts 1000 [--resource-groups 10] [--others-share 0.5]
//! [--concurrency 64] [--time-scale 10] [--latency-ms 30] [--resync-secs 30]
//! [--timeout-secs 110] [--json]`
//!
//! `--others-share F`: another client of the same principal and subscription spends the share
//! F of every bucket while the accounts converge (F of each bucket at once, then F of each
//! refill rate). The operator's limiter is still told Azure's whole numbers; it has to find out
//! from ARM's answers what is left to it. The bound is then that of the budget left.
//!
//! The real engine runs with the controller's scheduling (bounded concurrency, requeue per the
//! engine's answer through `controller::requeue`, jittered resync) against the in-process
//! emulator, whose per-subscription buckets have Azure's shape with refill rates `--time-scale`
//! times faster; the client's limiter is told the same numbers. Time to converge is compared with
//! the token-bucket bound: the least time the buckets allow for the calls made. Then one resync
//! round of every account measures the steady state. See docs/performance.md.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arm_emulator::{EmulatorConfig, ThrottleConfig};
use cognitive_operator::api::SoftDeletePolicy;
use cognitive_operator::arm::RetryPolicy;
use cognitive_operator::engine::Engine;
use serde_json::{Value, json};
use support::*;

struct Settings {
    accounts: usize,
    resource_groups: usize,
    others_share: f64,
    concurrency: usize,
    scale: f64,
    latency: Duration,
    resync_secs: u64,
    timeout: Duration,
    json: bool,
}

fn main() {
    let args = Args::from_env();
    let settings = Settings {
        accounts: args.value("--accounts", 1000),
        resource_groups: args.value("--resource-groups", 10).max(1),
        others_share: args.value("--others-share", 0.0_f64).clamp(0.0, 0.95),
        concurrency: args.value("--concurrency", 64),
        scale: args.value("--time-scale", 10.0),
        latency: Duration::from_millis(args.value("--latency-ms", 30)),
        resync_secs: args.value("--resync-secs", 30),
        timeout: Duration::from_secs(args.value("--timeout-secs", 110)),
        json: args.flag("--json"),
    };
    let throttling = ThrottleConfig::azure().scaled(settings.scale);
    let host = EmulatorHost::start(EmulatorConfig {
        polls_to_complete: Some(1),
        retry_after_secs: 0,
        throttling: Some(throttling),
        latency: settings.latency,
        ..EmulatorConfig::default()
    });
    for group in 0..settings.resource_groups {
        host.emulator
            .seed_resource_group(SUB, &resource_group(group), LOCATION);
    }
    let runtime = operator_runtime();
    let report = runtime.block_on(run(&settings, &host, throttling));
    drop(runtime);
    drop(host);
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        print_table(&report);
    }
    if report["converged"] != json!(true) {
        std::process::exit(1);
    }
}

/// The resource groups the accounts are spread over, round robin.
fn resource_group(index: usize) -> String {
    format!("{RG}-{index}")
}

async fn run(settings: &Settings, host: &EmulatorHost, throttling: ThrottleConfig) -> Value {
    let emulator = &host.emulator;
    let n = settings.accounts;
    let resync = format!("{}s", settings.resync_secs);
    let resources = (0..n)
        .map(|i| {
            let group = resource_group(i % settings.resource_groups);
            let name = format!("conv-{i:05}");
            account_in(&group, &name, &resync, SoftDeletePolicy::Restore)
        })
        .collect();
    let client = client(
        emulator,
        settings.scale,
        RetryPolicy::default(),
        Duration::from_secs(30),
    );
    let mut queue = WorkQueue::new(
        Engine::default(),
        client.clone(),
        resources,
        settings.concurrency,
    );
    let deadline = Instant::now() + settings.timeout;

    // Convergence: every account Ready (with another client spending its share, if any).
    let others = (settings.others_share > 0.0)
        .then(|| OtherClient::start(emulator, throttling, settings.others_share));
    let cpu_start = Cpu::now();
    let started = Instant::now();
    let converged = queue.run_until(deadline, WorkQueue::all_ready).await;
    let others = match others {
        Some(others) => others.stop().await,
        None => OthersReport::default(),
    };
    let converge_time = started.elapsed().as_secs_f64();
    let cpu_converge = Cpu::now().since(cpu_start);
    let converge_reconciles = queue.reconciles;
    let converge_ops = operation_counts(&client);
    let converge_requests: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| !r.path.ends_with(OTHER_CLIENT_PATH))
        .collect();
    let admitted = admitted_by_class(&converge_requests);
    let throttled_client = client.metrics().throttled.get();
    let throttled_emulator = emulator.throttled_count();

    // Steady state: one resync round, each account reconciled once more because its resync
    // came due. Reconciles still in flight (resyncs begun before convergence) finish first.
    queue.drain().await;
    let steady_ops_before = operation_counts(&client);
    let steady_from = emulator.requests().len();
    let steady_reconciles_before = queue.reconciles;
    let cpu_steady_start = Cpu::now();
    queue.start_steady_round();
    let steady_done = converged
        && queue
            .run_until(deadline, |q| q.parked_count() == q.len())
            .await;
    let cpu_steady = Cpu::now().since(cpu_steady_start);
    let steady_requests: Vec<_> = emulator
        .requests()
        .split_off(steady_from)
        .into_iter()
        .filter(|r| !r.path.ends_with(OTHER_CLIENT_PATH))
        .collect();
    let steady_reconciles = queue.reconciles - steady_reconciles_before;
    let steady_ops = subtract(&operation_counts(&client), &steady_ops_before);
    let resynced = queue.parked_count().max(1) as f64;
    let steady_gets = steady_requests.iter().filter(|r| r.method == "GET").count() as f64;
    let steady_writes = steady_requests.iter().filter(|r| r.method != "GET").count() as f64;

    // The bound: the least time the buckets allow for the calls that took a token.
    let classes = [
        ("reads", throttling.reads),
        ("writes", throttling.writes),
        ("deletes", throttling.deletes),
    ];
    let mut bounds = BTreeMap::new();
    // What the other client leaves of each bucket.
    let left = 1.0 - settings.others_share;
    for (class, bucket) in classes {
        let calls = admitted[class] as f64;
        let rate = bucket.refill_per_sec * throttling.time_scale * left;
        let capacity = bucket.capacity * left;
        bounds.insert(class, ((calls - capacity).max(0.0) / rate, calls));
    }
    let (binding, (bound, _)) = bounds
        .iter()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .map(|(k, v)| (*k, *v))
        .expect("three classes");
    let writes_bound = (n as f64 - throttling.writes.capacity * left).max(0.0)
        / (throttling.writes.refill_per_sec * throttling.time_scale * left);
    let requests_made: u64 = converge_ops.values().sum();
    let per_account = |count: u64| round(count as f64 / n as f64, 3);

    json!({
        "benchmark": "converge",
        "machine": machine(),
        "settings": {
            "accounts": n,
            "resourceGroups": settings.resource_groups,
            "othersShare": settings.others_share,
            "concurrency": settings.concurrency,
            "timeScale": settings.scale,
            "latencyMs": settings.latency.as_millis() as u64,
            "resyncSecs": settings.resync_secs,
            "buckets": classes.iter().map(|(c, b)| (c.to_string(), json!({
                "capacity": b.capacity,
                "refillPerSec": b.refill_per_sec * throttling.time_scale,
            }))).collect::<serde_json::Map<_, _>>(),
        },
        "converged": converged,
        "readyAccounts": queue.ready_count(),
        "convergeSeconds": round(converge_time, 3),
        "bound": {
            "seconds": round(bound, 3),
            "bindingClass": binding,
            "byClass": bounds.iter().map(|(c, (s, calls))| (c.to_string(), json!({"seconds": round(*s, 3), "calls": calls}))).collect::<serde_json::Map<_, _>>(),
            "writesOnlySeconds": round(writes_bound, 3),
        },
        "ratioToBound": if bound > 0.0 { json!(round(converge_time / bound, 3)) } else { Value::Null },
        "ratioToWritesBound": if writes_bound > 0.0 { json!(round(converge_time / writes_bound, 3)) } else { Value::Null },
        "throttled429": {
            "receivedByClient": throttled_client,
            "sentByEmulator": throttled_emulator,
            "shareOfClientRequests": round(throttled_client as f64 / requests_made.max(1) as f64, 4),
        },
        "otherClient": {
            "share": settings.others_share,
            "requests": others.sent,
            "throttled429": others.throttled,
        },
        "clientThrottleWaits": client.metrics().throttle_waits.get(),
        "clientRetries": client.metrics().retries.get(),
        "callsPerAccount": converge_ops.iter().map(|(op, c)| (op.clone(), json!(per_account(*c)))).collect::<serde_json::Map<_, _>>(),
        "callsPerAccountByClass": admitted.iter().map(|(c, v)| (c.to_string(), json!(per_account(*v)))).collect::<serde_json::Map<_, _>>(),
        "reconciles": {
            "converge": converge_reconciles,
            "perAccount": round(converge_reconciles as f64 / n as f64, 3),
            "answers": {
                "after": queue.next_counts.after,
                "backoff": queue.next_counts.backoff,
                "resync": queue.next_counts.resync,
                "done": queue.next_counts.done,
            },
        },
        "steadyState": {
            "completed": steady_done,
            "accountsResynced": queue.parked_count(),
            "reconciles": steady_reconciles,
            "getsPerAccountPerResync": round(steady_gets / resynced, 3),
            "writesPerAccountPerResync": round(steady_writes / resynced, 3),
            "calls": steady_ops,
        },
        "peakRssMiB": round(peak_rss_mib(), 1),
        "cpu": {
            "note": "emulator runs in the same process on its own runtime thread; operator = process minus emulator threads",
            "convergeProcessSeconds": round(cpu_converge.process, 3),
            "convergeEmulatorSeconds": round(cpu_converge.emulator, 3),
            "operatorSecondsPer1000Reconciles": round(cpu_converge.operator() * 1000.0 / converge_reconciles.max(1) as f64, 3),
            "processSecondsPer1000Reconciles": round(cpu_converge.process * 1000.0 / converge_reconciles.max(1) as f64, 3),
            "steadyOperatorSecondsPer1000Reconciles": round(cpu_steady.operator() * 1000.0 / steady_reconciles.max(1) as f64, 3),
        },
    })
}

fn print_table(r: &Value) {
    let s = &r["settings"];
    println!(
        "converge: {} accounts in {} resource groups, concurrency {}, time scale {}×, latency {} ms, resync {} s ({})",
        s["accounts"],
        s["resourceGroups"],
        s["concurrency"],
        s["timeScale"],
        s["latencyMs"],
        s["resyncSecs"],
        r["machine"].as_str().unwrap_or("")
    );
    let row = |k: &str, v: String| println!("  {k:<44} {v}");
    row(
        "converged (all Ready)",
        format!("{} ({} Ready)", r["converged"], r["readyAccounts"]),
    );
    row("time to converge", format!("{} s", r["convergeSeconds"]));
    let b = &r["bound"];
    row(
        "token-bucket bound (calls made)",
        format!(
            "{} s, {} bind",
            b["seconds"],
            b["bindingClass"].as_str().unwrap_or("")
        ),
    );
    for (class, v) in b["byClass"].as_object().into_iter().flatten() {
        row(
            &format!("  {class}"),
            format!("{} calls → {} s", v["calls"], v["seconds"]),
        );
    }
    row(
        "ratio to bound of the budget left (≤ 1.15)",
        format!("{}", r["ratioToBound"]),
    );
    row(
        "writes-only bound of the budget left",
        format!("{} s", b["writesOnlySeconds"]),
    );
    row(
        "ratio to writes-only bound",
        format!("{}", r["ratioToWritesBound"]),
    );
    row(
        "429s received (client / sent by emulator)",
        format!(
            "{} / {}",
            r["throttled429"]["receivedByClient"], r["throttled429"]["sentByEmulator"]
        ),
    );
    row(
        "  share of the operator's requests (≤ 0.01)",
        r["throttled429"]["shareOfClientRequests"].to_string(),
    );
    let o = &r["otherClient"];
    if o["share"].as_f64().unwrap_or(0.0) > 0.0 {
        row(
            "other client: share spent, requests (429)",
            format!("{}, {} ({})", o["share"], o["requests"], o["throttled429"]),
        );
    }
    row(
        "client throttle waits / retries",
        format!("{} / {}", r["clientThrottleWaits"], r["clientRetries"]),
    );
    println!("  ARM calls per account during convergence:");
    for (op, v) in r["callsPerAccount"].as_object().into_iter().flatten() {
        row(&format!("  {op}"), v.to_string());
    }
    for (class, v) in r["callsPerAccountByClass"]
        .as_object()
        .into_iter()
        .flatten()
    {
        row(&format!("  {class} (admitted)"), v.to_string());
    }
    row(
        "reconciles (per account)",
        format!(
            "{} ({})",
            r["reconciles"]["converge"], r["reconciles"]["perAccount"]
        ),
    );
    let st = &r["steadyState"];
    row(
        "steady state: accounts resynced",
        format!(
            "{} ({} reconciles)",
            st["accountsResynced"], st["reconciles"]
        ),
    );
    row(
        "  reads per account per resync (target ≤ 0.05)",
        st["getsPerAccountPerResync"].to_string(),
    );
    row(
        "  writes per account per resync (target 0)",
        st["writesPerAccountPerResync"].to_string(),
    );
    row(
        "peak RSS (process, emulator included)",
        format!("{} MiB", r["peakRssMiB"]),
    );
    let c = &r["cpu"];
    row(
        "CPU s / 1000 reconciles (operator / process)",
        format!(
            "{} / {}",
            c["operatorSecondsPer1000Reconciles"], c["processSecondsPer1000Reconciles"]
        ),
    );
    row(
        "CPU during convergence (process / emulator)",
        format!(
            "{} s / {} s",
            c["convergeProcessSeconds"], c["convergeEmulatorSeconds"]
        ),
    );
    row(
        "CPU s / 1000 steady reconciles (operator)",
        c["steadyOperatorSecondsPer1000Reconciles"].to_string(),
    );
}

/// The other client's requests are all about this account, which does not exist: each still
/// takes its token before ARM answers 404.
const OTHER_CLIENT_PATH: &str = "/accounts/other-client-of-the-principal";

#[derive(Default)]
struct OthersReport {
    sent: u64,
    throttled: u64,
}

/// Another client of the operator's principal: spends `share` of every bucket, at once and
/// then of each refill, without looking at what is left.
struct OtherClient {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<OthersReport>,
}

impl OtherClient {
    fn start(emulator: &arm_emulator::Emulator, throttling: ThrottleConfig, share: f64) -> Self {
        let http = reqwest::Client::new();
        let url = format!(
            "{}/subscriptions/{SUB}/resourceGroups/{RG}-0/providers/Microsoft.CognitiveServices{OTHER_CLIENT_PATH}?api-version=2024-10-01",
            emulator.base_url()
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let classes = [
            (reqwest::Method::GET, throttling.reads),
            (reqwest::Method::PATCH, throttling.writes),
            (reqwest::Method::DELETE, throttling.deletes),
        ];
        for (method, bucket) in classes {
            let burst = (bucket.capacity * share).round() as u64;
            let rate = bucket.refill_per_sec * throttling.time_scale * share;
            let (http, url, stopped) = (http.clone(), url.clone(), stopped.clone());
            tasks.spawn(spend(http, method, url, burst, rate, stopped));
        }
        OtherClient { stop, tasks }
    }

    async fn stop(mut self) -> OthersReport {
        let _ = self.stop.send(true);
        let mut report = OthersReport::default();
        while let Some(Ok(part)) = self.tasks.join_next().await {
            report.sent += part.sent;
            report.throttled += part.throttled;
        }
        report
    }
}

/// `burst` requests at once, then `rate` a second until stopped.
async fn spend(
    http: reqwest::Client,
    method: reqwest::Method,
    url: String,
    burst: u64,
    rate: f64,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> OthersReport {
    let mut answers = tokio::task::JoinSet::new();
    let send = |answers: &mut tokio::task::JoinSet<bool>| {
        let request = http
            .request(method.clone(), &url)
            .bearer_auth("other-client")
            .header("content-length", "0");
        answers.spawn(async move {
            request
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS)
        });
    };
    for _ in 0..burst {
        send(&mut answers);
    }
    let mut sent = burst;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    ticks.tick().await;
    while !*stopped.borrow() {
        ticks.tick().await;
        send(&mut answers);
        sent += 1;
    }
    let mut throttled = 0;
    while let Some(answer) = answers.join_next().await {
        throttled += u64::from(answer.unwrap_or(false));
    }
    OthersReport { sent, throttled }
}
