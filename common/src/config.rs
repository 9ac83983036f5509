//! Typed configuration from the environment. The AWS adapters are chosen when `CRM_TABLE` is set
//! (with `CRM_QUEUE_URL`), the embedded ones otherwise; `AWS_ENDPOINT_URL` points the SDK at an
//! emulator. The embedded store exists only in builds with the `embedded` feature (crm-local,
//! crm-admin, tests, bench): a Lambda function without it must be given `CRM_TABLE`.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::http_sender::HttpSender;
#[cfg(feature = "kms")]
use crate::adapters::kms::KmsKeyWrapper;
use crate::adapters::main_key::MAIN_KEY_VAR;
#[cfg(feature = "secrets")]
use crate::adapters::main_key::{MainKey, MainKeyWrapper};
use crate::adapters::sdk_config::shared_config;
#[cfg(feature = "embedded")]
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::sqs::SqsQueue;
use crate::domain::delivery::{Jitter, RetrySchedule, MAX_JITTER_PERCENT};
use crate::domain::health::DEFAULT_DISABLE_AFTER;
use crate::domain::retention::{Retention, MAX_RETENTION_DAYS};
use crate::domain::webhook::TargetPolicy;
use crate::error::{Error, Result};
#[cfg(feature = "secrets")]
use crate::ports::KeyWrapper;
use crate::ports::{Queue, SecretStore, Store};
use crate::service::deps::{DeliverySettings, Deps, TenantLimits};
use crate::service::fairness::FairShare;
#[cfg(feature = "secrets")]
use crate::service::secrets::seal_plain_secrets;
use crate::service::secrets::SecretKeeper;

pub const DEFAULT_DATA_DIR: &str = ".crm-data";
/// The variables of the per-tenant limits (`TenantLimits`), named in their refusals too.
pub const MAX_WEBHOOKS_PER_TENANT: &str = "CRM_MAX_WEBHOOKS_PER_TENANT";
pub const MAX_EVENTS_PER_SECOND: &str = "CRM_MAX_EVENTS_PER_SECOND";
pub const RETENTION_DAYS: &str = "CRM_RETENTION_DAYS";
/// How long a received embedded-queue message stays hidden: above the longest attempt (30 s).
pub const LOCAL_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `CRM_DATA_DIR` (default `./.crm-data`): the SQLite store and its queue.
    #[cfg(feature = "embedded")]
    Sqlite { dir: std::path::PathBuf },
    /// `CRM_TABLE` and `CRM_QUEUE_URL`.
    Aws {
        table: String,
        queue_url: Option<String>,
    },
}

/// The main key that wraps the data keys of webhook secrets (docs/architecture.md §Secrets at
/// rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsKey {
    /// `CRM_KMS_KEY_ID`: the stack's KMS key, set only on the functions that seal or open
    /// secrets (builds with common's `kms` feature).
    #[cfg(feature = "kms")]
    Kms(String),
    /// `CRM_MASTER_KEY`, in a build that seals secrets (common's `secrets` feature).
    #[cfg(feature = "secrets")]
    MainKey(MainKey),
    /// Neither set, in crm-local (or over the embedded store): `master.key` in the data
    /// directory, made there on first start. Not in a Lambda build.
    #[cfg(feature = "embedded")]
    MainKeyFile(std::path::PathBuf),
    /// Neither set, on AWS: a function that never seals or opens a secret.
    Unset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    /// What wraps the data keys of webhook secrets.
    pub secrets: SecretsKey,
    /// `CRM_RETENTION_DAYS`: how long either store keeps finished work.
    pub retention: Retention,
    pub delivery: DeliverySettings,
}

/// Whether this process is `crm-local` (private and plain-HTTP targets allowed by default) or
/// a production function (refused unless the operator says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Local,
}

/// The deployment's configuration is wrong (an environment variable), so the process cannot
/// start. Never the fault of a request, so never a 400: should one reach a caller, it is an
/// internal error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Error {
        Error::internal(error)
    }
}

fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::new(format!(
            "{name}={other}: expected true or false"
        ))),
    }
}

/// A positive count, or `default` when unset.
fn count(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(format!(
                "{name}={text}: expected a whole number above 0"
            ))),
        },
    }
}

impl Config {
    pub fn from_env(mode: Mode) -> Result<Config, ConfigError> {
        Config::from_lookup(mode, |name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let store = match non_empty("CRM_TABLE") {
            Some(table) => StoreConfig::Aws {
                table,
                queue_url: non_empty("CRM_QUEUE_URL"),
            },
            None => embedded_store(non_empty("CRM_DATA_DIR"))?,
        };
        let local = mode == Mode::Local;
        let retry_schedule = match non_empty("WEBHOOK_RETRY_DELAYS") {
            Some(text) => RetrySchedule::parse(&text)
                .map_err(|e| ConfigError::new(format!("WEBHOOK_RETRY_DELAYS: {e}")))?,
            None => RetrySchedule::default(),
        };
        let retry_jitter = match non_empty("WEBHOOK_RETRY_JITTER") {
            Some(text) => text
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .and_then(Jitter::percent)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "WEBHOOK_RETRY_JITTER={text}: expected a percentage from 0 (no jitter) to {MAX_JITTER_PERCENT}"
                    ))
                })?,
            None => Jitter::default(),
        };
        let disable_after = match non_empty("WEBHOOK_DISABLE_AFTER_SECONDS") {
            Some(text) => match text.trim().parse::<i64>() {
                Ok(0) => None,
                Ok(seconds) if seconds > 0 => Some(chrono::Duration::seconds(seconds)),
                _ => {
                    return Err(ConfigError::new(format!(
                        "WEBHOOK_DISABLE_AFTER_SECONDS={text}: expected a number of seconds (0: never disable)"
                    )))
                }
            },
            None => Some(DEFAULT_DISABLE_AFTER),
        };
        let sweep_grace = match non_empty("WEBHOOK_SWEEP_GRACE_SECONDS") {
            Some(text) => Duration::from_secs(text.trim().parse().map_err(|_| {
                ConfigError::new("WEBHOOK_SWEEP_GRACE_SECONDS must be a number of seconds")
            })?),
            None => DeliverySettings::default().sweep_grace,
        };
        let defaults = FairShare::default();
        let fair_share = FairShare {
            per_tenant: count(&lookup, "CRM_MAX_IN_FLIGHT_PER_TENANT", defaults.per_tenant)?,
            per_endpoint: count(
                &lookup,
                "CRM_MAX_IN_FLIGHT_PER_ENDPOINT",
                defaults.per_endpoint,
            )?,
        };
        let default_limits = TenantLimits::default();
        let limits = TenantLimits {
            webhooks: count(&lookup, MAX_WEBHOOKS_PER_TENANT, default_limits.webhooks)?,
            events_per_second: count(
                &lookup,
                MAX_EVENTS_PER_SECOND,
                default_limits.events_per_second,
            )?,
        };
        let delivery = DeliverySettings {
            retry_schedule,
            retry_jitter,
            disable_after,
            fair_share,
            limits,
            targets: TargetPolicy {
                allow_http: flag(&lookup, "WEBHOOK_ALLOW_HTTP", local)?,
                allow_private: flag(&lookup, "WEBHOOK_ALLOW_PRIVATE_TARGETS", local)?,
            },
            sweep_grace,
        };
        let retention = match non_empty(RETENTION_DAYS) {
            Some(text) => text
                .trim()
                .parse()
                .ok()
                .and_then(Retention::days)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "{RETENTION_DAYS}={text}: expected a whole number of days from 1 to {MAX_RETENTION_DAYS}"
                    ))
                })?,
            None => Retention::default(),
        };
        let secrets = secrets_key(&lookup, &store, mode)?;
        Ok(Config {
            store,
            secrets,
            retention,
            delivery,
        })
    }

    /// The keeper of webhook secrets over `store`, with the main key configured. Nothing is
    /// read or unwrapped here but `master.key`: data keys are unwrapped on first use.
    #[cfg(feature = "secrets")]
    pub async fn secret_keeper<S: SecretStore + 'static>(
        &self,
        store: Arc<S>,
    ) -> Result<SecretKeeper> {
        let wrapper: Arc<dyn KeyWrapper> = match &self.secrets {
            SecretsKey::Unset => return Ok(SecretKeeper::without_key()),
            #[cfg(feature = "kms")]
            SecretsKey::Kms(key_id) => {
                Arc::new(KmsKeyWrapper::new(shared_config().await, key_id.clone()))
            }
            SecretsKey::MainKey(key) => Arc::new(MainKeyWrapper::new(key)?),
            #[cfg(feature = "embedded")]
            SecretsKey::MainKeyFile(path) => {
                Arc::new(MainKeyWrapper::new(&MainKey::from_file(path)?)?)
            }
        };
        Ok(SecretKeeper::new(wrapper, store))
    }

    /// A build without the `secrets` feature seals nothing, and its configuration holds no key
    /// (`secrets_key` refuses one). Generic, so that no `dyn SecretStore` of the store, and none
    /// of its keyring code, is made in such a build.
    #[cfg(not(feature = "secrets"))]
    pub async fn secret_keeper<S: SecretStore + 'static>(
        &self,
        _store: Arc<S>,
    ) -> Result<SecretKeeper> {
        Ok(SecretKeeper::without_key())
    }

    /// The store alone, for operator commands.
    pub async fn build_store(&self) -> Result<Arc<dyn Store>> {
        Ok(match &self.store {
            #[cfg(feature = "embedded")]
            StoreConfig::Sqlite { dir } => {
                Arc::new(SqliteStore::open(dir)?.retaining(self.retention))
            }
            StoreConfig::Aws { table, .. } => Arc::new(
                DynamoStore::new(aws_clients().await.0, table.clone()).retaining(self.retention),
            ),
        })
    }

    /// Seals every webhook secret written in the clear before secrets were sealed, on either
    /// store (`crm-admin encrypt-secrets`; crm-local does it on SQLite at start): how many
    /// webhooks it sealed. Idempotent, and safe while the service runs.
    #[cfg(feature = "secrets")]
    pub async fn seal_plain_secrets(&self) -> Result<usize> {
        match &self.store {
            #[cfg(feature = "embedded")]
            StoreConfig::Sqlite { dir } => {
                let store = Arc::new(SqliteStore::open(dir)?);
                let keeper = self.secret_keeper(Arc::clone(&store)).await?;
                seal_plain_secrets(&keeper, store.as_ref()).await
            }
            StoreConfig::Aws { table, .. } => {
                let store = Arc::new(DynamoStore::new(aws_clients().await.0, table.clone()));
                let keeper = self.secret_keeper(Arc::clone(&store)).await?;
                seal_plain_secrets(&keeper, store.as_ref()).await
            }
        }
    }

    /// Builds every adapter once; call before serving the first request.
    pub async fn build_deps(&self) -> Result<Deps> {
        let (store, queue, secrets): (Arc<dyn Store>, Arc<dyn Queue>, SecretKeeper) =
            match &self.store {
                #[cfg(feature = "embedded")]
                StoreConfig::Sqlite { dir } => {
                    let store = SqliteStore::open(dir)?.retaining(self.retention);
                    let queue = store.queue(LOCAL_VISIBILITY_TIMEOUT);
                    // This process is the embedded queue's one consumer: what a previous run held
                    // when it died is not in progress any more.
                    queue.release_unacknowledged().await?;
                    let secrets = self.secret_keeper(Arc::new(store.clone())).await?;
                    // Secrets written before they were sealed, sealed before the first request.
                    seal_plain_secrets(&secrets, &store).await?;
                    (Arc::new(store), Arc::new(queue), secrets)
                }
                StoreConfig::Aws { table, queue_url } => {
                    let queue_url = queue_url.clone().ok_or_else(|| {
                        ConfigError::new("CRM_QUEUE_URL must be set with CRM_TABLE")
                    })?;
                    let (dynamodb, sqs) = aws_clients().await;
                    let store = DynamoStore::new(dynamodb, table.clone()).retaining(self.retention);
                    let secrets = self.secret_keeper(Arc::new(store.clone())).await?;
                    (
                        Arc::new(store),
                        Arc::new(SqsQueue::new(sqs, queue_url)),
                        secrets,
                    )
                }
            };
        let targets = self.delivery.targets;
        let sender = Arc::new(HttpSender::new(targets.allow_http, targets.allow_private)?);
        Ok(Deps::new(store, queue, sender, self.delivery.clone()).with_secrets(secrets))
    }
}

/// `CRM_KMS_KEY_ID`, else `CRM_MASTER_KEY` (refused unless it is a key), else crm-local's (or the
/// embedded store's) `master.key`, else none.
fn secrets_key(
    lookup: &impl Fn(&str) -> Option<String>,
    store: &StoreConfig,
    mode: Mode,
) -> Result<SecretsKey, ConfigError> {
    let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    if let Some(key_id) = non_empty("CRM_KMS_KEY_ID") {
        #[cfg(feature = "kms")]
        return Ok(SecretsKey::Kms(key_id.trim().to_owned()));
        #[cfg(not(feature = "kms"))]
        return Err(ConfigError::new(format!(
            "CRM_KMS_KEY_ID={key_id}: this build has no KMS client (common's `kms` feature, \
             for the functions that seal or open webhook secrets)"
        )));
    }
    if let Some(text) = non_empty(MAIN_KEY_VAR) {
        return main_key(&text);
    }
    main_key_file(store, mode, &non_empty)
}

#[cfg(feature = "secrets")]
fn main_key(text: &str) -> Result<SecretsKey, ConfigError> {
    MainKey::parse(text)
        .map(SecretsKey::MainKey)
        .ok_or_else(|| {
            ConfigError::new(format!(
                "{MAIN_KEY_VAR} must be 32 bytes in base64 or hex (e.g. the output of \
             `openssl rand -base64 32`)"
            ))
        })
}

#[cfg(not(feature = "secrets"))]
fn main_key(_text: &str) -> Result<SecretsKey, ConfigError> {
    Err(ConfigError::new(format!(
        "{MAIN_KEY_VAR} is set, but this build seals no webhook secret (common's `secrets` \
         feature, for the functions that seal or open one): unset it for this function"
    )))
}

#[cfg(feature = "embedded")]
fn main_key_file(
    store: &StoreConfig,
    mode: Mode,
    non_empty: &impl Fn(&str) -> Option<String>,
) -> Result<SecretsKey, ConfigError> {
    let data_dir = match store {
        StoreConfig::Sqlite { dir } => Some(dir.clone()),
        StoreConfig::Aws { .. } if mode == Mode::Local => Some(std::path::PathBuf::from(
            non_empty("CRM_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR.into()),
        )),
        StoreConfig::Aws { .. } => None,
    };
    Ok(data_dir.map_or(SecretsKey::Unset, |dir| {
        SecretsKey::MainKeyFile(dir.join(crate::adapters::main_key::MAIN_KEY_FILE))
    }))
}

/// A Lambda build: its main key is KMS's, or `CRM_MASTER_KEY`.
#[cfg(not(feature = "embedded"))]
fn main_key_file(
    _store: &StoreConfig,
    _mode: Mode,
    _non_empty: &impl Fn(&str) -> Option<String>,
) -> Result<SecretsKey, ConfigError> {
    Ok(SecretsKey::Unset)
}

#[cfg(feature = "embedded")]
fn embedded_store(data_dir: Option<String>) -> Result<StoreConfig, ConfigError> {
    Ok(StoreConfig::Sqlite {
        dir: std::path::PathBuf::from(data_dir.unwrap_or(DEFAULT_DATA_DIR.into())),
    })
}

#[cfg(not(feature = "embedded"))]
fn embedded_store(_data_dir: Option<String>) -> Result<StoreConfig, ConfigError> {
    Err(ConfigError::new(
        "CRM_TABLE must be set (with CRM_QUEUE_URL): this build has no embedded store \
         (common's `embedded` feature, for crm-local and crm-admin)",
    ))
}

/// Both SDK clients from one loaded configuration: one credentials lookup and one connection
/// pool for the two. Building a client does no I/O, so a caller that needs one drops the other.
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    let shared = shared_config().await;
    (
        aws_sdk_dynamodb::Client::new(&shared),
        aws_sdk_sqs::Client::new(&shared),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "kms")]
    use crate::adapters::kms::KMS_KEY_VAR;

    fn config(mode: Mode, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(mode, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// For the delivery settings, which do not depend on the store: a build without the
    /// embedded store needs a table named.
    fn with_table(mode: Mode, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        config(mode, &[vars, &[("CRM_TABLE", "crm")]].concat())
    }

    #[test]
    fn retry_jitter_is_a_percentage_twenty_by_default() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(c.delivery.retry_jitter, Jitter::default());
        for (text, percent) in [("0", 0), (" 35 ", 35), ("10%", 10), ("100", 100)] {
            let c = with_table(Mode::Production, &[("WEBHOOK_RETRY_JITTER", text)]).unwrap();
            assert_eq!(
                c.delivery.retry_jitter,
                Jitter::percent(percent).unwrap(),
                "{text}"
            );
        }
        for bad in ["-1", "101", "0.2", "some"] {
            let error = with_table(Mode::Production, &[("WEBHOOK_RETRY_JITTER", bad)]).unwrap_err();
            assert!(error.to_string().contains("WEBHOOK_RETRY_JITTER"), "{bad}");
        }
    }

    #[test]
    fn webhooks_are_disabled_after_five_days_of_failures_unless_told_otherwise() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(c.delivery.disable_after, Some(chrono::Duration::days(5)));
        let var = "WEBHOOK_DISABLE_AFTER_SECONDS";
        let c = with_table(Mode::Production, &[(var, "2")]).unwrap();
        assert_eq!(c.delivery.disable_after, Some(chrono::Duration::seconds(2)));
        let c = with_table(Mode::Production, &[(var, "0")]).unwrap();
        assert_eq!(c.delivery.disable_after, None);
        for bad in ["-1", "1.5", "soon"] {
            let error = with_table(Mode::Production, &[(var, bad)]).unwrap_err();
            assert!(error.to_string().contains(var), "{bad}");
        }
    }

    #[test]
    fn retention_is_a_number_of_days_thirty_by_default() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(c.retention, Retention::default());
        let c = with_table(Mode::Production, &[(RETENTION_DAYS, " 7 ")]).unwrap();
        assert_eq!(c.retention, Retention::days(7).unwrap());
        for bad in ["0", "-3", "1.5", "a week", "3651"] {
            let error = with_table(Mode::Production, &[(RETENTION_DAYS, bad)]).unwrap_err();
            assert!(error.to_string().contains(RETENTION_DAYS), "{bad}: {error}");
        }
    }

    #[test]
    fn fair_shares_are_positive_counts_with_defaults() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(c.delivery.fair_share, FairShare::default());
        let c = with_table(
            Mode::Production,
            &[
                ("CRM_MAX_IN_FLIGHT_PER_TENANT", "8"),
                ("CRM_MAX_IN_FLIGHT_PER_ENDPOINT", " 2 "),
            ],
        )
        .unwrap();
        assert_eq!(
            c.delivery.fair_share,
            FairShare {
                per_tenant: 8,
                per_endpoint: 2
            }
        );
        for bad in ["0", "-1", "many"] {
            let error = with_table(Mode::Production, &[("CRM_MAX_IN_FLIGHT_PER_TENANT", bad)])
                .map(|_| ())
                .unwrap_err();
            assert!(
                error.to_string().contains("CRM_MAX_IN_FLIGHT_PER_TENANT"),
                "{error}"
            );
        }
    }

    #[test]
    fn tenant_limits_are_positive_counts_with_defaults() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(
            c.delivery.limits,
            TenantLimits {
                webhooks: 1_000,
                events_per_second: 1_000
            }
        );
        let c = with_table(
            Mode::Local,
            &[
                ("CRM_MAX_WEBHOOKS_PER_TENANT", "20"),
                ("CRM_MAX_EVENTS_PER_SECOND", " 5000 "),
            ],
        )
        .unwrap();
        assert_eq!(
            c.delivery.limits,
            TenantLimits {
                webhooks: 20,
                events_per_second: 5_000
            }
        );
        for name in ["CRM_MAX_WEBHOOKS_PER_TENANT", "CRM_MAX_EVENTS_PER_SECOND"] {
            for bad in ["0", "-3", "1e3", "lots"] {
                let error = with_table(Mode::Production, &[(name, bad)])
                    .map(|_| ())
                    .unwrap_err();
                let message = error.to_string();
                assert!(message.contains(name) && message.contains(bad), "{message}");
            }
        }
    }

    #[test]
    fn picks_aws_only_when_a_table_is_named() {
        let c = config(
            Mode::Production,
            &[("CRM_TABLE", "crm"), ("CRM_QUEUE_URL", "q")],
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Aws {
                table: "crm".into(),
                queue_url: Some("q".into())
            }
        );
    }

    #[cfg(feature = "embedded")]
    #[test]
    fn picks_the_embedded_store_without_a_table() {
        let c = config(Mode::Production, &[]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                dir: DEFAULT_DATA_DIR.into()
            }
        );
        let c = config(Mode::Production, &[("CRM_DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                dir: "/tmp/x".into()
            }
        );
    }

    #[cfg(not(feature = "embedded"))]
    #[test]
    fn needs_a_table_without_the_embedded_store() {
        let error = config(Mode::Production, &[]).unwrap_err().to_string();
        assert!(error.contains("CRM_TABLE must be set"), "{error}");
    }

    #[test]
    fn private_targets_are_allowed_by_default_only_locally() {
        let production = with_table(Mode::Production, &[]).unwrap().delivery.targets;
        assert!(!production.allow_http && !production.allow_private);
        let local = with_table(Mode::Local, &[]).unwrap().delivery.targets;
        assert!(local.allow_http && local.allow_private);
        let locked =
            with_table(Mode::Local, &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")]).unwrap();
        assert!(!locked.delivery.targets.allow_private);
        assert!(with_table(Mode::Local, &[("WEBHOOK_ALLOW_HTTP", "maybe")]).is_err());
    }

    #[cfg(feature = "secrets")]
    #[test]
    fn a_function_on_aws_has_no_main_key_unless_given_one() {
        let c = with_table(Mode::Production, &[]).unwrap();
        assert_eq!(c.secrets, SecretsKey::Unset);
        let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let c = with_table(Mode::Production, &[(MAIN_KEY_VAR, key)]).unwrap();
        assert_eq!(c.secrets, SecretsKey::MainKey(MainKey::parse(key).unwrap()));
    }

    #[cfg(feature = "embedded")]
    #[test]
    fn crm_local_keeps_its_main_key_in_the_data_directory() {
        let c = with_table(Mode::Local, &[("CRM_DATA_DIR", "/tmp/crm")]).unwrap();
        assert_eq!(
            c.secrets,
            SecretsKey::MainKeyFile("/tmp/crm/master.key".into())
        );
    }

    #[cfg(feature = "embedded")]
    #[test]
    fn the_embedded_store_keeps_its_main_key_beside_it() {
        let c = config(Mode::Production, &[("CRM_DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(
            c.secrets,
            SecretsKey::MainKeyFile("/tmp/x/master.key".into())
        );
    }

    #[test]
    fn a_main_key_that_is_not_32_bytes_is_refused_at_start() {
        for bad in ["secret", "AQEBAQ==", &"ab".repeat(31), &"ab".repeat(33)] {
            let error = with_table(Mode::Local, &[(MAIN_KEY_VAR, bad)])
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(MAIN_KEY_VAR) && error.contains("32 bytes"),
                "{bad}: {error}"
            );
        }
    }

    #[cfg(feature = "kms")]
    #[test]
    fn the_kms_key_comes_before_a_main_key() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234";
        let c = with_table(
            Mode::Local,
            &[(KMS_KEY_VAR, key), (MAIN_KEY_VAR, "not even a key")],
        )
        .unwrap();
        assert_eq!(c.secrets, SecretsKey::Kms(key.to_owned()));
    }

    #[cfg(not(feature = "kms"))]
    #[test]
    fn a_kms_key_needs_a_build_with_kms() {
        let error = with_table(Mode::Production, &[("CRM_KMS_KEY_ID", "k")])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("no KMS client"), "{error}");
    }

    #[test]
    fn retry_delays_come_from_the_environment() {
        let c = with_table(Mode::Production, &[("WEBHOOK_RETRY_DELAYS", "1,2")]).unwrap();
        assert_eq!(
            c.delivery.retry_schedule,
            RetrySchedule::parse("1,2").unwrap()
        );
        assert!(with_table(Mode::Production, &[("WEBHOOK_RETRY_DELAYS", "soon")]).is_err());
    }
}
