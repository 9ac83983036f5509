use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// The tenant `crm-local` creates on its first start; fixed so that a restart finds it again.
    pub const DEV_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);

    pub fn new(name: String, now: DateTime<Utc>) -> Tenant {
        Tenant {
            id: Uuid::now_v7(),
            name,
            created_at: now,
        }
    }
}

/// How long a tenant's count of notify events in one second (`Store::take_event_quota`) is kept
/// after that second: far longer than a request takes, so one that read the clock just before
/// a second ended still counts in that second's window; then the stores drop it.
pub const EVENT_WINDOW_KEPT_SECS: i64 = 60;
