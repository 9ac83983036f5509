//! The dashboard's assets (`dashboard/`: one page, its script and its style sheet), embedded in
//! the binary and served without a key: they hold no data; the page asks the API for it with the
//! key a person pastes, kept in the tab's `sessionStorage`.

use lambda_http::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

/// Scripts and styles of this origin only (no inline script or style, no eval), requests to this
/// origin only (the API), never framed: a page that holds an API key runs nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Path → (media type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    ),
    (
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "/dashboard/app.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/app.css"),
    ),
];

/// The paths of the assets, for the route table's tests and the template's.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(path, _, _)| *path)
}

/// The asset at `path`, with the headers that keep the page to itself; `None`: no such asset.
pub fn asset(path: &str) -> Option<Response<Body>> {
    let (_, media_type, content) = ASSETS.iter().find(|(at, _, _)| *at == path)?;
    let mut response = Response::new(Body::Text((*content).to_owned()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Revalidated on each load: a deploy's new page and script arrive together.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_the_policy() {
        for path in paths() {
            let response = asset(path).unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers();
            assert!(headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("charset=utf-8"));
            assert_eq!(
                headers["content-security-policy"], CONTENT_SECURITY_POLICY,
                "{path}"
            );
        }
        assert!(asset("/dashboard/other.js").is_none());
    }

    #[test]
    fn the_page_loads_its_script_and_style_from_this_origin_only() {
        let page = include_str!("dashboard/index.html");
        assert!(page.contains("src=\"/dashboard/app.js\""), "{page}");
        assert!(page.contains("href=\"/dashboard/app.css\""), "{page}");
        for inline in ["<style", "style=\"", "onclick=", "http://", "https://"] {
            assert!(!page.contains(inline), "the page has {inline}");
        }
    }
}
