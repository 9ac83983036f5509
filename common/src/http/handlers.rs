//! One arm per operation: read path and query, call the use case, shape the response.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use uuid::Uuid;

use super::error::HttpError;
use super::fields::one_of;
use super::requests;
use super::routes::{Operation, PathParams};
use crate::domain::auth::Caller;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::page::PageRequest;
use crate::error::{Error, Result};
use crate::reply::json_response;
use crate::service::deps::Deps;
use crate::service::{audit, clients, deliveries, keys, redelivery, sync, webhooks, worker};

pub(super) async fn dispatch(
    deps: &Deps,
    operation: Operation,
    caller: &Caller,
    request: &Request,
    params: &PathParams,
) -> Result<Response<Body>, HttpError> {
    let body = request.body().as_ref();
    let ok = || {
        json_response(
            StatusCode::OK,
            &super::openapi::Acknowledged { success: true },
        )
    };
    Ok(match operation {
        Operation::OpenApi => super::openapi::response(),
        Operation::GetSyncStatus => {
            json_response(StatusCode::OK, &sync::sync_status(deps, caller).await?)
        }
        Operation::UpdateSyncStatus if requests::sync::is_batch(body) => {
            let results =
                sync::update_sync_statuses(deps, caller, requests::sync::BatchBody(body)).await?;
            json_response(StatusCode::OK, &requests::sync::batch_answer(results))
        }
        Operation::UpdateSyncStatus => {
            sync::update_sync_status(deps, caller, requests::sync::UpdateBody(body)).await?;
            ok()
        }
        Operation::CreateClient => json_response(
            StatusCode::CREATED,
            &clients::create_client(deps, caller, requests::clients::CreateBody(body)).await?,
        ),
        Operation::ListClients => {
            let query = requests::clients::ListQuery(request.uri().query().unwrap_or(""));
            json_response(
                StatusCode::OK,
                &clients::list_clients(deps, caller, query).await?,
            )
        }
        Operation::GetClient => {
            let id = path_id(params)?;
            json_response(
                StatusCode::OK,
                &clients::get_client(deps, caller, id).await?,
            )
        }
        Operation::UpdateClient => {
            let id = path_id(params)?;
            json_response(
                StatusCode::OK,
                &clients::update_client(deps, caller, id, requests::clients::UpdateBody(body))
                    .await?,
            )
        }
        Operation::GetSyncHistory => json_response(
            StatusCode::OK,
            &sync::sync_history(deps, caller, path_id(params)?, page_request(request)?).await?,
        ),
        Operation::DeleteClient => {
            clients::delete_client(deps, caller, path_id(params)?).await?;
            no_content()
        }
        Operation::CreateKey => json_response(
            StatusCode::CREATED,
            &keys::create_key(deps, caller, requests::keys::CreateBody(body)).await?,
        ),
        Operation::ListKeys => json_response(StatusCode::OK, &keys::list_keys(deps, caller).await?),
        Operation::DeleteKey => {
            keys::delete_key(deps, caller, path_id(params)?).await?;
            no_content()
        }
        Operation::ListAudit => {
            let query = requests::audit::ListQuery(request.uri().query().unwrap_or(""));
            json_response(
                StatusCode::OK,
                &audit::list_audit(deps, caller, query).await?,
            )
        }
        Operation::Notify => json_response(
            StatusCode::OK,
            &deliveries::notify(
                deps,
                caller,
                requests::deliveries::NotifyRequestIn {
                    body,
                    headers: request.headers(),
                },
            )
            .await?,
        ),
        Operation::RetryDeliveries => json_response(
            StatusCode::OK,
            &deliveries::retry_failed(deps, caller, requests::deliveries::RetryBody(body)).await?,
        ),
        Operation::RecoverDeliveries => json_response(
            StatusCode::OK,
            &redelivery::recover(
                deps,
                caller,
                path_id(params)?,
                requests::webhooks::RecoverBody(body),
            )
            .await?,
        ),
        Operation::ReplayEvents => json_response(
            StatusCode::OK,
            &redelivery::replay(
                deps,
                caller,
                path_id(params)?,
                requests::webhooks::ReplayBody(body),
            )
            .await?,
        ),
        Operation::ResendDelivery => json_response(
            StatusCode::OK,
            &redelivery::resend_delivery(deps, caller, path_id(params)?).await?,
        ),
        Operation::ListEventTypes => {
            json_response(StatusCode::OK, &webhooks::event_catalogue(caller)?)
        }
        Operation::WebhookStats => json_response(
            StatusCode::OK,
            &deliveries::delivery_stats(deps, caller).await?,
        ),
        Operation::GetDelivery => json_response(
            StatusCode::OK,
            &deliveries::get_delivery(deps, caller, path_id(params)?).await?,
        ),
        Operation::CreateWebhook => json_response(
            StatusCode::CREATED,
            &webhooks::create_webhook(deps, caller, requests::webhooks::CreateBody(body)).await?,
        ),
        Operation::ListWebhooks => {
            let page = page_request(request)?;
            json_response(
                StatusCode::OK,
                &webhooks::list_webhooks(deps, caller, page).await?,
            )
        }
        Operation::GetWebhook => json_response(
            StatusCode::OK,
            &webhooks::get_webhook(deps, caller, path_id(params)?).await?,
        ),
        Operation::UpdateWebhook => json_response(
            StatusCode::OK,
            &webhooks::update_webhook(
                deps,
                caller,
                path_id(params)?,
                requests::webhooks::UpdateBody(body),
            )
            .await?,
        ),
        Operation::DeleteWebhook => {
            webhooks::delete_webhook(deps, caller, path_id(params)?).await?;
            no_content()
        }
        Operation::TestWebhook => json_response(
            StatusCode::OK,
            &worker::test_webhook(deps, caller, path_id(params)?).await?,
        ),
        Operation::RotateWebhookSecret => json_response(
            StatusCode::OK,
            &webhooks::rotate_secret(
                deps,
                caller,
                path_id(params)?,
                requests::webhooks::RotateBody(body),
            )
            .await?,
        ),
        Operation::ListWebhookDeliveries => {
            let page = page_request(request)?;
            let status = match query_param(request, "status") {
                None => None,
                Some(text) => Some(DeliveryStatus::parse(&text).ok_or_else(|| {
                    Error::invalid_field(
                        "status",
                        one_of(&DeliveryStatus::ALL.map(DeliveryStatus::as_str)),
                    )
                })?),
            };
            json_response(
                StatusCode::OK,
                &deliveries::list_deliveries(deps, caller, path_id(params)?, status, page).await?,
            )
        }
        Operation::SearchDeliveries => {
            let query = requests::deliveries::SearchQuery(request.uri().query().unwrap_or(""));
            json_response(
                StatusCode::OK,
                &deliveries::search_deliveries(deps, caller, query).await?,
            )
        }
        Operation::Me => json_response(StatusCode::OK, &keys::me(deps, caller).await?),
        Operation::GraphQl => graphql_request(deps, caller, body).await?,
        Operation::GraphiQl => graphiql_page()?,
        // Served before authentication (`http::serve`).
        Operation::Dashboard => return Err(HttpError::NoRoute),
    })
}

/// The operations of public routes: no caller, so nothing that touches a tenant's data.
pub(super) fn dispatch_public(operation: Operation) -> Result<Response<Body>, HttpError> {
    match operation {
        Operation::GraphiQl => graphiql_page(),
        // A route marked public by mistake stays closed.
        _ => Err(Error::Unauthorized.into()),
    }
}

#[cfg(feature = "graphql")]
async fn graphql_request(
    deps: &Deps,
    caller: &Caller,
    body: &[u8],
) -> Result<Response<Body>, HttpError> {
    Ok(crate::graphql::execute(deps, caller, body).await?)
}

#[cfg(feature = "graphql")]
fn graphiql_page() -> Result<Response<Body>, HttpError> {
    Ok(crate::graphql::graphiql_page())
}

/// Built without the `graphql` feature (every Lambda but `graphql`): its routes are not served.
#[cfg(not(feature = "graphql"))]
async fn graphql_request(_: &Deps, _: &Caller, _: &[u8]) -> Result<Response<Body>, HttpError> {
    Err(HttpError::NoRoute)
}

#[cfg(not(feature = "graphql"))]
fn graphiql_page() -> Result<Response<Body>, HttpError> {
    Err(HttpError::NoRoute)
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn path_id(params: &PathParams) -> Result<Uuid> {
    params
        .get("id")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| Error::invalid_field("id", "must be a UUID"))
}

/// The query string, decoded; a repeated parameter keeps its first value.
fn query_param(request: &Request, name: &str) -> Option<String> {
    requests::query_param(request.uri().query()?, name)
}

fn page_request(request: &Request) -> Result<PageRequest> {
    let limit = query_param(request, "limit")
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| Error::invalid_field("limit", "must be an integer"))
        })
        .transpose()?;
    PageRequest::new(
        limit,
        query_param(request, "cursor").as_deref(),
        ("limit", "cursor"),
    )
}
