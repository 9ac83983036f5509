//! The data keys wrapped by the stack's KMS key (`KeyWrapper`): `GenerateDataKey` makes the
//! deployment's first, `Decrypt` unwraps one, once per container. Only the functions that seal
//! or open webhook secrets link this (common's `kms` feature) and may call KMS (the template's
//! grants); the client is built on first use, never at start.

use std::sync::OnceLock;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;

use crate::error::{Error, Result};
use crate::ports::{KeyWrapper, NewDataKey};

/// `CRM_KMS_KEY_ID`: the key's ARN (the template sets it on the functions that need it).
pub const KMS_KEY_VAR: &str = "CRM_KMS_KEY_ID";
/// The encryption context of every data key: KMS binds a wrapped key to it, and CloudTrail
/// shows it beside each call.
const CONTEXT: (&str, &str) = ("purpose", "crm-webhooks data key");

pub struct KmsKeyWrapper {
    config: SdkConfig,
    key_id: String,
    client: OnceLock<Client>,
}

impl KmsKeyWrapper {
    pub fn new(config: SdkConfig, key_id: impl Into<String>) -> KmsKeyWrapper {
        KmsKeyWrapper {
            config,
            key_id: key_id.into(),
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| Client::new(&self.config))
    }
}

fn kms_error<E, R>(error: SdkError<E, R>) -> Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    Error::internal(format!("KMS: {}", DisplayErrorContext(error)))
}

#[async_trait]
impl KeyWrapper for KmsKeyWrapper {
    fn kind(&self) -> &'static str {
        "aws-kms"
    }

    async fn generate_data_key(&self) -> Result<NewDataKey> {
        let output = self
            .client()
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        match (output.plaintext, output.ciphertext_blob) {
            (Some(plain), Some(wrapped)) => Ok(NewDataKey {
                plain: plain.into_inner(),
                wrapped: wrapped.into_inner(),
            }),
            _ => Err(Error::internal(
                "KMS GenerateDataKey answered without the key",
            )),
        }
    }

    async fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        let output = self
            .client()
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        output
            .plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| Error::internal("KMS Decrypt answered without the key"))
    }
}
