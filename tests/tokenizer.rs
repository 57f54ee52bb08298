//! Tokenizer and detokenizer tests on the real tokenizers candor serves: SmolLM2 (GGUF,
//! byte-level BPE, `smollm` pre-tokenizer), Gemma 3 (GGUF, SentencePiece BPE) and Qwen3
//! (tokenizer.json). The files come from `bash scripts/fetch-test-assets.sh`, found through
//! $CANDOR_ASSETS (default ~/.cache/candor/assets). llama.cpp's ids for the GGUF tokenizers
//! are fixtures made by scripts/gen_tokenizer_reference.py.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::quantized::gguf_file::{self, Value};
use candor::output::detokenizer::{Detokenizer, DetokenizerOptions};
use candor::prompt::tokenizer::{Tokenizer, TokenizerError};
use serde::Deserialize;
use tokenizers::{NormalizedString, Normalizer};

use common::asset;

fn load(cell: &'static OnceLock<Arc<Tokenizer>>, name: &str) -> Arc<Tokenizer> {
    cell.get_or_init(|| {
        let path = asset(name);
        Arc::new(Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{e}")))
    })
    .clone()
}

fn smollm2() -> Arc<Tokenizer> {
    static CELL: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    load(&CELL, "SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn gemma3() -> Arc<Tokenizer> {
    static CELL: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    load(&CELL, "gemma-3-270m-q4_k_m.gguf")
}

fn qwen3() -> Arc<Tokenizer> {
    static CELL: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    load(&CELL, "qwen3-tokenizer/tokenizer.json")
}

fn all() -> [(&'static str, Arc<Tokenizer>); 3] {
    [
        ("smollm2", smollm2()),
        ("gemma3", gemma3()),
        ("qwen3", qwen3()),
    ]
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

/// The shared input texts: multilingual, emoji, code, whitespace.
fn texts() -> Vec<String> {
    #[derive(Deserialize)]
    struct Texts {
        texts: Vec<String>,
    }
    let path = fixtures().join("texts.json");
    let json = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<Texts>(&json).unwrap().texts
}

/// Chat-template text with special tokens, per tokenizer.
fn chat_text(name: &str) -> &'static str {
    match name {
        "gemma3" => "<start_of_turn>user\nHi <b>there</b>\t!<end_of_turn>\n<start_of_turn>model\n",
        _ => "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi  there\t!<|im_end|>\n<|im_start|>assistant\n",
    }
}

/// What decoding the ids of `text` must give: `text` itself, except that Qwen3's
/// tokenizer.json normalizes to NFC (`e\u{301}` comes back as `é`).
fn round_tripped(name: &str, tok: &Tokenizer, text: &str) -> String {
    if name != "qwen3" {
        return text.to_string();
    }
    let normalizer = tok
        .inner()
        .get_normalizer()
        .expect("Qwen3 has a normalizer");
    let mut normalized = NormalizedString::from(text);
    normalizer.normalize(&mut normalized).unwrap();
    normalized.get().to_string()
}

#[test]
fn decode_of_encode_gives_the_text_back() {
    for (name, tok) in all() {
        for text in texts().iter().map(String::as_str).chain([chat_text(name)]) {
            let expected = round_tripped(name, &tok, text);
            let ids = tok.encode(text, false).unwrap();
            assert_eq!(
                tok.decode(&ids, false).unwrap(),
                expected,
                "{name}: {ids:?}"
            );
            // BOS (Gemma) is special, so skipping special tokens drops exactly it.
            let with_bos = tok.encode(text, true).unwrap();
            if !text.contains('<') {
                assert_eq!(tok.decode(&with_bos, true).unwrap(), expected, "{name}");
            }
        }
    }
}

#[test]
fn incremental_detokenization_equals_one_shot_decoding() {
    for (name, tok) in all() {
        for text in texts().iter().map(String::as_str).chain([chat_text(name)]) {
            let ids = tok.encode(text, true).unwrap();
            for skip_special_tokens in [true, false] {
                let options = DetokenizerOptions {
                    skip_special_tokens,
                };
                let mut detok = Detokenizer::new(tok.clone(), options);
                let mut joined = String::new();
                for &id in &ids {
                    if let Some(delta) = detok.push(id).unwrap() {
                        assert!(
                            !delta.contains('\u{FFFD}'),
                            "{name}: half a character in {delta:?}"
                        );
                        joined.push_str(&delta);
                    }
                }
                joined.extend(detok.finish().unwrap());
                let expected = tok.decode(&ids, skip_special_tokens).unwrap();
                assert_eq!(
                    joined, expected,
                    "{name}, skip {skip_special_tokens}: {ids:?}"
                );
            }
        }
    }
}

/// Sequences a model might sample: random ids, many of them byte tokens or pieces of
/// characters, so the text is often invalid UTF-8.
#[test]
fn incremental_detokenization_equals_one_shot_decoding_on_random_ids() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, tok) in all() {
        let vocab_size = tok.vocab_size() as u64;
        // Gemma's byte tokens are ids 238..494; the byte-level tokenizers split characters
        // in ordinary tokens.
        for round in 0..150 {
            let len = 1 + next() % 48;
            let ids: Vec<u32> = (0..len)
                .map(|_| match (name, next() % 3) {
                    ("gemma3", 0) if round % 2 == 0 => 238 + (next() % 256) as u32,
                    _ => (next() % vocab_size) as u32,
                })
                .filter(|&id| tok.id_to_token(id).is_some())
                .collect();
            for skip_special_tokens in [true, false] {
                let options = DetokenizerOptions {
                    skip_special_tokens,
                };
                let mut detok = Detokenizer::new(tok.clone(), options);
                let mut joined = String::new();
                for &id in &ids {
                    joined.extend(detok.push(id).unwrap());
                }
                joined.extend(detok.finish().unwrap());
                let expected = tok.decode(&ids, skip_special_tokens).unwrap();
                assert_eq!(
                    joined, expected,
                    "{name}, skip {skip_special_tokens}: {ids:?}"
                );
            }
        }
    }
}

#[test]
fn chat_template_special_tokens_encode_to_single_ids() {
    let smol = smollm2();
    let ids = smol
        .encode("<|im_start|>user\nHi<|im_end|>\n", false)
        .unwrap();
    assert_eq!(ids.first(), Some(&1), "{ids:?}");
    assert!(ids.contains(&2), "{ids:?}");
    assert_eq!(smol.token_to_id("<|im_start|>"), Some(1));

    let gemma = gemma3();
    let ids = gemma
        .encode("<start_of_turn>user\nHi<end_of_turn>\n", false)
        .unwrap();
    assert_eq!(ids.first(), Some(&105), "{ids:?}");
    assert!(ids.contains(&106), "{ids:?}");

    let qwen = qwen3();
    let im_start = qwen.token_to_id("<|im_start|>").unwrap();
    let ids = qwen
        .encode("<|im_start|>user\nHi<|im_end|>\n", false)
        .unwrap();
    assert_eq!(ids.first(), Some(&im_start), "{ids:?}");
}

#[test]
fn special_ids_match_the_models() {
    let smol = smollm2();
    assert_eq!(smol.bos_token(), Some((1, "<|im_start|>".to_string())));
    assert_eq!(smol.eos_token(), Some((2, "<|im_end|>".to_string())));
    assert_eq!(smol.eos_token_ids(), [2, 0]);
    assert!(!smol.add_bos_token());
    assert!(smol.is_special(1) && !smol.is_special(100));
    assert_eq!(smol.vocab_size(), 49152);

    let gemma = gemma3();
    assert_eq!(gemma.bos_token(), Some((2, "<bos>".to_string())));
    assert_eq!(gemma.eos_token(), Some((1, "<eos>".to_string())));
    assert_eq!(gemma.eos_token_ids(), [1, 106]);
    assert!(gemma.add_bos_token());
    assert_eq!(gemma.encode("Hi", true).unwrap()[0], 2);
    // User-defined tokens (newline runs, HTML tags) are text, not special.
    assert!(!gemma.is_special(gemma.token_to_id("\n\n").unwrap()));
    assert_eq!(gemma.decode(&[108], true).unwrap(), "\n\n");
    assert_eq!(gemma.vocab_size(), 262144);

    let qwen = qwen3();
    let im_end = qwen.token_to_id("<|im_end|>").unwrap();
    let endoftext = qwen.token_to_id("<|endoftext|>").unwrap();
    assert_eq!(qwen.eos_token().map(|(id, _)| id), Some(im_end));
    assert_eq!(qwen.eos_token_ids(), [im_end, endoftext]);
    assert_eq!(qwen.bos_token(), None);
    assert!(!qwen.add_bos_token());
}

#[derive(Deserialize)]
struct Reference {
    model: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    add_bos: bool,
    ids: Vec<u32>,
}

fn check_against_llama_cpp(fixture: &str, tok: &Tokenizer) {
    let path = fixtures().join(fixture);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with scripts/gen_tokenizer_reference.py",
            path.display()
        )
    });
    let reference: Reference = serde_json::from_str(&json).unwrap();
    assert!(reference.cases.len() > 30, "{}", reference.model);
    let mut failures = Vec::new();
    for case in &reference.cases {
        let ids = tok.encode(&case.text, case.add_bos).unwrap();
        if ids != case.ids {
            failures.push(format!(
                "{:?} (add_bos {}):\n  llama.cpp {:?}\n  candor    {:?}",
                case.text, case.add_bos, case.ids, ids
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} texts differ from llama.cpp:\n{}",
        reference.model,
        failures.len(),
        reference.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_ids_match_llama_cpp() {
    check_against_llama_cpp("smollm2.json", &smollm2());
}

#[test]
fn gemma3_ids_match_llama_cpp() {
    check_against_llama_cpp("gemma3.json", &gemma3());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("candor-tokenizer-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_gguf(path: &Path, metadata: &[(&str, Value)]) {
    let mut file = std::fs::File::create(path).unwrap();
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut file, &metadata, &[]).unwrap();
}

/// A word-level tokenizer.json that asks for truncation to two tokens.
const TINY_TOKENIZER_JSON: &str = r#"{
  "version": "1.0",
  "truncation": {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0},
  "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "Whitespace"},
  "post_processor": null,
  "decoder": null,
  "model": {"type": "WordLevel", "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "<unk>": 4}, "unk_token": "<unk>"}
}"#;

#[test]
fn tokenizer_json_reads_its_config_and_never_truncates() {
    let dir = temp_dir("json-config");
    std::fs::write(dir.join("tokenizer.json"), TINY_TOKENIZER_JSON).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"bos_token": "<s>", "eos_token": {"content": "</s>"},
            "added_tokens_decoder": {"5": {"content": "<|im_end|>", "special": true}}}"#,
    )
    .unwrap();
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(tok.encode("a b a b a", false).unwrap(), [2, 3, 2, 3, 2]);
    assert_eq!(tok.bos_token(), Some((0, "<s>".to_string())));
    assert_eq!(tok.eos_token(), Some((1, "</s>".to_string())));
    // The config's extra token is added, special, and ends a turn.
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(5));
    assert!(tok.is_special(5));
    assert_eq!(tok.eos_token_ids(), [1, 5]);
    assert_eq!(tok.encode("a<|im_end|>", false).unwrap(), [2, 5]);
    assert!(!tok.add_bos_token());
}

#[test]
fn a_config_naming_an_unknown_bos_is_an_error_naming_the_config() {
    let dir = temp_dir("json-bad-config");
    std::fs::write(dir.join("tokenizer.json"), TINY_TOKENIZER_JSON).unwrap();
    let config = dir.join("tokenizer_config.json");
    std::fs::write(&config, r#"{"bos_token": "<|begin|>"}"#).unwrap();
    let err = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap_err();
    assert!(
        matches!(err, TokenizerError::InvalidConfig { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&config.display().to_string()), "{message}");
    assert!(message.contains("<|begin|>"), "{message}");
}

#[test]
fn a_missing_tokenizer_json_is_an_error_naming_the_file() {
    let path = temp_dir("missing").join("tokenizer.json");
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, TokenizerError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_malformed_tokenizer_json_is_an_error_naming_the_file() {
    let path = temp_dir("malformed").join("tokenizer.json");
    std::fs::write(&path, "{\"model\": 42}").unwrap();
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, TokenizerError::InvalidJson { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_gguf_without_tokenizer_metadata_is_an_error() {
    let path = temp_dir("no-tokenizer").join("model.gguf");
    write_gguf(
        &path,
        &[("general.architecture", Value::String("llama".into()))],
    );
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(
        matches!(err, TokenizerError::MissingMetadata { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("tokenizer.ggml.model"), "{message}");
}

#[test]
fn an_unknown_tokenizer_model_is_an_error_naming_it() {
    let path = temp_dir("unknown-model").join("model.gguf");
    let tokens = Value::Array(vec![Value::String("a".into()), Value::String("b".into())]);
    write_gguf(
        &path,
        &[
            ("tokenizer.ggml.model", Value::String("t5".into())),
            ("tokenizer.ggml.tokens", tokens),
        ],
    );
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(
        matches!(err, TokenizerError::UnsupportedModel { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("`t5`"), "{err}");
}

#[test]
fn an_unknown_pre_tokenizer_is_an_error_naming_it() {
    let path = temp_dir("unknown-pre").join("model.gguf");
    let tokens = Value::Array(vec![Value::String("a".into()), Value::String("b".into())]);
    write_gguf(
        &path,
        &[
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("martian".into())),
            ("tokenizer.ggml.tokens", tokens),
            ("tokenizer.ggml.merges", Value::Array(vec![])),
        ],
    );
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(
        matches!(err, TokenizerError::UnsupportedPreTokenizer { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("`martian`"), "{err}");
}

#[test]
fn a_truncated_gguf_is_an_error_naming_the_file() {
    let path = temp_dir("truncated").join("model.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00\xff").unwrap();
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, TokenizerError::InvalidGguf { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn decoding_an_id_outside_the_vocabulary_is_an_error() {
    let smol = smollm2();
    let err = smol.decode(&[1, 49152], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::UnknownId { id: 49152, .. }),
        "{err:?}"
    );
}
