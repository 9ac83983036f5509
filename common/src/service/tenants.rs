//! Tenants are created by an operator (the `crm-admin` CLI) or by `crm-local` for development.

use serde_json::{Map, Value};

use crate::domain::audit::{Actor, AuditAction, AuditEntry};
use crate::domain::auth::{generate_key, hash_key, ApiKey, Role};
use crate::domain::tenant::Tenant;
use crate::domain::validation::check_text;
use crate::error::{Error, Result};
use crate::ports::{Clock, Store};

const TENANT_NAME_MAX: usize = 100;

/// A new tenant and its first ADMIN key (the key is returned once, here).
pub async fn create_tenant(
    store: &dyn Store,
    clock: &dyn Clock,
    name: &str,
) -> Result<(Tenant, String)> {
    let name = check_text(name, TENANT_NAME_MAX)
        .map_err(|message| Error::invalid_field("name", message))?;
    let now = clock.now();
    let tenant = Tenant::new(name.to_owned(), now);
    let key = generate_key();
    let admin = ApiKey::new(
        tenant.id,
        "first admin key".to_owned(),
        Role::Admin,
        &key,
        now,
    );
    let entry = tenant_created(&tenant, &admin, "crm-admin");
    store.create_tenant(&tenant, &admin, Some(&entry)).await?;
    Ok((tenant, key))
}

/// The audit entry of a tenant's creation by `tool`, with its first key: no API key made it.
fn tenant_created(tenant: &Tenant, first_key: &ApiKey, tool: &str) -> AuditEntry {
    let changes = Map::from_iter([
        ("name".to_owned(), Value::from(tenant.name.clone())),
        (
            "firstKeyId".to_owned(),
            Value::from(first_key.id.to_string()),
        ),
    ]);
    AuditEntry::new(
        tenant.id,
        Actor::tool(tool),
        AuditAction::TenantCreate,
        tenant.id,
        changes,
        tenant.created_at,
    )
}

/// What `crm-local` found or made at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevTenant {
    /// First start: the tenant was created with this ADMIN key.
    Created { key: String },
    /// The tenant exists; `CRM_DEV_API_KEY`, if given, is one of its ADMIN keys.
    Existing,
}

/// Makes sure the development tenant exists; `dev_key` (from `CRM_DEV_API_KEY`) becomes one of
/// its ADMIN keys, exactly as given.
pub async fn ensure_dev_tenant(
    store: &dyn Store,
    clock: &dyn Clock,
    dev_key: Option<&str>,
) -> Result<DevTenant> {
    let now = clock.now();
    let exists = store.get_tenant(Tenant::DEV_ID).await?.is_some();
    let created_key = match (exists, dev_key) {
        (true, None) => None,
        (true, Some(key)) => {
            if store.find_api_key(&hash_key(key)).await?.is_none() {
                let stored = dev_api_key(key, now);
                let changes = Map::from_iter([
                    ("name".to_owned(), Value::from(stored.name.clone())),
                    ("role".to_owned(), Value::from(stored.role.as_str())),
                ]);
                let entry = AuditEntry::new(
                    Tenant::DEV_ID,
                    Actor::tool("crm-local"),
                    AuditAction::KeyCreate,
                    stored.id,
                    changes,
                    now,
                );
                store.put_api_key(&stored, Some(&entry)).await?;
            }
            None
        }
        (false, key) => {
            let key = key.map_or_else(generate_key, str::to_owned);
            let tenant = Tenant {
                id: Tenant::DEV_ID,
                name: "dev".to_owned(),
                created_at: now,
            };
            let first_key = dev_api_key(&key, now);
            let entry = tenant_created(&tenant, &first_key, "crm-local");
            store
                .create_tenant(&tenant, &first_key, Some(&entry))
                .await?;
            Some(key)
        }
    };
    Ok(match created_key {
        Some(key) => DevTenant::Created { key },
        None => DevTenant::Existing,
    })
}

fn dev_api_key(key: &str, now: chrono::DateTime<chrono::Utc>) -> ApiKey {
    ApiKey::new(
        Tenant::DEV_ID,
        "dev admin key".to_owned(),
        Role::Admin,
        key,
        now,
    )
}
