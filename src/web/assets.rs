//! Static assets (`web/static/`) and templates (`web/templates/`), compiled into the
//! release binary. Asset URLs carry a hash of the content, so they are cached for a
//! year and a new build never serves a stale file.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Request, Response, handler};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct Static;

#[derive(RustEmbed)]
#[folder = "web/templates/"]
struct Templates;

/// The source of a template, if there is one by that name.
pub fn template(name: &str) -> Option<String> {
    let file = Templates::get(name)?;
    String::from_utf8(file.data.into_owned()).ok()
}

fn content_hash(path: &str) -> Option<String> {
    let file = Static::get(path)?;
    Some(
        file.metadata.sha256_hash()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The URL of a static asset, versioned by its content (`/static/app.js?v=1a2b…`).
pub fn url(path: &str) -> String {
    match content_hash(path) {
        Some(hash) => format!("/static/{path}?v={hash}"),
        None => format!("/static/{path}"),
    }
}

/// `GET /static/*path`: the asset with its MIME type, an ETag, and a year of caching
/// when the URL names the current version.
#[handler]
pub fn serve(req: &Request, Path(path): Path<String>) -> Response {
    let Some(file) = Static::get(&path) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("not found");
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .finish();
    }
    let versioned = req.uri().query().is_some_and(|q| q.starts_with("v="));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, file.metadata.mimetype())
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, etag)
        .header("x-content-type-options", "nosniff")
        .body(file.data.into_owned())
}
