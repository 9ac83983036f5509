//! API key management for a tenant's ADMINs. A key is shown once, at creation.

use serde::Serialize;
use uuid::Uuid;

use super::input::Input;
use crate::domain::auth::{generate_key, ApiKey, Caller, NewKey, Permission};
use crate::error::{Error, Result};
use crate::service::deps::Deps;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub stored: ApiKey,
    /// The key itself: returned by this response only.
    pub key: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub items: Vec<ApiKey>,
}

pub async fn create_key(
    deps: &Deps,
    caller: &Caller,
    new: impl Input<NewKey>,
) -> Result<CreatedKey> {
    caller.require(Permission::KeyManage)?;
    let NewKey { name, role } = new.read()?.validated()?;
    let key = generate_key();
    let stored = ApiKey::new(caller.tenant_id, name, role, &key, deps.clock.now());
    deps.store.put_api_key(&stored).await?;
    Ok(CreatedKey { stored, key })
}

pub async fn list_keys(deps: &Deps, caller: &Caller) -> Result<KeyList> {
    caller.require(Permission::KeyManage)?;
    let items = deps.store.list_api_keys(caller.tenant_id).await?;
    Ok(KeyList { items })
}

pub async fn delete_key(deps: &Deps, caller: &Caller, key_id: Uuid) -> Result<()> {
    caller.require(Permission::KeyManage)?;
    if deps.store.delete_api_key(caller.tenant_id, key_id).await? {
        deps.keys.forget(key_id);
        Ok(())
    } else {
        Err(Error::NotFound("API key"))
    }
}
