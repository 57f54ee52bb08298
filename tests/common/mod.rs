//! What the integration tests share: the test assets (scripts/fetch-test-assets.sh) and
//! the SmolLM2 runtime, loaded once per test binary.

#![allow(dead_code)] // each test binary uses its own part

use candor::runtime::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// $CANDOR_ASSETS, default ~/.cache/candor/assets.
pub fn assets() -> PathBuf {
    std::env::var_os("CANDOR_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/candor/assets")
        })
}

/// One asset, which must exist.
pub fn asset(name: &str) -> PathBuf {
    let p = assets().join(name);
    assert!(
        p.exists(),
        "{}: run `bash scripts/fetch-test-assets.sh` first",
        p.display()
    );
    p
}

/// Loads a model with the default settings.
pub fn load(model: PathBuf) -> Arc<Runtime> {
    Arc::new(
        Runtime::load(&RuntimeConfig {
            model,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    )
}

/// SmolLM2-135M-Instruct Q4_1, shared by the tests of one binary.
pub fn smollm2() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| load(asset("SmolLM2-135M-Instruct.Q4_1.gguf")))
        .clone()
}
