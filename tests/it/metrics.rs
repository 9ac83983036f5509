//! Issue 23, item 2: the delivery metrics. A real delivery's CloudWatch Embedded Metric Format
//! lines, checked against the EMF specification's rules, on both stores; and crm-local's
//! `GET /metrics`, parsed by Prometheus's own Python client (`prometheus_client.parser`).

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use common::metrics::Metrics;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::crm_local::{http_client, LocalStore};
use crate::delivery::setup;
use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, Backend};

crate::on_both_stores!(a_deliverys_emf_lines_follow_the_specification);

/// Where the metrics write their EMF lines in the test: a buffer instead of stdout.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn documents(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each EMF line is one JSON object"))
            .collect()
    }
}

/// The EMF specification's rules for one document (CloudWatch's "Specification: Embedded metric
/// format"): a root `_aws` member with an integer `Timestamp` (epoch milliseconds) and a
/// non-empty `CloudWatchMetrics` array of directives; each directive has a `Namespace` (1 to 255
/// characters, not only blanks), `Dimensions` (an array of dimension sets, each an array of at
/// most 30 names) and `Metrics` (at most 100 definitions, each a `Name` of 1 to 1,024 characters
/// and an optional `Unit` from CloudWatch's list and `StorageResolution` of 1 or 60); every
/// dimension names a root member whose value is a string, every metric a root member whose value
/// is a number or an array of at most 100 numbers.
fn assert_emf(document: &Value) {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = document.as_object().expect("a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"].as_i64().expect("Timestamp is an integer");
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - 60_000..=now).contains(&timestamp),
        "Timestamp {timestamp} is not now"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty(), "{document}");
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert!((1..=255).contains(&namespace.chars().count()) && !namespace.trim().is_empty());
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "{document}");
            for name in set {
                let name = name.as_str().expect("a dimension is named by a string");
                assert!(
                    root[name].is_string(),
                    "dimension {name} has no string member"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(metrics.len() <= 100, "{document}");
        for metric in metrics {
            let name = metric["Name"].as_str().expect("Name");
            assert!((1..=1024).contains(&name.chars().count()));
            if let Some(unit) = metric.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap()), "unit {unit}");
            }
            if let Some(resolution) = metric.get("StorageResolution") {
                assert!([1, 60].contains(&resolution.as_i64().unwrap()));
            }
            match &root[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(!values.is_empty() && values.len() <= 100, "{document}");
                    assert!(values.iter().all(Value::is_number), "{document}");
                }
                other => panic!("metric {name} has no numeric member: {other}"),
            }
        }
    }
}

/// The documents carrying `metric`, as (document, value).
fn with_metric<'a>(documents: &'a [Value], metric: &str) -> Vec<(&'a Value, &'a Value)> {
    documents
        .iter()
        .filter_map(|document| document.get(metric).map(|value| (document, value)))
        .collect()
}

/// A test send, then a notify through the HTTP face (whose requests flush their metrics), then
/// worker invocations as the Lambda runs them (`handle_sqs_event`, which flushes its own): the
/// lines say one event accepted, one successful attempt of one, its latency and how long it
/// waited; the test send is in none of them.
async fn a_deliverys_emf_lines_follow_the_specification(backend: Backend) {
    let mut s = setup(backend).await;
    let lines = Lines::default();
    s.app.deps.metrics = Arc::new(Metrics::emf("crm-test", Box::new(lines.clone())));
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s
        .webhook(&receiver, json!({"events": ["lead.created"]}))
        .await;
    // A user's test send is not traffic: it writes no delivery figures.
    let (status, body) = s
        .app
        .post(&format!("/api/webhooks/{webhook}/test"), &s.key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(receiver.seen().len(), 1);
    let (status, body) = s
        .app
        .post(
            "/api/webhooks/notify",
            &s.key,
            &json!({"event": "lead.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let documents = lines.documents();
    let accepted = with_metric(&documents, "EventsAccepted");
    assert_eq!(accepted.len(), 1, "the notify's request wrote its line");
    assert_eq!(accepted[0].1, &json!(1));

    let deps = &s.app.deps;
    eventually(
        Duration::from_secs(30),
        "the delivery to be made",
        || async {
            let received = deps
                .queue
                .receive(10, Duration::from_millis(500))
                .await
                .unwrap();
            let mut event = SqsEvent::default();
            for message in &received {
                let record = crate::support::sqs_record(&message.message_id, message.body.clone());
                event.records.push(record);
            }
            common::lambda::handle_sqs_event(deps, event, None).await;
            for message in received {
                deps.queue.delete(&message.receipt).await.unwrap();
            }
            (receiver.seen().len() == 2).then_some(())
        },
    )
    .await;

    let documents = lines.documents();
    for document in &documents {
        assert_emf(document);
        assert_eq!(document["Stack"], "crm-test", "{document}");
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            common::metrics::NAMESPACE
        );
    }
    let deliveries = with_metric(&documents, "Deliveries");
    assert_eq!(deliveries.len(), 1, "{documents:?}");
    let (document, count) = deliveries[0];
    assert_eq!(
        (document["Outcome"].as_str(), count),
        (Some("success"), &json!(1))
    );
    assert_eq!(
        document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Stack", "Outcome"]])
    );
    let latency = with_metric(&documents, "AttemptLatency");
    assert_eq!(latency.len(), 1);
    let took = latency[0].1.as_array().unwrap();
    assert_eq!(took.len(), 1);
    assert!(
        (0.0..30_000.0).contains(&took[0].as_f64().unwrap()),
        "{took:?}"
    );
    assert_eq!(
        with_metric(&documents, "AttemptsPerDelivery")[0].1,
        &json!([1.0])
    );
    assert_eq!(
        with_metric(&documents, "QueueAge")[0]
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The Python that reads the text with `prometheus_client.parser` and prints each family's
/// type and samples as JSON; any text the parser refuses is an error.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(families))
"#;

fn prometheus_parse(text: &str) -> Value {
    let python = crate::infra::repo_root().join("target/py/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh (it installs prometheus-client there)",
        python.display()
    );
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sample(families: &Value, family: &str, name: &str, labels: Value) -> f64 {
    families[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}: {families}"))
        .iter()
        .find(|s| s[0] == name && s[1] == labels)
        .unwrap_or_else(|| panic!("no sample {name} {labels} in {family}"))[2]
        .as_f64()
        .unwrap()
}

/// crm-local counts what it does and serves it at `GET /metrics` without a key; the text is
/// Prometheus's format, as its own parser reads it.
#[tokio::test]
async fn crm_local_serves_its_metrics_in_prometheus_format() {
    let store = LocalStore::sqlite();
    let key = format!("crm_metrics_{}", uuid::Uuid::new_v4().simple());
    let local = store.start(&[("CRM_DEV_API_KEY", &key)]).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (status, created) = local
        .post(
            "/api/webhooks",
            &key,
            &json!({"url": receiver.url, "events": ["lead.created"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    for n in 0..3 {
        let (status, body) = local
            .post(
                "/api/webhooks/notify",
                &key,
                &json!({"event": "lead.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    eventually(Duration::from_secs(30), "three deliveries", || async {
        (receiver.seen().len() == 3).then_some(())
    })
    .await;

    let metrics = eventually(
        Duration::from_secs(10),
        "the third attempt counted",
        || async {
            let response = http_client()
                .get(format!("{}/metrics", local.base))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                content_type.starts_with("text/plain; version=0.0.4"),
                "{content_type}"
            );
            let text = response.text().await.unwrap();
            text.contains("crm_deliveries_total{outcome=\"success\"} 3")
                .then_some(text)
        },
    )
    .await;
    let families = prometheus_parse(&metrics);
    assert_eq!(families["crm_deliveries"]["type"], "counter");
    assert_eq!(
        sample(
            &families,
            "crm_deliveries",
            "crm_deliveries_total",
            json!({"outcome": "success"})
        ),
        3.0
    );
    assert_eq!(
        sample(
            &families,
            "crm_events_accepted",
            "crm_events_accepted_total",
            json!({})
        ),
        3.0
    );
    assert_eq!(families["crm_attempt_latency_seconds"]["type"], "histogram");
    assert_eq!(
        sample(
            &families,
            "crm_attempt_latency_seconds",
            "crm_attempt_latency_seconds_count",
            json!({})
        ),
        3.0
    );
    assert_eq!(
        sample(
            &families,
            "crm_attempts_per_delivery",
            "crm_attempts_per_delivery_bucket",
            json!({"le": "1.0"})
        ),
        3.0
    );
    for family in [
        "crm_queue_age_seconds",
        "crm_sweeper_deliveries_recovered",
        "crm_sweeper_events_recovered",
        "crm_webhooks_disabled",
    ] {
        assert!(families[family].is_object(), "{family} missing: {families}");
    }
    // Only GET (and HEAD).
    let (status, body) = local.post("/metrics", &key, &json!({})).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["success"], false);
}
