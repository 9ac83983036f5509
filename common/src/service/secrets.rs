//! Webhook secrets at rest (docs/architecture.md §Secrets at rest): every write stores them
//! sealed under the deployment's data key, and only what signs or shows a secret opens one.
//!
//! The data keys live in the store, wrapped by the main key (`KeyWrapper`: KMS on AWS,
//! crm-local's main key). A process unwraps a data key once, when it first seals or opens a
//! secret (never at start), and keeps it for its life: one KMS call per Lambda container.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::domain::sealed_secret::{
    open, seal, sealing_key_id, CipherKey, DataKey, SecretPlace, SecretSlot, StoredSecret,
    WrappedDataKey,
};
use crate::domain::webhook::{SigningSecrets, Webhook};
use crate::error::{Error, Result};
use crate::ports::{Clock, KeyWrapper, PlainSecretMigration, Sealer, SecretStore, SystemClock};

/// The id of a deployment's first data key.
const FIRST_DATA_KEY: u32 = 1;

/// Seals and opens webhook secrets for one process, with the data keys it has unwrapped.
pub struct SecretKeeper {
    /// `None`: this process was given no main key (a function that never touches a secret).
    access: Option<KeyAccess>,
    unwrapped: RwLock<Unwrapped>,
    /// One unwrap at a time: concurrent first uses wait for it instead of calling KMS each.
    loading: tokio::sync::Mutex<()>,
}

struct KeyAccess {
    wrapper: Arc<dyn KeyWrapper>,
    store: Arc<dyn SecretStore>,
}

#[derive(Default)]
struct Unwrapped {
    by_id: HashMap<u32, Arc<DataKey>>,
    /// The newest data key: new secrets are sealed with it.
    sealing: Option<Arc<DataKey>>,
}

impl SecretKeeper {
    /// Seals with the data keys in `store`, wrapped by `wrapper`.
    pub fn new(wrapper: Arc<dyn KeyWrapper>, store: Arc<dyn SecretStore>) -> SecretKeeper {
        SecretKeeper {
            access: Some(KeyAccess { wrapper, store }),
            unwrapped: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// A process with no main key: sealing or opening a sealed secret is an internal error.
    pub fn without_key() -> SecretKeeper {
        SecretKeeper {
            access: None,
            unwrapped: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Seals each plain secret of `webhook` (both, during a rotation) before it is written.
    pub async fn seal(&self, webhook: &mut Webhook) -> Result<()> {
        let plain_previous = matches!(webhook.previous_secret, Some((StoredSecret::Plain(_), _)));
        if webhook.secret.is_sealed() && !plain_previous {
            return Ok(());
        }
        let key = self.sealing_key().await?;
        let (tenant_id, webhook_id) = (webhook.tenant_id, webhook.id);
        let place = |slot| SecretPlace {
            tenant_id,
            webhook_id,
            slot,
        };
        if let StoredSecret::Plain(text) = &webhook.secret {
            let sealed = seal(&key, &place(SecretSlot::Current), text);
            webhook.secret = StoredSecret::Sealed(sealed);
        }
        let previous = place(SecretSlot::Previous);
        if let Some((secret @ StoredSecret::Plain(_), _)) = &mut webhook.previous_secret {
            *secret = StoredSecret::Sealed(seal(&key, &previous, secret.as_stored()));
        }
        Ok(())
    }

    /// The secrets of `webhook` in the clear, for signing.
    pub async fn open(&self, webhook: &Webhook) -> Result<SigningSecrets> {
        let current = self
            .open_one(webhook, SecretSlot::Current, &webhook.secret)
            .await?;
        let previous = match &webhook.previous_secret {
            None => None,
            Some((secret, until)) => Some((
                self.open_one(webhook, SecretSlot::Previous, secret).await?,
                *until,
            )),
        };
        Ok(SigningSecrets { current, previous })
    }

    /// The current secret of `webhook` in the clear (a rotation keeps it as the previous one).
    pub async fn open_current(&self, webhook: &Webhook) -> Result<String> {
        self.open_one(webhook, SecretSlot::Current, &webhook.secret)
            .await
    }

    async fn open_one(
        &self,
        webhook: &Webhook,
        slot: SecretSlot,
        secret: &StoredSecret,
    ) -> Result<String> {
        let sealed = match secret {
            // Written before secrets were sealed: read as it is until the migration seals it.
            StoredSecret::Plain(text) => return Ok(text.clone()),
            StoredSecret::Sealed(sealed) => sealed,
        };
        let unreadable = |error| Error::internal(format!("webhook {}: {error}", webhook.id));
        let key = self
            .key(sealing_key_id(sealed).map_err(unreadable)?)
            .await?;
        let place = SecretPlace {
            tenant_id: webhook.tenant_id,
            webhook_id: webhook.id,
            slot,
        };
        open(&key, &place, sealed).map_err(unreadable)
    }

    /// Seals one secret with the newest data key (made first if the deployment has none): for
    /// the migration of plain secrets (`seal_plain_secrets`).
    pub async fn sealer(&self) -> Result<Sealer> {
        let key = self.sealing_key().await?;
        Ok(Arc::new(move |place: &SecretPlace, plain: &str| {
            seal(&key, place, plain)
        }))
    }

    fn cached(&self, id: Option<u32>) -> Option<Arc<DataKey>> {
        let unwrapped = self
            .unwrapped
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match id {
            Some(id) => unwrapped.by_id.get(&id).cloned(),
            None => unwrapped.sealing.clone(),
        }
    }

    fn access(&self) -> Result<&KeyAccess> {
        self.access.as_ref().ok_or_else(|| {
            Error::internal(
                "this process has no key to webhook secrets: it needs CRM_KMS_KEY_ID \
                 (on AWS) or CRM_MASTER_KEY",
            )
        })
    }

    /// The data key `id`, unwrapped on its first use.
    async fn key(&self, id: u32) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cached(Some(id)) {
            return Ok(key);
        }
        let access = self.access()?;
        let _loading = self.loading.lock().await;
        if let Some(key) = self.cached(Some(id)) {
            return Ok(key);
        }
        let keys = access.store.data_keys().await?;
        let wrapped = keys.iter().find(|key| key.id == id).ok_or_else(|| {
            Error::internal(format!(
                "a secret is sealed with data key {id}, which the store lacks"
            ))
        })?;
        self.unwrap(access, wrapped).await
    }

    /// The newest data key, unwrapped on first use; the deployment's first, made now, if it has
    /// none yet.
    async fn sealing_key(&self) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cached(None) {
            return Ok(key);
        }
        let access = self.access()?;
        let _loading = self.loading.lock().await;
        if let Some(key) = self.cached(None) {
            return Ok(key);
        }
        let mut keys = access.store.data_keys().await?;
        if keys.is_empty() {
            let new = access.wrapper.generate_data_key().await?;
            let first = WrappedDataKey {
                id: FIRST_DATA_KEY,
                wrapped: new.wrapped,
                wrapped_by: access.wrapper.kind().to_owned(),
                created_at: SystemClock.now(),
            };
            if access.store.add_first_data_key(&first).await? {
                let key = Arc::new(data_key(first.id, &new.plain)?);
                self.remember(&key, true);
                return Ok(key);
            }
            // Another process made the first one meanwhile: use that one.
            keys = access.store.data_keys().await?;
        }
        let newest = keys
            .iter()
            .max_by_key(|key| key.id)
            .ok_or_else(|| Error::internal("the keyring is empty after a data key was added"))?;
        let key = match self.cached(Some(newest.id)) {
            Some(key) => key,
            None => self.unwrap(access, newest).await?,
        };
        self.remember(&key, true);
        Ok(key)
    }

    async fn unwrap(&self, access: &KeyAccess, wrapped: &WrappedDataKey) -> Result<Arc<DataKey>> {
        let kind = access.wrapper.kind();
        if wrapped.wrapped_by != kind {
            return Err(Error::internal(format!(
                "data key {} was wrapped by the {} key; this process has the {kind} key",
                wrapped.id, wrapped.wrapped_by
            )));
        }
        let plain = access.wrapper.unwrap_data_key(&wrapped.wrapped).await?;
        let key = Arc::new(data_key(wrapped.id, &plain)?);
        self.remember(&key, false);
        Ok(key)
    }

    fn remember(&self, key: &Arc<DataKey>, sealing: bool) {
        let mut unwrapped = self
            .unwrapped
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        unwrapped.by_id.insert(key.id, Arc::clone(key));
        if sealing {
            unwrapped.sealing = Some(Arc::clone(key));
        }
    }
}

fn data_key(id: u32, plain: &[u8]) -> Result<DataKey> {
    let cipher = CipherKey::from_bytes(plain).ok_or_else(|| {
        Error::internal(format!(
            "data key {id} is not an AES-256 key ({} bytes)",
            plain.len()
        ))
    })?;
    Ok(DataKey::new(id, cipher))
}

/// Seals every secret written in the clear before secrets were sealed: crm-local at start (SQLite,
/// one transaction), `crm-admin encrypt-secrets` (either store). Idempotent, and safe while the
/// service runs. How many webhooks it sealed.
pub async fn seal_plain_secrets(
    keeper: &SecretKeeper,
    store: &dyn PlainSecretMigration,
) -> Result<usize> {
    store.seal_plain_secrets(keeper.sealer().await?).await
}
