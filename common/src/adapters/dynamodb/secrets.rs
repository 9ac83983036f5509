//! The keyring (`SecretStore`) and the sealing of plain secrets (`PlainSecretMigration`),
//! docs/architecture.md §Secrets at rest.
//!
//! The keyring is one item, pk and sk `KEYRING`, its data keys (wrapped) in a list: a process
//! reads it with one GetItem, whatever function it is, and the first data key is put on
//! condition that the item does not exist, so that of two containers racing to make it, the
//! loser reads the winner's.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use uuid::Uuid;

use super::attributes::*;
use super::tables::{PK, SK};
use super::{sdk_error, Condition, DynamoStore, VERSION};
use crate::domain::sealed_secret::{SecretPlace, SecretSlot, WrappedDataKey, SEALED_PREFIX};
use crate::error::{Error, Result};
use crate::ports::{PlainSecretMigration, Sealer, SecretStore};
use crate::time::rfc3339;

const KEYRING: &str = "KEYRING";
const DATA_KEYS: &str = "data_keys";
const WEBHOOK_SK_PREFIX: &str = "WEBHOOK#";
/// Rounds of reading a webhook again after a concurrent change, before the migration gives up
/// (and says to run it again).
const SEAL_ROUNDS: u32 = 5;

fn keyring_key() -> Item {
    key(KEYRING.to_owned(), KEYRING.to_owned())
}

fn data_key_value(key: &WrappedDataKey) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("id".to_owned(), number(i64::from(key.id))),
        (
            "wrapped".to_owned(),
            AttributeValue::B(Blob::new(key.wrapped.clone())),
        ),
        ("wrapped_by".to_owned(), text(&key.wrapped_by)),
        ("created_at".to_owned(), text(rfc3339(key.created_at))),
    ]))
}

fn data_key_of(value: &AttributeValue) -> Result<WrappedDataKey> {
    let AttributeValue::M(item) = value else {
        return Err(corrupt(DATA_KEYS));
    };
    let wrapped = match item.get("wrapped") {
        Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
        _ => return Err(corrupt("wrapped")),
    };
    Ok(WrappedDataKey {
        id: number_of(item, "id")?,
        wrapped,
        wrapped_by: text_of(item, "wrapped_by")?.to_owned(),
        created_at: time_of(item, "created_at")?,
    })
}

#[async_trait]
impl SecretStore for DynamoStore {
    async fn data_keys(&self) -> Result<Vec<WrappedDataKey>> {
        let Some(item) = self.get(KEYRING.to_owned(), KEYRING.to_owned()).await? else {
            return Ok(Vec::new());
        };
        let Some(AttributeValue::L(keys)) = item.get(DATA_KEYS) else {
            return Err(corrupt(DATA_KEYS));
        };
        let mut keys = keys.iter().map(data_key_of).collect::<Result<Vec<_>>>()?;
        keys.sort_by_key(|key| key.id);
        Ok(keys)
    }

    async fn add_first_data_key(&self, key: &WrappedDataKey) -> Result<bool> {
        let mut item = keyring_key();
        item.insert(
            DATA_KEYS.into(),
            AttributeValue::L(vec![data_key_value(key)]),
        );
        item.insert(VERSION.into(), number(1));
        match self
            .put_alone(item, Condition::new_item(), "the first data key")
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl PlainSecretMigration for DynamoStore {
    /// Scans the table (an operator's command, never a request path) for webhooks with a plain
    /// secret, and seals each with its own conditional update.
    async fn seal_plain_secrets(&self, seal: Sealer) -> Result<usize> {
        let mut sealed = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(#sk, :webhook) AND (NOT begins_with(#secret, :sealed) \
                     OR (attribute_exists(#previous) AND NOT begins_with(#previous, :sealed)))",
                )
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#secret", "secret")
                .expression_attribute_names("#previous", "previous_secret")
                .expression_attribute_values(":webhook", text(WEBHOOK_SK_PREFIX))
                .expression_attribute_values(":sealed", text(SEALED_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items() {
                if self.seal_webhook(item, &seal).await? {
                    sealed += 1;
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(sealed),
            }
        }
    }
}

impl DynamoStore {
    /// Seals the plain secrets of the webhook `item`, on condition of its version; read again
    /// after a concurrent change. `false` if it is gone or was sealed meanwhile.
    async fn seal_webhook(&self, item: &Item, seal: &Sealer) -> Result<bool> {
        let pk = text_of(item, PK)?.to_owned();
        let sk = text_of(item, SK)?.to_owned();
        let mut read = Some(item.clone());
        for _ in 0..SEAL_ROUNDS {
            let Some(item) = read.take() else {
                return Ok(false);
            };
            let place = |slot| -> Result<SecretPlace> {
                Ok(SecretPlace {
                    tenant_id: Uuid::parse_str(text_of(&item, "tenant_id")?)
                        .map_err(|_| corrupt("tenant_id"))?,
                    webhook_id: uuid_of(&item, "id")?,
                    slot,
                })
            };
            let mut attributes = Vec::new();
            for (name, slot) in [
                ("secret", SecretSlot::Current),
                ("previous_secret", SecretSlot::Previous),
            ] {
                if let Some(plain) = optional_text(&item, name) {
                    if !plain.starts_with(SEALED_PREFIX) {
                        attributes.push((name, Some(text(seal(&place(slot)?, &plain)))));
                    }
                }
            }
            if attributes.is_empty() {
                return Ok(false);
            }
            let version: i64 = number_of(&item, VERSION)?;
            attributes.push((VERSION, Some(number(version + 1))));
            let update = self.versioned_update(key(pk.clone(), sk.clone()), attributes, version)?;
            match self
                .update_alone(update, "sealing a webhook's secret")
                .await
            {
                Ok(()) => return Ok(true),
                Err(Error::Conflict(_)) => read = self.get(pk.clone(), sk.clone()).await?,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict(format!(
            "{sk}: changed {SEAL_ROUNDS} times while being sealed; run the command again"
        )))
    }
}
