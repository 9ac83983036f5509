//! How many expensive requests (GraphQL documents) one process runs at once: a few in all, and
//! fewer per tenant, so that one tenant's requests can never take every place and another
//! tenant's wait for them. A request that finds no place waits a little, then is refused with
//! 429 and `Retry-After` (`Error::TooManyRequests`).
//!
//! Per process: crm-local runs every tenant's requests in one, so this is where it matters; a
//! Lambda container runs one request at a time, so there it never waits (API Gateway's throttle
//! bounds the whole API).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::{Error, Result, Throttle};

/// GraphQL requests one process runs at once.
pub const PROCESS_LIMIT: usize = 8;
/// GraphQL requests of one tenant one process runs at once.
pub const TENANT_LIMIT: usize = 2;
/// How long a request waits for a place before it is refused.
pub const WAIT: Duration = Duration::from_secs(1);
/// The `Retry-After` of a refusal, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;
/// Tenants whose semaphores are kept before idle ones are dropped.
const TENANTS_KEPT: usize = 1024;

pub struct Admission {
    process: Arc<Semaphore>,
    tenant_limit: usize,
    tenants: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    wait: Duration,
}

/// A place taken; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    _tenant: OwnedSemaphorePermit,
    _process: OwnedSemaphorePermit,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission::new(PROCESS_LIMIT, TENANT_LIMIT, WAIT)
    }
}

impl Admission {
    pub fn new(process_limit: usize, tenant_limit: usize, wait: Duration) -> Admission {
        Admission {
            process: Arc::new(Semaphore::new(process_limit)),
            tenant_limit,
            tenants: Mutex::new(HashMap::new()),
            wait,
        }
    }

    fn tenant(&self, tenant_id: Uuid) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if tenants.len() >= TENANTS_KEPT {
            // Only this map holds an idle tenant's semaphore.
            tenants.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        }
        let limit = self.tenant_limit;
        Arc::clone(
            tenants
                .entry(tenant_id)
                .or_insert_with(|| Arc::new(Semaphore::new(limit))),
        )
    }

    /// A place for one request of `tenant_id`: its tenant's first (so a tenant over its share
    /// waits without holding a place of the process), then the process's. Semaphores are fair:
    /// places are given in the order they were asked for.
    pub async fn admit(&self, tenant_id: Uuid) -> Result<Admitted> {
        let busy = || Error::TooManyRequests {
            retry_after_secs: RETRY_AFTER_SECS,
            cause: Throttle::Busy,
        };
        let take = async {
            let tenant = self.tenant(tenant_id).acquire_owned().await;
            let process = Arc::clone(&self.process).acquire_owned().await;
            match (tenant, process) {
                (Ok(tenant), Ok(process)) => Ok(Admitted {
                    _tenant: tenant,
                    _process: process,
                }),
                _ => Err(Error::internal("an admission semaphore was closed")),
            }
        };
        tokio::time::timeout(self.wait, take)
            .await
            .unwrap_or_else(|_| Err(busy()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> (Uuid, Uuid, Uuid) {
        (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
    }

    #[tokio::test]
    async fn a_tenant_over_its_share_waits_then_is_refused_while_others_get_in() {
        let admission = Admission::new(3, 2, Duration::from_millis(50));
        let (a, b, _) = tenants();
        let first = admission.admit(a).await.unwrap();
        let _second = admission.admit(a).await.unwrap();
        match admission.admit(a).await {
            Err(Error::TooManyRequests {
                retry_after_secs,
                cause: Throttle::Busy,
            }) => {
                assert_eq!(retry_after_secs, RETRY_AFTER_SECS)
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let _other = admission.admit(b).await.expect("another tenant gets in");
        drop(first);
        admission
            .admit(a)
            .await
            .expect("a place given back is taken");
    }

    #[tokio::test]
    async fn the_process_limit_holds_across_tenants() {
        let admission = Admission::new(2, 2, Duration::from_millis(50));
        let (a, b, c) = tenants();
        let _a = admission.admit(a).await.unwrap();
        let _b = admission.admit(b).await.unwrap();
        assert!(matches!(
            admission.admit(c).await,
            Err(Error::TooManyRequests { .. })
        ));
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_place_given_back_within_the_wait() {
        let admission = Arc::new(Admission::new(1, 1, Duration::from_secs(5)));
        let tenant = Uuid::new_v4();
        let held = admission.admit(tenant).await.unwrap();
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit(tenant).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        waiting
            .await
            .unwrap()
            .expect("admitted once the place was free");
    }
}
