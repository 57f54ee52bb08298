//! The HTTP side: the hub's API, resolve URLs followed by hand through their
//! redirects, and a blob streamed into the cache with a progress bar.

use super::cache::{incomplete, RepoCache};
use super::{io_err, is_safe_relative, HubConfig, HubError};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::Path;
use ureq::http::{header, HeaderMap, Response};

const MAX_REDIRECTS: usize = 10;

#[derive(Deserialize)]
pub(super) struct RepoInfo {
    pub(super) sha: String,
    #[serde(default)]
    pub(super) siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
pub(super) struct Sibling {
    pub(super) rfilename: String,
}

/// A blob's identity, from the hub's answer for a resolve URL.
#[derive(Default)]
struct BlobMeta {
    /// `X-Linked-Etag` (an LFS file's sha256) or `ETag` (a git blob's sha1), unquoted.
    etag: Option<String>,
    /// `X-Linked-Size`: the blob's size even when the answer is a redirect.
    size: Option<u64>,
}

impl BlobMeta {
    fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let etag = get("x-linked-etag")
            .or_else(|| get(header::ETAG.as_str()))
            .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
            .filter(|e| !e.is_empty() && is_safe_relative(e) && !e.contains('/'));
        Self {
            etag,
            size: get("x-linked-size").and_then(|s| s.parse().ok()),
        }
    }
}

pub(super) struct Client<'a> {
    agent: ureq::Agent,
    cfg: &'a HubConfig,
}

impl<'a> Client<'a> {
    pub(super) fn new(cfg: &'a HubConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_resolve(Some(cfg.connect_timeout))
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_per_read(Some(cfg.read_timeout))
            // Redirects are followed by hand: the hub's own answer names the blob, and
            // the token must not go to the CDN.
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("candor/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: agent.into(),
            cfg,
        }
    }

    fn get(&self, url: &str, range_from: u64) -> Result<Response<ureq::Body>, HubError> {
        let mut request = self.agent.get(url);
        if let Some(token) = &self.cfg.token {
            if same_origin(url, &self.cfg.endpoint) {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
        }
        if range_from > 0 {
            request = request.header(header::RANGE, format!("bytes={range_from}-"));
        }
        request.call().map_err(|e| HubError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// A status that is not success, as the error that tells the user what to do.
    fn status_error(&self, repo: &str, url: &str, mut response: Response<ureq::Body>) -> HubError {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let page = format!("{}/{repo}", self.cfg.endpoint);
        match status {
            401 | 403 => HubError::Denied {
                repo: repo.to_string(),
                status,
                hint: if self.cfg.token.is_some() {
                    format!(
                        "the token in HF_TOKEN has no access to it: for a gated model, accept \
                         its terms on {page} with the token's account"
                    )
                } else {
                    format!(
                        "it does not exist, or it is gated or private: check the id; for a \
                         gated model, accept its terms on {page} and set HF_TOKEN to an access \
                         token (https://huggingface.co/settings/tokens)"
                    )
                },
            },
            // The hub is down or overloaded: like an unreachable hub, the cache may serve.
            500..=599 => HubError::Unreachable {
                url: url.to_string(),
                message: format!("it answered {status}"),
            },
            _ => HubError::Status {
                url: url.to_string(),
                status,
                body: body.chars().take(300).collect(),
            },
        }
    }

    pub(super) fn repo_info(&self, repo: &str) -> Result<RepoInfo, HubError> {
        let url = format!("{}/api/models/{repo}/revision/main", self.cfg.endpoint);
        let mut response = self.get(&url, 0)?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(HubError::RepoNotFound {
                    repo: repo.to_string(),
                    endpoint: self.cfg.endpoint.clone(),
                })
            }
            _ => return Err(self.status_error(repo, &url, response)),
        }
        let bad = |message: String| HubError::BadResponse {
            url: url.clone(),
            message,
        };
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| bad(e.to_string()))?;
        let info: RepoInfo = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if !is_safe_relative(&info.sha) || info.sha.contains('/') {
            return Err(bad(format!("commit `{}` is not a sha", info.sha)));
        }
        Ok(info)
    }

    /// Makes `snapshots/<commit>/<file>` exist: links it to a blob the cache already
    /// has, else downloads the blob into `<etag>.incomplete` (resuming what an earlier
    /// run left) and renames it once every byte has arrived. Kept whole: each early
    /// return is a cache state (linked, complete, resumable, stale), in the order checked.
    pub(super) fn download(
        &self,
        repo: &RepoCache,
        repo_id: &str,
        commit: &str,
        file: &str,
    ) -> Result<(), HubError> {
        if repo.snapshot(commit).join(file).is_file() {
            return Ok(());
        }
        let mut url = format!(
            "{}/{repo_id}/resolve/{commit}/{}",
            self.cfg.endpoint,
            encode_path(file)
        );
        let mut meta: Option<BlobMeta> = None;
        let mut range_from = 0;
        let mut redirects = 0;
        let mut response = loop {
            let response = self.get(&url, range_from)?;
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            let (true, Some(location)) = (status.is_redirection(), location) else {
                break response;
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(HubError::BadResponse {
                    url,
                    message: "too many redirects".into(),
                });
            }
            // A relative redirect (a renamed repo, a cached resolve) is still the hub
            // answering; the first absolute one that names a blob leaves for the CDN.
            let absolute = location.contains("://") || location.starts_with("//");
            if meta.is_none() && absolute {
                let m = BlobMeta::from_headers(response.headers());
                if let Some(etag) = &m.etag {
                    if repo.blob(etag).is_file() {
                        return repo.link(commit, file, etag);
                    }
                    let partial = incomplete(&repo.blob(etag));
                    range_from = std::fs::metadata(&partial).map_or(0, |m| m.len());
                    meta = Some(m);
                }
            }
            url = join_url(&url, &location);
        };
        let status = response.status().as_u16();
        if status == 416 && range_from > 0 {
            // What an earlier run left does not fit this blob: start over.
            if let Some(etag) = meta.as_ref().and_then(|m| m.etag.as_deref()) {
                let partial = incomplete(&repo.blob(etag));
                std::fs::remove_file(&partial).map_err(io_err(&partial))?;
                return self.download(repo, repo_id, commit, file);
            }
        }
        if !matches!(status, 200 | 206) {
            return Err(self.status_error(repo_id, &url, response));
        }
        let meta = meta.unwrap_or_else(|| BlobMeta::from_headers(response.headers()));
        let Some(etag) = meta.etag else {
            return Err(HubError::BadResponse {
                url,
                message: "no ETag, so the file cannot be stored in the cache".into(),
            });
        };
        let blob = repo.blob(&etag);
        if blob.is_file() {
            return repo.link(commit, file, &etag);
        }
        let resumed = if status == 206 { range_from } else { 0 };
        let total = meta
            .size
            .or_else(|| response.body().content_length().map(|n| n + resumed));
        let partial = incomplete(&blob);
        let blobs = blob.parent().expect("a blob has a folder");
        std::fs::create_dir_all(blobs).map_err(io_err(blobs))?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed > 0)
            .truncate(resumed == 0)
            .open(&partial)
            .map_err(io_err(&partial))?;
        tracing::info!(
            "downloading {repo_id}/{file}{} from {}",
            match total {
                Some(n) => format!(" ({:.1} MB)", n as f64 / 1e6),
                None => String::new(),
            },
            self.cfg.endpoint
        );
        let mut reader = response.body_mut().as_reader();
        let done = copy_with_progress(&mut reader, out, &partial, file, resumed, total)?;
        if let Some(total) = total.filter(|&t| t != done) {
            if done > total {
                // Not a prefix of the blob: nothing to resume.
                std::fs::remove_file(&partial).map_err(io_err(&partial))?;
            }
            return Err(HubError::Interrupted {
                file: file.to_string(),
                done,
                total: total.to_string(),
                message: "the connection ended early or sent a different length".into(),
            });
        }
        std::fs::rename(&partial, &blob).map_err(io_err(&blob))?;
        repo.link(commit, file, &etag)
    }
}

/// Copies the body into `out` with a progress bar on stderr; returns the file's length.
fn copy_with_progress(
    reader: &mut impl Read,
    out: std::fs::File,
    path: &Path,
    file: &str,
    resumed: u64,
    total: Option<u64>,
) -> Result<u64, HubError> {
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .expect("valid progress template")
            .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::no_length().with_style(
            indicatif::ProgressStyle::with_template("{msg} {bytes} ({bytes_per_sec})")
                .expect("valid progress template"),
        ),
    };
    bar.set_message(file.to_string());
    bar.set_position(resumed);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut buf = vec![0u8; 256 << 10];
    let mut done = resumed;
    let interrupted = |done: u64, message: String| HubError::Interrupted {
        file: file.to_string(),
        done,
        total: total.map_or_else(|| "?".into(), |t| t.to_string()),
        message,
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                let _ = out.flush();
                return Err(interrupted(done, e.to_string()));
            }
        };
        out.write_all(&buf[..n]).map_err(io_err(path))?;
        done += n as u64;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    let out = out.into_inner().map_err(|e| io_err(path)(e.into_error()))?;
    out.sync_all().map_err(io_err(path))?;
    Ok(done)
}

/// Percent-encodes a repo path for a URL, keeping its slashes.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

fn same_origin(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

/// A redirect's `Location` made absolute against the URL that answered it.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.find(['?', '#']).unwrap_or(base.len());
        let dir_end = base[..path_end]
            .rfind('/')
            .filter(|&i| i >= origin(base).len())
            .map_or(path_end, |i| i + 1);
        let dir = &base[..dir_end];
        if dir.ends_with('/') {
            format!("{dir}{location}")
        } else {
            format!("{dir}/{location}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_become_absolute() {
        let base = "https://hf.co/org/repo/resolve/abc/dir/file.json?x=1";
        assert_eq!(join_url(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(join_url(base, "//cdn/x"), "https://cdn/x");
        assert_eq!(join_url(base, "/api/x"), "https://hf.co/api/x");
        assert_eq!(
            join_url(base, "other.json"),
            "https://hf.co/org/repo/resolve/abc/dir/other.json"
        );
        assert_eq!(join_url("http://h:1", "a"), "http://h:1/a");
        assert!(same_origin("http://H:1/a?b", "http://h:1"));
        assert!(!same_origin("http://h:1/a", "http://h:2/a"));
    }
}
