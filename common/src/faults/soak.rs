//! The soak (issue 23): the service over a real store and queue wrapped in the faulty ports,
//! callers creating clients, changing sync statuses and notifying for a bounded time while a
//! share of port calls fail or wait, crm-local's worker and sweeper crashed and restarted in the
//! middle; then the faults stop and the sweeper settles everything. What it checks is in
//! `check`; what it measured is `SoakReport::table`. The integration test runs a short one on
//! each store, the bench (`crm-bench soak`) a longer, larger one.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lambda_http::http::Method;
use lambda_http::Body;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::receiver::{Arrivals, Receiver};
use super::{
    FaultFigures, FaultPlan, Faults, FaultyQueue, FaultySender, FaultyStore, SteppedClock,
};
use crate::adapters::http_sender::HttpSender;
use crate::adapters::main_key::{MainKey, MainKeyWrapper};
use crate::domain::delivery::{DeliveryStatus, Jitter, RetrySchedule, StatusCounts};
use crate::domain::event::{CLIENT_CREATED, SYNC_STATUS_CHANGED};
use crate::domain::page::{decode_cursor, PageRequest, MAX_LIMIT};
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::webhook::TargetPolicy;
use crate::error::{Error, Result};
use crate::http::{handle, routes::ROUTES};
use crate::local::{run_sweeper, run_worker};
use crate::ports::{ClientQuery, Clock, Queue, Store};
use crate::service::deps::{DeliverySettings, Deps};
use crate::service::secrets::SecretKeeper;
use crate::service::tenants::create_tenant;

/// The event the callers notify.
const NOTIFY_EVENT: &str = "lead.created";
/// The tenant's webhooks, by number (the receiver's path): each event goes to two of them.
const HOOKS: [&[&str]; 3] = [
    &[CLIENT_CREATED, SYNC_STATUS_CHANGED, NOTIFY_EVENT],
    &[SYNC_STATUS_CHANGED],
    &[CLIENT_CREATED, NOTIFY_EVENT],
];
/// Every webhook's: 11 attempts, so that with 8% of sends failing one delivery in about 10^12
/// runs out of them; a receiver that always answers 200 then leaves every delivery SUCCESS.
const MAX_RETRIES: u32 = 10;
/// Short, so that a lease (this + the worker's 15 s margin) is short too.
const TIMEOUT_MS: u32 = 2_000;
/// crm-local's sweeper comes every minute; the soak's every second, with the tests' 2 s grace.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const SWEEP_GRACE: Duration = Duration::from_secs(2);
/// How far settling moves the clock at a time: past any lease a crash or a lost reply left (the
/// webhook's timeout + 15 s) and the sweeper's grace, so that the sweeper takes such deliveries
/// back now rather than after a wait. An attempt in flight at a step may be sent twice: a
/// duplicate, as when an attempt outlives its lease.
const SETTLE_STEP: Duration = Duration::from_secs(60);
/// How long the work left may stay the same before settling moves the clock.
const STALL: Duration = Duration::from_secs(3);
/// More events than any soak writes: the outbox is read whole.
const OUTBOX_READ: usize = 1_000_000;
/// Problems listed in the report; the rest are counted.
const PROBLEMS_SHOWN: usize = 25;

#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub faults: FaultPlan,
    /// How long the callers run, faults on.
    pub load_for: Duration,
    /// Callers at once, each one call at a time.
    pub callers: usize,
    /// Each caller's pause after each call: a pace the worker keeps up with, so that the
    /// deliveries meet the faults too rather than piling up for the settling.
    pub pause: Duration,
    /// Clients created before the load (faults off), for the first status changes.
    pub initial_clients: usize,
    /// Worker and sweeper restarts during the load, evenly spread: the odd ones abort the tasks
    /// where they are (a crash), the even ones stop them and let attempts finish (a shutdown).
    pub restarts: usize,
    /// How long the settling may take before the soak reports what is stuck.
    pub settle_within: Duration,
}

impl SoakPlan {
    /// 10% of port calls meet a fault; two restarts (a crash, then a shutdown).
    pub fn new(seed: u64, load_for: Duration, callers: usize) -> SoakPlan {
        SoakPlan {
            faults: FaultPlan::ten_percent(seed),
            load_for,
            callers,
            pause: Duration::from_millis(50),
            initial_clients: 20,
            restarts: 2,
            settle_within: Duration::from_secs(90),
        }
    }
}

/// What a soak did and found. `problems` empty: every check passed.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    pub store: String,
    pub faults: FaultFigures,
    /// HTTP calls made during the load, and those answered 2xx.
    pub calls: u64,
    pub calls_2xx: u64,
    /// Events the 2xx answers accepted, by kind (the initial clients' creations included).
    pub accepted_created: usize,
    pub accepted_status_changes: usize,
    pub accepted_notifies: usize,
    /// Deliveries those events owe (one per subscribed webhook), and those that arrived.
    pub deliveries_owed: usize,
    pub deliveries_arrived: usize,
    /// Events in the outbox: the accepted ones and those of calls that failed after the write.
    pub events_written: usize,
    /// Deliveries in the store at the end, by status.
    pub deliveries: StatusCounts,
    /// Requests the receiver answered, and those beyond the first of an event at a webhook.
    pub requests_received: u64,
    pub duplicates: u64,
    pub crashes: usize,
    pub shutdowns: usize,
    pub load_time: Duration,
    pub settle_time: Duration,
    /// Times settling moved the clock by `SETTLE_STEP`.
    pub clock_steps: u32,
    pub problems: Vec<String>,
}

impl SoakReport {
    pub fn accepted(&self) -> usize {
        self.accepted_created + self.accepted_status_changes + self.accepted_notifies
    }

    /// The figures as a Markdown table.
    pub fn table(&self) -> String {
        let f = &self.faults;
        let faults = |p: &super::PortFigures| format!("{} / {} / {}", p.before, p.after, p.delayed);
        let d = |status| self.deliveries.get(status);
        let open = d(DeliveryStatus::Pending) + d(DeliveryStatus::Retrying);
        let rows = [
            ("store", self.store.clone()),
            (
                "HTTP calls (2xx / other)",
                format!(
                    "{} ({} / {})",
                    self.calls,
                    self.calls_2xx,
                    self.calls - self.calls_2xx
                ),
            ),
            ("store calls, faults on", f.store.calls.to_string()),
            ("store faults before / after / delay", faults(&f.store)),
            ("queue calls, faults on", f.queue.calls.to_string()),
            ("queue faults before / after / delay", faults(&f.queue)),
            ("sends, faults on", f.sender.calls.to_string()),
            ("send faults before / after / delay", faults(&f.sender)),
            (
                "events accepted (created, initial clients too / status changes / notifies)",
                format!(
                    "{} ({} / {} / {})",
                    self.accepted(),
                    self.accepted_created,
                    self.accepted_status_changes,
                    self.accepted_notifies
                ),
            ),
            (
                "deliveries owed to accepted events / arrived",
                format!("{} / {}", self.deliveries_owed, self.deliveries_arrived),
            ),
            (
                "events written (with those of calls failed after the write)",
                self.events_written.to_string(),
            ),
            (
                "deliveries SUCCESS / FAILED / CANCELLED / open",
                format!(
                    "{} / {} / {} / {open}",
                    d(DeliveryStatus::Success),
                    d(DeliveryStatus::Failed),
                    d(DeliveryStatus::Cancelled)
                ),
            ),
            (
                "requests received / duplicates",
                format!("{} / {}", self.requests_received, self.duplicates),
            ),
            (
                "worker and sweeper crashes / shutdowns",
                format!("{} / {}", self.crashes, self.shutdowns),
            ),
            (
                "load / settle time",
                format!(
                    "{:.1} s / {:.1} s (clock moved {} × {} s)",
                    self.load_time.as_secs_f64(),
                    self.settle_time.as_secs_f64(),
                    self.clock_steps,
                    SETTLE_STEP.as_secs()
                ),
            ),
            ("problems", self.problems.len().to_string()),
        ];
        let mut table = String::from("| figure | value |\n|---|---|\n");
        for (figure, value) in rows {
            let _ = writeln!(table, "| {figure} | {value} |");
        }
        for problem in self.problems.iter().take(PROBLEMS_SHOWN) {
            let _ = writeln!(table, "- {problem}");
        }
        if self.problems.len() > PROBLEMS_SHOWN {
            let _ = writeln!(table, "- … {} more", self.problems.len() - PROBLEMS_SHOWN);
        }
        table
    }
}

/// The service as the soak runs it: crm-local's delivery settings but for a sweeper that comes
/// every second with a 2 s grace, retries a second apart, and targets on 127.0.0.1.
fn settings() -> DeliverySettings {
    DeliverySettings {
        retry_schedule: RetrySchedule::parse("1").expect("one second is a valid retry delay"),
        retry_jitter: Jitter::NONE,
        targets: TargetPolicy {
            allow_http: true,
            allow_private: true,
        },
        sweep_grace: SWEEP_GRACE,
        ..DeliverySettings::default()
    }
}

/// Runs a soak over `store` and `queue` (fresh: the soak makes its own tenant, and its checks
/// read every undispatched event of the store). `Err` only when the setting up, before any
/// fault, failed.
pub async fn run(
    name: &str,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    plan: &SoakPlan,
) -> Result<SoakReport> {
    let faults = Faults::new(plan.faults);
    let clock = Arc::new(SteppedClock::default());
    let receiver = Receiver::start().await.map_err(Error::internal)?;
    let sender = HttpSender::new(true, true)?;
    let mut deps = Deps::new(
        Arc::new(FaultyStore::new(Arc::clone(&store), Arc::clone(&faults))),
        Arc::new(FaultyQueue::new(queue, Arc::clone(&faults))),
        Arc::new(FaultySender::new(Arc::new(sender), Arc::clone(&faults))),
        settings(),
    );
    deps.clock = Arc::clone(&clock) as Arc<dyn Clock>;
    let wrapper = MainKeyWrapper::new(&MainKey::random())?;
    let keyring = Arc::clone(&deps.store);
    let deps = deps.with_secrets(SecretKeeper::new(Arc::new(wrapper), keyring));
    let mut report = SoakReport {
        store: name.to_owned(),
        ..SoakReport::default()
    };

    let (tenant, key) = create_tenant(deps.store.as_ref(), deps.clock.as_ref(), "soak").await?;
    let mut hooks = Vec::new();
    for (n, events) in HOOKS.iter().enumerate() {
        let body = json!({"url": receiver.url(n), "events": events,
            "maxRetries": MAX_RETRIES, "timeoutMs": TIMEOUT_MS});
        let (status, created) = post(&deps, &key, "/api/webhooks", &body).await;
        let id = created["id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok());
        match (status, id) {
            (201, Some(id)) => hooks.push(id),
            _ => return Err(Error::internal(format!("webhook {n}: {status} {created}"))),
        }
    }
    let load = Arc::new(Load {
        deps: deps.clone(),
        key,
        seed: plan.faults.seed,
        clients: Mutex::default(),
    });
    let mut accepted = Vec::new();
    for n in 0..plan.initial_clients {
        let mut log = CallerLog::default();
        load.create_client(&format!("soak client {n}"), &mut log)
            .await;
        if log.accepted.is_empty() {
            return Err(Error::internal(format!("initial client {n} not created")));
        }
        accepted.append(&mut log.accepted);
    }

    let background = Background::start(&deps);
    faults.start();
    let background = drive_load(&load, background, plan, &mut accepted, &mut report).await?;
    faults.stop();
    report.faults = faults.figures();
    settle(
        store.as_ref(),
        tenant.id,
        &clock,
        plan.settle_within,
        &mut report,
    )
    .await;
    background.shut_down().await;

    let arrivals = receiver.take_arrivals();
    report.requests_received = arrivals.requests;
    report.duplicates = arrivals.duplicates();
    check(
        store.as_ref(),
        tenant.id,
        &hooks,
        &accepted,
        &arrivals,
        &mut report,
    )
    .await;
    Ok(report)
}

/// The load: callers until `plan.load_for` is up, the worker and sweeper restarted at even
/// intervals meanwhile; the events the callers' 2xx answers accepted go to `accepted`.
async fn drive_load(
    load: &Arc<Load>,
    mut background: Background,
    plan: &SoakPlan,
    accepted: &mut Vec<Accepted>,
    report: &mut SoakReport,
) -> Result<Background> {
    let started = Instant::now();
    let callers: Vec<JoinHandle<CallerLog>> = (0..plan.callers)
        .map(|n| {
            let until = started + plan.load_for;
            tokio::spawn(Arc::clone(load).run_caller(n, until, plan.pause))
        })
        .collect();
    for restart in 1..=plan.restarts {
        let at = plan
            .load_for
            .mul_f64(restart as f64 / (plan.restarts + 1) as f64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
        if restart % 2 == 1 {
            background.crash();
            report.crashes += 1;
        } else {
            background.shut_down().await;
            report.shutdowns += 1;
        }
        background = Background::start(&load.deps);
    }
    for caller in callers {
        let log = caller.await.map_err(Error::internal)?;
        report.calls += log.calls;
        report.calls_2xx += log.calls_2xx;
        accepted.extend(log.accepted);
    }
    report.load_time = started.elapsed();
    Ok(background)
}

/// Waits, faults off, until the tenant has no open delivery and no undispatched event, while
/// the worker and sweeper run; moves the clock by `SETTLE_STEP` whenever that work has not
/// changed for `STALL`, so that leases and grace periods pass without being waited out. Not
/// while work drains: a step makes every open delivery due, and the sweeper would queue each
/// again behind the message it has.
async fn settle(
    store: &dyn Store,
    tenant: Uuid,
    clock: &SteppedClock,
    within: Duration,
    report: &mut SoakReport,
) {
    let settling = Instant::now();
    let (mut seen, mut since) = (None, Instant::now());
    loop {
        let left = unfinished(store, tenant, clock.now()).await;
        if left == Some((0, 0)) {
            break;
        }
        if settling.elapsed() > within {
            report.problems.push(format!(
                "not settled within {within:?}: (open deliveries, undispatched events) = {left:?}"
            ));
            break;
        }
        if left != seen {
            (seen, since) = (left, Instant::now());
        } else if since.elapsed() >= STALL {
            clock.advance(SETTLE_STEP);
            report.clock_steps += 1;
            since = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.settle_time = settling.elapsed();
}

/// Open deliveries (by the counters) and undispatched events of the tenant; `None` when the
/// store could not be read.
async fn unfinished(store: &dyn Store, tenant: Uuid, now: DateTime<Utc>) -> Option<(i64, usize)> {
    let counts = store.delivery_counts(tenant).await.ok()?.overall;
    let open = counts.get(DeliveryStatus::Pending) + counts.get(DeliveryStatus::Retrying);
    let far = now + chrono::Duration::days(1);
    let events = store.undispatched_events(far, 100).await.ok()?.len();
    Some((open, events))
}

/// crm-local's queue consumer and sweeper timer, as `local::run_worker` and `run_sweeper`.
struct Background {
    stop: watch::Sender<bool>,
    worker: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl Background {
    fn start(deps: &Deps) -> Background {
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(run_worker(deps.clone(), stopped.clone()));
        let sweeper = tokio::spawn(run_sweeper(deps.clone(), SWEEP_EVERY, stopped));
        Background {
            stop,
            worker,
            sweeper,
        }
    }

    /// As a kill -9: every task stops where it is, attempts in flight included (the worker's
    /// attempts are its tasks, dropped with it).
    fn crash(self) {
        self.worker.abort();
        self.sweeper.abort();
    }

    /// As crm-local's shutdown: told to stop; attempts in flight finish and are recorded.
    async fn shut_down(self) {
        self.stop.send(true).ok();
        self.worker.await.ok();
        self.sweeper.await.ok();
    }
}

/// An event a 2xx answer accepted, as the caller can name it.
#[derive(Debug, Clone)]
enum Accepted {
    Created(Uuid),
    /// The status a client was moved to, by a call made between `from` and `to`.
    StatusChanged {
        client: Uuid,
        status: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// The delivery ids notify answered.
    Notified(Vec<Uuid>),
}

#[derive(Debug, Default)]
struct CallerLog {
    calls: u64,
    calls_2xx: u64,
    accepted: Vec<Accepted>,
}

/// What the callers share.
struct Load {
    deps: Deps,
    key: String,
    seed: u64,
    /// Every client a call created.
    clients: Mutex<Vec<Uuid>>,
}

impl Load {
    /// One caller: a call at a time until `until`, `pause` after each, each chosen at random:
    /// a client created (25%), a batch of one to three status changes (45%), a notify (30%).
    async fn run_caller(self: Arc<Load>, n: usize, until: Instant, pause: Duration) -> CallerLog {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_add(n as u64 + 1));
        let mut log = CallerLog::default();
        let mut call = 0;
        while Instant::now() < until {
            call += 1;
            let roll: f64 = rng.random();
            if roll < 0.25 {
                self.create_client(&format!("soak client {n}-{call}"), &mut log)
                    .await;
            } else if roll < 0.7 {
                let updates = self.status_changes(&mut rng);
                self.change_statuses(updates, &mut log).await;
            } else {
                self.notify(n, call, &mut log).await;
            }
            tokio::time::sleep(pause).await;
        }
        log
    }

    async fn create_client(&self, name: &str, log: &mut CallerLog) {
        let (status, body) = self
            .call("/api/clients", &json!({ "name": name }), log)
            .await;
        let id = body["id"].as_str().and_then(|id| id.parse::<Uuid>().ok());
        if let (201, Some(id)) = (status, id) {
            self.clients
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(id);
            log.accepted.push(Accepted::Created(id));
        }
    }

    fn status_changes(&self, rng: &mut StdRng) -> Vec<Value> {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (0..rng.random_range(1..=3))
            .filter_map(|_| {
                let client = clients.get(rng.random_range(0..clients.len().max(1)))?;
                let status = SyncStatus::ALL[rng.random_range(0..SyncStatus::ALL.len())];
                Some(match status {
                    SyncStatus::Failed => json!({"clientId": client, "status": status.as_str(),
                        "error": "soak", "errorCode": "SOAK"}),
                    status => json!({"clientId": client, "status": status.as_str()}),
                })
            })
            .collect()
    }

    /// A batch: each entry answers whether it changed the status (and so emitted an event).
    async fn change_statuses(&self, updates: Vec<Value>, log: &mut CallerLog) {
        if updates.is_empty() {
            return;
        }
        let from = self.deps.clock.now();
        let (status, body) = self
            .call(
                "/api/crm/update-sync-status",
                &json!({ "updates": updates }),
                log,
            )
            .await;
        let to = self.deps.clock.now();
        if status != 200 {
            return;
        }
        for result in body["results"].as_array().into_iter().flatten() {
            let client = result["clientId"].as_str().and_then(|id| id.parse().ok());
            if let (Some(true), Some(true), Some(client), Some(status)) = (
                result["ok"].as_bool(),
                result["changed"].as_bool(),
                client,
                result["status"].as_str(),
            ) {
                log.accepted.push(Accepted::StatusChanged {
                    client,
                    status: status.to_owned(),
                    from,
                    to,
                });
            }
        }
    }

    async fn notify(&self, caller: usize, call: u64, log: &mut CallerLog) {
        let body = json!({"event": NOTIFY_EVENT, "data": {"caller": caller, "call": call}});
        let (status, body) = self.call("/api/webhooks/notify", &body, log).await;
        if status != 200 {
            return;
        }
        let ids = body["deliveryIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str()?.parse().ok())
            .collect();
        log.accepted.push(Accepted::Notified(ids));
    }

    async fn call(&self, path: &str, body: &Value, log: &mut CallerLog) -> (u16, Value) {
        let answer = post(&self.deps, &self.key, path, body).await;
        log.calls += 1;
        if (200..300).contains(&answer.0) {
            log.calls_2xx += 1;
        }
        answer
    }
}

/// A POST through the route table, as API Gateway and crm-local hand it to `http::handle`.
async fn post(deps: &Deps, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let request = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()));
    let Ok(request) = request else {
        return (0, Value::Null);
    };
    let response = handle(deps, ROUTES, request).await;
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (response.status().as_u16(), json)
}

fn subscribers(event: &str) -> impl Iterator<Item = usize> + '_ {
    (0..HOOKS.len()).filter(move |n| HOOKS[*n].contains(&event))
}

/// The soak's checks, each failure a line of `report.problems`:
/// - the sync counters equal a recount of the clients, and the delivery counters (the tenant's
///   and each webhook's) a recount of the deliveries;
/// - every delivery ended SUCCESS (the receiver always answers 200, and 11 attempts outlast
///   the injected send failures);
/// - no event is left undispatched, and every event of the outbox (accepted or written by a
///   call that failed after the write) reached each webhook subscribed to it;
/// - every event a 2xx answer accepted reached each webhook subscribed to it;
/// - at each webhook, each client's `sync.status.changed` events, in event order, form one
///   chain from NEEDS_UPDATE to its stored status, and its `client.created` arrived: no client
///   change happened without its event.
async fn check(
    store: &dyn Store,
    tenant: Uuid,
    hooks: &[Uuid],
    accepted: &[Accepted],
    arrivals: &Arrivals,
    report: &mut SoakReport,
) {
    let problems = &mut report.problems;
    let statuses = match recount_clients(store, tenant).await {
        Ok(statuses) => statuses,
        Err(error) => {
            problems.push(format!("reading the clients failed: {error}"));
            return;
        }
    };
    match store.sync_counts(tenant).await {
        Ok(counts) if counts.counts_only() == SyncCounts::recount(statuses.values().copied()) => {}
        Ok(counts) => problems.push(format!(
            "sync counters {:?} differ from a recount {:?}",
            counts.counts_only(),
            SyncCounts::recount(statuses.values().copied())
        )),
        Err(error) => problems.push(format!("reading the sync counters failed: {error}")),
    }

    check_deliveries(store, tenant, hooks, report).await;
    let problems = &mut report.problems;

    match store.list_outbox_events(tenant, OUTBOX_READ).await {
        Ok(events) => {
            report.events_written = events.len();
            for event in &events {
                for hook in subscribers(&event.event) {
                    if !arrivals.got(hook, event.id) {
                        problems.push(format!(
                            "event {} ({}) never reached webhook {hook}",
                            event.id, event.event
                        ));
                    }
                }
            }
        }
        Err(error) => problems.push(format!("reading the outbox failed: {error}")),
    }
    let far = chrono::Utc::now() + chrono::Duration::days(365);
    match store.undispatched_events(far, 100).await {
        Ok(left) if left.is_empty() => {}
        Ok(left) => problems.push(format!("{} events never dispatched", left.len())),
        Err(error) => problems.push(format!("reading undispatched events failed: {error}")),
    }

    check_accepted(accepted, &statuses, arrivals, report);
    check_chains(&statuses, arrivals, &mut report.problems);
}

async fn recount_clients(store: &dyn Store, tenant: Uuid) -> Result<HashMap<Uuid, SyncStatus>> {
    let mut statuses = HashMap::new();
    let mut after = None;
    loop {
        let query = ClientQuery {
            status: None,
            synced_before: None,
            page: PageRequest {
                limit: MAX_LIMIT,
                after,
            },
        };
        let page = store.list_clients(tenant, &query).await?;
        statuses.extend(page.items.iter().map(|c| (c.id, c.sync_status)));
        match page.next_cursor {
            Some(cursor) => after = Some(decode_cursor(&cursor)?),
            None => return Ok(statuses),
        }
    }
}

/// Recounts every webhook's deliveries against the counters; each must be SUCCESS.
async fn check_deliveries(
    store: &dyn Store,
    tenant: Uuid,
    hooks: &[Uuid],
    report: &mut SoakReport,
) {
    let counters = match store.delivery_counts(tenant).await {
        Ok(counters) => counters,
        Err(error) => {
            report
                .problems
                .push(format!("reading the delivery counters failed: {error}"));
            return;
        }
    };
    let mut overall = StatusCounts::default();
    for (n, hook) in hooks.iter().enumerate() {
        let mut counts = StatusCounts::default();
        let mut after = None;
        loop {
            let page = PageRequest {
                limit: MAX_LIMIT,
                after,
            };
            let page = match store.list_deliveries(tenant, *hook, None, page).await {
                Ok(page) => page,
                Err(error) => {
                    report
                        .problems
                        .push(format!("listing webhook {n}'s deliveries failed: {error}"));
                    return;
                }
            };
            for delivery in &page.items {
                counts.add(&StatusCounts::delta(None, delivery.status));
                if delivery.status != DeliveryStatus::Success {
                    report.problems.push(format!(
                        "delivery {} ({} to webhook {n}) ended {} after {} attempts: {:?}",
                        delivery.id,
                        delivery.event,
                        delivery.status.as_str(),
                        delivery.attempt_count,
                        delivery.last_error
                    ));
                }
            }
            match page.next_cursor.as_deref().map(decode_cursor) {
                Some(Ok(cursor)) => after = Some(cursor),
                Some(Err(error)) => {
                    report.problems.push(format!("a bad cursor: {error}"));
                    return;
                }
                None => break,
            }
        }
        let counted = counters
            .per_webhook
            .iter()
            .find(|(id, _)| id == hook)
            .map(|(_, counts)| counts.clone())
            .unwrap_or_default();
        if !same_counts(&counted, &counts) {
            report.problems.push(format!(
                "webhook {n}'s delivery counters {:?} differ from a recount {:?}",
                counted.0, counts.0
            ));
        }
        overall.add(&counts);
    }
    if !same_counts(&counters.overall, &overall) {
        report.problems.push(format!(
            "the tenant's delivery counters {:?} differ from a recount {:?}",
            counters.overall.0, overall.0
        ));
    }
    report.deliveries = overall;
}

/// Equal for every status, a missing one being zero.
fn same_counts(a: &StatusCounts, b: &StatusCounts) -> bool {
    DeliveryStatus::ALL
        .into_iter()
        .all(|status| a.get(status) == b.get(status))
}

/// A `sync.status.changed` as a webhook got it: the new status and the change's time.
type StatusArrival = (String, Option<DateTime<Utc>>);

/// Every accepted event arrived at each webhook subscribed to it.
fn check_accepted(
    accepted: &[Accepted],
    statuses: &HashMap<Uuid, SyncStatus>,
    arrivals: &Arrivals,
    report: &mut SoakReport,
) {
    // What each webhook got, as the callers can name it.
    let mut created: HashSet<(usize, Uuid)> = HashSet::new();
    let mut changes: HashMap<(usize, Uuid), Vec<StatusArrival>> = HashMap::new();
    let mut deliveries: HashSet<Uuid> = HashSet::new();
    for hook in 0..HOOKS.len() {
        for arrival in arrivals.of(hook).map(|(_, arrival)| arrival) {
            deliveries.extend(arrival.delivery_id);
            let uuid = |field: &str| arrival.data[field].as_str()?.parse::<Uuid>().ok();
            match arrival.event.as_str() {
                CLIENT_CREATED => created.extend(uuid("id").map(|id| (hook, id))),
                SYNC_STATUS_CHANGED => {
                    let Some(client) = uuid("clientId") else {
                        continue;
                    };
                    let at = arrival.data["timestamp"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc));
                    let status = arrival.data["newStatus"].as_str().unwrap_or_default();
                    changes
                        .entry((hook, client))
                        .or_default()
                        .push((status.to_owned(), at));
                }
                _ => {}
            }
        }
    }
    let mut missing = Vec::new();
    for event in accepted {
        match event {
            Accepted::Created(client) => {
                report.accepted_created += 1;
                if !statuses.contains_key(client) {
                    missing.push(format!(
                        "client {client} was answered 201 but is not stored"
                    ));
                }
                for hook in subscribers(CLIENT_CREATED) {
                    report.deliveries_owed += 1;
                    if created.contains(&(hook, *client)) {
                        report.deliveries_arrived += 1;
                    } else {
                        missing.push(format!(
                            "client.created of {client} (answered 201) never reached webhook {hook}"
                        ));
                    }
                }
            }
            Accepted::StatusChanged {
                client,
                status,
                from,
                to,
            } => {
                report.accepted_status_changes += 1;
                for hook in subscribers(SYNC_STATUS_CHANGED) {
                    report.deliveries_owed += 1;
                    let arrived = changes.get(&(hook, *client)).is_some_and(|got| {
                        got.iter().any(|(new, at)| {
                            new == status && at.is_some_and(|at| *from <= at && at <= *to)
                        })
                    });
                    if arrived {
                        report.deliveries_arrived += 1;
                    } else {
                        missing.push(format!(
                            "{client} → {status} (answered 200, changed) never reached webhook {hook}"
                        ));
                    }
                }
            }
            Accepted::Notified(ids) => {
                report.accepted_notifies += 1;
                if ids.len() != subscribers(NOTIFY_EVENT).count() {
                    missing.push(format!(
                        "a notify answered {} deliveries, not one per subscribed webhook",
                        ids.len()
                    ));
                }
                for id in ids {
                    report.deliveries_owed += 1;
                    if deliveries.contains(id) {
                        report.deliveries_arrived += 1;
                    } else {
                        missing.push(format!(
                            "notify's delivery {id} (answered 200) never arrived"
                        ));
                    }
                }
            }
        }
    }
    report.problems.append(&mut missing);
}

/// At each webhook subscribed to status changes, each client's chain of changes, in event-id
/// order (the order they were written: a change reads the client after the write before it),
/// runs from NEEDS_UPDATE to the status stored; at each subscribed to creations, every stored
/// client was announced.
fn check_chains(
    statuses: &HashMap<Uuid, SyncStatus>,
    arrivals: &Arrivals,
    problems: &mut Vec<String>,
) {
    for hook in subscribers(SYNC_STATUS_CHANGED) {
        let mut changes: Vec<(&Uuid, &Value)> = arrivals
            .of(hook)
            .filter(|(_, arrival)| arrival.event == SYNC_STATUS_CHANGED)
            .map(|(id, arrival)| (id, &arrival.data))
            .collect();
        changes.sort_by_key(|(id, _)| **id);
        let mut current: HashMap<&str, &str> = HashMap::new();
        for (id, data) in changes {
            let client = data["clientId"].as_str().unwrap_or_default();
            let old = data["oldStatus"].as_str().unwrap_or_default();
            let was = current
                .entry(client)
                .or_insert(SyncStatus::NeedsUpdate.as_str());
            if *was != old {
                problems.push(format!(
                    "webhook {hook}: event {id} moves {client} from {old}, but it was {was}: \
                     a change without its event"
                ));
            }
            *was = data["newStatus"].as_str().unwrap_or_default();
        }
        for (client, status) in statuses {
            let last = current
                .get(client.to_string().as_str())
                .copied()
                .unwrap_or(SyncStatus::NeedsUpdate.as_str());
            if last != status.as_str() {
                problems.push(format!(
                    "webhook {hook}: {client} is {}, but its last event says {last}",
                    status.as_str()
                ));
            }
        }
    }
    for hook in subscribers(CLIENT_CREATED) {
        let announced: HashSet<&str> = arrivals
            .of(hook)
            .filter(|(_, arrival)| arrival.event == CLIENT_CREATED)
            .filter_map(|(_, arrival)| arrival.data["id"].as_str())
            .collect();
        for client in statuses.keys() {
            if !announced.contains(client.to_string().as_str()) {
                problems.push(format!(
                    "webhook {hook}: client {client} is stored, but its client.created never came"
                ));
            }
        }
    }
}
