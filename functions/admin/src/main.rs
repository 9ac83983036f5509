//! `crm-admin`: operator commands, on whichever store the environment selects.

use anyhow::{bail, Context as _};
use common::adapters::dynamodb::tables::{create_table, main_table};
use common::adapters::dynamodb::DynamoStore;
use common::adapters::sqs::{create_queues, DELIVERY_QUEUE_VISIBILITY};
use common::config::{aws_clients, Config, Mode, StoreConfig};
use common::ports::SystemClock;
use common::service::tenants::create_tenant;
use uuid::Uuid;

const USAGE: &str = "usage:
  crm-admin create-tenant <name>   create a tenant and print its first ADMIN API key
  crm-admin create-tables          create the DynamoDB table named by CRM_TABLE and the delivery
                                   queue named by CRM_QUEUE_NAME (default <table>-deliveries)
                                   with its DLQ; prints `export CRM_QUEUE_URL=...`
  crm-admin recount-webhooks <tenant-id>
                                   DynamoDB: set the tenant's webhook count (which
                                   CRM_MAX_WEBHOOKS_PER_TENANT is checked against) to the
                                   webhooks it has, for webhooks created before the count existed
  crm-admin index-clients <tenant-id>
                                   DynamoDB: put the tenant's clients written before the
                                   last_sync index existed into it, so that the stale-clients
                                   list (GET /api/clients?syncedBefore=) finds them; idempotent
  crm-admin encrypt-secrets        seal every webhook secret still stored in the clear (written
                                   before secrets were encrypted at rest) with the deployment's
                                   data key; needs CRM_KMS_KEY_ID (the stack's SecretsKeyArn
                                   output) on DynamoDB, or CRM_MASTER_KEY; idempotent, safe while
                                   the service runs

The store is DynamoDB when CRM_TABLE is set (AWS_ENDPOINT_URL for an emulator),
otherwise the embedded SQLite store in CRM_DATA_DIR (default ./.crm-data).";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = Config::from_env(Mode::Production)?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create-tenant", name] => {
            let store = config.build_store().await.context("opening the store")?;
            let (tenant, key) = create_tenant(store.as_ref(), &SystemClock, name).await?;
            println!("tenant: {}", tenant.id);
            println!("ADMIN API key (shown once): {key}");
        }
        ["create-tables"] => {
            let StoreConfig::Aws { table, .. } = &config.store else {
                bail!("CRM_TABLE is not set: the embedded store needs no tables created");
            };
            let (dynamodb, sqs) = aws_clients().await;
            create_table(&dynamodb, table, &main_table()).await?;
            println!("table {table} is ACTIVE");
            let queue =
                std::env::var("CRM_QUEUE_NAME").unwrap_or_else(|_| format!("{table}-deliveries"));
            let url = create_queues(&sqs, &queue, DELIVERY_QUEUE_VISIBILITY).await?;
            println!("export CRM_QUEUE_URL={url}");
        }
        ["recount-webhooks", tenant] => {
            let StoreConfig::Aws { table, .. } = &config.store else {
                bail!("CRM_TABLE is not set: the embedded store counts webhooks as it writes them");
            };
            let tenant: Uuid = tenant.parse().context("the tenant id is not a UUID")?;
            let store = DynamoStore::new(aws_clients().await.0, table.clone());
            let webhooks = store.recount_webhooks(tenant).await?;
            println!("tenant {tenant}: {webhooks} webhooks counted");
        }
        ["index-clients", tenant] => {
            let StoreConfig::Aws { table, .. } = &config.store else {
                bail!("CRM_TABLE is not set: the embedded store indexes clients itself");
            };
            let tenant: Uuid = tenant.parse().context("the tenant id is not a UUID")?;
            let store = DynamoStore::new(aws_clients().await.0, table.clone());
            let clients = store.index_clients(tenant).await?;
            println!("tenant {tenant}: {clients} clients indexed");
        }
        ["encrypt-secrets"] => {
            let sealed = config.seal_plain_secrets().await?;
            println!("{sealed} webhooks had secrets in the clear; all are sealed now");
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    Ok(())
}
