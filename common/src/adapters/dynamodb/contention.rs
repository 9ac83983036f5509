//! Writes that collide with a concurrent transaction. DynamoDB refuses a transaction that
//! touches an item another transaction is writing (`TransactionConflict` among the reasons of a
//! cancelled transaction) and a single-item write to such an item (`TransactionConflictException`).
//! A refused write did nothing: it is not an answer, as a failed condition is, but a reason to
//! send the same write again after a pause with jitter. moto serialises requests and never
//! refuses this way; on DynamoDB two deliveries to one webhook do, as they share its counters.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result};

/// Sends of one write before it is given up as failed (about 3 s of pauses in all).
pub(super) const ATTEMPTS: u32 = 8;

/// What one send of a write came to.
pub(super) enum Sent<T> {
    /// Applied, or refused for a reason that is an answer (a failed condition).
    Done(T),
    /// Refused because a concurrent transaction held one of its items: send it again.
    Collided,
}

/// A pause before a write is sent again: 25 ms doubling each round, with full jitter, so that
/// the writers that collided do not collide again.
pub(super) async fn backoff(round: u32) {
    let ceiling = 25u64 << round.min(6);
    let pause = rand::rng().random_range(0..=ceiling);
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// Sends a write until it is done, pausing after each collision; `send` is called once per round.
pub(super) async fn until_done<T, F, Fut>(what: &'static str, mut send: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Sent<T>>>,
{
    for round in 0..ATTEMPTS {
        if round > 0 {
            backoff(round).await;
        }
        match send(round).await? {
            Sent::Done(value) => return Ok(value),
            Sent::Collided => {
                tracing::debug!(
                    what,
                    round,
                    "a write collided with a concurrent transaction"
                )
            }
        }
    }
    tracing::warn!(
        what,
        attempts = ATTEMPTS,
        "a write still collided with concurrent transactions: refused with a 409"
    );
    Err(Error::Contended(what))
}
