//! Lambda `sweeper`: every minute (EventBridge Scheduler), finishes work a crash left behind.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use common::config::{Config, Mode};
use common::lambda::{deadline_from_epoch_ms, handle_scheduled_event};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::logging::init();
    let deps = Config::from_env(Mode::Production)?.build_deps().await?;
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let report = handle_scheduled_event(deps, event.payload, Some(deadline)).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
