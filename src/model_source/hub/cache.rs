//! One repo's folder in the hub cache: refs, blobs and snapshots, and what a snapshot
//! already holds. No network.

use super::{
    io_err, is_safe_relative, is_top_level_safetensors, pick_gguf, shards, HubError, HubId,
    SAFETENSORS_INDEX,
};
use std::path::{Path, PathBuf};

/// One repo's folder in the cache.
pub(super) struct RepoCache {
    dir: PathBuf,
}

impl RepoCache {
    pub(super) fn new(cache: &Path, repo: &str) -> Self {
        Self {
            dir: cache.join(format!("models--{}", repo.replace('/', "--"))),
        }
    }

    pub(super) fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    pub(super) fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    pub(super) fn main_commit(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("refs/main")).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty() && is_safe_relative(c))
    }

    pub(super) fn set_main(&self, commit: &str) -> Result<(), HubError> {
        let refs = self.dir.join("refs");
        std::fs::create_dir_all(&refs).map_err(io_err(&refs))?;
        let path = refs.join("main");
        std::fs::write(&path, commit).map_err(io_err(&path))
    }

    /// Points `snapshots/<commit>/<file>` at the blob: a relative symlink as
    /// huggingface_hub makes, or a copy where the filesystem has no links.
    pub(super) fn link(&self, commit: &str, file: &str, etag: &str) -> Result<(), HubError> {
        let target = self.snapshot(commit).join(file);
        let parent = target.parent().expect("a snapshot file has a folder");
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        if target.symlink_metadata().is_ok() {
            // A link to a blob that is gone.
            std::fs::remove_file(&target).map_err(io_err(&target))?;
        }
        let blob = self.blob(etag);
        #[cfg(unix)]
        {
            let ups = "../".repeat(Path::new(file).components().count() + 1);
            let relative = PathBuf::from(format!("{ups}blobs/{etag}"));
            if std::os::unix::fs::symlink(&relative, &target).is_ok() {
                return Ok(());
            }
        }
        std::fs::copy(&blob, &target).map_err(io_err(&target))?;
        Ok(())
    }

    /// What `id` resolves to in the snapshot `refs/main` names, if the files are all there.
    pub(super) fn cached(&self, id: &HubId) -> Result<Option<PathBuf>, HubError> {
        let Some(commit) = self.main_commit() else {
            return Ok(None);
        };
        let snapshot = self.snapshot(&commit);
        if let Some(file) = &id.file {
            let path = snapshot.join(file);
            return Ok(path.is_file().then_some(path));
        }
        if snapshot.join("config.json").is_file() {
            let index = snapshot.join(SAFETENSORS_INDEX);
            let complete = if index.is_file() {
                shards(&index)?.iter().all(|s| snapshot.join(s).is_file())
            } else {
                files_in(&snapshot)
                    .iter()
                    .any(|f| is_top_level_safetensors(f))
            };
            if complete {
                return Ok(Some(snapshot));
            }
        }
        Ok(pick_gguf(&id.repo, &files_in(&snapshot))?.map(|f| snapshot.join(f)))
    }
}

/// Files under `dir` (following links to existing blobs), as paths relative to it.
fn files_in(dir: &Path) -> Vec<String> {
    pub(super) fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), out);
            } else if path.is_file() {
                out.push(format!("{prefix}{name}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// Where a blob is written until every byte has arrived.
pub(super) fn incomplete(blob: &Path) -> PathBuf {
    let mut name = blob.as_os_str().to_owned();
    name.push(".incomplete");
    PathBuf::from(name)
}
