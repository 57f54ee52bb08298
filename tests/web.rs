//! The chat page as the router serves it (`src/api/web.rs`): every file of `web/`
//! embedded and current, cache headers and revalidation, gzip, the page public while the
//! API needs its key, `--no-webui`, and the `/v1/models` fields the page reads.
//! The page's behaviour in a browser is tests/e2e/webui.mjs's.

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use candor::api::{router, AppState, ServerConfig};
use flate2::read::GzDecoder;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

fn config(api_key: Option<&str>, webui: bool) -> ServerConfig {
    ServerConfig {
        served_model_name: "m".into(),
        api_keys: api_key.into_iter().map(str::to_string).collect(),
        max_per_client: None,
        ctx_size: Some(512),
        engine: Default::default(),
        metrics: true,
        webui,
        cors_origins: Vec::new(),
        body_limit_bytes: 64 * 1024,
        body_timeout: None,
        request_timeout: None,
        reasoning: Default::default(),
    }
}

/// A router without a model: the page needs none.
fn app(api_key: Option<&str>, webui: bool) -> Router {
    router(AppState::new(config(api_key, webui)))
}

async fn get(
    app: &Router,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(&name).map_or("", |v| v.to_str().unwrap())
}

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn assert_openai_error(status: StatusCode, body: &[u8], want: StatusCode) {
    assert_eq!(status, want, "{}", String::from_utf8_lossy(body));
    let v: Value = serde_json::from_slice(body).expect("an OpenAI error body");
    assert!(v["error"]["message"].is_string(), "{v}");
    common::openai_schema::assert_matches("ErrorResponse", &v);
}

#[tokio::test]
async fn the_page_is_html_with_an_etag_and_revalidates() {
    let app = app(None, true);
    let (status, headers, body) = get(&app, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
    assert!(header(&headers, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
    let etag = header(&headers, header::ETAG).to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 4,
        "{etag}"
    );
    let html = String::from_utf8(body).unwrap();
    assert_eq!(
        html,
        std::fs::read_to_string(web_dir().join("index.html")).unwrap()
    );
    assert!(html.contains(r#"<script type="module" src="web/app.js">"#));

    // The browser asks again with the ETag: nothing is sent back.
    let (status, headers, body) = get(&app, "/", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&headers, header::ETAG), etag);
    // Another ETag gets the page.
    let (status, _, body) = get(&app, "/", &[(header::IF_NONE_MATCH, "\"old\"")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());

    // HEAD answers with the headers alone.
    let req = Request::head("/").body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
}

#[tokio::test]
async fn gzip_goes_to_clients_that_ask_for_it() {
    let app = app(None, true);
    for path in [
        "/",
        "/web/app.js",
        "/web/vendor/katex/katex.min.js",
        "/web/style.css",
    ] {
        let (status, plain_headers, plain) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            header(&plain_headers, header::CONTENT_ENCODING),
            "",
            "{path}"
        );
        let (status, headers, body) =
            get(&app, path, &[(header::ACCEPT_ENCODING, "br, gzip;q=0.8")]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, header::CONTENT_ENCODING), "gzip", "{path}");
        assert_eq!(header(&headers, header::VARY), "Accept-Encoding", "{path}");
        assert_ne!(
            header(&headers, header::ETAG),
            header(&plain_headers, header::ETAG),
            "{path}: each encoding has its own ETag"
        );
        let mut unzipped = Vec::new();
        GzDecoder::new(&body[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain, "{path}");
        assert!(
            body.len() < plain.len() / 2,
            "{path}: {} -> {}",
            plain.len(),
            body.len()
        );
    }
    // A client that refuses gzip gets the bytes as they are; fonts are never gzipped.
    let (_, headers, _) = get(
        &app,
        "/web/app.js",
        &[(header::ACCEPT_ENCODING, "gzip;q=0")],
    )
    .await;
    assert_eq!(header(&headers, header::CONTENT_ENCODING), "");
    let font = "/web/vendor/katex/fonts/KaTeX_Main-Regular.woff2";
    let (status, headers, _) = get(&app, font, &[(header::ACCEPT_ENCODING, "gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, header::CONTENT_TYPE), "font/woff2");
    assert_eq!(header(&headers, header::CONTENT_ENCODING), "");
}

/// Every file of web/ is served as it is on disk (the binary is not stale), and every
/// file the page names (scripts, styles, module imports, fonts) exists.
#[tokio::test]
async fn every_file_is_embedded_and_every_reference_resolves() {
    let app = app(None, true);
    let mut files = Vec::new();
    files_under(&web_dir(), &mut files);
    let mut total = 0;
    for file in &files {
        let rel = file
            .strip_prefix(web_dir())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let (status, headers, body) = get(&app, &format!("/web/{rel}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{rel}");
        assert!(!header(&headers, header::CONTENT_TYPE).is_empty(), "{rel}");
        assert!(!header(&headers, header::ETAG).is_empty(), "{rel}");
        assert_eq!(
            body,
            std::fs::read(file).unwrap(),
            "{rel} is embedded as it is on disk"
        );
        total += body.len();
    }
    assert_eq!(files.len(), candor::api::web::ASSETS.len());
    assert!(
        total < 1_000_000,
        "the page and all it may load weigh {total} bytes"
    );

    let mut named: Vec<String> = Vec::new();
    // index.html's src="web/..." and href="web/...", the scripts' "web/..." (KaTeX, loaded
    // when math appears) and their ES module imports (relative to web/).
    let top_level = files.iter().filter(|f| f.parent() == Some(&web_dir()));
    for file in top_level.filter(|f| f.extension().is_some_and(|e| e == "js" || e == "html")) {
        let source = std::fs::read_to_string(file).unwrap();
        for part in source.split(['"', '\'']) {
            if let Some(rel) = part.strip_prefix("web/") {
                named.push(rel.to_string());
            }
        }
        for line in source.lines() {
            if let Some((_, spec)) = line.split_once(" from \"./") {
                named.push(spec.trim_end_matches("\";").to_string());
            }
        }
    }
    // KaTeX's fonts, relative to its CSS.
    let css = std::fs::read_to_string(web_dir().join("vendor/katex/katex.min.css")).unwrap();
    for part in css.split("url(").skip(1) {
        let url = part.split(')').next().unwrap();
        named.push(format!("vendor/katex/{url}"));
    }
    assert!(named.len() > 40, "{named:?}");
    assert!(
        named.iter().any(|n| n == "vendor/katex/katex.min.js"),
        "{named:?}"
    );
    for rel in &named {
        let (status, _, _) = get(&app, &format!("/web/{rel}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "the page names web/{rel}");
    }
}

#[tokio::test]
async fn a_missing_file_is_an_openai_404() {
    let (status, _, body) = get(&app(None, true), "/web/nope.js", &[]).await;
    assert_openai_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_webui_leaves_the_usual_404() {
    let app = app(None, false);
    for path in ["/", "/web/app.js", "/web/index.html"] {
        let (status, _, body) = get(&app, path, &[]).await;
        assert_openai_error(status, &body, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn the_page_is_public_while_the_api_needs_the_key() {
    let app = app(Some("secret"), true);
    for path in ["/", "/web/app.js", "/web/vendor/marked/marked.esm.js"] {
        let (status, _, _) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, body) = get(&app, "/v1/models", &[]).await;
    assert_openai_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(
        &app,
        "/v1/models",
        &[(header::AUTHORIZATION, "Bearer secret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Without the page, / is just another path: the key comes first.
    let (status, _, body) = get(&crate::app(Some("secret"), false), "/", &[]).await;
    assert_openai_error(status, &body, StatusCode::UNAUTHORIZED);
}

async fn model_entry(model: std::sync::Arc<candor::loaded_model::LoadedModel>) -> Value {
    let state = AppState::new(config(None, true));
    state.set_loaded(model).unwrap();
    let (status, _, body) = get(&router(state), "/v1/models", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_slice(&body).unwrap();
    common::openai_schema::assert_matches("ListModelsResponse", &list);
    list["data"][0].clone()
}

/// The page offers the effort control only where `/v1/models` says the model thinks.
#[tokio::test]
async fn models_say_whether_and_how_the_model_thinks() {
    let r1 = model_entry(common::load(common::asset("tiny-qwen2-r1"))).await;
    assert_eq!(r1["max_model_len"], 512);
    let reasoning = &r1["reasoning"];
    assert_eq!(reasoning["start"], "<think>");
    assert_eq!(reasoning["end"], "</think>");
    assert_eq!(reasoning["format"], "separated");
    assert_eq!(reasoning["default_budget"], Value::Null);
    assert_eq!(
        reasoning["effort_budgets"],
        json!({"none": 0, "minimal": 256, "low": 1024, "medium": 4096, "high": 16384, "xhigh": null})
    );

    let smol = model_entry(common::smollm2()).await;
    assert!(smol.get("reasoning").is_none(), "{smol}");
    assert_eq!(smol["max_model_len"], 512);

    // While loading, the entry is OpenAI's alone.
    let (_, _, body) = get(&app(None, true), "/v1/models", &[]).await;
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        list["data"][0].get("reasoning").is_none()
            && list["data"][0].get("max_model_len").is_none()
    );
}
