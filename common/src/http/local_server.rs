//! `crm-local`'s HTTP front: turns hyper requests into the same `lambda_http` requests API
//! Gateway would deliver and calls the same `handle`, so one code path serves both.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::{Body, Request, Response};
use tokio::net::TcpListener;
use uuid::Uuid;

use super::error::HttpError;
use super::routes::Route;
use super::{
    handle, refuse, RequestId, BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, MAX_BODY_BYTES,
    MAX_HEAD_BYTES, MAX_URI_BYTES,
};
use crate::error::Error;
use crate::service::deps::Deps;

/// hyper's read buffer, and so the largest head hyper parses. Above our own limits
/// (`MAX_URI_BYTES`, `MAX_HEAD_BYTES`), so that a head between them and this is answered by
/// `answer`, with the envelope and a request id; only a larger one gets hyper's own bare 431.
/// Smaller than hyper's default (about 400 KiB): a slow client holds less memory.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` completes, then lets open requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    deps: Deps,
    routes: Vec<Route>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state = Arc::new((deps, routes));
    let graceful = GracefulShutdown::new();
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(READ_BUFFER_BYTES);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    let local = peer.ip().is_loopback();
                    async move {
                        Ok::<_, Infallible>(answer(&state.0, &state.1, request, local).await)
                    }
                });
                let connection = http1.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 10 s");
    }
    Ok(())
}

/// Refuses what hyper let through but API Gateway would not (a long target, a large head),
/// reads the body within its limits, and hands the request to `handle`. Every answer carries
/// the envelope and an `x-request-id`, made here so that a refusal before `handle` has one too.
async fn answer(
    deps: &Deps,
    routes: &[Route],
    request: hyper::Request<Incoming>,
    from_this_machine: bool,
) -> hyper::Response<Full<Bytes>> {
    let request_id = Uuid::new_v4().to_string();
    let (mut parts, body) = request.into_parts();
    if parts.uri.path() == METRICS_PATH {
        return into_hyper(metrics(deps, &parts.method, from_this_machine, &request_id));
    }
    if let Err(error) = check_head(&parts) {
        return into_hyper(refuse(error, &request_id));
    }
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    );
    let response = match read.await {
        Ok(Ok(collected)) => {
            let bytes = collected.to_bytes();
            let body = if bytes.is_empty() {
                Body::Empty
            } else {
                Body::Binary(bytes.to_vec())
            };
            parts.extensions.insert(RequestId(request_id));
            handle(deps, routes, Request::from_parts(parts, body)).await
        }
        Ok(Err(cause)) => {
            let error = if cause
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::PayloadTooLarge
            } else {
                Error::invalid("The request body could not be read.")
            };
            let error = HttpError::from(error);
            refuse(error, &request_id)
        }
        Err(_) => {
            // The rest of the body may still come: the connection cannot carry another request.
            let mut response = refuse(HttpError::RequestTimeout, &request_id);
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    into_hyper(response)
}

/// The request line and header fields against `MAX_URI_BYTES` and `MAX_HEAD_BYTES`.
fn check_head(parts: &hyper::http::request::Parts) -> Result<(), HttpError> {
    let target = parts.uri.to_string().len();
    if target > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong);
    }
    // `METHOD target HTTP/1.1`, then each `name: value`.
    let line = parts.method.as_str().len() + target + " HTTP/1.1".len() + 1;
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if line + fields > MAX_HEAD_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

/// crm-local's metrics in Prometheus text format, without a key: crm-local listens on
/// 127.0.0.1 only, and a request from elsewhere (a proxy in front of it is on this machine too,
/// so do not forward this path) is refused.
const METRICS_PATH: &str = "/metrics";

fn metrics(
    deps: &Deps,
    method: &hyper::Method,
    from_this_machine: bool,
    request_id: &str,
) -> Response<Body> {
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        let allow = vec!["GET".to_owned(), "HEAD".to_owned()];
        return refuse(HttpError::MethodNotAllowed { allow }, request_id);
    }
    if !from_this_machine {
        let error = Error::Forbidden("Metrics are served to this machine only.");
        return refuse(HttpError::from(error), request_id);
    }
    let mut response = Response::new(Body::Text(deps.metrics.prometheus_text()));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn into_hyper(response: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
