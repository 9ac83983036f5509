//! Lambda `worker`: consumes the delivery queue (SQS, `ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use common::config::{Config, Mode};
use common::lambda::{deadline_from_epoch_ms, handle_sqs_event};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::logging::init();
    let deps = Config::from_env(Mode::Production)?.build_deps().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(handle_sqs_event(deps, event.payload, Some(deadline)).await)
    }))
    .await
}
