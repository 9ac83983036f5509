//! Typed configuration from the environment. The AWS adapters are chosen when `CRM_TABLE` is set,
//! the embedded ones otherwise; `AWS_ENDPOINT_URL` points the SDK at an emulator.

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqlite::SqliteStore;
use crate::deps::Deps;
use crate::error::Result;
use crate::ports::Store;

pub const DEFAULT_DATA_DIR: &str = ".crm-data";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `CRM_DATA_DIR` (default `./.crm-data`).
    Sqlite { dir: PathBuf },
    /// `CRM_TABLE`.
    DynamoDb { table: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let store = match non_empty("CRM_TABLE") {
            Some(table) => StoreConfig::DynamoDb { table },
            None => StoreConfig::Sqlite {
                dir: PathBuf::from(non_empty("CRM_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR.into())),
            },
        };
        Ok(Config { store })
    }

    /// Builds the adapters once; call before serving the first request.
    pub async fn build_deps(&self) -> Result<Deps> {
        let store: Arc<dyn Store> = match &self.store {
            StoreConfig::Sqlite { dir } => Arc::new(SqliteStore::open(dir)?),
            StoreConfig::DynamoDb { table } => {
                Arc::new(DynamoStore::new(dynamodb_client().await, table.clone()))
            }
        };
        Ok(Deps::new(store))
    }
}

/// An SDK client from the standard chain (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_dynamodb::Client::new(&shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_dynamodb_only_when_a_table_is_named() {
        let config =
            Config::from_lookup(|name| (name == "CRM_TABLE").then(|| "crm".into())).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::DynamoDb {
                table: "crm".into()
            }
        );
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::Sqlite {
                dir: DEFAULT_DATA_DIR.into()
            }
        );
        let config =
            Config::from_lookup(|name| (name == "CRM_DATA_DIR").then(|| "/tmp/x".into())).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::Sqlite {
                dir: "/tmp/x".into()
            }
        );
    }
}
