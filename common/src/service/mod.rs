//! Use cases: one function per operation, taking `&Deps` and the authenticated `Caller`.

pub mod audit;
pub mod auth;
pub mod clients;
pub mod deliveries;
pub mod deps;
pub mod fairness;
pub mod input;
pub mod key_cache;
pub mod keys;
pub mod limits;
pub mod lookup;
pub mod prep_time;
pub mod redelivery;
pub mod secrets;
pub mod shared_payloads;
pub mod sweeper;
pub mod sync;
pub mod tenants;
pub mod webhooks;
pub mod worker;

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result};

const CONFLICT_ATTEMPTS: u32 = 40;

/// Runs a read-modify-conditional-write until it wins against concurrent writers, with a short
/// random back-off so that contenders spread out.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for round in 0..CONFLICT_ATTEMPTS {
        match attempt().await {
            Err(Error::Conflict(_)) if round + 1 < CONFLICT_ATTEMPTS => {
                let ceiling = 2 + u64::from(round.min(8)) * 3;
                let pause = rand::rng().random_range(0..=ceiling);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
    Err(Error::Conflict(
        "The record was changed by concurrent requests; try again.".to_owned(),
    ))
}
