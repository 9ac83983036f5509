//! The `Sender` adapter: one signed POST to a webhook endpoint over reqwest
//! (docs/architecture.md §Attempts, §Outbound safety).
//!
//! Outbound safety happens in two places that together cover every way to name a host: `post`
//! re-checks the URL (scheme, credentials, IP literals and `localhost`, which never reach a
//! resolver), and the client's DNS resolver drops forbidden addresses from every answer, so the
//! address that was checked is the address connected to and a DNS-rebinding answer cannot slip
//! between a check and a connect.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hyper::body::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use url::Url;

use super::tls::client_builder;
use crate::domain::target::{is_forbidden, is_forbidden_host, parse_stored_url};
use crate::error::Result;
use crate::ports::{OutboundRequest, SendOutcome, Sender, RESPONSE_BODY_LIMIT};

/// A payload as a request body without copying it: the attempts in flight share the one
/// copy their delivery read.
struct SharedText(std::sync::Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// How long establishing a connection (TCP and TLS) may take, within the request's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const REFUSED: &str = "target address is not allowed";

pub struct HttpSender {
    /// Built on the first send, then kept for the container (connections are pooled per host).
    /// Not at start: building it loads and parses the system's root certificates, the largest
    /// part of a Lambda function's init (README, bench notes), and only the worker and
    /// webhook-test ever send.
    client: OnceLock<std::result::Result<reqwest::Client, String>>,
    allow_http: bool,
    allow_private: bool,
}

impl HttpSender {
    /// `allow_http` and `allow_private` mirror `WEBHOOK_ALLOW_HTTP` and
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: on in `crm-local` and in tests only.
    pub fn new(allow_http: bool, allow_private: bool) -> Result<HttpSender> {
        Ok(HttpSender {
            client: OnceLock::new(),
            allow_http,
            allow_private,
        })
    }

    fn client(&self) -> std::result::Result<&reqwest::Client, &str> {
        let built = self.client.get_or_init(|| {
            let mut builder = client_builder()
                .redirect(Policy::none())
                .no_proxy()
                .connect_timeout(CONNECT_TIMEOUT)
                .https_only(!self.allow_http);
            if !self.allow_private {
                builder = builder.dns_resolver(GuardedResolver);
            }
            builder.build().map_err(|error| {
                tracing::error!(%error, "building the HTTP client failed");
                "the HTTP client could not be built".to_owned()
            })
        });
        built.as_ref().map_err(String::as_str)
    }

    /// The POST itself, to a URL already checked.
    async fn send_checked(&self, url: Url, request: OutboundRequest) -> SendOutcome {
        let started = Instant::now();
        let failed = |error: String| SendOutcome {
            status: None,
            body: String::new(),
            error: Some(error),
            latency: started.elapsed(),
        };
        let headers = match header_map(&request.headers) {
            Ok(headers) => headers,
            Err(error) => return failed(error),
        };
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => return failed(error.to_owned()),
        };
        let deadline = tokio::time::Instant::now() + request.timeout;
        let sending = client
            .post(url)
            .headers(headers)
            .body(Bytes::from_owner(SharedText(request.body)))
            .timeout(request.timeout)
            .send();
        let mut response = match tokio::time::timeout_at(deadline, sending).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return failed(describe(&error, request.timeout)),
            Err(_) => return failed(timed_out(request.timeout)),
        };
        let status = response.status().as_u16();

        // The status is the receiver's verdict; the body is only kept for the record. Read at
        // most the limit, then drop the response, which closes the connection mid-body.
        let mut body = Vec::new();
        while body.len() < RESPONSE_BODY_LIMIT {
            match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let room = RESPONSE_BODY_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(Ok(None)) => break,
                Ok(Err(error)) => {
                    tracing::debug!(status, error = %describe(&error, request.timeout), "response body cut short");
                    break;
                }
                Err(_) => {
                    tracing::debug!(status, "response body cut short by the timeout");
                    break;
                }
            }
        }
        drop(response);
        SendOutcome {
            status: Some(status),
            body: decode_capped(&body),
            error: None,
            latency: started.elapsed(),
        }
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn post(&self, request: OutboundRequest) -> SendOutcome {
        let started = Instant::now();
        // The webhook was checked at creation; the rules or the flags may have changed since.
        // Forbidden IP literals are refused here: they never reach the resolver.
        let checked =
            parse_stored_url(&request.url, self.allow_http).and_then(|url| match url.host() {
                Some(host) if !self.allow_private && is_forbidden_host(&host) => {
                    Err(REFUSED.to_owned())
                }
                _ => Ok(url),
            });
        match checked {
            Ok(url) => self.send_checked(url, request).await,
            Err(error) => SendOutcome {
                status: None,
                body: String::new(),
                error: Some(error),
                latency: started.elapsed(),
            },
        }
    }
}

fn header_map(headers: &[(String, String)]) -> std::result::Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(format!("header name {name:?} is not valid"));
        };
        let Ok(header_value) = HeaderValue::from_str(value) else {
            return Err(format!("value of header {name:?} is not valid"));
        };
        map.append(header_name, header_value);
    }
    Ok(map)
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}

/// A short sentence for the attempt record: never the URL, never internal detail.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if source_chain(error).any(|e| e.is::<TargetRefused>()) {
        return REFUSED.to_owned();
    }
    if error.is_timeout() {
        return timed_out(timeout);
    }
    if error.is_dns() {
        return "could not resolve the host name".to_owned();
    }
    let io_kind = source_chain(error)
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if error.is_connect() {
        use std::io::ErrorKind;
        return match io_kind {
            Some(ErrorKind::ConnectionRefused) => "connection refused",
            Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => "connection reset",
            Some(ErrorKind::TimedOut) => "connection timed out",
            Some(ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable) => "host unreachable",
            // rustls reports handshake and certificate failures as invalid data.
            Some(ErrorKind::InvalidData) => "TLS handshake failed",
            _ => "could not connect",
        }
        .to_owned();
    }
    if source_chain(error)
        .filter_map(|e| e.downcast_ref::<hyper::Error>())
        .any(|e| e.is_incomplete_message())
    {
        return "connection closed before a response arrived".to_owned();
    }
    if error.is_body() || error.is_decode() {
        return "could not read the response".to_owned();
    }
    if error.is_builder() {
        return "the request could not be built".to_owned();
    }
    "request failed".to_owned()
}

fn source_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// Lossy UTF-8, cut back to the limit in bytes (replacement characters are longer than the
/// bytes they replace).
fn decode_capped(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > RESPONSE_BODY_LIMIT {
        let cut = (0..=RESPONSE_BODY_LIMIT)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
    }
    text
}

/// Why the resolver gave no address: every address the name resolved to is forbidden.
#[derive(Debug)]
struct TargetRefused;

impl std::fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED)
    }
}

impl std::error::Error for TargetRefused {}

/// The system resolver, minus forbidden addresses: the connector only ever sees what survives.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = allowed_addrs(resolved).inspect_err(|_| {
                tracing::info!(host, "webhook host resolves only to forbidden addresses");
            })?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses a webhook may connect to, or `TargetRefused` when none is left.
fn allowed_addrs(
    resolved: impl IntoIterator<Item = SocketAddr>,
) -> std::result::Result<Vec<SocketAddr>, TargetRefused> {
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| !is_forbidden(addr.ip()))
        .collect();
    if allowed.is_empty() {
        Err(TargetRefused)
    } else {
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use super::*;

    fn request(url: String, timeout: Duration) -> OutboundRequest {
        OutboundRequest {
            url,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-webhook-event".to_owned(), "webhook.test".to_owned()),
            ],
            body: r#"{"hello":"world"}"#.into(),
            timeout,
        }
    }

    fn open_sender() -> HttpSender {
        HttpSender::new(true, true).expect("client")
    }

    fn guarded_sender() -> HttpSender {
        HttpSender::new(true, false).expect("client")
    }

    async fn listen() -> (TcpListener, u16) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        (listener, port)
    }

    /// Reads one request: the head, then as many body bytes as `content-length` says.
    async fn read_request(stream: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.expect("read request");
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + length {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// A receiver that answers one request with `response` and returns what it was sent.
    fn respond_once(listener: TcpListener, response: String) -> JoinHandle<String> {
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let received = read_request(&mut stream).await;
            stream
                .write_all(response.as_bytes())
                .await
                .expect("write response");
            stream.shutdown().await.ok();
            received
        })
    }

    /// True when nobody connected to `listener` (any connect would already be queued).
    async fn saw_no_connection(listener: &TcpListener) -> bool {
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_2xx_is_reported_with_its_body_and_the_request_arrives_intact() {
        let (listener, port) = listen().await;
        let receiver = respond_once(
            listener,
            "HTTP/1.1 202 Accepted\r\ncontent-length: 8\r\nconnection: close\r\n\r\nreceived"
                .into(),
        );
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/hook"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, Some(202), "{outcome:?}");
        assert_eq!(outcome.body, "received");
        assert_eq!(outcome.error, None);
        assert!(outcome.latency < Duration::from_secs(5));

        let received = receiver.await.expect("receiver");
        assert!(
            received.starts_with("POST /hook HTTP/1.1\r\n"),
            "{received}"
        );
        let lower = received.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{received}"
        );
        assert!(
            lower.contains("x-webhook-event: webhook.test\r\n"),
            "{received}"
        );
        assert!(lower.contains("content-length: 17\r\n"), "{received}");
        assert!(
            received.ends_with("\r\n\r\n{\"hello\":\"world\"}"),
            "{received}"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_a_status_not_an_error() {
        let (listener, port) = listen().await;
        let receiver = respond_once(
            listener,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy".into(),
        );
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, Some(503));
        assert_eq!(outcome.body, "busy");
        assert_eq!(outcome.error, None);
        receiver.await.expect("receiver");
    }

    #[tokio::test]
    async fn a_redirect_is_reported_and_not_followed() {
        let (target, target_port) = listen().await;
        let (listener, port) = listen().await;
        let receiver = respond_once(
            listener,
            format!(
                "HTTP/1.1 308 Permanent Redirect\r\nlocation: http://127.0.0.1:{target_port}/\r\ncontent-length: 0\r\n\r\n"
            ),
        );
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, Some(308), "{outcome:?}");
        assert_eq!(outcome.error, None);
        receiver.await.expect("receiver");
        assert!(
            saw_no_connection(&target).await,
            "the redirect was followed"
        );
    }

    #[tokio::test]
    async fn a_hanging_receiver_times_out_at_the_given_timeout() {
        let (listener, port) = listen().await;
        let receiver = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            // Hold the connection open without answering.
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(stream);
        });
        let started = Instant::now();
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_millis(300),
            ))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(outcome.status, None);
        assert_eq!(outcome.error.as_deref(), Some("timed out after 300 ms"));
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        receiver.abort();
    }

    #[tokio::test]
    async fn a_huge_response_is_read_only_up_to_the_limit() {
        const HUGE: usize = 50 * 1024 * 1024;
        let (listener, port) = listen().await;
        let receiver = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
            stream.write_all(head.as_bytes()).await.expect("head");
            let block = vec![b'x'; 64 * 1024];
            let mut written = 0;
            while written < HUGE {
                // Fails once the sender has hung up.
                match stream.write(&block).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written += n,
                }
            }
            written
        });
        let started = Instant::now();
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(20),
            ))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.body.len(), RESPONSE_BODY_LIMIT);
        assert!(outcome.body.bytes().all(|b| b == b'x'));
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let written = tokio::time::timeout(Duration::from_secs(5), receiver)
            .await
            .expect("the receiver notices the sender hung up")
            .expect("receiver");
        assert!(written < HUGE, "the whole body was read: {written} bytes");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error() {
        let (listener, port) = listen().await;
        drop(listener);
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, None);
        assert_eq!(outcome.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn a_receiver_closing_without_answer_is_an_error() {
        let (listener, port) = listen().await;
        let receiver = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
        });
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, None);
        assert_eq!(
            outcome.error.as_deref(),
            Some("connection closed before a response arrived")
        );
        receiver.await.expect("receiver");
    }

    #[tokio::test]
    async fn invalid_urls_and_headers_are_errors_without_a_connection() {
        let (listener, port) = listen().await;
        let sender = HttpSender::new(false, true).expect("client");
        let outcome = sender
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(1),
            ))
            .await;
        assert_eq!(outcome.error.as_deref(), Some("The URL must use https."));
        let outcome = sender
            .post(request("not a url".into(), Duration::from_secs(1)))
            .await;
        assert!(outcome
            .error
            .is_some_and(|e| e.starts_with("The URL is not valid")));

        let mut bad_header = request(format!("http://127.0.0.1:{port}/"), Duration::from_secs(1));
        bad_header
            .headers
            .push(("x-bad".into(), "line\r\nbreak".into()));
        let outcome = open_sender().post(bad_header).await;
        assert_eq!(outcome.status, None);
        assert_eq!(
            outcome.error.as_deref(),
            Some("value of header \"x-bad\" is not valid")
        );
        assert!(saw_no_connection(&listener).await);
    }

    #[tokio::test]
    async fn the_guard_refuses_forbidden_targets_without_connecting() {
        let (v4, port) = listen().await;
        // Where `[::]` and `localhost` could land too, when this host has IPv6 loopback.
        let v6 = TcpListener::bind(("::1", port)).await.ok();
        let sender = guarded_sender();
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://[::ffff:0:7f00:1]:{port}/"),
            format!("http://[::1]:{port}/"),
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            format!("http://0.0.0.0:{port}/"),
            format!("http://[::]:{port}/"),
            format!("http://localhost:{port}/"),
            format!("http://2130706433:{port}/"),
        ] {
            let outcome = sender
                .post(request(url.clone(), Duration::from_secs(2)))
                .await;
            assert_eq!(outcome.status, None, "{url}");
            assert_eq!(outcome.error.as_deref(), Some(REFUSED), "{url}");
            assert!(saw_no_connection(&v4).await, "{url} reached 127.0.0.1");
            if let Some(v6) = &v6 {
                assert!(saw_no_connection(v6).await, "{url} reached [::1]");
            }
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        let resolved = GuardedResolver
            .resolve("localhost".parse().expect("name"))
            .await;
        let error = resolved.err().expect("refused");
        assert!(error.is::<TargetRefused>(), "{error}");
    }

    #[tokio::test]
    async fn the_client_resolves_through_the_guard() {
        // `post` refuses the name `localhost` before any lookup; going past that check shows
        // the client's own resolver refusing what a real lookup of it returns.
        let (v4, port) = listen().await;
        let v6 = TcpListener::bind(("::1", port)).await.ok();
        let url = Url::parse(&format!("http://localhost:{port}/")).expect("url");
        let outcome = guarded_sender()
            .send_checked(url, request(String::new(), Duration::from_secs(2)))
            .await;
        assert_eq!(outcome.status, None);
        assert_eq!(outcome.error.as_deref(), Some(REFUSED));
        assert!(saw_no_connection(&v4).await);
        if let Some(v6) = &v6 {
            assert!(saw_no_connection(v6).await);
        }
    }

    #[test]
    fn only_allowed_addresses_survive_resolution() {
        let addr = |ip: &str| SocketAddr::new(ip.parse::<IpAddr>().expect("ip"), 443);
        let mixed = [
            addr("127.0.0.1"),
            addr("8.8.8.8"),
            addr("::1"),
            addr("10.1.2.3"),
            addr("2606:4700:4700::1111"),
            addr("::ffff:169.254.169.254"),
        ];
        assert_eq!(
            allowed_addrs(mixed).expect("some allowed"),
            vec![addr("8.8.8.8"), addr("2606:4700:4700::1111")]
        );
        assert!(allowed_addrs([addr("127.0.0.1"), addr("fd00::1")]).is_err());
        assert!(allowed_addrs([]).is_err());
    }

    #[tokio::test]
    async fn private_targets_are_reached_when_allowed() {
        let (listener, port) = listen().await;
        let receiver = respond_once(listener, "HTTP/1.1 204 No Content\r\n\r\n".into());
        let outcome = open_sender()
            .post(request(
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(outcome.status, Some(204), "{outcome:?}");
        assert_eq!(outcome.error, None);
        receiver.await.expect("receiver");
    }

    #[test]
    fn capped_bodies_stay_within_the_limit() {
        assert_eq!(decode_capped(b"ok"), "ok");
        let invalid = vec![0xffu8; RESPONSE_BODY_LIMIT];
        let text = decode_capped(&invalid);
        assert!(text.len() <= RESPONSE_BODY_LIMIT);
        assert!(text.chars().all(|c| c == char::REPLACEMENT_CHARACTER));
    }
}
