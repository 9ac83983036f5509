//! The AWS SDK's HTTP client: reqwest, over the same HTTP/1.1 and rustls stack as the webhook
//! sender, so a function links one HTTPS client instead of two. The SDK's default client would
//! add its own hyper client with HTTP/2 and aws-lc: about 0.6 MB of zipped Lambda and a C
//! build per target, for no feature DynamoDB or SQS needs (both speak HTTP/1.1).
//!
//! The SDK keeps what it owns: signing, retries, operation and attempt timeouts. This adapter
//! only moves bytes and classifies failures, so that the SDK's retry policy sees a timeout as a
//! timeout and a broken connection as I/O (both retried), as with its own client.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use super::tls::client_builder;

/// The timeouts the SDK asks a connector for: connect, read.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One reqwest client (one connection pool) per set of timeouts the SDK asks for; with one
/// shared config that is one client for the container's life.
#[derive(Debug, Default)]
pub struct SdkHttpClient {
    clients: Mutex<HashMap<Timeouts, Result<reqwest::Client, String>>>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let client = clients.entry(timeouts).or_insert_with(|| build(timeouts));
        SharedHttpConnector::new(Connector {
            client: client.clone(),
        })
    }
}

fn build((connect, read): Timeouts) -> Result<reqwest::Client, String> {
    let mut builder = client_builder().redirect(reqwest::redirect::Policy::none());
    if let Some(connect) = connect {
        builder = builder.connect_timeout(connect);
    }
    if let Some(read) = read {
        builder = builder.read_timeout(read);
    }
    builder.build().map_err(|error| {
        tracing::error!(%error, "building the AWS SDK's HTTP client failed");
        "the AWS SDK's HTTP client could not be built".to_owned()
    })
}

#[derive(Debug)]
struct Connector {
    client: Result<reqwest::Client, String>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|error| ConnectorError::other(error.into(), None))?;
            let response = client
                .execute(into_reqwest(request)?)
                .await
                .map_err(classify)?;
            from_reqwest(response).await
        })
    }
}

fn into_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let (parts, body) = request
        .try_into_http1x()
        .map_err(|error| ConnectorError::user(error.into()))?
        .into_parts();
    // DynamoDB and SQS requests are JSON documents built in memory; nothing here streams.
    let body = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
        .to_vec();
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|error| ConnectorError::user(error.into()))
}

async fn from_reqwest(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(classify)?;
    let mut converted = http::Response::new(SdkBody::from(body));
    *converted.status_mut() = status;
    *converted.headers_mut() = headers;
    HttpResponse::try_from(converted).map_err(|error| ConnectorError::other(error.into(), None))
}

/// What the SDK's retry policy needs to know of a failure: timeouts and I/O are transient.
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}
