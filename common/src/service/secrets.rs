//! Webhook secrets at rest (docs/architecture.md §Secrets at rest): every write stores them
//! sealed under the deployment's data key, and only what signs or shows a secret opens one.
//!
//! The data keys live in the store, wrapped by the main key (`KeyWrapper`: KMS on AWS,
//! crm-local's main key). A process unwraps a data key once, when it first seals or opens a
//! secret (never at start), and keeps it for its life: one KMS call per Lambda container.
//!
//! The keys and the sealing (`keys`) are compiled only with common's `secrets` feature, which the
//! functions that seal or open a secret enable (through `kms`), with crm-local and crm-admin.
//! Another function's keeper has no key and no code to use one: it passes a plain secret through,
//! and a sealed one is an internal error, as in a process given no key.

use crate::domain::sealed_secret::{SecretSlot, StoredSecret};
use crate::domain::webhook::{SigningSecrets, Webhook};
use crate::error::{Error, Result};

#[cfg(feature = "secrets")]
mod keys;
#[cfg(feature = "secrets")]
use keys::Keys;

/// A build without the `secrets` feature holds no key: the type has no value.
#[cfg(not(feature = "secrets"))]
enum Keys {}

/// Seals and opens webhook secrets for one process, with the data keys it has unwrapped.
pub struct SecretKeeper {
    /// `None`: this process was given no main key (a function that never touches a secret).
    keys: Option<Keys>,
}

impl SecretKeeper {
    /// Seals with the data keys in `store`, wrapped by `wrapper`.
    #[cfg(feature = "secrets")]
    pub fn new(
        wrapper: std::sync::Arc<dyn crate::ports::KeyWrapper>,
        store: std::sync::Arc<dyn crate::ports::SecretStore>,
    ) -> SecretKeeper {
        SecretKeeper {
            keys: Some(Keys::new(wrapper, store)),
        }
    }

    /// A process with no main key: sealing or opening a sealed secret is an internal error.
    pub fn without_key() -> SecretKeeper {
        SecretKeeper { keys: None }
    }

    /// Seals each plain secret of `webhook` (both, during a rotation) before it is written.
    pub async fn seal(&self, webhook: &mut Webhook) -> Result<()> {
        let plain_previous = matches!(webhook.previous_secret, Some((StoredSecret::Plain(_), _)));
        if webhook.secret.is_sealed() && !plain_previous {
            return Ok(());
        }
        self.keys()?.seal(webhook).await
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
        match secret {
            // Written before secrets were sealed: read as it is until the migration seals it.
            StoredSecret::Plain(text) => Ok(text.clone()),
            StoredSecret::Sealed(sealed) => self.keys()?.open(webhook, slot, sealed).await,
        }
    }

    /// Seals one secret with the newest data key (made first if the deployment has none): for
    /// the migration of plain secrets (`seal_plain_secrets`).
    #[cfg(feature = "secrets")]
    pub async fn sealer(&self) -> Result<crate::ports::Sealer> {
        self.keys()?.sealer().await
    }

    fn keys(&self) -> Result<&Keys> {
        self.keys.as_ref().ok_or_else(|| {
            Error::internal(
                "this process has no key to webhook secrets: it needs CRM_KMS_KEY_ID \
                 (on AWS) or CRM_MASTER_KEY",
            )
        })
    }
}

#[cfg(not(feature = "secrets"))]
impl Keys {
    async fn seal(&self, _webhook: &mut Webhook) -> Result<()> {
        match *self {}
    }

    async fn open(&self, _webhook: &Webhook, _slot: SecretSlot, _sealed: &str) -> Result<String> {
        match *self {}
    }
}

/// Seals every secret written in the clear before secrets were sealed: crm-local at start (SQLite,
/// one transaction), `crm-admin encrypt-secrets` (either store). Idempotent, and safe while the
/// service runs. How many webhooks it sealed.
#[cfg(feature = "secrets")]
pub async fn seal_plain_secrets(
    keeper: &SecretKeeper,
    store: &dyn crate::ports::PlainSecretMigration,
) -> Result<usize> {
    store.seal_plain_secrets(keeper.sealer().await?).await
}
