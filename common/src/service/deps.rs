//! Everything a use case may touch, built once per process (per Lambda container).

use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::domain::delivery::{Jitter, RetrySchedule};
use crate::domain::health::DEFAULT_DISABLE_AFTER;
use crate::domain::webhook::{TargetPolicy, Webhook};
use crate::metrics::Metrics;
use crate::ports::{Clock, Queue, Sender, Store, SystemClock};
use crate::service::fairness::{FairShare, InFlight};
use crate::service::key_cache::{KeyCache, KEY_CACHE_TTL};
use crate::service::prep_time::PrepTime;
use crate::service::secrets::SecretKeeper;
use crate::service::shared_payloads::SharedPayloads;

/// The operator's delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// `WEBHOOK_RETRY_DELAYS`: the schedule of webhooks without their own.
    pub retry_schedule: RetrySchedule,
    /// `WEBHOOK_RETRY_JITTER`: how far each retry's delay strays from its schedule.
    pub retry_jitter: Jitter,
    /// `WEBHOOK_DISABLE_AFTER_SECONDS`: a webhook whose every attempt has failed this long is
    /// disabled at its next failed attempt; `None` (0): never.
    pub disable_after: Option<chrono::Duration>,
    /// `WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
    pub targets: TargetPolicy,
    /// `WEBHOOK_SWEEP_GRACE_SECONDS`: how long past due a delivery (or an event not fanned out)
    /// must be before the sweeper takes it as lost.
    pub sweep_grace: Duration,
    /// The attempts one tenant, and one endpoint, may run at once in one process.
    pub fair_share: FairShare,
    /// What one tenant may have and send, across every process of the deployment.
    pub limits: TenantLimits,
}

/// Per-tenant limits of a deployment (docs/architecture.md §Limits). The stores enforce them
/// atomically, so they hold across Lambda containers and concurrent requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// `CRM_MAX_WEBHOOKS_PER_TENANT`: webhooks one tenant may have; creating one more is 403.
    pub webhooks: usize,
    /// `CRM_MAX_EVENTS_PER_SECOND`: notify calls one tenant may make in one second (of the
    /// clock); more are 429 with `Retry-After`.
    pub events_per_second: usize,
}

impl Default for TenantLimits {
    fn default() -> TenantLimits {
        TenantLimits {
            webhooks: 1_000,
            events_per_second: 1_000,
        }
    }
}

impl DeliverySettings {
    /// The retries `webhook` follows: its own schedule or the deployment's, jittered.
    pub fn schedule_for(&self, webhook: &Webhook) -> RetrySchedule {
        webhook
            .retry_schedule
            .as_ref()
            .unwrap_or(&self.retry_schedule)
            .jittered(self.retry_jitter)
    }
}

impl Default for DeliverySettings {
    fn default() -> DeliverySettings {
        DeliverySettings {
            retry_schedule: RetrySchedule::default(),
            retry_jitter: Jitter::default(),
            disable_after: Some(DEFAULT_DISABLE_AFTER),
            targets: TargetPolicy::default(),
            sweep_grace: Duration::from_secs(60),
            fair_share: FairShare::default(),
            limits: TenantLimits::default(),
        }
    }
}

#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<DeliverySettings>,
    /// Keys this process has verified lately (service::key_cache).
    pub keys: Arc<KeyCache>,
    /// The attempts this process runs, by tenant and endpoint (service::fairness).
    pub in_flight: Arc<InFlight>,
    /// How long its deliveries take to be claimed, for their send slots (service::prep_time).
    pub prep_time: Arc<PrepTime>,
    /// One copy of each payload its attempts in flight send (service::shared_payloads).
    pub payloads: Arc<SharedPayloads>,
    /// Places for GraphQL requests running at once, in all and per tenant.
    pub admission: Arc<Admission>,
    /// What deliveries, events and the sweeper did (crate::metrics): EMF lines on a Lambda,
    /// `GET /metrics` in crm-local.
    pub metrics: Arc<Metrics>,
    /// Seals and opens webhook secrets (service::secrets); without a key unless given one
    /// (`with_secrets`).
    pub secrets: Arc<SecretKeeper>,
}

impl Deps {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        sender: Arc<dyn Sender>,
        settings: DeliverySettings,
    ) -> Deps {
        Deps {
            store,
            queue,
            sender,
            clock: Arc::new(SystemClock),
            in_flight: Arc::new(InFlight::new(settings.fair_share)),
            prep_time: Arc::new(PrepTime::default()),
            payloads: Arc::new(SharedPayloads::default()),
            settings: Arc::new(settings),
            keys: Arc::new(KeyCache::new(KEY_CACHE_TTL)),
            admission: Arc::new(Admission::default()),
            metrics: Arc::new(Metrics::from_env()),
            secrets: Arc::new(SecretKeeper::without_key()),
        }
    }

    /// The same, sealing and opening webhook secrets with `secrets`.
    pub fn with_secrets(self, secrets: SecretKeeper) -> Deps {
        Deps {
            secrets: Arc::new(secrets),
            ..self
        }
    }
}
