//! The benchmark's receiver: verifies every `X-Webhook-Signature` with its own HMAC code and
//! records when each sequence number arrived.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Tally {
    /// First arrival of each sequence number.
    pub arrivals: HashMap<u64, Instant>,
    pub duplicates: usize,
    pub bad_signatures: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub tally: Arc<Mutex<Tally>>,
    /// `None`: unsigned traffic (the raw ceiling), nothing to verify.
    secret: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let receiver = Receiver {
            url,
            tally: Arc::default(),
            secret: Arc::default(),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let shared = shared.clone();
                            async move {
                                let signature = request
                                    .headers()
                                    .get("x-webhook-signature")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned);
                                let body =
                                    request.into_body().collect().await.map(|b| b.to_bytes());
                                if let Ok(body) = body {
                                    shared.record(&body, signature.as_deref());
                                }
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
        Ok(receiver)
    }

    pub fn set_secret(&self, secret: &str) {
        *self.secret.lock().expect("secret lock") = Some(secret.to_owned());
    }

    /// Takes plain unsigned POSTs from now on, verifying nothing.
    pub fn accept_unsigned(&self) {
        *self.secret.lock().expect("secret lock") = None;
    }

    fn record(&self, body: &[u8], signature: Option<&str>) {
        let at = Instant::now();
        let secret = self.secret.lock().expect("secret lock").clone();
        let valid = secret.is_none_or(|secret| {
            signature
                .and_then(|s| hex::decode(s).ok())
                .is_some_and(|expected| {
                    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).is_ok_and(|mut mac| {
                        mac.update(body);
                        mac.verify_slice(&expected).is_ok()
                    })
                })
        });
        let seq = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|payload| payload["data"]["seq"].as_u64());
        let mut tally = self.tally.lock().expect("tally lock");
        if !valid {
            tally.bad_signatures += 1;
        }
        if let Some(seq) = seq {
            if tally.arrivals.insert(seq, at).is_some() {
                tally.duplicates += 1;
            }
        }
    }

    pub fn reset(&self) {
        *self.tally.lock().expect("tally lock") = Tally::default();
    }
}
