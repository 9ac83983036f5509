//! The reference row of `crm-bench init`: the hello world of `lambda_runtime` (its README's
//! shape: a log subscriber, then echo the event), built with the workspace's release profile so
//! that the init time, RSS and size of our functions can be read against the runtime's own
//! floor. Its subscriber is tracing-subscriber's JSON formatter without a per-target filter, as
//! our functions' is (common::logging), so that the build shares their features. Lives under
//! bench/, outside functions/, so the template never deploys it.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .json()
        .init();
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
