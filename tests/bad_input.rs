//! Broken checkpoints give errors that name the file and the problem; nothing panics.

use candor::loaded_model::{LoadConfig, LoadError, LoadedModel};
use std::fs;
use std::path::{Path, PathBuf};

fn data(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/data")
        .join(case)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("candor-bad-input-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_err(path: &Path) -> String {
    match LoadedModel::load(&LoadConfig {
        model: path.to_path_buf(),
        ..LoadConfig::default()
    }) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => {
            let msg = e.to_string();
            println!("{}: {msg}", path.display());
            msg
        }
    }
}

/// A copy of a reference model folder with a tokenizer.json (the tiny models ship none).
fn folder_with_tokenizer(case: &str, name: &str) -> PathBuf {
    let dir = scratch(name);
    for entry in fs::read_dir(data(case)).unwrap() {
        let p = entry.unwrap().path();
        if p.extension()
            .is_some_and(|x| x == "json" || x == "safetensors")
        {
            fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    // A minimal valid tokenizer.json: byte-level BPE over 256 byte tokens.
    let vocab: serde_json::Map<String, serde_json::Value> = (0..256u32)
        .map(|i| (format!("<0x{i:02X}>"), serde_json::json!(i)))
        .collect();
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": true,
                  "vocab": vocab, "merges": []}
    });
    fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    dir
}

#[test]
fn missing_file() {
    let msg = load_err(Path::new("/no/such/model.gguf"));
    assert!(
        msg.contains("/no/such/model.gguf") && msg.contains("No such file"),
        "{msg}"
    );
}

#[test]
fn truncated_gguf() {
    let src = fs::read(data("llama").join("model-f32.gguf")).unwrap();
    let dir = scratch("truncated");
    // Cut in the header: the metadata cannot be read.
    let header_cut = dir.join("header.gguf");
    fs::write(&header_cut, &src[..200]).unwrap();
    let msg = load_err(&header_cut);
    assert!(
        msg.contains("header.gguf") && msg.contains("invalid GGUF"),
        "{msg}"
    );
    // Cut in the tensor data: the header reads, a tensor does not.
    let data_cut = dir.join("data.gguf");
    fs::write(&data_cut, &src[..src.len() - 1000]).unwrap();
    let msg = load_err(&data_cut);
    assert!(msg.contains("data.gguf") && msg.contains("tensor"), "{msg}");
}

#[test]
fn tensor_with_the_wrong_shape() {
    let dir = folder_with_tokenizer("qwen3", "shape");
    // Claim a larger MLP than the weights have.
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["intermediate_size"] = serde_json::json!(96);
    fs::write(&cfg_path, cfg.to_string()).unwrap();
    let msg = load_err(&dir);
    assert!(
        msg.contains("model.safetensors") || msg.contains(dir.to_str().unwrap()),
        "{msg}"
    );
    assert!(
        msg.contains("mlp.gate_proj.weight") && msg.contains("shape"),
        "{msg}"
    );
}

#[test]
fn unknown_architecture() {
    let dir = folder_with_tokenizer("llama", "arch");
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["model_type"] = serde_json::json!("mamba");
    fs::write(&cfg_path, cfg.to_string()).unwrap();
    let msg = load_err(&dir);
    assert!(
        msg.contains("mamba") && msg.contains("llama, qwen2, qwen3, gemma3"),
        "{msg}"
    );
}

#[test]
fn folder_without_tokenizer() {
    // The reference folders have weights and config but no tokenizer.json.
    let msg = load_err(&data("qwen2"));
    assert!(
        msg.contains("qwen2") && msg.contains("tokenizer.json"),
        "{msg}"
    );
}

#[test]
fn folder_without_config() {
    let dir = scratch("empty");
    let msg = load_err(&dir);
    assert!(
        msg.contains("config.json") && msg.contains("not a model"),
        "{msg}"
    );
}

#[test]
fn a_good_folder_loads() {
    // The fixture of the tests above is itself sound: only the injected fault fails them.
    let dir = folder_with_tokenizer("qwen3", "good");
    let lm = LoadedModel::load(&LoadConfig {
        model: dir,
        ..LoadConfig::default()
    });
    assert!(
        lm.is_ok(),
        "{:?}",
        lm.err().map(|e: LoadError| e.to_string())
    );
}
