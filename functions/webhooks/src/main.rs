//! Lambda `webhooks`: serves its rows of the route table behind API Gateway.

use common::config::{Config, Mode};
use common::http::{handle, routes::routes_of};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::logging::init();
    let deps = Config::from_env(Mode::Production)?.build_deps().await?;
    let routes = routes_of("webhooks");
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handle(&deps, &routes, request).await)
    }))
    .await
}
