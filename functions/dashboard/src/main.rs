//! Lambda `dashboard`: serves the dashboard's page and assets (`GET /`, `GET /dashboard/…`,
//! public: they hold no data) behind API Gateway. The page calls the API with the key a person
//! pastes.

use common::config::{Config, Mode};
use common::http::{handle, routes::routes_of};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::logging::init();
    let deps = Config::from_env(Mode::Production)?.build_deps().await?;
    let routes = routes_of("dashboard");
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handle(&deps, &routes, request).await)
    }))
    .await
}
