//! Roles, permissions and API keys. The role → permission table lives here and nowhere else.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::validation::FieldErrors;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Manager,
    SalesRep,
    ReadOnly,
}

/// Serialized as `as_str` names it; the schema says the same (`SCREAMING_SNAKE_CASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    ClientRead,
    ClientCreate,
    ClientUpdate,
    ClientDelete,
    SyncRead,
    SyncUpdate,
    WebhookRead,
    WebhookCreate,
    WebhookUpdate,
    WebhookDelete,
    WebhookTest,
    WebhookNotify,
    WebhookRetry,
    KeyManage,
    AuditRead,
}

impl Permission {
    /// The wire name, e.g. `WEBHOOK_CREATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ClientRead => "CLIENT_READ",
            Permission::ClientCreate => "CLIENT_CREATE",
            Permission::ClientUpdate => "CLIENT_UPDATE",
            Permission::ClientDelete => "CLIENT_DELETE",
            Permission::SyncRead => "SYNC_READ",
            Permission::SyncUpdate => "SYNC_UPDATE",
            Permission::WebhookRead => "WEBHOOK_READ",
            Permission::WebhookCreate => "WEBHOOK_CREATE",
            Permission::WebhookUpdate => "WEBHOOK_UPDATE",
            Permission::WebhookDelete => "WEBHOOK_DELETE",
            Permission::WebhookTest => "WEBHOOK_TEST",
            Permission::WebhookNotify => "WEBHOOK_NOTIFY",
            Permission::WebhookRetry => "WEBHOOK_RETRY",
            Permission::KeyManage => "KEY_MANAGE",
            Permission::AuditRead => "AUDIT_READ",
        }
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::SalesRep, Role::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::SalesRep => "SALES_REP",
            Role::ReadOnly => "READ_ONLY",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == s)
    }

    /// The permission table. ADMIN does everything; MANAGER everything but key management;
    /// SALES_REP works with clients and their sync status and may look at webhooks;
    /// READ_ONLY reads.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
                ClientRead,
                ClientCreate,
                ClientUpdate,
                ClientDelete,
                SyncRead,
                SyncUpdate,
                WebhookRead,
                WebhookCreate,
                WebhookUpdate,
                WebhookDelete,
                WebhookTest,
                WebhookNotify,
                WebhookRetry,
                KeyManage,
                AuditRead,
            ],
            Role::Manager => &[
                ClientRead,
                ClientCreate,
                ClientUpdate,
                ClientDelete,
                SyncRead,
                SyncUpdate,
                WebhookRead,
                WebhookCreate,
                WebhookUpdate,
                WebhookDelete,
                WebhookTest,
                WebhookNotify,
                WebhookRetry,
            ],
            Role::SalesRep => &[
                ClientRead,
                ClientCreate,
                ClientUpdate,
                SyncRead,
                SyncUpdate,
                WebhookRead,
            ],
            Role::ReadOnly => &[ClientRead, SyncRead, WebhookRead],
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

/// A stored API key: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, so a person can tell keys apart: 12 of a generated
    /// key, at most 4 of a key shorter than 32 characters (a dev key a person chose).
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the key stops working, if it was created to expire; null for a key that does not.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key last authenticated a request, to within a minute; null
    /// for a key never used.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key's use is written at most this often (a conditional write on the stored key), so
/// authenticating costs no write per request.
pub const KEY_USE_RECORDED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Who is calling: resolved from the bearer key, the only source of the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    /// The key's name when it was verified, for the audit log's record of who acted.
    pub key_name: std::sync::Arc<str>,
    pub role: Role,
    /// When the key stops working (`ApiKey::expires_at`).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> crate::error::Result<()> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(crate::error::Error::Forbidden(permission.as_str()))
        }
    }
}

const KEY_PREFIX: &str = "crm_";
const PREFIX_SHOWN: usize = KEY_PREFIX.len() + 8;
/// Keys shorter than this were chosen by a person (`CRM_DEV_API_KEY`, e.g. `dev-secret`), not
/// generated (47 characters): their stored prefix shows at most [`SHORT_KEY_PREFIX_SHOWN`]
/// characters, and never more than a quarter of the key, so listing keys does not tell them.
const SHORT_KEY: usize = 32;
const SHORT_KEY_PREFIX_SHOWN: usize = 4;

/// A new random key (256 bits), as shown once to its owner.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Keys carry 256 bits of entropy, so a fast hash is as strong as a slow one here.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The first characters of a key, stored so a person can tell keys apart.
pub fn key_prefix(key: &str) -> String {
    let length = key.chars().count();
    let shown = if length < SHORT_KEY {
        SHORT_KEY_PREFIX_SHOWN.min(length / 4)
    } else {
        PREFIX_SHOWN
    };
    key.chars().take(shown).collect()
}

/// The longest name of an API key.
pub const KEY_NAME_MAX: usize = 100;

/// A new API key as an ADMIN asks for it: a name to know it by, the role it acts in and,
/// optionally, when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewKey {
    /// The key's name trimmed, once it follows the rule of a text field; an expiry must be in
    /// the future (a key born expired is a mistake, not a key).
    pub fn validated(self, now: DateTime<Utc>) -> Result<NewKey, Error> {
        let mut errors = FieldErrors::default();
        let name = errors.text("name", &self.name, KEY_NAME_MAX);
        if self.expires_at.is_some_and(|at| at <= now) {
            errors.fail("expiresAt", "must be in the future");
        }
        errors.finish()?;
        Ok(NewKey {
            name: name.unwrap_or_default(),
            role: self.role,
            expires_at: self.expires_at,
        })
    }
}

impl ApiKey {
    pub fn new(tenant_id: Uuid, name: String, role: Role, key: &str, now: DateTime<Utc>) -> ApiKey {
        ApiKey {
            id: Uuid::now_v7(),
            tenant_id,
            name,
            role,
            prefix: key_prefix(key),
            key_hash: hash_key(key),
            created_at: now,
            expires_at: None,
            last_used_at: None,
        }
    }

    /// The same key, made to stop working at `expires_at` (`None`: never).
    pub fn expiring_at(self, expires_at: Option<DateTime<Utc>>) -> ApiKey {
        ApiKey { expires_at, ..self }
    }

    /// Whether the key no longer authenticates at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        expired(self.expires_at, now)
    }

    /// Whether a use at `now` should be written: none is, or the one written is older than
    /// [`use_stale_before`]`(now)`.
    pub fn use_unrecorded(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at
            .is_none_or(|last| last < use_stale_before(now))
    }
}

/// A written use older than this, at `now`, is written again: [`KEY_USE_RECORDED_EVERY`] ago.
pub fn use_stale_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - KEY_USE_RECORDED_EVERY
}

/// Whether a key that expires at `expires_at` no longer authenticates at `now`: it works up to,
/// not at, its expiry.
pub fn expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const EVERY_PERMISSION: [Permission; 15] = [
        ClientRead,
        ClientCreate,
        ClientUpdate,
        ClientDelete,
        SyncRead,
        SyncUpdate,
        WebhookRead,
        WebhookCreate,
        WebhookUpdate,
        WebhookDelete,
        WebhookTest,
        WebhookNotify,
        WebhookRetry,
        KeyManage,
        AuditRead,
    ];

    /// The whole matrix, written out so that a change to the table is a visible change here.
    #[test]
    fn permission_matrix() {
        let expected = |role: Role, permission: Permission| -> bool {
            match role {
                Role::Admin => true,
                Role::Manager => !matches!(permission, KeyManage | AuditRead),
                Role::SalesRep => matches!(
                    permission,
                    ClientRead | ClientCreate | ClientUpdate | SyncRead | SyncUpdate | WebhookRead
                ),
                Role::ReadOnly => matches!(permission, ClientRead | SyncRead | WebhookRead),
            }
        };
        for role in Role::ALL {
            for permission in EVERY_PERMISSION {
                assert_eq!(
                    role.can(permission),
                    expected(role, permission),
                    "{role:?} {permission:?}"
                );
            }
        }
    }

    #[test]
    fn roles_round_trip_through_their_wire_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn keys_are_random_and_stored_only_as_hashes() {
        let first = generate_key();
        let second = generate_key();
        assert_ne!(first, second);
        assert!(first.starts_with("crm_") && first.len() == 4 + 43);
        let stored = ApiKey::new(Uuid::now_v7(), "ci".into(), Role::Admin, &first, Utc::now());
        assert_eq!(stored.key_hash, hash_key(&first));
        assert_ne!(stored.key_hash, hash_key(&second));
        assert!(!stored.key_hash.contains(&first[4..]));
        assert_eq!(stored.prefix, first[..12]);
    }

    #[test]
    fn a_short_key_chosen_by_a_person_keeps_all_but_a_few_characters_to_itself() {
        for (key, prefix) in [
            ("dev-secret", "de"),
            ("dev-key-for-scripts", "dev-"),
            ("abc", ""),
            ("0123456789abcdef0123456789abcde", "0123"),
        ] {
            assert_eq!(key_prefix(key), prefix, "{key}");
        }
        let chosen = "0123456789abcdef0123456789abcdef";
        assert_eq!(key_prefix(chosen), chosen[..12], "32 characters and more");
    }
}
