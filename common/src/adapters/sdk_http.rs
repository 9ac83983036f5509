//! The AWS SDK's HTTP client: reqwest, over the same HTTP/1.1 and rustls stack as the webhook
//! sender, so a function links one HTTPS client instead of two. The SDK's default client would
//! add its own hyper client with HTTP/2 and aws-lc: zip size (README, bench notes) and a C
//! build per target, for no feature DynamoDB or SQS needs (both speak HTTP/1.1).
//!
//! The SDK keeps what it owns: signing, retries, operation and attempt timeouts, and its guard
//! against stalled streams. Both bodies pass through as the SDK's streams, never copied out
//! here: the request body so the guard sees it sent, the response body so a failure reading it
//! is a response error the SDK retries, as with its own client. This adapter moves the request
//! and classifies failures to connect or to get a response: a timeout as a timeout and a broken
//! connection as I/O, both retried.
//!
//! One difference: the SDK's own client drops a connection after a transient failure on it
//! (a 5xx, say), so that the retry opens a fresh one; reqwest exposes no connection to drop, so a
//! retry may reuse the keep-alive connection of the failed attempt.

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

/// One connector (one reqwest client, one connection pool) per set of timeouts the SDK asks
/// for; with one shared config that is one for the container's life, handed out per attempt.
#[derive(Debug, Default)]
pub struct SdkHttpClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(timeouts)
            .or_insert_with(|| {
                SharedHttpConnector::new(Connector {
                    client: build(timeouts),
                })
            })
            .clone()
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
            from_reqwest(response)
        })
    }
}

/// The request with the SDK's own body, polled as it is sent. Not its bytes, although DynamoDB
/// and SQS bodies are in memory: the SDK wraps the body to watch the upload, and a body never
/// polled reads as an upload that stalled from the first byte, so any call answered later than
/// the stalled-stream grace period (5 s by default; an SQS long poll waits up to 20 s) failed
/// with "minimum throughput was specified at 1 B/s, but throughput of 0 B/s was observed".
fn into_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|error| ConnectorError::user(error.into()))?;
    reqwest::Request::try_from(request.map(reqwest::Body::wrap))
        .map_err(|error| ConnectorError::user(error.into()))
}

/// The status and headers, with the body still to be read by the SDK (as a stream).
fn from_reqwest(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let response: http::Response<reqwest::Body> = response.into();
    HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
        .map_err(|error| ConnectorError::other(error.into(), None))
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

#[cfg(test)]
mod tests {
    //! Against real sockets on 127.0.0.1: what the SDK's retry policy will be told.

    use aws_smithy_types::byte_stream::ByteStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn connector(read_timeout: Option<Duration>) -> Connector {
        Connector {
            client: build((Some(Duration::from_secs(2)), read_timeout)),
        }
    }

    fn post(url: &str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from(r#"{"TableName":"t"}"#));
        request.set_method("POST").unwrap();
        request.set_uri(url).unwrap();
        request
    }

    /// A server that reads one request, writes `reply`, then holds or drops the connection.
    async fn server(reply: &'static [u8], hold: bool) -> String {
        server_answering_after(Duration::ZERO, reply, hold).await
    }

    /// `server`, which takes `delay` to answer (as SQS does a long poll on an empty queue).
    async fn server_answering_after(delay: Duration, reply: &'static [u8], hold: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            tokio::time::sleep(delay).await;
            socket.write_all(reply).await.unwrap();
            if hold {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_response_arrives_with_its_status_headers_and_body() {
        let url = server(
            b"HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: r1\r\ncontent-length: 9\r\n\r\n{\"a\":\"b\"}",
            false,
        )
        .await;
        let response = connector(None).call(post(&url)).await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r1"));
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .unwrap();
        assert_eq!(body.into_bytes().as_ref(), br#"{"a":"b"}"#);
    }

    #[tokio::test]
    async fn a_refused_connection_is_io_which_the_sdk_retries() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = connector(None).call(post(&url)).await.unwrap_err();
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_which_the_sdk_retries() {
        let url = server(b"", true).await;
        let error = connector(Some(Duration::from_millis(200)))
            .call(post(&url))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    }

    /// A long poll: the request is sent at once, the answer comes when the wait is over. The
    /// SDK's stalled-stream guard (here with a 0.5 s grace period instead of 5 s) must see the
    /// request body sent and so not take the wait for a stalled upload.
    #[tokio::test]
    async fn an_answer_later_than_the_stalled_stream_grace_period_is_not_a_stall() {
        use aws_sdk_sqs::config::{
            BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
        };

        let url = server_answering_after(
            Duration::from_secs(2),
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}",
            false,
        )
        .await;
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("id", "secret", None, None, "test"))
            .endpoint_url(url)
            .http_client(SdkHttpClient::default())
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(Duration::from_millis(500))
                    .build(),
            )
            .build();
        let received = aws_sdk_sqs::Client::from_conf(config)
            .receive_message()
            .queue_url("http://127.0.0.1/123456789012/q")
            .wait_time_seconds(2)
            .send()
            .await;
        let received = received.map_err(aws_sdk_sqs::error::DisplayErrorContext);
        assert!(received.unwrap().messages.is_none());
    }

    #[tokio::test]
    async fn a_body_cut_short_fails_when_the_sdk_reads_it_not_before() {
        // Headers promise 100 bytes; 5 come, then the connection closes.
        let url = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello",
            false,
        )
        .await;
        let response = connector(None).call(post(&url)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(ByteStream::new(response.into_body())
            .collect()
            .await
            .is_err());
    }
}
