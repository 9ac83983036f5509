//! Who is calling: the bearer key is the only source of the tenant and the role.

use crate::deps::Deps;
use crate::domain::auth::{hash_key, Caller};
use crate::error::{Error, Result};

/// Resolves an `Authorization` header value (`Bearer <key>`) into the caller.
pub async fn authenticate(deps: &Deps, authorization: Option<&str>) -> Result<Caller> {
    let key = authorization
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
        .ok_or(Error::Unauthorized)?;
    let stored = deps
        .store
        .find_api_key(&hash_key(key))
        .await?
        .ok_or(Error::Unauthorized)?;
    Ok(Caller {
        tenant_id: stored.tenant_id,
        key_id: stored.id,
        role: stored.role,
    })
}
