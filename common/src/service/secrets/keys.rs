//! The keyed half of the secret keeper: the data keys a process unwraps and seals or opens with.
//! Only the builds that seal or open a secret (common's `secrets` feature: the `kms` functions,
//! crm-local and crm-admin) compile it, so the other functions link none of it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::domain::sealed_secret::{
    open, seal, sealing_key_id, CipherKey, DataKey, SecretPlace, SecretSlot, StoredSecret,
    WrappedDataKey,
};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::{Clock, KeyWrapper, Sealer, SecretStore, SystemClock};

/// The id of a deployment's first data key.
const FIRST_DATA_KEY: u32 = 1;

/// The main key (its wrapper), the keyring in the store, and the data keys unwrapped so far.
pub(super) struct Keys {
    wrapper: Arc<dyn KeyWrapper>,
    store: Arc<dyn SecretStore>,
    unwrapped: RwLock<Unwrapped>,
    /// One unwrap at a time: concurrent first uses wait for it instead of calling KMS each.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Unwrapped {
    by_id: HashMap<u32, Arc<DataKey>>,
    /// The newest data key: new secrets are sealed with it.
    sealing: Option<Arc<DataKey>>,
}

impl Keys {
    pub(super) fn new(wrapper: Arc<dyn KeyWrapper>, store: Arc<dyn SecretStore>) -> Keys {
        Keys {
            wrapper,
            store,
            unwrapped: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Seals each plain secret of `webhook` with the newest data key.
    pub(super) async fn seal(&self, webhook: &mut Webhook) -> Result<()> {
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

    /// The secret in `slot` of `webhook`, sealed as `sealed`, in the clear.
    pub(super) async fn open(
        &self,
        webhook: &Webhook,
        slot: SecretSlot,
        sealed: &str,
    ) -> Result<String> {
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

    /// Seals one secret with the newest data key (made first if the deployment has none).
    pub(super) async fn sealer(&self) -> Result<Sealer> {
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

    /// The data key `id`, unwrapped on its first use.
    async fn key(&self, id: u32) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cached(Some(id)) {
            return Ok(key);
        }
        let _loading = self.loading.lock().await;
        if let Some(key) = self.cached(Some(id)) {
            return Ok(key);
        }
        let keys = self.store.data_keys().await?;
        let wrapped = keys.iter().find(|key| key.id == id).ok_or_else(|| {
            Error::internal(format!(
                "a secret is sealed with data key {id}, which the store lacks"
            ))
        })?;
        self.unwrap(wrapped).await
    }

    /// The newest data key, unwrapped on first use; the deployment's first, made now, if it has
    /// none yet.
    async fn sealing_key(&self) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cached(None) {
            return Ok(key);
        }
        let _loading = self.loading.lock().await;
        if let Some(key) = self.cached(None) {
            return Ok(key);
        }
        let mut keys = self.store.data_keys().await?;
        if keys.is_empty() {
            let new = self.wrapper.generate_data_key().await?;
            let first = WrappedDataKey {
                id: FIRST_DATA_KEY,
                wrapped: new.wrapped,
                wrapped_by: self.wrapper.kind().to_owned(),
                created_at: SystemClock.now(),
            };
            if self.store.add_first_data_key(&first).await? {
                let key = Arc::new(data_key(first.id, &new.plain)?);
                self.remember(&key, true);
                return Ok(key);
            }
            // Another process made the first one meanwhile: use that one.
            keys = self.store.data_keys().await?;
        }
        let newest = keys
            .iter()
            .max_by_key(|key| key.id)
            .ok_or_else(|| Error::internal("the keyring is empty after a data key was added"))?;
        let key = match self.cached(Some(newest.id)) {
            Some(key) => key,
            None => self.unwrap(newest).await?,
        };
        self.remember(&key, true);
        Ok(key)
    }

    async fn unwrap(&self, wrapped: &WrappedDataKey) -> Result<Arc<DataKey>> {
        let kind = self.wrapper.kind();
        if wrapped.wrapped_by != kind {
            return Err(Error::internal(format!(
                "data key {} was wrapped by the {} key; this process has the {kind} key",
                wrapped.id, wrapped.wrapped_by
            )));
        }
        let plain = self.wrapper.unwrap_data_key(&wrapped.wrapped).await?;
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
