//! Models from the Hugging Face hub, downloaded into the hub's own cache so that other
//! tools (transformers, llama.cpp, huggingface-cli) reuse them and candor reuses theirs.
//!
//! Owns hub ids (`org/repo`, `org/repo:FILE`), which files a model needs, the HTTP
//! exchange with the hub (API, resolve URLs, redirects, token) and the cache layout
//! huggingface_hub uses:
//!
//! ```text
//! $HF_HUB_CACHE/models--org--repo/
//!   refs/main                   the commit sha `main` pointed to
//!   blobs/<etag>                file contents, named by the hub's ETag (sha256 for LFS files)
//!   blobs/<etag>.incomplete     a download in progress; resumed with a Range request
//!   snapshots/<commit>/<file>   symlinks to ../../blobs/<etag> (a copy where links fail)
//! ```
//!
//! `cache` reads and writes that layout; `client` speaks HTTP. Leaves to `model_source`
//! the choice between a local path, the hub and the default model, and to the loader
//! whether the files make a working model.

mod cache;
mod client;

use cache::RepoCache;
use client::Client;
use serde::Deserialize;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A model folder's files besides its weights, downloaded when the repo has them.
const FOLDER_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
];
const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
/// Past this many names, error messages say how many more there are.
const MAX_LISTED: usize = 30;

/// Where the hub is and how to talk to it; `from_env` reads huggingface_hub's variables.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The hub or a mirror (`HF_ENDPOINT`), without a trailing slash.
    pub endpoint: String,
    /// The folder holding `models--org--repo` (`HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub cache: PathBuf,
    /// Use only what the cache holds and never touch the network (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Sent as `Authorization: Bearer` to the endpoint, for gated and private repos
    /// (`HF_TOKEN`, else the file `huggingface-cli login` writes).
    pub token: Option<String>,
    /// Short, so that an unreachable hub fails fast and the default model can fall back.
    pub connect_timeout: Duration,
    /// How long a download may stall before it is given up (and later resumed).
    pub read_timeout: Duration,
}

impl HubConfig {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                let home = var("HOME").unwrap_or_else(|| ".".into());
                Path::new(&home).join(".cache")
            });
            cache.join("huggingface")
        });
        let cache = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN").or_else(|| {
            let saved = std::fs::read_to_string(hf_home.join("token")).ok()?;
            Some(saved.trim().to_string()).filter(|t| !t.is_empty())
        });
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache,
            offline,
            token,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("`{0}` is not a hub id: expected ORG/REPO or ORG/REPO:FILE")]
    InvalidId(String),
    #[error(
        "{repo}: {what} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set: \
         unset HF_HUB_OFFLINE to download it, or pass a local path",
        cache.display()
    )]
    NotCached {
        repo: String,
        what: String,
        cache: PathBuf,
    },
    #[error(
        "cannot reach the Hugging Face hub ({url}: {message}): check the network (or \
         HTTPS_PROXY / HF_ENDPOINT), pass a local path to --model, or set HF_HUB_OFFLINE=1 \
         to use only what is already downloaded"
    )]
    Unreachable { url: String, message: String },
    #[error(
        "`{repo}` is neither a local file or folder nor a model repository on {endpoint}: \
         check the spelling (a private repo also needs HF_TOKEN)"
    )]
    RepoNotFound { repo: String, endpoint: String },
    #[error("{repo}: the hub answered {status}: {hint}")]
    Denied {
        repo: String,
        status: u16,
        hint: String,
    },
    #[error("{repo} has no file `{file}`; {}", list(if candidates.iter().all(|c| is_gguf(c)) { "its .gguf" } else { "its" }, candidates))]
    FileNotInRepo {
        repo: String,
        file: String,
        candidates: Vec<String>,
    },
    #[error(
        "{repo} has several .gguf files and none is a Q4_K_M: choose one with \
         --model {repo}:FILE.gguf; {}",
        list("its .gguf", files)
    )]
    AmbiguousGguf { repo: String, files: Vec<String> },
    #[error(
        "{repo} is neither a model folder (config.json and *.safetensors) nor a GGUF repo; {}",
        list("its", files)
    )]
    NotAModel { repo: String, files: Vec<String> },
    #[error("{url}: the hub answered {status} {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unexpected answer: {message}")]
    BadResponse { url: String, message: String },
    #[error(
        "the download of {file} stopped after {done} of {total} bytes ({message}); \
         run the command again to resume it"
    )]
    Interrupted {
        file: String,
        done: u64,
        total: String,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// "its files: a, b, c" with long lists cut short.
fn list(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        return format!("{what} files: none");
    }
    let shown = names[..names.len().min(MAX_LISTED)].join(", ");
    match names.len().checked_sub(MAX_LISTED) {
        Some(more) if more > 0 => format!("{what} files: {shown} and {more} more"),
        _ => format!("{what} files: {shown}"),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |source| HubError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `org/repo` (a model folder, or the best file of a GGUF repo) or `org/repo:FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub file: Option<String>,
}

impl HubId {
    /// None when `s` is not shaped like a hub id.
    pub fn parse(s: &str) -> Option<Self> {
        let (repo, file) = match s.split_once(':') {
            Some((repo, file)) => (repo, Some(file)),
            None => (s, None),
        };
        let (org, name) = repo.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty()
                && !p.starts_with(['.', '-'])
                && !p.contains("..")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !part_ok(org) || !part_ok(name) || file.is_some_and(|f| !is_safe_relative(f)) {
            return None;
        }
        Some(Self {
            repo: repo.to_string(),
            file: file.map(str::to_string),
        })
    }

    /// The repo's name without its organization, e.g. `Qwen3-0.6B`.
    pub fn name(&self) -> &str {
        self.repo.split_once('/').map_or(&self.repo, |(_, n)| n)
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{file}", self.repo),
            None => f.write_str(&self.repo),
        }
    }
}

/// A path inside a repo that cannot leave the snapshot folder.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn is_gguf(file: &str) -> bool {
    file.to_ascii_lowercase().ends_with(".gguf")
}

/// Top-level weight files; subfolders hold other formats (onnx/, original/ ...).
fn is_top_level_safetensors(file: &str) -> bool {
    !file.contains('/') && file.ends_with(".safetensors")
}

/// The .gguf file to use from a repo without a safetensors model: the only one, else the
/// Q4_K_M (a good size/quality balance). Vision projectors (mmproj) are not models.
fn pick_gguf(repo: &str, files: &[String]) -> Result<Option<String>, HubError> {
    let ggufs: Vec<&String> = files
        .iter()
        .filter(|f| is_gguf(f) && !f.to_ascii_lowercase().contains("mmproj"))
        .collect();
    match ggufs[..] {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        _ => match ggufs
            .iter()
            .find(|f| f.to_ascii_lowercase().contains("q4_k_m"))
        {
            Some(q4) => {
                tracing::info!(
                    "{repo} has {} .gguf files: using {q4}; choose another with --model {repo}:FILE.gguf",
                    ggufs.len()
                );
                Ok(Some((*q4).clone()))
            }
            None => Err(HubError::AmbiguousGguf {
                repo: repo.to_string(),
                files: ggufs.into_iter().cloned().collect(),
            }),
        },
    }
}

/// Shard names from a `model.safetensors.index.json`, sorted and without repeats.
fn shards(index: &Path) -> Result<Vec<String>, HubError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(io_err(index))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| HubError::Io {
        path: index.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    if let Some(bad) = shards.iter().find(|s| !is_safe_relative(s)) {
        return Err(HubError::Io {
            path: index.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("shard name `{bad}` leaves the model folder"),
            ),
        });
    }
    Ok(shards)
}

/// Fetches what `id` names into the cache (reusing what is there) and returns the
/// model's path: the snapshot folder, or the one file.
///
/// Offline, only the cache is read. Online, the hub says which commit `main` is; files
/// that commit's snapshot already holds are not downloaded again. When the hub cannot be
/// reached, a complete cached snapshot is used with a warning.
pub fn fetch(id: &HubId, cfg: &HubConfig) -> Result<PathBuf, HubError> {
    let repo = RepoCache::new(&cfg.cache, &id.repo);
    if cfg.offline {
        return repo.cached(id)?.ok_or_else(|| HubError::NotCached {
            repo: id.repo.clone(),
            what: id.file.clone().unwrap_or_else(|| "the model".into()),
            cache: cfg.cache.clone(),
        });
    }
    let client = Client::new(cfg);
    let info = match client.repo_info(&id.repo) {
        Ok(info) => info,
        Err(e @ HubError::Unreachable { .. }) => {
            return match repo.cached(id)? {
                Some(path) => {
                    tracing::warn!("{e}");
                    tracing::warn!("using the cached copy of {id}: {}", path.display());
                    Ok(path)
                }
                None => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let commit = info.sha;
    let files: Vec<String> = info
        .siblings
        .into_iter()
        .map(|s| s.rfilename)
        .filter(|f| is_safe_relative(f))
        .collect();
    let snapshot = repo.snapshot(&commit);
    let download = |file: &str| client.download(&repo, &id.repo, &commit, file);

    let path = if let Some(file) = &id.file {
        if !files.contains(file) {
            let ggufs: Vec<String> = files.iter().filter(|f| is_gguf(f)).cloned().collect();
            return Err(HubError::FileNotInRepo {
                repo: id.repo.clone(),
                file: file.clone(),
                candidates: if is_gguf(file) && !ggufs.is_empty() {
                    ggufs
                } else {
                    files
                },
            });
        }
        download(file)?;
        snapshot.join(file)
    } else if files.iter().any(|f| f == "config.json")
        && files
            .iter()
            .any(|f| f == SAFETENSORS_INDEX || is_top_level_safetensors(f))
    {
        for file in FOLDER_FILES.iter().chain([&SAFETENSORS_INDEX]) {
            if files.iter().any(|f| f == file) {
                download(file)?;
            }
        }
        let weights = if files.iter().any(|f| f == SAFETENSORS_INDEX) {
            shards(&snapshot.join(SAFETENSORS_INDEX))?
        } else {
            files
                .iter()
                .filter(|f| is_top_level_safetensors(f))
                .cloned()
                .collect()
        };
        for file in &weights {
            download(file)?;
        }
        snapshot
    } else if let Some(file) = pick_gguf(&id.repo, &files)? {
        download(&file)?;
        snapshot.join(file)
    } else {
        return Err(HubError::NotAModel {
            repo: id.repo.clone(),
            files,
        });
    };
    repo.set_main(&commit)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_parse() {
        let id = HubId::parse("Qwen/Qwen3-0.6B").unwrap();
        assert_eq!(
            (id.repo.as_str(), id.file.as_deref()),
            ("Qwen/Qwen3-0.6B", None)
        );
        assert_eq!(id.name(), "Qwen3-0.6B");
        let id = HubId::parse("org/repo-GGUF:sub/model.Q4_K_M.gguf").unwrap();
        assert_eq!(id.file.as_deref(), Some("sub/model.Q4_K_M.gguf"));
        assert_eq!(id.to_string(), "org/repo-GGUF:sub/model.Q4_K_M.gguf");
        for bad in [
            "repo",
            "a/b/c",
            "/abs/path",
            "./rel/path",
            "org/",
            "org/repo:",
            "org/repo:../x",
            "org/repo:/etc/passwd",
            "org/..",
            "org/re po",
        ] {
            assert_eq!(HubId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn gguf_choice() {
        let files = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pick = |names: &[&str]| pick_gguf("o/r", &files(names));
        assert_eq!(pick(&["README.md"]).unwrap(), None);
        assert_eq!(
            pick(&["m.Q8_0.gguf", "mmproj-f16.gguf"])
                .unwrap()
                .as_deref(),
            Some("m.Q8_0.gguf")
        );
        assert_eq!(
            pick(&["m.Q8_0.gguf", "m.Q4_K_M.gguf", "m.Q2_K.gguf"])
                .unwrap()
                .as_deref(),
            Some("m.Q4_K_M.gguf")
        );
        let err = pick(&["m.Q8_0.gguf", "m.Q2_K.gguf"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("o/r:FILE.gguf") && err.contains("m.Q2_K.gguf"),
            "{err}"
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let names: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        assert!(list("its", &names).ends_with("f29 and 10 more"));
        assert_eq!(list("its", &names[..2]), "its files: f0, f1");
    }
}
