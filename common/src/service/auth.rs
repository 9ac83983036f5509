//! Who is calling: the bearer key is the only source of the tenant and the role.
//!
//! A verified key is remembered by this process (`service::key_cache`), so a warm function
//! answers from one store read instead of two. A key's use is written when the store read
//! finds the last one written a minute ago or more: at most one write a minute per key, however
//! many processes and requests use it.

use std::time::Instant;

use crate::domain::auth::{expired, hash_key, use_stale_before, ApiKey, Caller};
use crate::error::{Error, Result};
use crate::service::deps::Deps;

/// Resolves an `Authorization` header value (`Bearer <key>`) into the caller.
pub async fn authenticate(deps: &Deps, authorization: Option<&str>) -> Result<Caller> {
    let key = authorization
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
        .ok_or(Error::Unauthorized)?;
    let hash = hash_key(key);
    let now = deps.clock.now();
    if let Some(caller) = deps.keys.get(&hash, Instant::now()) {
        return unexpired(caller, now);
    }
    let generation = deps.keys.generation();
    let stored = deps
        .store
        .find_api_key(&hash)
        .await?
        .ok_or(Error::Unauthorized)?;
    let caller = Caller {
        tenant_id: stored.tenant_id,
        key_id: stored.id,
        key_name: stored.name.as_str().into(),
        role: stored.role,
        expires_at: stored.expires_at,
    };
    let caller = unexpired(caller, now)?;
    record_use(deps, &stored).await;
    deps.keys
        .put(hash, caller.clone(), generation, Instant::now());
    Ok(caller)
}

fn unexpired(caller: Caller, now: chrono::DateTime<chrono::Utc>) -> Result<Caller> {
    match caller.expires_at {
        Some(at) if expired(caller.expires_at, now) => Err(Error::KeyExpired(at)),
        _ => Ok(caller),
    }
}

/// Writes the key's use if the one written is a minute old or more. A failure is logged, not
/// answered: the request the key authenticated does not depend on it.
async fn record_use(deps: &Deps, stored: &ApiKey) {
    let now = deps.clock.now();
    if !stored.use_unrecorded(now) {
        return;
    }
    if let Err(error) = deps
        .store
        .record_key_use(&stored.key_hash, now, use_stale_before(now))
        .await
    {
        tracing::warn!(key_id = %stored.id, %error, "could not record an API key's use");
    }
}
