//! crm-local's edges over its real socket: slow and idle connections are closed, and every
//! refusal the server can still answer carries the envelope and an `x-request-id`. What hyper
//! answers on its own (a head it cannot parse or hold) is pinned here too, as the documented
//! exception (docs/architecture.md §Limits).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, MAX_HEAD_BYTES, MAX_URI_BYTES};
use serde_json::{json, Value};

use crate::crm_local::{http_client, CrmLocal, LocalStore};

const KEY: &str = "edges-test-key";

/// A crm-local over a new SQLite store (kept alive beside it) with `KEY` as its dev key.
async fn start() -> (LocalStore, CrmLocal) {
    let store = LocalStore::sqlite();
    let running = store.start(&[("CRM_DEV_API_KEY", KEY)]).await;
    (store, running)
}

fn address(running: &CrmLocal) -> String {
    running.base.trim_start_matches("http://").to_owned()
}

/// Asserts the envelope and a non-empty `x-request-id`; returns the body.
async fn assert_refused(response: reqwest::Response, expected: u16) -> Value {
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{text}");
    assert!(
        request_id.is_some_and(|id| !id.is_empty()),
        "{expected} without x-request-id: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{expected} without the envelope: {text:?}"));
    assert_eq!(body["success"], false, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    body
}

#[tokio::test]
async fn refusals_carry_the_envelope_and_a_request_id() {
    let (_store, running) = start().await;
    let client = http_client();
    let url = |path: &str| format!("{}{path}", running.base);

    let huge = json!({"name": "x".repeat(300 * 1024)}).to_string();
    let response = client
        .post(url("/api/clients"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_refused(response, 413).await;

    let long = format!("/api/crm/sync-status?x={}", "a".repeat(MAX_URI_BYTES));
    let response = client
        .get(url(&long))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_refused(response, 414).await;

    let response = client
        .get(url("/api/crm/sync-status"))
        .bearer_auth(KEY)
        .header("x-big", "a".repeat(MAX_HEAD_BYTES))
        .send()
        .await
        .unwrap();
    assert_refused(response, 431).await;

    // What `curl -d` sends without `-H 'Content-Type: application/json'`.
    let response = client
        .post(url("/api/clients"))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_refused(response, 415).await;

    let response = client
        .post(url("/api/clients"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(r#"{"name":"Ada","name":"Grace"}"#)
        .send()
        .await
        .unwrap();
    let body = assert_refused(response, 400).await;
    assert_eq!(body["details"]["name"], "appears twice");

    let response = client
        .post(url("/api/clients"))
        .bearer_auth(KEY)
        .json(&json!({"name": "\u{200b}\u{2060}\u{feff}"}))
        .send()
        .await
        .unwrap();
    let body = assert_refused(response, 400).await;
    assert_eq!(body["details"]["name"], "must have a visible character");

    let response = client
        .get(url("/api/nothing"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_refused(response, 404).await;

    // Just under the limits, the same calls are served.
    let target = format!("/api/crm/sync-status?x={}", "a".repeat(MAX_URI_BYTES / 2));
    let response = client
        .get(url(&target))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, counts) = running.get("/api/crm/sync-status", KEY).await;
    assert_eq!((status, &counts["totalClients"]), (200, &json!(0)));
}

/// Writes `request` on a new connection and reads until the server closes it (or 20 s pass).
fn exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer and close before it has read everything.
    stream.write_all(request).ok();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status and body of a raw HTTP/1.1 answer.
fn status_and_body(answer: &str) -> (u16, &str) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body)
}

/// The documented exception: a head hyper cannot parse, or cannot hold in its read buffer
/// (64 KiB, give or take its last read), or with more than 100 fields, is answered by hyper
/// itself, before any code of ours runs: the right status, no body.
#[tokio::test]
async fn heads_hyper_refuses_itself_get_a_bare_status() {
    let (_store, running) = start().await;
    let address = address(&running);
    let cases = [
        (
            format!(
                "GET /api/crm/sync-status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(256 * 1024)
            ),
            431,
        ),
        (
            format!(
                "GET /api/crm/sync-status HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..101)
                    .map(|i| format!("X-{i}: 1\r\n"))
                    .collect::<String>()
            ),
            431,
        ),
        (
            "GET /api/crm/sync-status HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n".to_owned(),
            400,
        ),
    ];
    for (request, expected) in cases {
        let address = address.clone();
        let answer = tokio::task::spawn_blocking(move || exchange(&address, request.as_bytes()))
            .await
            .unwrap();
        let (status, body) = status_and_body(&answer);
        assert_eq!((status, body), (expected, ""), "{answer:?}");
    }
}

/// How long after `started` the server closed a connection, and what it wrote before.
struct Closed {
    after: Duration,
    answer: String,
}

/// Connects, writes `head`, then one byte of `trickle` every 500 ms until the server closes
/// the connection (or 30 s pass).
fn trickle(address: &str, head: &str, trickle: &[u8]) -> Closed {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut next = trickle.iter().cycle();
    while started.elapsed() < Duration::from_secs(30) {
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        if let Some(byte) = next.next() {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
        }
    }
    Closed {
        after: started.elapsed(),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

/// Connects, makes one call, reads its answer and keeps the connection idle until the server
/// closes it; returns how long after the answer that was.
fn idle_after_one_call(address: &str) -> Duration {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "GET /api/crm/sync-status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).unwrap();
    assert!(
        String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"),
        "the call is answered"
    );
    let answered = Instant::now();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).ok();
    answered.elapsed()
}

/// The finding was 500 connections trickling headers, held 75 s. Now a connection that has
/// not sent a whole head within `HEADER_READ_TIMEOUT` is closed (hyper writes nothing then),
/// an idle keep-alive connection is closed as long after its last answer, and a body still
/// arriving after `BODY_READ_TIMEOUT` gets a 408 with the envelope.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_read_timeouts() {
    let (_store, running) = start().await;
    let address = address(&running);
    let slow_heads: Vec<_> = (0..50)
        .map(|_| {
            let address = address.clone();
            tokio::task::spawn_blocking(move || {
                trickle(
                    &address,
                    "GET /api/crm/sync-status HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                    b"a",
                )
            })
        })
        .collect();
    let idle = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || idle_after_one_call(&address))
    };
    let slow_body = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || {
            let head = format!(
                "POST /api/clients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            );
            trickle(&address, &head, b" ")
        })
    };

    let (soon, late) = (Duration::from_millis(500), Duration::from_secs(4));
    for slow in slow_heads {
        let closed = slow.await.unwrap();
        assert!(
            closed.after + soon >= HEADER_READ_TIMEOUT
                && closed.after <= HEADER_READ_TIMEOUT + late,
            "a trickled head was closed after {:?}",
            closed.after
        );
        assert_eq!(closed.answer, "", "hyper closes without an answer");
    }
    let idle = idle.await.unwrap();
    assert!(
        idle + soon >= HEADER_READ_TIMEOUT && idle <= HEADER_READ_TIMEOUT + late,
        "an idle connection was closed after {idle:?}"
    );
    let closed = slow_body.await.unwrap();
    assert!(
        closed.after + soon >= BODY_READ_TIMEOUT && closed.after <= BODY_READ_TIMEOUT + late,
        "a trickled body was refused after {:?}",
        closed.after
    );
    let (status, body) = status_and_body(&closed.answer);
    assert_eq!(status, 408, "{}", closed.answer);
    let lower = closed.answer.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-request-id: "), "{}", closed.answer);
    assert!(lower.contains("\r\nconnection: close"), "{}", closed.answer);
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["success"], false);

    // The server still serves.
    let (status, _) = running.get("/api/crm/sync-status", KEY).await;
    assert_eq!(status, 200);
}
