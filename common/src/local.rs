//! `crm-local`'s background tasks (the queue consumer and the sweeper's timer, which call the
//! same functions as the `worker` and `sweeper` Lambdas) and what it tells a person at start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::config::StoreConfig;
use crate::service::deps::Deps;
use crate::service::sweeper::sweep;
use crate::service::tenants::DevTenant;
use crate::service::worker::{process_message, MessageOutcome};

/// Attempts in flight at once in one process (and so, at most, connections to one receiver).
pub const CONCURRENCY: usize = 64;
const BATCH: usize = 10;

/// Consumes the queue until `stop` turns true: wakes on enqueue, never polls on a timer.
pub async fn run_worker(deps: Deps, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        // Only take messages there is room to work on, so none waits out its visibility.
        let Ok(room) = Arc::clone(&permits).acquire_many_owned(BATCH as u32).await else {
            break;
        };
        drop(room);
        let received = tokio::select! {
            received = deps.queue.receive(BATCH, Duration::from_secs(20)) => received,
            _ = stop.changed() => break,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                tracing::error!(%error, "receiving from the queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let deps = deps.clone();
            tasks.spawn(async move {
                let outcome = process_message(&deps, &message.body, None).await;
                if outcome == MessageOutcome::Done {
                    if let Err(error) = deps.queue.delete(&message.receipt).await {
                        tracing::warn!(%error, "deleting a handled message failed; it will be redelivered");
                    }
                }
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    // Let attempts in progress finish and record their result.
    while tasks.join_next().await.is_some() {}
}

/// Runs the sweeper every `interval` until `stop` turns true.
pub async fn run_sweeper(deps: Deps, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = sweep(&deps, None).await {
                    tracing::error!(%error, "sweep failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Where crm-local keeps its data, as a person looks for it: the SQLite file, or the DynamoDB
/// table, the SQS queue and the endpoint the SDK talks to (`endpoint`: `AWS_ENDPOINT_URL`).
pub fn store_line(store: &StoreConfig, endpoint: Option<&str>) -> String {
    match store {
        #[cfg(feature = "embedded")]
        StoreConfig::Sqlite { dir } => {
            let file = dir.join(crate::adapters::sqlite::DB_FILE);
            let file = std::path::absolute(&file).unwrap_or(file);
            format!(
                "Store: SQLite file {} (data and delivery queue; CRM_DATA_DIR chooses the directory)",
                file.display()
            )
        }
        StoreConfig::Aws { table, queue_url } => {
            let queue = queue_url.as_deref().unwrap_or("(CRM_QUEUE_URL is not set)");
            let endpoint = match endpoint {
                Some(url) => format!("{url} (AWS_ENDPOINT_URL)"),
                None => "AWS, in the region of AWS_REGION or the AWS profile".to_owned(),
            };
            format!("Store: DynamoDB table {table}, SQS queue {queue}, endpoint {endpoint}")
        }
    }
}

/// Where the dev tenant's ADMIN key is: printed now (first start), or already known.
/// `from_env`: whether the key came from `CRM_DEV_API_KEY`.
pub fn dev_key_line(dev: &DevTenant, from_env: bool) -> String {
    match (dev, from_env) {
        (DevTenant::Created { key }, true) => {
            format!("Created the dev tenant with CRM_DEV_API_KEY. Its ADMIN API key: {key}")
        }
        (DevTenant::Created { key }, false) => format!(
            "Created the dev tenant (this key is shown only now; CRM_DEV_API_KEY chooses one). \
             Its ADMIN API key: {key}"
        ),
        (DevTenant::Existing, true) => {
            "Dev tenant: CRM_DEV_API_KEY is one of its ADMIN API keys.".to_owned()
        }
        (DevTenant::Existing, false) => "Dev tenant: its ADMIN API key was printed at its first \
             start; set CRM_DEV_API_KEY to add one you choose."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "embedded")]
    #[test]
    fn the_sqlite_store_is_shown_as_its_file() {
        let line = store_line(
            &StoreConfig::Sqlite {
                dir: ".crm-data".into(),
            },
            None,
        );
        let cwd = std::env::current_dir().unwrap();
        let file = cwd.join(".crm-data").join("crm.sqlite3");
        assert!(line.contains(&file.display().to_string()), "{line}");
        assert!(!line.contains("Sqlite {"), "{line}");
    }

    #[test]
    fn the_aws_store_is_shown_as_table_queue_and_endpoint() {
        let store = StoreConfig::Aws {
            table: "crm".into(),
            queue_url: Some("http://127.0.0.1:5000/123456789012/crm-deliveries".into()),
        };
        let line = store_line(&store, Some("http://127.0.0.1:5000"));
        assert_eq!(
            line,
            "Store: DynamoDB table crm, SQS queue http://127.0.0.1:5000/123456789012/crm-deliveries, \
             endpoint http://127.0.0.1:5000 (AWS_ENDPOINT_URL)"
        );
        assert!(store_line(&store, None).contains("endpoint AWS, in the region of AWS_REGION"));
    }

    #[test]
    fn the_key_is_printed_on_first_start_only() {
        let created = DevTenant::Created {
            key: "crm_k".into(),
        };
        for from_env in [false, true] {
            let line = dev_key_line(&created, from_env);
            assert!(line.ends_with("Its ADMIN API key: crm_k"), "{line}");
        }
        assert!(!dev_key_line(&DevTenant::Existing, false).contains("crm_"));
        assert!(!dev_key_line(&DevTenant::Existing, true).contains("crm_"));
    }
}
