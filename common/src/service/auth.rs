//! Who is calling: the bearer key is the only source of the tenant and the role.
//!
//! A verified key is remembered by this process (`service::key_cache`), so a warm function
//! answers from one store read instead of two.

use std::time::Instant;

use crate::domain::auth::{hash_key, Caller};
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
    if let Some(caller) = deps.keys.get(&hash, Instant::now()) {
        return Ok(caller);
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
        role: stored.role,
    };
    deps.keys.put(hash, caller, generation, Instant::now());
    Ok(caller)
}
