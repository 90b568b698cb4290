//! The web dashboard: the files of `control-plane/dashboard/`, embedded in the binary, served at `/` and `/ui/…`.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(rust_embed::Embed)]
#[folder = "dashboard/"]
struct Assets;

/// `/` (the page) and `/ui/{file}` (its scripts and styles).
pub fn routes() -> Router {
    Router::new().route("/", get(|| async { asset("index.html") })).route("/ui/{*path}", get(file))
}

async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // Assets change with the binary; the page must never mix versions.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            f.data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no dashboard file {path:?}\n")).into_response(),
    }
}
