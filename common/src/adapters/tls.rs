//! The TLS crypto behind every outbound HTTPS connection (the AWS SDK's and the webhook
//! sender's): rustls with *ring*. One provider for the process, chosen here once. aws-lc, the
//! SDK's default, is a C library that adds to every function's binary, and minutes of C
//! compilation to each target's build; *ring* covers what AWS endpoints and webhook receivers
//! negotiate (TLS 1.2 and 1.3, ECDHE over X25519 and P-256, AES-GCM and ChaCha20-Poly1305).

/// A reqwest builder for any client of this process: the only way one is started, because
/// reqwest (built without a provider of its own) panics when none is installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    // Idempotent: the only error is "a provider is already installed", and this is the only
    // place that installs one, so it is this same provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
