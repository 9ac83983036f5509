//! A real webhook receiver on 127.0.0.1 that checks both signatures with its own code (the
//! `hmac`/`sha2`/`base64` crates, as a user's receiver would), never the service's.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
    /// `308 Permanent Redirect` to this location.
    Redirect(String),
    /// 200 with a 50 MB body, streamed.
    Huge,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// `X-Webhook-Signature` matched the hex HMAC of the body under one of the known secrets.
    pub seed_signature_ok: bool,
    /// `webhook-signature` had a valid `v1,` entry for every known secret.
    pub standard_signature_ok: bool,
    /// What the receiver answered.
    pub answered: Reply,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// What a seed-era receiver holding only `secret` checks: `X-Webhook-Signature` is the
    /// hex HMAC-SHA256 of the body under it.
    pub fn seed_signature_verifies_with(&self, secret: &str) -> bool {
        seed_ok(secret, &self.body, self.headers.get("x-webhook-signature"))
    }
}

struct State {
    script: VecDeque<Reply>,
    otherwise: Reply,
    secrets: Vec<String>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn seed_ok(secret: &str, body: &[u8], header: Option<&String>) -> bool {
    let Some(header) = header else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::decode(header).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

fn standard_ok(secret: &str, headers: &HashMap<String, String>, body: &[u8]) -> bool {
    let (Some(id), Some(ts), Some(sigs)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| engine.decode(k).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    sigs.split(' ').any(|entry| entry == expected)
}

impl Receiver {
    /// Starts a receiver that answers `otherwise` to every request.
    pub async fn start(otherwise: Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            otherwise,
            secrets: Vec::new(),
            seen: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .ok();
                });
            }
        });
        Receiver { url, state }
    }

    /// Answers these replies first, in order, then `otherwise`.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// From now on answers `reply` once the scripted replies are used up.
    pub fn answer_from_now(&self, reply: Reply) {
        self.state.lock().unwrap().otherwise = reply;
    }

    /// The secrets a delivery must be signed with (all of them, during a rotation).
    pub fn expect_secrets(&self, secrets: &[&str]) {
        self.state.lock().unwrap().secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

type Reply_ = hyper::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

async fn answer(state: &Mutex<State>, request: hyper::Request<Incoming>) -> Reply_ {
    let headers: HashMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let reply = {
        let mut state = state.lock().unwrap();
        let secrets = state.secrets.clone();
        let otherwise = state.otherwise.clone();
        let reply = state.script.pop_front().unwrap_or(otherwise);
        let seen = Seen {
            seed_signature_ok: secrets
                .iter()
                .any(|s| seed_ok(s, &body, headers.get("x-webhook-signature"))),
            standard_signature_ok: !secrets.is_empty()
                && secrets.iter().all(|s| standard_ok(s, &headers, &body)),
            headers,
            body,
            at: Instant::now(),
            answered: reply.clone(),
        };
        state.seen.push(seen);
        reply
    };
    let full = |status: u16, text: &'static str| {
        hyper::Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(text.as_bytes())).boxed())
            .unwrap()
    };
    match reply {
        Reply::Status(status) => full(status, "thanks"),
        Reply::Redirect(location) => hyper::Response::builder()
            .status(308)
            .header("location", location)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            full(200, "too late")
        }
        Reply::Huge => {
            let chunk = Bytes::from(vec![b'x'; 1 << 20]);
            let frames = futures::stream::iter(
                (0..50).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
            );
            hyper::Response::builder()
                .status(200)
                .body(StreamBody::new(frames).boxed())
                .unwrap()
        }
    }
}
