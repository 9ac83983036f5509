//! What a receiver answered to one attempt, as the sender reports it and the delivery records it.

/// What happened to one attempt. `status` is `None` when no response arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub status: Option<u16>,
    /// At most `RESPONSE_BODY_LIMIT` bytes of the response body, lossily decoded as UTF-8.
    pub body: String,
    /// Why there is no usable response: timeout, refused target, connection error.
    pub error: Option<String>,
    pub latency: std::time::Duration,
}

/// How much of a receiver's response is read and stored.
pub const RESPONSE_BODY_LIMIT: usize = 4 * 1024;
