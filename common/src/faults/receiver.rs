//! The soak's webhook receiver on 127.0.0.1: answers every POST 200 at once and records, per
//! webhook (the path's last segment), each event it got and how many times.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// One event as a webhook received it, however many times.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub event: String,
    pub data: Value,
    pub delivery_id: Option<Uuid>,
    pub times: u32,
}

#[derive(Debug, Default)]
pub struct Arrivals {
    /// Requests answered.
    pub requests: u64,
    /// Requests whose body or `webhook-id` could not be read.
    pub unreadable: u64,
    /// Per webhook number, per event id (`webhook-id`).
    pub by_hook: HashMap<usize, HashMap<Uuid, Arrival>>,
}

impl Arrivals {
    /// Requests beyond the first of each event at each webhook.
    pub fn duplicates(&self) -> u64 {
        self.by_hook
            .values()
            .flat_map(HashMap::values)
            .map(|arrival| u64::from(arrival.times.saturating_sub(1)))
            .sum()
    }

    pub fn of(&self, hook: usize) -> impl Iterator<Item = (&Uuid, &Arrival)> {
        self.by_hook.get(&hook).into_iter().flatten()
    }

    pub fn got(&self, hook: usize, event_id: Uuid) -> bool {
        self.by_hook
            .get(&hook)
            .is_some_and(|events| events.contains_key(&event_id))
    }
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook/`: a webhook's URL is this and its number.
    pub base_url: String,
    arrivals: Arc<Mutex<Arrivals>>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/hook/", listener.local_addr()?);
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let shared = Arc::clone(&arrivals);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let shared = Arc::clone(&shared);
                        async move {
                            record(&shared, request).await;
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .ok();
                });
            }
        });
        Ok(Receiver {
            base_url,
            arrivals,
            server,
        })
    }

    pub fn url(&self, hook: usize) -> String {
        format!("{}{hook}", self.base_url)
    }

    /// What arrived so far; the record starts again empty.
    pub fn take_arrivals(&self) -> Arrivals {
        std::mem::take(&mut *lock(&self.arrivals))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(arrivals: &Mutex<Arrivals>) -> MutexGuard<'_, Arrivals> {
    arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn record(arrivals: &Mutex<Arrivals>, request: hyper::Request<Incoming>) {
    let hook = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .and_then(|n| n.parse::<usize>().ok());
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Uuid>().ok())
    };
    let event_id = header("webhook-id");
    let delivery_id = header("x-webhook-delivery");
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    let payload = body
        .ok()
        .and_then(|body| serde_json::from_slice::<Value>(&body).ok());
    let mut arrivals = lock(arrivals);
    arrivals.requests += 1;
    let (Some(hook), Some(event_id), Some(payload)) = (hook, event_id, payload) else {
        arrivals.unreadable += 1;
        return;
    };
    arrivals
        .by_hook
        .entry(hook)
        .or_default()
        .entry(event_id)
        .or_insert_with(|| Arrival {
            event: payload["event"].as_str().unwrap_or_default().to_owned(),
            data: payload["data"].clone(),
            delivery_id,
            times: 0,
        })
        .times += 1;
}
