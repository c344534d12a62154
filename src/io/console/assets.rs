//! The pages and their static files, embedded in the binary from web/public/ (built by
//! nobody: plain files, Leaflet vendored from npm), so a console needs no files beside it.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "web/public/"]
struct Public;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> Response {
    match Public::get(path) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // Pages change with the binary; a stale cached script would talk to a
                // newer API.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            f.data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A page: also framed by nobody else (clickjacking) and limited to our own scripts.
pub fn page(path: &str) -> Response {
    let mut r = serve(path);
    let h = r.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("static"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; frame-ancestors 'none'"
            .parse()
            .expect("static"),
    );
    r
}

pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}
