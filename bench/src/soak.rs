//! The soak at length: `common::faults::soak`, the test's soak run longer, with more callers,
//! clients and restarts, on SQLite and on DynamoDB and SQS (moto). Prints the test's figures.

use std::sync::Arc;
use std::time::Duration;

use common::adapters::dynamodb::tables::{create_table, main_table};
use common::adapters::dynamodb::DynamoStore;
use common::adapters::sqlite::SqliteStore;
use common::adapters::sqs::{create_queues, SqsQueue};
use common::faults::soak::{run as soak, SoakPlan};
use common::ports::{Queue, Store};

/// The tests' visibility timeout: a message a crash or an injected fault left undeleted shows
/// again this soon (the deployment's 360 s would only make the settling wait).
const VISIBILITY: Duration = Duration::from_secs(5);
const SEED: u64 = 23;

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let load_for = Duration::from_secs(if quick { 30 } else { 120 });
    println!(
        "\n## Soak: {} s of load with 10% injected faults\n",
        load_for.as_secs()
    );
    println!(
        "Callers create clients, change sync statuses and notify through the HTTP glue while \
         4% of the calls through the Store, Queue and Sender ports fail before reaching the \
         backend, 4% fail after it did the work and 2% wait 50 ms (seed {SEED}); the worker \
         and sweeper are crashed and shut down in turn {} times. Then the faults stop and the \
         sweeper settles. Problems are listed under a table; none is the expected result.\n",
        plan(load_for, 1).restarts
    );
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let queue: Arc<dyn Queue> = Arc::new(store.queue(VISIBILITY));
    let report = soak("SQLite", Arc::new(store), queue, &plan(load_for, 16)).await?;
    println!("{}", report.table());

    anyhow::ensure!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "the soak section needs moto for DynamoDB: run it through scripts/bench.sh"
    );
    let (store, queue) = dynamodb().await?;
    // moto serialises its requests: more callers only queue behind each other.
    let report = soak("DynamoDB (moto)", store, queue, &plan(load_for, 6)).await?;
    println!("{}", report.table());
    Ok(())
}

fn plan(load_for: Duration, callers: usize) -> SoakPlan {
    SoakPlan {
        initial_clients: 100,
        restarts: 6,
        settle_within: Duration::from_secs(300),
        ..SoakPlan::new(SEED, load_for, callers)
    }
}

/// A new table and queue on the emulator at `AWS_ENDPOINT_URL`, named for this run.
async fn dynamodb() -> anyhow::Result<(Arc<dyn Store>, Arc<dyn Queue>)> {
    let shared = common::adapters::sdk_config::shared_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
    let sqs = aws_sdk_sqs::Client::new(&shared);
    let name = format!("crm-bench-soak-{}", uuid::Uuid::new_v4().simple());
    create_table(&dynamodb, &name, &main_table()).await?;
    let queue_url = create_queues(&sqs, &name, VISIBILITY).await?;
    Ok((
        Arc::new(DynamoStore::new(dynamodb, name)),
        Arc::new(SqsQueue::new(sqs, queue_url)),
    ))
}
