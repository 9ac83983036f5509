//! The route table: every REST operation, its path and the Lambda function that serves it.
//! `crm-local` serves all of it; each Lambda serves its own rows; the SAM template mirrors it.

use lambda_http::http::Method;

use super::error::HttpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    GetSyncStatus,
    UpdateSyncStatus,
    CreateClient,
    ListClients,
    GetClient,
    UpdateClient,
    DeleteClient,
    /// `GET /api/clients/{id}/sync-history`: the client's sync status changes, newest first.
    GetSyncHistory,
    CreateKey,
    ListKeys,
    DeleteKey,
    /// `GET /api/audit`: the tenant's audit log, newest first (ADMIN only).
    ListAudit,
    Notify,
    RetryDeliveries,
    /// `POST /api/webhooks/deliveries/{id}/resend`: one more attempt of a finished delivery.
    ResendDelivery,
    /// `POST /api/webhooks/{id}/replay`: past events sent to a webhook as new deliveries.
    ReplayEvents,
    /// `POST /api/webhooks/{id}/recover`: a webhook's FAILED and CANCELLED deliveries sent again.
    RecoverDeliveries,
    ListEventTypes,
    WebhookStats,
    GetDelivery,
    /// `GET /api/webhooks/deliveries`: the tenant's deliveries, filtered.
    SearchDeliveries,
    CreateWebhook,
    ListWebhooks,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    TestWebhook,
    RotateWebhookSecret,
    ListWebhookDeliveries,
    /// `POST /graphql`: the GraphQL face over the same use cases.
    GraphQl,
    /// `GET /graphql`: the GraphiQL page (public: a static page that holds no data).
    GraphiQl,
    /// `GET /api/openapi.json`: the OpenAPI document of these routes (public: no data).
    OpenApi,
    /// `GET /api/me`: who the key is (tenant, name, role, permissions), for the dashboard.
    Me,
    /// `GET /` and `GET /dashboard/…`: the dashboard's page and assets (public: no data).
    Dashboard,
}

/// Whether an operation reads a JSON body. A body it reads must be declared as JSON
/// (`http::is_json_media_type`); the OpenAPI document describes the same bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// No body is read (one sent is ignored).
    None,
    /// A body may be left out: no body reads as `{}`.
    Optional,
    Required,
}

impl Operation {
    pub fn request_body(self) -> RequestBody {
        use Operation as O;
        match self {
            O::UpdateSyncStatus
            | O::CreateClient
            | O::UpdateClient
            | O::CreateKey
            | O::Notify
            | O::CreateWebhook
            | O::UpdateWebhook
            | O::ReplayEvents
            | O::RecoverDeliveries
            | O::GraphQl => RequestBody::Required,
            O::RetryDeliveries | O::RotateWebhookSecret => RequestBody::Optional,
            O::GetSyncStatus
            | O::ListClients
            | O::GetClient
            | O::DeleteClient
            | O::GetSyncHistory
            | O::ListKeys
            | O::DeleteKey
            | O::ListAudit
            | O::ListEventTypes
            | O::WebhookStats
            | O::GetDelivery
            | O::ResendDelivery
            | O::SearchDeliveries
            | O::ListWebhooks
            | O::GetWebhook
            | O::DeleteWebhook
            | O::TestWebhook
            | O::ListWebhookDeliveries
            | O::GraphiQl
            | O::OpenApi
            | O::Me
            | O::Dashboard => RequestBody::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The binary crate under `functions/` that serves this route in production.
    pub function: &'static str,
    pub operation: Operation,
    /// Served without an API key. Only for pages that hold no tenant data.
    pub public: bool,
}

const fn route(
    method: Method,
    path: &'static str,
    function: &'static str,
    operation: Operation,
) -> Route {
    Route {
        method,
        path,
        function,
        operation,
        public: false,
    }
}

/// A route served without authentication.
const fn public_route(
    method: Method,
    path: &'static str,
    function: &'static str,
    operation: Operation,
) -> Route {
    let mut public = route(method, path, function, operation);
    public.public = true;
    public
}

#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    route(Method::GET,    "/api/crm/sync-status",              "sync-status",           Operation::GetSyncStatus),
    route(Method::POST,   "/api/crm/update-sync-status",       "update-sync-status",    Operation::UpdateSyncStatus),
    route(Method::POST,   "/api/clients",                      "clients",               Operation::CreateClient),
    route(Method::GET,    "/api/clients",                      "clients",               Operation::ListClients),
    route(Method::GET,    "/api/clients/{id}",                 "client",                Operation::GetClient),
    route(Method::PATCH,  "/api/clients/{id}",                 "client",                Operation::UpdateClient),
    route(Method::DELETE, "/api/clients/{id}",                 "client",                Operation::DeleteClient),
    route(Method::GET,    "/api/clients/{id}/sync-history",    "client",                Operation::GetSyncHistory),
    route(Method::POST,   "/api/keys",                         "keys",                  Operation::CreateKey),
    route(Method::GET,    "/api/keys",                         "keys",                  Operation::ListKeys),
    route(Method::DELETE, "/api/keys/{id}",                    "key",                   Operation::DeleteKey),
    route(Method::GET,    "/api/me",                           "keys",                  Operation::Me),
    route(Method::GET,    "/api/audit",                        "keys",                  Operation::ListAudit),
    // Literal paths before `/api/webhooks/{id}`: the more specific route wins, as in API Gateway.
    route(Method::POST,   "/api/webhooks/notify",              "notify",                Operation::Notify),
    route(Method::POST,   "/api/webhooks/retry",               "retry",                 Operation::RetryDeliveries),
    route(Method::GET,    "/api/webhooks/events",              "webhook-events",        Operation::ListEventTypes),
    route(Method::GET,    "/api/webhooks/stats",               "webhook-stats",         Operation::WebhookStats),
    route(Method::GET,    "/api/webhooks/deliveries/{id}",     "delivery",              Operation::GetDelivery),
    route(Method::POST,   "/api/webhooks/deliveries/{id}/resend", "retry",              Operation::ResendDelivery),
    route(Method::GET,    "/api/webhooks/deliveries",          "webhook-deliveries",    Operation::SearchDeliveries),
    route(Method::POST,   "/api/webhooks",                     "webhooks",              Operation::CreateWebhook),
    route(Method::GET,    "/api/webhooks",                     "webhooks",              Operation::ListWebhooks),
    route(Method::GET,    "/api/webhooks/{id}",                "webhook",               Operation::GetWebhook),
    route(Method::PATCH,  "/api/webhooks/{id}",                "webhook",               Operation::UpdateWebhook),
    route(Method::DELETE, "/api/webhooks/{id}",                "webhook",               Operation::DeleteWebhook),
    route(Method::POST,   "/api/webhooks/{id}/test",           "webhook-test",          Operation::TestWebhook),
    route(Method::POST,   "/api/webhooks/{id}/replay",         "retry",                 Operation::ReplayEvents),
    route(Method::POST,   "/api/webhooks/{id}/recover",        "retry",                 Operation::RecoverDeliveries),
    route(Method::POST,   "/api/webhooks/{id}/rotate-secret",  "webhook-rotate-secret", Operation::RotateWebhookSecret),
    route(Method::GET,    "/api/webhooks/{id}/deliveries",     "webhook-deliveries",    Operation::ListWebhookDeliveries),
    route(Method::POST,   "/graphql",                          "graphql",               Operation::GraphQl),
    public_route(Method::GET, "/graphql",                      "graphql",               Operation::GraphiQl),
    public_route(Method::GET, "/api/openapi.json",             "openapi",               Operation::OpenApi),
    public_route(Method::GET, "/",                             "dashboard",             Operation::Dashboard),
    public_route(Method::GET, "/dashboard/app.js",             "dashboard",             Operation::Dashboard),
    public_route(Method::GET, "/dashboard/app.css",            "dashboard",             Operation::Dashboard),
];

/// The rows one Lambda function serves.
pub fn routes_of(function: &str) -> Vec<Route> {
    ROUTES
        .iter()
        .filter(|route| route.function == function)
        .cloned()
        .collect()
}

/// Path parameters captured by a route's `{name}` segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn match_path(template: &'static str, path: &str) -> Option<PathParams> {
    let mut params = Vec::new();
    let mut segments = path.split('/');
    for expected in template.split('/') {
        let actual = segments.next()?;
        match expected.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !actual.is_empty() => params.push((name, actual.to_owned())),
            Some(_) => return None,
            None if expected == actual => {}
            None => return None,
        }
    }
    segments.next().is_none().then_some(PathParams(params))
}

/// Finds the route for a request: 404 when no path matches, 405 (with the allowed methods) when
/// the path matches under other methods only.
pub fn match_route<'r>(
    routes: &'r [Route],
    method: &Method,
    path: &str,
) -> Result<(&'r Route, PathParams), HttpError> {
    // The most specific template wins: `/api/webhooks/events` is that resource under every
    // method (405 for PATCH), never `/api/webhooks/{id}` with the id "events".
    let literal_segments =
        |template: &str| template.split('/').filter(|s| !s.starts_with('{')).count();
    let matching: Vec<(&Route, PathParams)> = routes
        .iter()
        .filter_map(|route| match_path(route.path, path).map(|params| (route, params)))
        .collect();
    let best = matching
        .iter()
        .map(|(route, _)| literal_segments(route.path))
        .max();
    let mut allow = Vec::new();
    for (route, params) in matching {
        if Some(literal_segments(route.path)) != best {
            continue;
        }
        if route.method == *method {
            return Ok((route, params));
        }
        allow.push(route.method.to_string());
    }
    if allow.is_empty() {
        Err(HttpError::NoRoute)
    } else {
        Err(HttpError::MethodNotAllowed { allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_paths_and_captures_parameters() {
        let (route, params) = match_route(ROUTES, &Method::PATCH, "/api/clients/abc").unwrap();
        assert_eq!(route.operation, Operation::UpdateClient);
        assert_eq!(params.get("id"), Some("abc"));
        let (route, _) = match_route(ROUTES, &Method::GET, "/api/clients").unwrap();
        assert_eq!(route.operation, Operation::ListClients);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "/dashboard",
            "/dashboard/other.js",
            "/api",
            "/api/clients/",
            "/api/clients/a/b",
            "/api/crm/sync-status/x",
        ] {
            assert!(
                matches!(
                    match_route(ROUTES, &Method::GET, path),
                    Err(HttpError::NoRoute)
                ),
                "{path}"
            );
        }
        match match_route(ROUTES, &Method::PATCH, "/api/webhooks/events") {
            Err(HttpError::MethodNotAllowed { allow }) => assert_eq!(allow, ["GET"]),
            other => panic!("expected 405, got {other:?}"),
        }
        match match_route(ROUTES, &Method::PUT, "/api/clients/abc") {
            Err(HttpError::MethodNotAllowed { allow }) => {
                assert_eq!(allow, ["GET", "PATCH", "DELETE"])
            }
            other => panic!("expected 405, got {other:?}"),
        }
    }

    #[test]
    fn every_route_belongs_to_one_function_and_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
                if a.path == b.path {
                    assert_eq!(a.function, b.function, "{}", a.path);
                }
            }
        }
        assert_eq!(routes_of("client").len(), 4);
        assert!(routes_of("nope").is_empty());
    }

    /// Skipping the API key is a deliberate, visible choice: this list names every such route.
    #[test]
    fn only_the_listed_routes_skip_authentication() {
        let public: Vec<(String, &str)> = ROUTES
            .iter()
            .filter(|route| route.public)
            .map(|route| (route.method.to_string(), route.path))
            .collect();
        assert_eq!(
            public,
            [
                ("GET".to_owned(), "/graphql"),
                ("GET".to_owned(), "/api/openapi.json"),
                ("GET".to_owned(), "/"),
                ("GET".to_owned(), "/dashboard/app.js"),
                ("GET".to_owned(), "/dashboard/app.css"),
            ]
        );
    }
}
