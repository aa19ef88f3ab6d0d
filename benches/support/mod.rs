//! Shared by the `converge` and `soak` benchmarks: a work queue with the controller's scheduling,
//! the emulator on a runtime of its own (so its CPU time can be told apart), the resources, and
//! process measurements from `/proc`.
#![allow(dead_code)]

#[path = "../../tests/support/fixtures.rs"]
mod fixtures;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arm_emulator::{Emulator, EmulatorConfig, Profile, RecordedRequest};
use cognitive_operator::api::{CognitiveServicesAccount, SoftDeletePolicy};
use cognitive_operator::arm::client::DEFAULT_POLL;
use cognitive_operator::arm::{ArmClient, ArmClientConfig, Credential, RateLimits, RetryPolicy};
use cognitive_operator::controller::requeue::{Backoffs, Requeue, requeue_for};
use cognitive_operator::engine::{Engine, Next, owner_id};
use tokio::task::JoinSet;

pub const SUB: &str = "00000000-0000-0000-0000-0000000000b1";
pub const RG: &str = "rg-bench";
pub const LOCATION: &str = "westus";
pub const NAMESPACE: &str = "bench";

/// Every `ArmClient` operation name the engine can use, for per-operation counts.
pub const OPERATIONS: &[&str] = &[
    "GetAccount",
    "GetDeletedAccount",
    "ListDeletedAccounts",
    "GetOperationStatus",
    "GetOperationResult",
    "CreateAccount",
    "RestoreAccount",
    "UpdateAccount",
    "DeleteAccount",
    "PurgeDeletedAccount",
    "ListKeys",
    "RegenerateKey",
    "ListAccounts",
];

// ----- command line ---------------------------------------------------------------------------

/// `--name value` / `--name=value` / `--flag` arguments; unknown ones (like cargo's `--bench`)
/// are ignored.
pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Self {
        Args(std::env::args().skip(1).collect())
    }

    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    pub fn value<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        let prefixed = format!("{name}=");
        let mut found = None;
        for (i, arg) in self.0.iter().enumerate() {
            if arg == name {
                found = self.0.get(i + 1).cloned();
            } else if let Some(value) = arg.strip_prefix(&prefixed) {
                found = Some(value.to_string());
            }
        }
        match found {
            None => default,
            Some(text) => text.parse().unwrap_or_else(|_| {
                eprintln!("{name}: cannot parse {text:?}");
                std::process::exit(2)
            }),
        }
    }
}

// ----- resources and clients ------------------------------------------------------------------

/// A resource as a user would write it: an OpenAI account with a custom subdomain and tags.
pub fn account(
    name: &str,
    resync: &str,
    soft_delete_policy: SoftDeletePolicy,
) -> CognitiveServicesAccount {
    account_in(RG, name, resync, soft_delete_policy)
}

/// [`account`] in resource group `resource_group` (which the emulator must have).
pub fn account_in(
    resource_group: &str,
    name: &str,
    resync: &str,
    soft_delete_policy: SoftDeletePolicy,
) -> CognitiveServicesAccount {
    let place = fixtures::Place {
        subscription: SUB,
        resource_group,
        location: LOCATION,
        namespace: NAMESPACE,
    };
    let mut resource = fixtures::account(name, &place, &[("team", "a"), ("env", "bench")]);
    resource.spec.soft_delete_policy = soft_delete_policy;
    resource.spec.resync_interval = Some(resync.into());
    resource.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    resource
}

/// The operator's ARM client for the emulator, with the client-side buckets `scale` times faster
/// and, where ARM names no Retry-After, its polls too (the emulator's time runs `scale` times
/// faster than Azure's).
pub fn client(
    emulator: &Emulator,
    scale: f64,
    retry: RetryPolicy,
    request_timeout: Duration,
) -> ArmClient {
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.rate_limits = Some(RateLimits::azure().scaled(scale));
    config.retry = retry;
    config.request_timeout = request_timeout;
    config.default_poll = DEFAULT_POLL.div_f64(scale);
    ArmClient::new(config, Arc::new(Credential::static_token("bench-token"))).expect("ARM client")
}

/// Requests per logical operation (all statuses, retries included) from the client's counters.
pub fn operation_counts(client: &ArmClient) -> BTreeMap<String, u64> {
    OPERATIONS
        .iter()
        .map(|op| (op.to_string(), client.metrics().requests_for(op)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub fn subtract(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

// ----- the emulator on its own runtime --------------------------------------------------------

/// Threads of the emulator's runtime carry this name, so their CPU time can be read apart.
pub const EMULATOR_THREAD: &str = "emulator";
pub const OPERATOR_THREAD: &str = "operator";

/// The emulator served by a one-thread runtime of its own. Drop it outside any runtime.
pub struct EmulatorHost {
    pub emulator: Arc<Emulator>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EmulatorHost {
    /// Starts `config` answering in the forms of the profile `ARM_EMULATOR_PROFILE` names
    /// (recorded Azure's by default), so each bench can be run under each.
    pub fn start(mut config: EmulatorConfig) -> Self {
        cognitive_operator::install_crypto_provider();
        config.profile = Profile::from_env().unwrap_or_else(|e| panic!("{e}"));
        eprintln!("emulator profile: {:?}", config.profile);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(EMULATOR_THREAD)
            .enable_all()
            .build()
            .expect("emulator runtime");
        let emulator = runtime
            .block_on(Emulator::start(config))
            .expect("emulator starts");
        emulator.seed_resource_group(SUB, RG, LOCATION);
        EmulatorHost {
            emulator: Arc::new(emulator),
            runtime: Some(runtime),
        }
    }
}

impl Drop for EmulatorHost {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The runtime the operator side (work queue, engine, ARM client) runs on: two workers, like a
/// two-core pod.
pub fn operator_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(OPERATOR_THREAD)
        .enable_all()
        .build()
        .expect("operator runtime")
}

// ----- the work queue -------------------------------------------------------------------------

/// One reconcile's result, as the controller would see it after writing the status.
struct Finished {
    index: usize,
    status: cognitive_operator::api::CognitiveServicesAccountStatus,
    ready: bool,
    next: Next,
    requeue: Requeue,
    started: Instant,
}

/// How the engine answered, over all reconciles.
#[derive(Clone, Debug, Default)]
pub struct NextCounts {
    pub after: u64,
    pub backoff: u64,
    pub resync: u64,
    pub done: u64,
}

/// The controller's scheduling without Kubernetes: at most `concurrency` reconciles at once,
/// never two of one resource, each resource due again per `requeue_for` (the controller's own
/// function: operation Retry-After, jittered exponential backoff, jittered resync). The status
/// each reconcile returns is stored on the resource, as the controller's status write does.
pub struct WorkQueue {
    engine: Arc<Engine>,
    client: ArmClient,
    backoffs: Arc<Backoffs>,
    concurrency: usize,
    /// The resources as stored: spec and the last status written.
    pub resources: Vec<CognitiveServicesAccount>,
    queue: BinaryHeap<Reverse<(Instant, usize)>>,
    tasks: JoinSet<Finished>,
    ready: Vec<bool>,
    ready_count: usize,
    /// Reconciles started at or after this instant park their resource when it ends Ready.
    park_from: Option<Instant>,
    parked: Vec<bool>,
    parked_count: usize,
    pub reconciles: u64,
    pub next_counts: NextCounts,
    /// When set, `run_until` checks its condition at least this often.
    tick: Option<Duration>,
}

impl WorkQueue {
    /// Every resource is due at once, as after the controller's initial list.
    pub fn new(
        engine: Engine,
        client: ArmClient,
        resources: Vec<CognitiveServicesAccount>,
        concurrency: usize,
    ) -> Self {
        let now = Instant::now();
        let n = resources.len();
        let ready: Vec<bool> = resources
            .iter()
            .map(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| cognitive_operator::engine::condition_is_true(s, "Ready"))
            })
            .collect();
        WorkQueue {
            engine: Arc::new(engine),
            client,
            backoffs: Arc::new(Backoffs::default()),
            concurrency: concurrency.max(1),
            resources,
            queue: (0..n).map(|i| Reverse((now, i))).collect(),
            tasks: JoinSet::new(),
            ready_count: ready.iter().filter(|r| **r).count(),
            ready,
            park_from: None,
            parked: vec![false; n],
            parked_count: 0,
            reconciles: 0,
            next_counts: NextCounts::default(),
            tick: None,
        }
    }

    pub fn client(&self) -> &ArmClient {
        &self.client
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn ready_count(&self) -> usize {
        self.ready_count
    }

    pub fn parked_count(&self) -> usize {
        self.parked_count
    }

    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    pub fn all_ready(&self) -> bool {
        self.ready_count == self.resources.len()
    }

    /// From now on, a resource whose reconcile starts now or later and ends Ready is parked
    /// (not requeued): one steady-state round.
    pub fn start_steady_round(&mut self) {
        self.park_from = Some(Instant::now());
    }

    /// Makes `run_until` look at its condition at least every `tick` (`None`: only when a
    /// reconcile ends or one comes due).
    pub fn set_tick(&mut self, tick: Option<Duration>) {
        self.tick = tick;
    }

    /// Runs until `done` holds (true) or `deadline` passes (false).
    pub async fn run_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.dispatch_due(now);
            let wake = if self.tasks.len() < self.concurrency {
                self.queue
                    .peek()
                    .map_or(deadline, |Reverse((due, _))| (*due).min(deadline))
            } else {
                deadline
            };
            let wake = self.tick.map_or(wake, |tick| wake.min(now + tick));
            tokio::select! {
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.finish(joined);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Waits for the reconciles in flight, starting no new one.
    pub async fn drain(&mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            self.finish(joined);
        }
    }

    /// A crash: reconciles in flight are aborted (their status writes never happen); what is
    /// left is each resource's stored status, round-tripped through JSON as the API server holds
    /// it. Returns the resources and how many reconciles were cut off.
    pub async fn crash(mut self) -> (Vec<CognitiveServicesAccount>, usize) {
        let aborted = self.tasks.len();
        self.tasks.shutdown().await;
        let resources = self
            .resources
            .into_iter()
            .map(|mut r| {
                let stored = serde_json::to_string(&r.status).expect("status serializes");
                r.status = serde_json::from_str(&stored).expect("status deserializes");
                r
            })
            .collect();
        (resources, aborted)
    }

    fn dispatch_due(&mut self, now: Instant) {
        while self.tasks.len() < self.concurrency {
            match self.queue.peek() {
                Some(Reverse((due, _))) if *due <= now => {}
                _ => return,
            }
            let Some(Reverse((_, index))) = self.queue.pop() else {
                return;
            };
            let resource = self.resources[index].clone();
            let (engine, client, backoffs) = (
                self.engine.clone(),
                self.client.clone(),
                self.backoffs.clone(),
            );
            self.tasks.spawn(async move {
                let started = Instant::now();
                let outcome = engine
                    .reconcile(&client, &resource, false, jiff::Timestamp::now())
                    .await;
                let key = owner_id(&resource);
                let requeue = requeue_for(outcome.next, resource.spec.resync(), &key, &backoffs);
                Finished {
                    index,
                    ready: outcome.ready(),
                    status: outcome.status,
                    next: outcome.next,
                    requeue,
                    started,
                }
            });
        }
    }

    fn finish(&mut self, joined: Result<Finished, tokio::task::JoinError>) {
        let done = match joined {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => return,
        };
        let i = done.index;
        self.reconciles += 1;
        match done.next {
            Next::After(_) => self.next_counts.after += 1,
            Next::Backoff { .. } => self.next_counts.backoff += 1,
            Next::Resync => self.next_counts.resync += 1,
            Next::Done => self.next_counts.done += 1,
        }
        self.resources[i].status = Some(done.status);
        if done.ready != self.ready[i] {
            self.ready[i] = done.ready;
            if done.ready {
                self.ready_count += 1;
            } else {
                self.ready_count -= 1;
            }
        }
        if done.ready && self.park_from.is_some_and(|from| done.started >= from) {
            if !self.parked[i] {
                self.parked[i] = true;
                self.parked_count += 1;
            }
            return;
        }
        if let Requeue::After(delay) = done.requeue {
            self.queue.push(Reverse((Instant::now() + delay, i)));
        }
    }
}

// ----- the emulator's request log -------------------------------------------------------------

/// ARM's bucket a request drew from.
pub fn class_of(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" => "reads",
        "DELETE" => "deletes",
        _ => "writes",
    }
}

/// Whether a request took a token from the emulator's buckets: neither throttled nor dropped.
/// (Injected error answers take none either but cannot be told apart in the log; the converge
/// bench injects none.)
pub fn took_token(request: &RecordedRequest) -> bool {
    request.status != 429 && request.status != 0
}

/// Requests per class that took a token.
pub fn admitted_by_class(requests: &[RecordedRequest]) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::from([("reads", 0), ("writes", 0), ("deletes", 0)]);
    for request in requests.iter().filter(|r| took_token(r)) {
        *counts.entry(class_of(&request.method)).or_default() += 1;
    }
    counts
}

/// The account name a request is about (`.../accounts/{name}` or `.../deletedAccounts/{name}`).
pub fn account_of(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    while let Some(segment) = segments.next() {
        if segment.eq_ignore_ascii_case("accounts")
            || segment.eq_ignore_ascii_case("deletedAccounts")
        {
            return segments.next().filter(|s| !s.is_empty());
        }
    }
    None
}

pub fn is_deleted_account_path(path: &str) -> bool {
    path.to_ascii_lowercase().contains("/deletedaccounts/")
}

// ----- process measurements -------------------------------------------------------------------

/// Linux's USER_HZ: the unit of utime/stime in /proc/*/stat (100 on every mainstream ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// (utime + stime) in seconds and the thread name of a /proc stat file.
fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU seconds used so far: the whole process (exited threads included) and the emulator's
/// runtime threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub process: f64,
    pub emulator: f64,
}

impl Cpu {
    pub fn now() -> Cpu {
        let process = stat_cpu("/proc/self/stat").map_or(0.0, |(_, s)| s);
        let mut emulator = 0.0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let path = format!("{}/stat", task.path().display());
                if let Some((name, seconds)) = stat_cpu(&path)
                    && name.starts_with(EMULATOR_THREAD)
                {
                    emulator += seconds;
                }
            }
        }
        Cpu { process, emulator }
    }

    pub fn since(self, start: Cpu) -> Cpu {
        Cpu {
            process: self.process - start.process,
            emulator: self.emulator - start.emulator,
        }
    }

    /// Everything but the emulator: work queue, engine, ARM client, HTTP.
    pub fn operator(self) -> f64 {
        (self.process - self.emulator).max(0.0)
    }
}

/// A `VmXXX:` line of /proc/self/status, in MiB.
pub fn vm_mib(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib / 1024.0)
        })
        .unwrap_or(0.0)
}

pub fn peak_rss_mib() -> f64 {
    vm_mib("VmHWM")
}

pub fn rss_mib() -> f64 {
    vm_mib("VmRSS")
}

/// `model name` of /proc/cpuinfo and the number of online CPUs.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} × {model}")
}

pub fn round(x: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (x * factor).round() / factor
}
