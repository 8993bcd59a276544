//! Static files of the dashboard, embedded in the binary: the stylesheet, the page script
//! and the vendored libraries (see `dashboards/vendor/VENDOR.md`).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AppError, Shared};

/// `(path under /static/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../dashboards/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../dashboards/static/app.js"),
    ),
    (
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../dashboards/vendor/htmx.min.js"),
    ),
    (
        "vendor/cytoscape.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../dashboards/vendor/cytoscape.min.js"),
    ),
];

pub fn router() -> Router<Shared> {
    Router::new().route("/static/{*path}", get(asset))
}

async fn asset(Path(path): Path<String>) -> Result<Response, AppError> {
    let (_, ctype, bytes) = FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .ok_or(AppError::NotFound)?;
    let mut resp = (*bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(resp)
}
