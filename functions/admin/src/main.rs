//! `crm-admin`: operator commands, on whichever store the environment selects.

use anyhow::{bail, Context as _};
use common::adapters::dynamodb::tables::{create_table, main_table};
use common::config::{dynamodb_client, Config, StoreConfig};
use common::service::tenants::create_tenant;

const USAGE: &str = "usage:
  crm-admin create-tenant <name>   create a tenant and print its first ADMIN API key
  crm-admin create-tables          create the DynamoDB table named by CRM_TABLE (and wait for it)

The store is DynamoDB when CRM_TABLE is set (AWS_ENDPOINT_URL for an emulator),
otherwise the embedded SQLite store in CRM_DATA_DIR (default ./.crm-data).";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = Config::from_env()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create-tenant", name] => {
            let deps = config.build_deps().await.context("opening the store")?;
            let (tenant, key) = create_tenant(&deps, name).await?;
            println!("tenant: {}", tenant.id);
            println!("ADMIN API key (shown once): {key}");
        }
        ["create-tables"] => {
            let StoreConfig::DynamoDb { table } = &config.store else {
                bail!("CRM_TABLE is not set: the embedded store needs no tables created");
            };
            create_table(&dynamodb_client().await, table, &main_table()).await?;
            println!("table {table} is ACTIVE");
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    Ok(())
}
