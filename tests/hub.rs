//! Hugging Face hub downloads against a mock hub on a loopback port: the API route,
//! resolve URLs with an absolute (CDN) and a relative redirect, Range requests, and a
//! download that breaks off. No test touches the real hub or the environment.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candor::model_source::hub::{fetch, HubConfig, HubError, HubId};
use candor::model_source::{resolve_with, SourceConfig, SourceError, DEFAULT_HUB_REPO};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "hf_test_token";

struct MockFile {
    name: &'static str,
    content: Vec<u8>,
    /// Served like an LFS file: a redirect to the CDN with X-Linked-Etag.
    lfs: bool,
}

struct MockRepo {
    sha: &'static str,
    files: Vec<MockFile>,
    gated: bool,
}

#[derive(Default)]
struct Mock {
    repos: HashMap<&'static str, MockRepo>,
    /// Every request's path, to check what a run asked for.
    requests: Mutex<Vec<String>>,
    /// The next CDN answer sends half its body and breaks the connection.
    break_next: AtomicBool,
    /// Range headers the CDN received.
    ranges: Mutex<Vec<String>>,
    cdn_hits: AtomicUsize,
}

/// A stable fake content hash: FNV-1a, 16 hex digits (64 for LFS files, like a sha256).
fn fake_hash(content: &[u8], lfs: bool) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in content {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    let short = format!("{h:016x}");
    if lfs {
        short.repeat(4)
    } else {
        short
    }
}

fn etag_of(file: &MockFile) -> String {
    fake_hash(&file.content, file.lfs)
}

fn text(name: &'static str, content: &str) -> MockFile {
    MockFile {
        name,
        content: content.as_bytes().to_vec(),
        lfs: false,
    }
}

fn weights(name: &'static str, len: usize) -> MockFile {
    MockFile {
        name,
        content: (0..len).map(|i| (i * 7 + name.len()) as u8).collect(),
        lfs: true,
    }
}

fn mock_repos() -> HashMap<&'static str, MockRepo> {
    let index = json!({"metadata": {"total_size": 300}, "weight_map": {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors",
        "c.weight": "model-00002-of-00002.safetensors"}});
    let mut repos = HashMap::new();
    repos.insert(
        "org/folder",
        MockRepo {
            sha: "1111111111111111111111111111111111111111",
            files: vec![
                text(".gitattributes", "*.safetensors filter=lfs"),
                text("README.md", "# a model"),
                text("config.json", r#"{"model_type": "llama"}"#),
                text("tokenizer.json", r#"{"model": {}}"#),
                text("tokenizer_config.json", r#"{"eos_token": "</s>"}"#),
                text("generation_config.json", r#"{"eos_token_id": 2}"#),
                text("model.safetensors.index.json", &index.to_string()),
                weights("model-00001-of-00002.safetensors", 100),
                weights("model-00002-of-00002.safetensors", 200),
                weights("onnx/model.onnx", 50),
            ],
            gated: false,
        },
    );
    repos.insert(
        "org/gguf",
        MockRepo {
            sha: "2222222222222222222222222222222222222222",
            files: vec![
                text("README.md", "# quants"),
                weights("model.Q8_0.gguf", 120),
                weights("model.Q4_K_M.gguf", 80),
                weights("mmproj-model-f16.gguf", 30),
            ],
            gated: false,
        },
    );
    repos.insert(
        "org/many-ggufs",
        MockRepo {
            sha: "3333333333333333333333333333333333333333",
            files: vec![weights("a.Q8_0.gguf", 10), weights("a.Q2_K.gguf", 10)],
            gated: false,
        },
    );
    repos.insert(
        "org/gated",
        MockRepo {
            sha: "4444444444444444444444444444444444444444",
            files: vec![weights("model.gguf", 40)],
            gated: true,
        },
    );
    repos.insert(
        "org/big",
        MockRepo {
            sha: "5555555555555555555555555555555555555555",
            files: vec![weights("big.gguf", 1 << 20)],
            gated: false,
        },
    );
    repos.insert(
        DEFAULT_HUB_REPO,
        MockRepo {
            sha: "6666666666666666666666666666666666666666",
            files: vec![weights("SmolLM2-135M-Instruct.Q4_1.gguf", 64)],
            gated: false,
        },
    );
    repos
}

fn status(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({"error": message}))).into_response()
}

/// The hub's routes, matched by hand: `/api/models/{repo}/revision/main`,
/// `/{repo}/resolve/{sha}/{file}` (LFS files redirect to `/cdn/{etag}`, tokenizer.json
/// to a relative `/api/resolve-cache/...`), and `/cdn/{etag}` with Range support.
async fn hub(State(mock): State<Arc<Mock>>, headers: HeaderMap, request: Request) -> Response {
    let path = request.uri().path().to_string();
    mock.requests.lock().unwrap().push(path.clone());
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    let repo_of = |id: &str| match mock.repos.get(id) {
        Some(repo) if !repo.gated || authorized => Ok(repo),
        Some(_) => Err((StatusCode::UNAUTHORIZED, "gated repo")),
        None => Err((StatusCode::NOT_FOUND, "Repository not found")),
    };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some(id) = rest.strip_suffix("/revision/main") else {
            return status(StatusCode::NOT_FOUND, "no such route");
        };
        return match repo_of(id) {
            Ok(repo) => axum::Json(json!({
                "id": id,
                "sha": repo.sha,
                "siblings": repo.files.iter().map(|f| json!({"rfilename": f.name})).collect::<Vec<_>>(),
            }))
            .into_response(),
            Err((code, message)) => status(code, message),
        };
    }
    if let Some(etag) = path.strip_prefix("/cdn/") {
        return cdn(&mock, etag, &headers);
    }
    let (relative_hop, rest) = match path.strip_prefix("/api/resolve-cache/models/") {
        Some(rest) => (true, rest.to_string()),
        None => (
            false,
            path.trim_start_matches('/').replacen("/resolve/", "/", 1),
        ),
    };
    let [org, name, sha, file] = rest.splitn(4, '/').collect::<Vec<_>>()[..] else {
        return status(StatusCode::NOT_FOUND, "no such route");
    };
    let repo = match repo_of(&format!("{org}/{name}")) {
        Ok(repo) => repo,
        Err((code, message)) => return status(code, message),
    };
    if sha != repo.sha {
        return status(StatusCode::NOT_FOUND, "revision not found");
    }
    let Some(f) = repo.files.iter().find(|f| f.name == file) else {
        return status(StatusCode::NOT_FOUND, "Entry not found");
    };
    let etag = etag_of(f);
    let mut response = if f.lfs {
        let host = headers[header::HOST].to_str().unwrap().to_string();
        let mut r = (StatusCode::FOUND, "").into_response();
        let h = r.headers_mut();
        h.insert(
            header::LOCATION,
            format!("http://{host}/cdn/{etag}").parse().unwrap(),
        );
        h.insert("x-linked-etag", format!("\"{etag}\"").parse().unwrap());
        h.insert("x-linked-size", f.content.len().into());
        // The pointer file's own ETag, which must not name the blob.
        h.insert(header::ETAG, "\"pointer\"".parse().unwrap());
        r
    } else if f.name == "tokenizer.json" && !relative_hop {
        let mut r = (StatusCode::TEMPORARY_REDIRECT, "").into_response();
        let location = format!("/api/resolve-cache/models/{org}/{name}/{sha}/{file}");
        r.headers_mut()
            .insert(header::LOCATION, location.parse().unwrap());
        r
    } else {
        let mut r = f.content.clone().into_response();
        r.headers_mut()
            .insert(header::ETAG, format!("W/\"{etag}\"").parse().unwrap());
        r
    };
    response
        .headers_mut()
        .insert("x-repo-commit", repo.sha.parse().unwrap());
    response
}

fn cdn(mock: &Mock, etag: &str, headers: &HeaderMap) -> Response {
    mock.cdn_hits.fetch_add(1, Ordering::SeqCst);
    let Some(file) = mock
        .repos
        .values()
        .flat_map(|r| &r.files)
        .find(|f| f.lfs && etag_of(f) == etag)
    else {
        return status(StatusCode::NOT_FOUND, "no such blob");
    };
    let mut start = 0;
    let mut code = StatusCode::OK;
    if let Some(range) = headers.get(header::RANGE) {
        let range = range.to_str().unwrap().to_string();
        mock.ranges.lock().unwrap().push(range.clone());
        start = range
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        code = StatusCode::PARTIAL_CONTENT;
    }
    let body = file.content[start..].to_vec();
    let len = body.len();
    let body = if mock.break_next.swap(false, Ordering::SeqCst) {
        let half = body[..len / 2].to_vec();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            vec![Ok(half), Err(std::io::Error::other("cut"))];
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(body)
    };
    let mut r = (code, body).into_response();
    r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    r.headers_mut()
        .insert(header::ETAG, "\"cdn-etag\"".parse().unwrap());
    r
}

/// A mock hub on 127.0.0.1, in its own thread, for the life of the test process.
fn start_mock() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock {
        repos: mock_repos(),
        ..Mock::default()
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(hub).with_state(mock.clone());
    std::thread::spawn(move || {
        let lm = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        lm.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{addr}"), mock)
}

/// A fresh cache folder, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("candor-hub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(endpoint: &str, cache: &Path) -> HubConfig {
    HubConfig {
        endpoint: endpoint.to_string(),
        cache: cache.to_path_buf(),
        offline: false,
        token: None,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
    }
}

/// An endpoint where nothing listens.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn id(s: &str) -> HubId {
    HubId::parse(s).unwrap()
}

fn file<'a>(repo: &'a MockRepo, name: &str) -> &'a MockFile {
    repo.files.iter().find(|f| f.name == name).unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn model_folder_lands_in_the_hf_cache_layout() {
    let (endpoint, mock) = start_mock();
    let tmp = TempDir::new("folder");
    let path = fetch(&id("org/folder"), &config(&endpoint, &tmp.0)).unwrap();

    let repo = &mock.repos["org/folder"];
    let repo_dir = tmp.0.join("models--org--folder");
    assert_eq!(path, repo_dir.join("snapshots").join(repo.sha));
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        repo.sha
    );
    let wanted = [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ];
    assert_eq!(names_in(&path), wanted);
    for name in wanted {
        let f = file(repo, name);
        let link = path.join(name);
        assert!(link.symlink_metadata().unwrap().is_symlink(), "{name}");
        // X-Linked-Etag for LFS files, the (weak) ETag otherwise; never the CDN's.
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from(format!("../../blobs/{}", etag_of(f))),
            "{name}"
        );
        assert_eq!(std::fs::read(&link).unwrap(), f.content, "{name}");
    }
    let mut blobs: Vec<String> = wanted.iter().map(|n| etag_of(file(repo, n))).collect();
    blobs.sort();
    assert_eq!(names_in(&repo_dir.join("blobs")), blobs);

    // Online again: one API call, no downloads.
    mock.requests.lock().unwrap().clear();
    assert_eq!(
        fetch(&id("org/folder"), &config(&endpoint, &tmp.0)).unwrap(),
        path
    );
    assert_eq!(
        *mock.requests.lock().unwrap(),
        ["/api/models/org/folder/revision/main"]
    );
}

#[test]
fn one_gguf_file_by_name_and_the_q4_k_m_by_default() {
    let (endpoint, mock) = start_mock();
    let tmp = TempDir::new("gguf");
    let cfg = config(&endpoint, &tmp.0);
    let repo = &mock.repos["org/gguf"];
    let snapshot = tmp.0.join("models--org--gguf/snapshots").join(repo.sha);

    let path = fetch(&id("org/gguf:model.Q8_0.gguf"), &cfg).unwrap();
    assert_eq!(path, snapshot.join("model.Q8_0.gguf"));
    assert_eq!(names_in(&snapshot), ["model.Q8_0.gguf"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        file(repo, "model.Q8_0.gguf").content
    );

    let path = fetch(&id("org/gguf"), &cfg).unwrap();
    assert_eq!(path, snapshot.join("model.Q4_K_M.gguf"));
    assert_eq!(
        names_in(&snapshot),
        ["model.Q4_K_M.gguf", "model.Q8_0.gguf"]
    );

    let err = fetch(&id("org/many-ggufs"), &cfg).unwrap_err();
    assert!(matches!(err, HubError::AmbiguousGguf { .. }), "{err}");
    let msg = err.to_string();
    for part in ["org/many-ggufs:FILE.gguf", "a.Q8_0.gguf", "a.Q2_K.gguf"] {
        assert!(msg.contains(part), "{msg}");
    }
}

#[test]
fn the_cache_serves_offline_and_when_the_hub_is_unreachable() {
    let (endpoint, mock) = start_mock();
    let tmp = TempDir::new("offline");
    let folder = fetch(&id("org/folder"), &config(&endpoint, &tmp.0)).unwrap();
    let gguf = fetch(&id("org/gguf:model.Q8_0.gguf"), &config(&endpoint, &tmp.0)).unwrap();
    mock.requests.lock().unwrap().clear();

    let dead = dead_endpoint();
    let offline = HubConfig {
        offline: true,
        ..config(&dead, &tmp.0)
    };
    assert_eq!(fetch(&id("org/folder"), &offline).unwrap(), folder);
    assert_eq!(
        fetch(&id("org/gguf:model.Q8_0.gguf"), &offline).unwrap(),
        gguf
    );
    // The only .gguf in the cached snapshot.
    assert_eq!(fetch(&id("org/gguf"), &offline).unwrap(), gguf);
    // Online, but the hub does not answer: the cache, with a warning.
    assert_eq!(
        fetch(&id("org/folder"), &config(&dead, &tmp.0)).unwrap(),
        folder
    );
    assert!(mock.requests.lock().unwrap().is_empty());
}

#[test]
fn offline_without_the_files_says_to_unset_hf_hub_offline() {
    let (endpoint, _mock) = start_mock();
    let tmp = TempDir::new("offline-missing");
    let offline = HubConfig {
        offline: true,
        ..config(&endpoint, &tmp.0)
    };
    let err = fetch(&id("org/folder"), &offline).unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
    assert!(err.to_string().contains("unset HF_HUB_OFFLINE"), "{err}");

    // A cached file does not make another file of the repo cached.
    fetch(&id("org/gguf:model.Q8_0.gguf"), &config(&endpoint, &tmp.0)).unwrap();
    let err = fetch(&id("org/gguf:model.Q4_K_M.gguf"), &offline).unwrap_err();
    assert!(
        err.to_string()
            .contains("model.Q4_K_M.gguf is not in the Hugging Face cache"),
        "{err}"
    );
}

#[test]
fn unknown_repos_gated_repos_and_missing_files_say_what_to_do() {
    let (endpoint, _mock) = start_mock();
    let tmp = TempDir::new("errors");
    let cfg = config(&endpoint, &tmp.0);

    let err = fetch(&id("org/nope"), &cfg).unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`org/nope` is neither a local file"),
        "{err}"
    );

    let err = fetch(&id("org/gated"), &cfg).unwrap_err();
    assert!(matches!(err, HubError::Denied { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("set HF_TOKEN"), "{err}");
    let with_token = HubConfig {
        token: Some(TOKEN.into()),
        ..cfg.clone()
    };
    assert!(fetch(&id("org/gated"), &with_token).unwrap().is_file());

    let err = fetch(&id("org/gguf:model.Q5_K_M.gguf"), &cfg).unwrap_err();
    assert!(matches!(err, HubError::FileNotInRepo { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("no file `model.Q5_K_M.gguf`")
            && msg.contains("model.Q4_K_M.gguf")
            && msg.contains("model.Q8_0.gguf")
            && !msg.contains("README.md"),
        "{msg}"
    );

    let err = fetch(&id("org/gguf"), &config(&dead_endpoint(), &tmp.0)).unwrap_err();
    assert!(matches!(err, HubError::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach") && msg.contains("HF_HUB_OFFLINE=1"),
        "{msg}"
    );
}

#[test]
fn a_broken_download_is_never_taken_as_complete_and_resumes() {
    let (endpoint, mock) = start_mock();
    let tmp = TempDir::new("broken");
    let cfg = config(&endpoint, &tmp.0);
    let big = file(&mock.repos["org/big"], "big.gguf");
    let blob = tmp.0.join("models--org--big/blobs").join(etag_of(big));
    let partial = PathBuf::from(format!("{}.incomplete", blob.display()));

    mock.break_next.store(true, Ordering::SeqCst);
    let err = fetch(&id("org/big:big.gguf"), &cfg).unwrap_err();
    assert!(matches!(err, HubError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("run the command again"), "{err}");
    assert!(!blob.exists());
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept < big.content.len() as u64);
    // Neither offline nor online does a half file count as cached.
    let offline = HubConfig {
        offline: true,
        ..cfg.clone()
    };
    assert!(matches!(
        fetch(&id("org/big:big.gguf"), &offline),
        Err(HubError::NotCached { .. })
    ));

    let path = fetch(&id("org/big:big.gguf"), &cfg).unwrap();
    assert_eq!(*mock.ranges.lock().unwrap(), [format!("bytes={kept}-")]);
    assert_eq!(std::fs::read(&path).unwrap(), big.content);
    assert!(!partial.exists());
}

#[test]
fn the_default_model_comes_from_the_hub_when_candor_has_no_copy() {
    let (endpoint, mock) = start_mock();
    let tmp = TempDir::new("default");
    let cfg = SourceConfig {
        assets: tmp.0.join("assets"),
        hub: config(&endpoint, &tmp.0.join("hub")),
    };
    let model = resolve_with(None, &cfg).unwrap();
    assert_eq!(model.name, "SmolLM2-135M-Instruct.Q4_1");
    assert!(model.path.starts_with(
        tmp.0
            .join("hub/models--QuantFactory--SmolLM2-135M-Instruct-GGUF")
    ));
    assert_eq!(
        std::fs::read(&model.path).unwrap(),
        file(
            &mock.repos[DEFAULT_HUB_REPO],
            "SmolLM2-135M-Instruct.Q4_1.gguf"
        )
        .content
    );

    // A hub folder goes by its repo's name, not its snapshot's commit.
    let folder = resolve_with(Some("org/folder"), &cfg).unwrap();
    assert_eq!(folder.name, "folder");
    assert!(folder.path.is_dir());
    assert!(matches!(
        resolve_with(Some("org/nope"), &cfg),
        Err(SourceError::Hub(HubError::RepoNotFound { .. }))
    ));
}
