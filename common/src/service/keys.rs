//! API key management for a tenant's ADMINs. A key is shown once, at creation.

use serde::Serialize;
use uuid::Uuid;

use super::audit;
use super::input::Input;
use crate::domain::audit::AuditAction;
use crate::domain::auth::{generate_key, ApiKey, Caller, NewKey, Permission, Role};
use crate::error::{Error, Result};
use crate::service::deps::Deps;
use crate::time::rfc3339;

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
    let now = deps.clock.now();
    let NewKey {
        name,
        role,
        expires_at,
    } = new.read()?.validated(now)?;
    let key = generate_key();
    let stored = ApiKey::new(caller.tenant_id, name, role, &key, now).expiring_at(expires_at);
    let changes = audit::fields([
        ("name", stored.name.clone().into()),
        ("role", stored.role.as_str().into()),
        ("expiresAt", stored.expires_at.map(rfc3339).into()),
    ]);
    let entry = audit::entry(deps, caller, AuditAction::KeyCreate, stored.id, changes);
    deps.store.put_api_key(&stored, Some(&entry)).await?;
    Ok(CreatedKey { stored, key })
}

pub async fn list_keys(deps: &Deps, caller: &Caller) -> Result<KeyList> {
    caller.require(Permission::KeyManage)?;
    let items = deps.store.list_api_keys(caller.tenant_id).await?;
    Ok(KeyList { items })
}

pub async fn delete_key(deps: &Deps, caller: &Caller, key_id: Uuid) -> Result<()> {
    caller.require(Permission::KeyManage)?;
    let entry = audit::entry(
        deps,
        caller,
        AuditAction::KeyDelete,
        key_id,
        Default::default(),
    );
    if deps
        .store
        .delete_api_key(caller.tenant_id, key_id, Some(&entry))
        .await?
    {
        deps.keys.forget(key_id);
        Ok(())
    } else {
        Err(Error::NotFound("API key"))
    }
}

/// `GET /api/me`: who the calling key is, and what it may do, so that a client (the dashboard)
/// offers only that.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    /// The key's name; null for a key deleted since this process verified it.
    pub key_name: Option<String>,
    pub role: Role,
    /// Every permission of the role.
    pub permissions: &'static [Permission],
}

/// Any key may ask who it is: no permission is needed to read one's own role.
pub async fn me(deps: &Deps, caller: &Caller) -> Result<Me> {
    let key_name = deps
        .store
        .list_api_keys(caller.tenant_id)
        .await?
        .into_iter()
        .find(|key| key.id == caller.key_id)
        .map(|key| key.name);
    Ok(Me {
        tenant_id: caller.tenant_id,
        key_id: caller.key_id,
        key_name,
        role: caller.role,
        permissions: caller.role.permissions(),
    })
}
