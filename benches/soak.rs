//! Fault soak: the converge set-up with faults, crashes and soft-deleted copies, then checks
//! that nothing was lost or done twice.
//!
//! `cargo bench --bench soak [-- --accounts 300 --time-scale 20 --concurrency 8 --restarts 2
//! --seed 7 --json]`
//!
//! While the real engine converges the accounts (controller scheduling as in `converge`):
//! - about 10% of requests answer 500/503 with Retry-After, 5% 429, 1% drop the connection,
//!   2% answer up to 800 ms late (armed one at a time from the live request log);
//! - operations take 20 s of emulated time (1 s at the default scale), and three create PUTs
//!   answer after the client's 2 s timeout (ambiguous writes the client retries);
//! - one create operation ends Failed;
//! - the engine crashes `--restarts` times (reconciles in flight aborted, new client, engine and
//!   backoffs; state rebuilt from each resource's stored status only, through JSON) while
//!   operations run.
//!
//! Accounts: 10% Restore with a soft-deleted copy, 10% Purge with a copy, 10% Purge without one,
//! the rest plain creates. Asserts: every account Ready; no account created twice; no purge the
//! policies did not ask for (and no account deleted); no ARM write after convergence. Exits 1
//! when an assertion fails.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arm_emulator::{ArmErrorBody, Emulator, EmulatorConfig, Fault, ThrottleConfig};
use cognitive_operator::api::{OWNER_TAG, SoftDeletePolicy};
use cognitive_operator::arm::RetryPolicy;
use cognitive_operator::engine::Engine;
use serde_json::{Value, json};
use support::*;

/// Emulated duration of every long-running operation.
const OPERATION_DURATION: Duration = Duration::from_secs(20);
/// The client's per-request timeout here, and how late the ambiguous create PUTs answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const AMBIGUOUS_DELAY_MS: u64 = 2_500;

struct Settings {
    accounts: usize,
    concurrency: usize,
    scale: f64,
    latency: Duration,
    resync_secs: u64,
    restarts: usize,
    seed: u64,
    timeout: Duration,
    json: bool,
}

/// What a resource's policy and seeded state make of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    /// softDeletePolicy Restore, a soft-deleted copy seeded: restored, never created or purged.
    RestoreCopy,
    /// softDeletePolicy Purge, a copy seeded: purged once, then created once.
    PurgeCopy,
    /// softDeletePolicy Purge, no copy: created once, nothing purged.
    PurgeNoCopy,
    /// softDeletePolicy Restore, no copy: created once.
    Create,
}

fn case_of(i: usize) -> Case {
    match i % 10 {
        0 => Case::RestoreCopy,
        1 => Case::PurgeCopy,
        2 => Case::PurgeNoCopy,
        _ => Case::Create,
    }
}

fn name_of(i: usize) -> String {
    format!("soak-{i:04}")
}

/// The account whose create operation ends Failed, and those whose create PUT answers late.
const FAILED_OPERATION: usize = 7;
const AMBIGUOUS: [usize; 3] = [13, 23, 33];

fn main() {
    let args = Args::from_env();
    let settings = Settings {
        accounts: args.value("--accounts", 300),
        concurrency: args.value("--concurrency", 8),
        scale: args.value("--time-scale", 20.0),
        latency: Duration::from_millis(args.value("--latency-ms", 30)),
        resync_secs: args.value("--resync-secs", 5),
        restarts: args.value("--restarts", 2),
        seed: args.value("--seed", 7),
        timeout: Duration::from_secs(args.value("--timeout-secs", 110)),
        json: args.flag("--json"),
    };
    if settings.accounts <= AMBIGUOUS[2] {
        eprintln!("--accounts must be more than {}", AMBIGUOUS[2]);
        std::process::exit(2);
    }
    let host = EmulatorHost::start(EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(OPERATION_DURATION),
        retry_after_secs: 1,
        throttling: Some(ThrottleConfig::azure().scaled(settings.scale)),
        latency: settings.latency,
        ..EmulatorConfig::default()
    });
    let runtime = operator_runtime();
    let report = runtime.block_on(run(&settings, host.emulator.clone()));
    drop(runtime);
    drop(host);
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        print_table(&report);
    }
    if report["passed"] != json!(true) {
        std::process::exit(1);
    }
}

fn seed_copies(emulator: &Emulator, n: usize) {
    for i in (0..n).filter(|i| matches!(case_of(*i), Case::RestoreCopy | Case::PurgeCopy)) {
        let name = name_of(i);
        emulator.seed_deleted_account(
            SUB,
            RG,
            &name,
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"},
                   "tags": {"team": "old", OWNER_TAG: format!("{NAMESPACE}/{name}")},
                   "properties": {"customSubDomainName": name, "publicNetworkAccess": "Enabled"}}),
        );
    }
}

/// Scripted faults for particular accounts, armed before anything runs (so they match first).
fn script_faults(emulator: &Emulator) {
    emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some(format!("/accounts/{}?", name_of(FAILED_OPERATION))),
        operation_error: Some(ArmErrorBody {
            code: "InternalServerError".into(),
            message: "Injected: the create operation failed.".into(),
        }),
        times: Some(1),
        ..Fault::default()
    });
    for i in AMBIGUOUS {
        emulator.add_fault(Fault {
            method: Some("PUT".into()),
            path_contains: Some(format!("/accounts/{}?", name_of(i))),
            delay_ms: Some(AMBIGUOUS_DELAY_MS),
            times: Some(1),
            ..Fault::default()
        });
    }
}

#[derive(Default)]
struct Injected {
    server_errors: AtomicU64,
    throttles: AtomicU64,
    drops: AtomicU64,
    delays: AtomicU64,
}

/// Arms random one-shot faults from the live request log: each answered request arms a fault
/// for a later one with the configured probabilities, so the faulted share tracks the traffic.
async fn inject_faults(
    emulator: Arc<Emulator>,
    stop: Arc<AtomicBool>,
    injected: Arc<Injected>,
    seed: u64,
) {
    let mut feed = emulator.subscribe_requests();
    let mut rng = fastrand::Rng::with_seed(seed);
    let roll = |rng: &mut fastrand::Rng| {
        let x = rng.f64();
        let fault = if x < 0.10 {
            injected.server_errors.fetch_add(1, Ordering::Relaxed);
            Fault {
                status: Some(if rng.bool() { 500 } else { 503 }),
                retry_after: Some(rng.u64(0..=1)),
                ..Fault::default()
            }
        } else if x < 0.15 {
            injected.throttles.fetch_add(1, Ordering::Relaxed);
            Fault {
                status: Some(429),
                retry_after: Some(0),
                ..Fault::default()
            }
        } else if x < 0.16 {
            injected.drops.fetch_add(1, Ordering::Relaxed);
            Fault {
                drop: Some(true),
                ..Fault::default()
            }
        } else if x < 0.18 {
            injected.delays.fetch_add(1, Ordering::Relaxed);
            Fault {
                delay_ms: Some(rng.u64(100..=800)),
                ..Fault::default()
            }
        } else {
            return;
        };
        emulator.add_fault(Fault {
            times: Some(1),
            ..fault
        });
    };
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(100), feed.recv()).await {
            Ok(Ok(_)) => roll(&mut rng),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(missed))) => {
                for _ in 0..missed.min(10_000) {
                    roll(&mut rng);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
            Err(_) => {}
        }
    }
}

/// Operations the emulator has started minus the 201/202 answers it has logged: above its
/// baseline while a write has been processed and its answer is still on the way.
fn unanswered_writes(emulator: &Emulator) -> i64 {
    let started = emulator.state()["operations"]
        .as_array()
        .map_or(0, |a| a.len());
    let answered = emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && matches!(r.status, 201 | 202))
        .count();
    started as i64 - answered as i64
}

/// Moves the emulator's clock `scale` times faster than real time, so operations take
/// `OPERATION_DURATION / scale` whether or not anyone polls them.
async fn run_clock(emulator: Arc<Emulator>, stop: Arc<AtomicBool>, scale: f64) {
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = Instant::now();
        emulator.advance_clock((now - last).mul_f64(scale));
        last = now;
    }
}

async fn run(settings: &Settings, emulator: Arc<Emulator>) -> Value {
    let n = settings.accounts;
    let resync = format!("{}s", settings.resync_secs);
    seed_copies(&emulator, n);
    script_faults(&emulator);
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(Injected::default());
    let clock = tokio::spawn(run_clock(emulator.clone(), stop.clone(), settings.scale));
    let injector = tokio::spawn(inject_faults(
        emulator.clone(),
        stop.clone(),
        injected.clone(),
        settings.seed,
    ));
    fastrand::seed(settings.seed);

    let resources: Vec<_> = (0..n)
        .map(|i| {
            let policy = match case_of(i) {
                Case::PurgeCopy | Case::PurgeNoCopy => SoftDeletePolicy::Purge,
                _ => SoftDeletePolicy::Restore,
            };
            account(&name_of(i), &resync, policy)
        })
        .collect();
    let new_client = || {
        client(
            &emulator,
            settings.scale,
            RetryPolicy::default(),
            REQUEST_TIMEOUT,
        )
    };
    let started = Instant::now();
    let deadline = started + settings.timeout;
    let mut clients = vec![new_client()];
    let mut queue = WorkQueue::new(
        Engine::default(),
        clients[0].clone(),
        resources,
        settings.concurrency,
    );
    let mut restarts = Vec::new();
    let mut reconciles = 0;
    for r in 1..=settings.restarts {
        let target = r * n / (settings.restarts + 1);
        queue
            .run_until(deadline, |q| q.ready_count() >= target)
            .await;
        // Crash while a write is in flight if one comes within 3 s: processed by ARM, its
        // answer not yet back, so the status never learns of it.
        let baseline = unanswered_writes(&emulator);
        queue.set_tick(Some(Duration::from_millis(5)));
        let window = (Instant::now() + Duration::from_secs(3)).min(deadline);
        let mid_write = queue
            .run_until(window, |_| unanswered_writes(&emulator) > baseline)
            .await;
        let ready = queue.ready_count();
        reconciles += queue.reconciles;
        let (stored, aborted) = queue.crash().await;
        let pending: Vec<String> = stored
            .iter()
            .filter_map(|r| {
                let op = r.status.as_ref()?.pending_operation.as_ref()?;
                Some(format!("{:?}", op.kind))
            })
            .collect();
        let mut pending_by_kind = BTreeMap::<String, u64>::new();
        for kind in pending {
            *pending_by_kind.entry(kind).or_default() += 1;
        }
        restarts.push(json!({
            "atSeconds": round(started.elapsed().as_secs_f64(), 2),
            "readyBefore": ready,
            "reconcilesAborted": aborted,
            "duringAWrite": mid_write,
            "storedPendingOperations": pending_by_kind,
        }));
        clients.push(new_client());
        queue = WorkQueue::new(
            Engine::default(),
            clients.last().expect("a client").clone(),
            stored,
            settings.concurrency,
        );
    }
    let converged = queue.run_until(deadline, WorkQueue::all_ready).await;
    let converge_time = started.elapsed().as_secs_f64();
    let converged_at = emulator.requests().len();

    // One resync round after convergence, faults still on: no write may happen.
    queue.start_steady_round();
    let steady_done = converged
        && queue
            .run_until(deadline, |q| q.parked_count() == q.len())
            .await;
    queue.drain().await;
    reconciles += queue.reconciles;
    stop.store(true, Ordering::Relaxed);
    let _ = injector.await;
    let _ = clock.await;
    let ready = queue.ready_count();

    let requests = emulator.requests();
    let state = emulator.state();
    let mut report = check(
        n,
        &requests,
        converged_at,
        &state,
        ready,
        converged && steady_done,
    );
    let faulted = |status: u16| requests.iter().filter(|r| r.status == status).count();
    let total = requests.len().max(1) as f64;
    let throttled: u64 = clients.iter().map(|c| c.metrics().throttled.get()).sum();
    let retries: u64 = clients.iter().map(|c| c.metrics().retries.get()).sum();
    let extra = json!({
        "benchmark": "soak",
        "machine": machine(),
        "settings": {
            "accounts": n, "concurrency": settings.concurrency, "timeScale": settings.scale,
            "latencyMs": settings.latency.as_millis() as u64, "resyncSecs": settings.resync_secs,
            "restarts": settings.restarts, "seed": settings.seed,
            "operationSecondsEmulated": OPERATION_DURATION.as_secs(),
            "requestTimeoutSecs": REQUEST_TIMEOUT.as_secs(),
        },
        "secondsToConverge": round(converge_time, 2),
        "secondsTotal": round(started.elapsed().as_secs_f64(), 2),
        "reconciles": reconciles,
        "restartLog": restarts,
        "requests": requests.len(),
        "faultsArmed": {
            "serverErrors": injected.server_errors.load(Ordering::Relaxed),
            "throttles": injected.throttles.load(Ordering::Relaxed),
            "drops": injected.drops.load(Ordering::Relaxed),
            "delays": injected.delays.load(Ordering::Relaxed),
        },
        "answered": {
            "500": faulted(500), "503": faulted(503), "429": faulted(429), "dropped": faulted(0),
            "500/503 share": round((faulted(500) + faulted(503)) as f64 / total, 3),
            "429 share": round(faulted(429) as f64 / total, 3),
            "dropped share": round(faulted(0) as f64 / total, 4),
        },
        "client": {"429sReceived": throttled, "retries": retries},
    });
    if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            report.insert(k.clone(), v.clone());
        }
    }
    report
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn is_restore(request: &arm_emulator::RecordedRequest) -> bool {
    request
        .request_body
        .as_ref()
        .and_then(|b| b.pointer("/properties/restore"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The assertions, from the request log and the emulator's operation history.
fn check(
    n: usize,
    requests: &[arm_emulator::RecordedRequest],
    converged_at: usize,
    state: &Value,
    ready: usize,
    converged: bool,
) -> Value {
    let index: BTreeMap<String, usize> = (0..n).map(|i| (name_of(i), i)).collect();
    // Operations the emulator ran, by account and kind (the authoritative count of creates).
    let mut operations: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for op in state["operations"].as_array().into_iter().flatten() {
        let (Some(kind), Some(id)) = (op["kind"].as_str(), op["resourceId"].as_str()) else {
            continue;
        };
        let Some(name) = account_of(id) else { continue };
        let entry = operations
            .entry((name.to_ascii_lowercase(), kind.to_string()))
            .or_default();
        entry.0 += 1;
        if op["status"] == "Succeeded" {
            entry.1 += 1;
        }
    }
    let ops = |name: &str, kind: &str| {
        operations
            .get(&(name.to_string(), kind.to_string()))
            .copied()
            .unwrap_or_default()
    };

    let mut duplicate_creates = Vec::new();
    let mut wrong_path = Vec::new();
    let mut unintended_purges = Vec::new();
    let mut expected_purges_done = 0;
    let mut extra_puts = BTreeMap::new();
    for (name, &i) in &index {
        let case = case_of(i);
        let creates = ops(name, "Create").0;
        let restores = ops(name, "Restore").0;
        let purges = ops(name, "Purge");
        let purge_requests = requests
            .iter()
            .filter(|r| {
                r.method == "DELETE"
                    && is_deleted_account_path(&r.path)
                    && account_of(&r.path) == Some(name.as_str())
            })
            .filter(|r| is_success(r.status))
            .count();
        if creates > 1 {
            duplicate_creates.push(json!({"account": name, "createOperations": creates}));
        }
        let expected = match case {
            Case::RestoreCopy => creates == 0 && restores == 1,
            _ => creates == 1 && restores == 0,
        };
        if !expected {
            wrong_path.push(json!({"account": name, "case": format!("{case:?}"), "creates": creates, "restores": restores}));
        }
        if case == Case::PurgeCopy {
            if purges.1 == 1 {
                expected_purges_done += 1;
            }
        } else if purges.0 > 0 || purge_requests > 0 {
            unintended_purges.push(json!({"account": name, "case": format!("{case:?}"), "purgeOperations": purges.0, "purgeRequests": purge_requests}));
        }
        // Accepted non-restore PUTs beyond the one create: re-provisioning after the failed
        // operation, or a client retry of a PUT whose answer was lost.
        let puts = requests
            .iter()
            .filter(|r| r.method == "PUT" && is_success(r.status) && !is_restore(r))
            .filter(|r| account_of(&r.path) == Some(name.as_str()))
            .count();
        let expected_puts = usize::from(case != Case::RestoreCopy);
        if puts > expected_puts {
            let why = if i == FAILED_OPERATION {
                "re-provisioning after the injected failed create operation (allowed)"
            } else if AMBIGUOUS.contains(&i) {
                "client retry of a create PUT answered after the client's timeout"
            } else {
                "unexpected"
            };
            extra_puts.insert(
                name.clone(),
                json!({"extraPuts": puts - expected_puts, "why": why}),
            );
        }
    }
    // How the create PUTs that answered after the client's timeout played out, in order.
    let ambiguous: BTreeMap<String, Vec<u16>> = AMBIGUOUS
        .iter()
        .map(|i| {
            let name = name_of(*i);
            let statuses = requests
                .iter()
                .filter(|r| r.method == "PUT" && account_of(&r.path) == Some(name.as_str()))
                .map(|r| r.status)
                .collect();
            (name, statuses)
        })
        .collect();
    // Operations the emulator started whose 201/202 answer never made it into the log: the
    // request was processed, then the reconcile was aborted by a crash before the answer.
    let mut answers_lost = BTreeMap::new();
    for name in index.keys() {
        let started: u64 = ["Create", "Restore", "Update", "Purge", "Delete"]
            .iter()
            .map(|kind| ops(name, kind).0)
            .sum();
        let answered = requests
            .iter()
            .filter(|r| r.method != "GET" && matches!(r.status, 201 | 202))
            .filter(|r| account_of(&r.path) == Some(name.as_str()))
            .count() as u64;
        if started > answered {
            answers_lost.insert(name.clone(), started - answered);
        }
    }
    let account_deletes: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "DELETE" && !is_deleted_account_path(&r.path))
        .map(|r| r.path.as_str())
        .collect();
    let writes_after: Vec<String> = requests
        .get(converged_at..)
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
        .collect();
    let unexpected_extra_puts: BTreeSet<&String> = extra_puts
        .iter()
        .filter(|(_, v)| v["why"] == "unexpected")
        .map(|(k, _)| k)
        .collect();
    let failed_op_account = name_of(FAILED_OPERATION);
    let failed_op_seen =
        ops(&failed_op_account, "Create").1 == 0 && ops(&failed_op_account, "Create").0 == 1;

    let assertions = json!({
        "everyAccountReady": converged && ready == n,
        "noDuplicateCreates": duplicate_creates.is_empty() && wrong_path.is_empty(),
        "noUnintendedPurges": unintended_purges.is_empty() && account_deletes.is_empty(),
        "noWriteAfterConvergence": writes_after.is_empty(),
        "noUnexplainedExtraPuts": unexpected_extra_puts.is_empty(),
        "failedOperationHappened": failed_op_seen,
    });
    let passed = assertions
        .as_object()
        .is_some_and(|a| a.values().all(|v| v == &json!(true)));
    let purge_copies = (0..n).filter(|i| case_of(*i) == Case::PurgeCopy).count();
    json!({
        "passed": passed,
        "assertions": assertions,
        "readyAccounts": ready,
        "cases": {
            "restoreWithCopy": (0..n).filter(|i| case_of(*i) == Case::RestoreCopy).count(),
            "purgeWithCopy": purge_copies,
            "purgeWithoutCopy": (0..n).filter(|i| case_of(*i) == Case::PurgeNoCopy).count(),
            "create": (0..n).filter(|i| case_of(*i) == Case::Create).count(),
        },
        "duplicateCreates": duplicate_creates,
        "unexpectedCreateOrRestore": wrong_path,
        "unintendedPurges": unintended_purges,
        "accountDeletes": account_deletes,
        "purgesAskedForAndDone": format!("{expected_purges_done}/{purge_copies}"),
        "extraPuts": extra_puts,
        "ambiguousCreatePutStatuses": ambiguous,
        "writesWhoseAnswerWasLost": answers_lost,
        "writesAfterConvergence": writes_after,
    })
}

fn print_table(r: &Value) {
    let s = &r["settings"];
    println!(
        "soak: {} accounts, concurrency {}, time scale {}×, latency {} ms, {} restarts, seed {} ({})",
        s["accounts"],
        s["concurrency"],
        s["timeScale"],
        s["latencyMs"],
        s["restarts"],
        s["seed"],
        r["machine"].as_str().unwrap_or("")
    );
    let row = |k: &str, v: String| println!("  {k:<40} {v}");
    row("cases", r["cases"].to_string());
    row(
        "time to converge / total",
        format!("{} s / {} s", r["secondsToConverge"], r["secondsTotal"]),
    );
    row("reconciles", r["reconciles"].to_string());
    row("requests answered", r["requests"].to_string());
    row("faults armed", r["faultsArmed"].to_string());
    row("answered with faults", r["answered"].to_string());
    row("client", r["client"].to_string());
    for (i, restart) in r["restartLog"].as_array().into_iter().flatten().enumerate() {
        row(&format!("restart {}", i + 1), restart.to_string());
    }
    row(
        "purges asked for and done",
        r["purgesAskedForAndDone"].to_string(),
    );
    row("extra PUTs", r["extraPuts"].to_string());
    row(
        "late create PUTs: statuses logged",
        r["ambiguousCreatePutStatuses"].to_string(),
    );
    row(
        "writes done, answer lost in a crash",
        r["writesWhoseAnswerWasLost"].to_string(),
    );
    for (k, v) in r["assertions"].as_object().into_iter().flatten() {
        row(
            k,
            if v == &json!(true) {
                "PASS".into()
            } else {
                "FAIL".into()
            },
        );
    }
    for key in [
        "duplicateCreates",
        "unexpectedCreateOrRestore",
        "unintendedPurges",
        "accountDeletes",
        "writesAfterConvergence",
    ] {
        if r[key].as_array().is_some_and(|a| !a.is_empty()) {
            row(key, r[key].to_string());
        }
    }
    row(
        "result",
        if r["passed"] == json!(true) {
            "PASS".into()
        } else {
            "FAIL".into()
        },
    );
}
