//! API key management for a tenant's ADMINs. A key is shown once, at creation.

use serde::Serialize;
use uuid::Uuid;

use crate::domain::auth::{generate_key, ApiKey, Caller, Permission, Role};
use crate::domain::validation::{parse_json, Fields};
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

/// `POST /api/keys`: the body `create_key` accepts, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "CRM connector", "role": "SALES_REP"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct CreateKeyRequest {
    #[schema(schema_with = key_name_schema)]
    name: String,
    role: Role,
}

const KEY_NAME_MAX: usize = 100;

fn key_name_schema() -> utoipa::openapi::Object {
    crate::domain::validation::schema::text(KEY_NAME_MAX).build()
}

pub async fn create_key(deps: &Deps, caller: &Caller, body: &[u8]) -> Result<CreatedKey> {
    caller.require(Permission::KeyManage)?;
    let body = parse_json(body)?;
    let mut fields = Fields::of(&body)?;
    let name = fields.required_string("name", KEY_NAME_MAX);
    let role = fields.required_string("role", 32).and_then(|text| {
        let role = Role::parse(&text);
        if role.is_none() {
            fields.fail(
                "role",
                "must be one of ADMIN, MANAGER, SALES_REP, READ_ONLY",
            );
        }
        role
    });
    fields.finish()?;
    let (Some(name), Some(role)) = (name, role) else {
        return Err(Error::invalid("Validation failed."));
    };
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
