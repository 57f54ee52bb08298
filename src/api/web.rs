//! The chat page: the files of `web/`, embedded at compile time by `build.rs` (each with a
//! gzip copy made there and a content hash), served at `/` (index.html) and `/web/...`.
//! Every response carries an ETag and `Cache-Control: no-cache` (the browser keeps the
//! files and asks whether they changed, so a new binary's page is never mixed with an
//! old one's), and the gzip copy goes to clients that accept it. The page holds no
//! secret, so [`super::router`] serves it without the API key; the API calls it makes
//! carry the key. `--no-webui` leaves these routes out.

use crate::api::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// Path under `web/`, with `/` separators.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A hash of `body`, quoted as an ETag.
    pub etag: &'static str,
    pub body: &'static [u8],
    /// The body gzipped at build time; None for formats that are compressed already.
    pub gzip: Option<&'static [u8]>,
}

/// Every file under `web/`, sorted by path (written by `build.rs`).
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Where the page's files are served from.
pub const PREFIX: &str = "/web/";

/// Only scripts, styles and fonts of the page's own origin run; model output rendered
/// as Markdown cannot bring a script even if the sanitizer missed one. Inline styles are
/// allowed for KaTeX's layout.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Whether `path` is one of the page's (public even when the API needs a key).
pub fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with(PREFIX)
}

/// The embedded file at `path` (relative to `web/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// GET /: the page.
pub async fn index(headers: HeaderMap) -> Response {
    match find("index.html") {
        Some(asset) => respond(asset, &headers),
        None => ApiError::internal("web/index.html was not embedded").into_response(),
    }
}

/// GET /web/{path}: the page's scripts, styles, fonts and vendored libraries.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(asset) => respond(asset, &headers),
        None => ApiError::not_found_route(&format!("{PREFIX}{path}")).into_response(),
    }
}

fn respond(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let gzip = asset.gzip.filter(|_| accepts_gzip(headers));
    // Each encoding is its own representation, with its own ETag.
    let etag = match gzip {
        Some(_) => format!("{}-gz\"", asset.etag.trim_end_matches('"')),
        None => asset.etag.to_string(),
    };
    let mut out = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if asset.gzip.is_some() {
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.path == "index.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    match gzip {
        Some(body) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (out, body).into_response()
        }
        None => (out, asset.body).into_response(),
    }
}

/// `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn gzip_is_chosen_from_accept_encoding() {
        let ae = header::ACCEPT_ENCODING;
        assert!(accepts_gzip(&with(ae.clone(), "gzip, deflate, br")));
        assert!(accepts_gzip(&with(ae.clone(), "br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with(ae.clone(), "*")));
        assert!(!accepts_gzip(&with(ae.clone(), "gzip;q=0, br")));
        assert!(!accepts_gzip(&with(ae.clone(), "br, identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let inm = header::IF_NONE_MATCH;
        assert!(not_modified(&with(inm.clone(), "\"a\", W/\"b\""), "\"b\""));
        assert!(not_modified(&with(inm.clone(), "*"), "\"b\""));
        assert!(!not_modified(&with(inm.clone(), "\"a\""), "\"b\""));
    }

    #[test]
    fn the_table_is_sorted_and_holds_the_page() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        for path in [
            "index.html",
            "app.js",
            "style.css",
            "vendor/katex/katex.min.js",
        ] {
            assert!(find(path).is_some(), "{path} is embedded");
        }
        // Fonts are compressed already; text gets its gzip copy.
        let font = ASSETS.iter().find(|a| a.path.ends_with(".woff2"));
        assert!(font.is_some_and(|f| f.gzip.is_none()));
        assert!(find("index.html").is_some_and(|a| a.gzip.is_some()));
    }
}
