//! Delivery metrics: what the worker, notify, fan-out and the sweeper count and time, kept in
//! one place and written two ways. On a Lambda, CloudWatch Embedded Metric Format: the figures of
//! one invocation as log lines when it ends (`flush`), which CloudWatch turns into metrics with no
//! API call and nothing at cold start. In crm-local, running totals served in Prometheus text
//! format at `GET /metrics` (`prometheus_text`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "CrmWebhooks";
/// The EMF dimension of every metric: the stack's name (`CRM_STACK`, which the template sets),
/// so that a metric sums over the functions that emit it and two stacks never mix.
pub const STACK_DIMENSION: &str = "Stack";
/// The EMF dimension of `Deliveries`: how an attempt, or a delivery without one, ended.
pub const OUTCOME_DIMENSION: &str = "Outcome";
/// EMF takes at most 100 values of one metric in one line.
const EMF_VALUES_MAX: usize = 100;

/// How an attempt ended, or a delivery that needed none (cancelled: its webhook is gone or
/// inactive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Success,
    /// The attempt failed; another is scheduled.
    Retry,
    /// The attempt failed and was the last: the delivery is FAILED.
    Failed,
    /// The delivery ended without an attempt.
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Retry,
        Outcome::Failed,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// A count of things that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Count {
    /// Events written to the outbox: notify's, a client write's, the service's own.
    EventsAccepted,
    /// Deliveries the sweeper found stranded and queued again.
    DeliveriesRecovered,
    /// Outbox events the sweeper found not fanned out and fanned out.
    EventsRecovered,
    /// Webhooks the worker disabled (endpoint gone, or failing too long).
    WebhooksDisabled,
}

impl Count {
    pub const ALL: [Count; 4] = [
        Count::EventsAccepted,
        Count::DeliveriesRecovered,
        Count::EventsRecovered,
        Count::WebhooksDisabled,
    ];

    fn emf_name(self) -> &'static str {
        match self {
            Count::EventsAccepted => "EventsAccepted",
            Count::DeliveriesRecovered => "DeliveriesRecovered",
            Count::EventsRecovered => "EventsRecovered",
            Count::WebhooksDisabled => "WebhooksDisabled",
        }
    }

    fn prometheus(self) -> (&'static str, &'static str) {
        match self {
            Count::EventsAccepted => ("crm_events_accepted_total", "Events written to the outbox."),
            Count::DeliveriesRecovered => (
                "crm_sweeper_deliveries_recovered_total",
                "Stranded deliveries the sweeper queued again.",
            ),
            Count::EventsRecovered => (
                "crm_sweeper_events_recovered_total",
                "Outbox events the sweeper fanned out.",
            ),
            Count::WebhooksDisabled => (
                "crm_webhooks_disabled_total",
                "Webhooks disabled for a failing or gone endpoint.",
            ),
        }
    }
}

/// A measured value, of which CloudWatch keeps the distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// From sending an attempt to its answer (or its failure), in milliseconds.
    AttemptLatency,
    /// The attempts a delivery took, when it ends (SUCCESS or FAILED).
    AttemptsPerDelivery,
    /// How late an attempt starts: from the delivery being due (created, or its retry time) to
    /// its claim by a worker, in milliseconds.
    QueueAge,
}

impl Figure {
    pub const ALL: [Figure; 3] = [
        Figure::AttemptLatency,
        Figure::AttemptsPerDelivery,
        Figure::QueueAge,
    ];

    fn emf_name(self) -> &'static str {
        match self {
            Figure::AttemptLatency => "AttemptLatency",
            Figure::AttemptsPerDelivery => "AttemptsPerDelivery",
            Figure::QueueAge => "QueueAge",
        }
    }

    fn emf_unit(self) -> &'static str {
        match self {
            Figure::AttemptLatency | Figure::QueueAge => "Milliseconds",
            Figure::AttemptsPerDelivery => "Count",
        }
    }

    /// The Prometheus histogram: name, help, bucket bounds (in its own unit: seconds for a
    /// time, as Prometheus's conventions want) and the factor from the recorded value.
    fn prometheus(self) -> (&'static str, &'static str, &'static [f64], f64) {
        const SECONDS: &[f64] = &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            900.0, 3600.0,
        ];
        const ATTEMPTS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0];
        match self {
            Figure::AttemptLatency => (
                "crm_attempt_latency_seconds",
                "From sending an attempt to its answer.",
                SECONDS,
                0.001,
            ),
            Figure::AttemptsPerDelivery => (
                "crm_attempts_per_delivery",
                "Attempts a delivery took, when it ended.",
                ATTEMPTS,
                1.0,
            ),
            Figure::QueueAge => (
                "crm_queue_age_seconds",
                "From a delivery being due to its claim by a worker.",
                SECONDS,
                0.001,
            ),
        }
    }
}

/// Running totals, for Prometheus.
#[derive(Debug, Default)]
struct Totals {
    deliveries: BTreeMap<Outcome, u64>,
    counts: BTreeMap<Count, u64>,
    histograms: BTreeMap<Figure, Histogram>,
}

#[derive(Debug)]
struct Histogram {
    /// Observations at or below each bound (cumulative, as Prometheus writes them).
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// What happened since the last EMF flush.
#[derive(Debug, Default)]
struct Pending {
    deliveries: BTreeMap<Outcome, u64>,
    counts: BTreeMap<Count, u64>,
    values: BTreeMap<Figure, Vec<f64>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.counts.is_empty() && self.values.is_empty()
    }
}

/// Where EMF lines go: stdout on a Lambda (its log stream), a buffer in a test.
struct Emf {
    stack: String,
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct State {
    totals: Totals,
    pending: Pending,
}

/// The process's metrics (`Deps::metrics`).
pub struct Metrics {
    emf: Option<Emf>,
    enabled: bool,
    state: Mutex<State>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::totals()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("emf", &self.emf.as_ref().map(|emf| &emf.stack))
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Metrics {
    /// Running totals only (crm-local's `GET /metrics`, the tests, crm-admin).
    pub fn totals() -> Metrics {
        Metrics {
            emf: None,
            enabled: true,
            state: Mutex::default(),
        }
    }

    /// Nothing recorded (`CRM_METRICS=off`: the bench's reference run).
    pub fn off() -> Metrics {
        Metrics {
            enabled: false,
            ..Metrics::totals()
        }
    }

    /// Totals, and EMF lines to `out` at each `flush`, with `stack` as their dimension.
    pub fn emf(stack: impl Into<String>, out: Box<dyn Write + Send>) -> Metrics {
        Metrics {
            emf: Some(Emf {
                stack: stack.into(),
                out: Mutex::new(out),
            }),
            ..Metrics::totals()
        }
    }

    /// On a Lambda (`AWS_LAMBDA_FUNCTION_NAME` set): EMF to stdout, under `CRM_STACK` (default
    /// `crm-webhooks`); elsewhere totals. `CRM_METRICS=off` records nothing, `CRM_METRICS=emf`
    /// writes EMF off a Lambda too (the bench measures what the lines cost with both).
    pub fn from_env() -> Metrics {
        let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        let mode = var("CRM_METRICS");
        if mode.as_deref() == Some("off") {
            return Metrics::off();
        }
        if var("AWS_LAMBDA_FUNCTION_NAME").is_none() && mode.as_deref() != Some("emf") {
            return Metrics::totals();
        }
        let stack = var("CRM_STACK").unwrap_or_else(|| "crm-webhooks".to_owned());
        Metrics::emf(stack, Box::new(std::io::stdout()))
    }

    fn with_state(&self, change: impl FnOnce(&mut State, bool)) {
        if self.enabled {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            change(&mut state, self.emf.is_some());
        }
    }

    /// One attempt ended so, or a delivery without one (`Cancelled`).
    pub fn delivery(&self, outcome: Outcome) {
        self.with_state(|state, emf| {
            *state.totals.deliveries.entry(outcome).or_default() += 1;
            if emf {
                *state.pending.deliveries.entry(outcome).or_default() += 1;
            }
        });
    }

    pub fn count(&self, count: Count, n: u64) {
        if n == 0 {
            return;
        }
        self.with_state(|state, emf| {
            *state.totals.counts.entry(count).or_default() += n;
            if emf {
                *state.pending.counts.entry(count).or_default() += n;
            }
        });
    }

    pub fn attempt_latency(&self, took: Duration) {
        self.observe(Figure::AttemptLatency, millis(took));
    }

    pub fn queue_age(&self, age: Duration) {
        self.observe(Figure::QueueAge, millis(age));
    }

    pub fn attempts_per_delivery(&self, attempts: u32) {
        self.observe(Figure::AttemptsPerDelivery, f64::from(attempts));
    }

    fn observe(&self, figure: Figure, value: f64) {
        self.with_state(|state, emf| {
            let (_, _, bounds, factor) = figure.prometheus();
            let histogram = state
                .totals
                .histograms
                .entry(figure)
                .or_insert_with(|| Histogram {
                    buckets: vec![0; bounds.len()],
                    sum: 0.0,
                    count: 0,
                });
            let scaled = value * factor;
            for (bucket, bound) in histogram.buckets.iter_mut().zip(bounds) {
                if scaled <= *bound {
                    *bucket += 1;
                }
            }
            histogram.sum += scaled;
            histogram.count += 1;
            if emf {
                state.pending.values.entry(figure).or_default().push(value);
            }
        });
    }

    /// Writes what happened since the last flush as EMF lines (nothing when nothing happened,
    /// or when this process writes no EMF): one line of the figures and counts,
    /// and one per outcome of `Deliveries`. A failed write is dropped: metrics never fail
    /// the work they measure.
    pub fn flush(&self) {
        let Some(emf) = &self.emf else {
            return;
        };
        let pending = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut state.pending)
        };
        if pending.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = emf.out.lock().unwrap_or_else(PoisonError::into_inner);
        for line in emf_lines(&emf.stack, &pending, now) {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// The running totals in Prometheus's text exposition format (version 0.0.4).
    pub fn prometheus_text(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = &state.totals;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP crm_deliveries_total Attempts by outcome, and deliveries cancelled without one.\n\
             # TYPE crm_deliveries_total counter"
        );
        for outcome in Outcome::ALL {
            let n = totals.deliveries.get(&outcome).copied().unwrap_or(0);
            let _ = writeln!(
                text,
                "crm_deliveries_total{{outcome=\"{}\"}} {n}",
                outcome.as_str()
            );
        }
        for count in Count::ALL {
            let (name, help) = count.prometheus();
            let n = totals.counts.get(&count).copied().unwrap_or(0);
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
            );
        }
        for figure in Figure::ALL {
            let (name, help, bounds, _) = figure.prometheus();
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} histogram");
            let (buckets, sum, count) = match totals.histograms.get(&figure) {
                Some(h) => (h.buckets.clone(), h.sum, h.count),
                None => (vec![0; bounds.len()], 0.0, 0),
            };
            for (bound, n) in bounds.iter().zip(buckets) {
                // `{:?}` writes a float as Prometheus's clients do: 1.0, 0.005.
                let _ = writeln!(text, "{name}_bucket{{le=\"{bound:?}\"}} {n}");
            }
            let _ = writeln!(
                text,
                "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
            );
        }
        text
    }
}

/// Every metric this module writes as EMF, with the names of its dimensions: what the
/// template's alarms and dashboard may name (tests/it/infra.rs checks them against it).
pub fn emitted() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut metrics = vec![("Deliveries", vec![STACK_DIMENSION, OUTCOME_DIMENSION])];
    metrics.extend(Figure::ALL.map(|figure| (figure.emf_name(), vec![STACK_DIMENSION])));
    metrics.extend(Count::ALL.map(|count| (count.emf_name(), vec![STACK_DIMENSION])));
    metrics
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The EMF lines of `pending`: the figures (up to 100 values each a line) and counts,
/// then `Deliveries` per outcome, each line a complete EMF document.
fn emf_lines(stack: &str, pending: &Pending, timestamp: i64) -> Vec<String> {
    let mut lines = Vec::new();
    let rounds = pending
        .values
        .values()
        .map(|values| values.len().div_ceil(EMF_VALUES_MAX))
        .max()
        .unwrap_or(0)
        .max(usize::from(!pending.counts.is_empty()));
    for round in 0..rounds {
        let mut members = Map::new();
        let mut definitions = Vec::new();
        for (figure, values) in &pending.values {
            let part: Vec<f64> = values
                .iter()
                .skip(round * EMF_VALUES_MAX)
                .take(EMF_VALUES_MAX)
                .copied()
                .collect();
            if part.is_empty() {
                continue;
            }
            definitions.push(json!({"Name": figure.emf_name(), "Unit": figure.emf_unit()}));
            members.insert(figure.emf_name().to_owned(), json!(part));
        }
        if round == 0 {
            for (count, n) in &pending.counts {
                definitions.push(json!({"Name": count.emf_name(), "Unit": "Count"}));
                members.insert(count.emf_name().to_owned(), json!(n));
            }
        }
        lines.push(emf_document(
            stack,
            &[STACK_DIMENSION],
            definitions,
            members,
            timestamp,
        ));
    }
    for (outcome, n) in &pending.deliveries {
        let mut members = Map::new();
        members.insert(OUTCOME_DIMENSION.to_owned(), json!(outcome.as_str()));
        members.insert("Deliveries".to_owned(), json!(n));
        lines.push(emf_document(
            stack,
            &[STACK_DIMENSION, OUTCOME_DIMENSION],
            vec![json!({"Name": "Deliveries", "Unit": "Count"})],
            members,
            timestamp,
        ));
    }
    lines
}

fn emf_document(
    stack: &str,
    dimensions: &[&str],
    definitions: Vec<Value>,
    mut members: Map<String, Value>,
    timestamp: i64,
) -> String {
    members.insert(STACK_DIMENSION.to_owned(), json!(stack));
    members.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(members).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A buffer the metrics write to and the test reads.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        String::from_utf8(buffer.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_flush_writes_what_happened_since_the_last_and_then_nothing() {
        let buffer = Buffer::default();
        let metrics = Metrics::emf("crm-worker", Box::new(buffer.clone()));
        metrics.delivery(Outcome::Success);
        metrics.delivery(Outcome::Success);
        metrics.delivery(Outcome::Retry);
        metrics.attempt_latency(Duration::from_millis(12));
        metrics.count(Count::EventsAccepted, 3);
        metrics.flush();
        let written = lines(&buffer);
        assert_eq!(written.len(), 3, "{written:?}");
        assert_eq!(written[0]["AttemptLatency"], json!([12.0]));
        assert_eq!(written[0]["EventsAccepted"], json!(3));
        assert_eq!(written[0]["Stack"], "crm-worker");
        assert_eq!(written[1]["Outcome"], "success");
        assert_eq!(written[1]["Deliveries"], json!(2));
        assert_eq!(written[2]["Outcome"], "retry");
        metrics.flush();
        assert_eq!(lines(&buffer).len(), 3, "an empty flush writes nothing");
    }

    #[test]
    fn more_than_a_hundred_values_take_more_lines() {
        let buffer = Buffer::default();
        let metrics = Metrics::emf("f", Box::new(buffer.clone()));
        for ms in 0..250 {
            metrics.queue_age(Duration::from_millis(ms));
        }
        metrics.flush();
        let written = lines(&buffer);
        let sizes: Vec<usize> = written
            .iter()
            .map(|line| line["QueueAge"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn prometheus_totals_keep_counting_across_flushes() {
        let metrics = Metrics::emf("f", Box::new(Buffer::default()));
        metrics.delivery(Outcome::Failed);
        metrics.attempts_per_delivery(3);
        metrics.flush();
        metrics.delivery(Outcome::Failed);
        let text = metrics.prometheus_text();
        assert!(
            text.contains("crm_deliveries_total{outcome=\"failed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("crm_attempts_per_delivery_bucket{le=\"2.0\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("crm_attempts_per_delivery_bucket{le=\"3.0\"} 1"),
            "{text}"
        );
        assert!(text.contains("crm_attempts_per_delivery_count 1"), "{text}");
    }

    #[test]
    fn off_records_nothing() {
        let metrics = Metrics::off();
        metrics.delivery(Outcome::Success);
        assert!(metrics
            .prometheus_text()
            .contains("crm_deliveries_total{outcome=\"success\"} 0"));
    }
}
