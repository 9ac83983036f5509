//! What one request may be, on either face (REST, GraphQL): its body, target and head, and
//! the time to send them. `http` enforces them; `reply` quotes them in its refusals.

use std::time::Duration;

/// Bodies above this are refused with 413 before any parsing (docs/architecture.md §Limits).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// crm-local refuses a request target (path and query) longer than this with 414, as most
/// servers do (8 KiB: nginx's header buffer, Apache's request line). API Gateway applies its
/// own quotas before a Lambda sees a request (docs/architecture.md §Limits).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// crm-local refuses a request whose request line and header fields together are larger than
/// this with 431: API Gateway's quota for an HTTP API (10,240 bytes of request line and header
/// values; names count here too), so what crm-local accepts, production accepts too.
pub const MAX_HEAD_BYTES: usize = 10 * 1024;

/// crm-local gives a client this long to send a request's head: from the connection's start,
/// and again from the end of each answer, so an idle keep-alive connection is closed after it
/// too (hyper's header read timeout covers both). Long enough for any real client on a slow
/// link (a head is at most 10 KiB), short enough that a client trickling headers holds a
/// connection for seconds, not minutes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// crm-local gives a client this long to send a body once its head is read: 256 KiB in 10 s
/// is 26 KB/s, slower than any link worth serving. A body still arriving then gets 408.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
