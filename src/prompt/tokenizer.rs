//! Tokenizers: one [`Tokenizer`] over either a `tokenizer.json` file (with its
//! `tokenizer_config.json` beside it, when present) or the tokenizer metadata of a GGUF file.
//!
//! It owns text <-> id conversion and the ids the rest of candor asks about: BOS, EOS and
//! every end-of-generation id, and which ids are special. GGUF tokenizers are rebuilt as
//! `tokenizers` pipelines that tokenize like llama.cpp (see the `gguf` submodule).
//! Rendering chat templates is prompt/template.rs; turning generated ids back into text
//! piece by piece is output/detokenizer.rs.
//!
//! Special-token text in the input (`<|im_start|>`, `<start_of_turn>`) always encodes to the
//! special id, as llama.cpp does with `parse_special` for rendered chat templates.

mod gguf;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use serde::Deserialize;
use tokenizers::AddedToken;

/// Texts of end-of-turn tokens: a special token with one of these texts ends generation even
/// when the file does not name it (llama.cpp's `special_eot_id` list, src/llama-vocab.cpp).
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

/// Text of the end-of-message token (Llama 3.1 tool calls), llama.cpp's `special_eom_id`.
const END_OF_MESSAGE_TOKEN: &str = "<|eom_id|>";

/// Everything that can go wrong loading or using a tokenizer. Loading errors name the file
/// (or "GGUF metadata" when only the parsed metadata was given) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read tokenizer file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid tokenizer.json: {message}", path.display())]
    InvalidJson { path: PathBuf, message: String },
    #[error("{} is not a valid tokenizer_config.json: {message}", path.display())]
    InvalidConfig { path: PathBuf, message: String },
    #[error("{} is not a readable GGUF file: {message}", path.display())]
    InvalidGguf { path: PathBuf, message: String },
    #[error("{origin} has no tokenizer metadata: `{key}` is missing")]
    MissingMetadata { origin: String, key: String },
    #[error("{origin}: `{key}` {problem}")]
    InvalidMetadata {
        origin: String,
        key: String,
        problem: String,
    },
    #[error("{origin}: unsupported tokenizer model `{model}` in `tokenizer.ggml.model` (supported: gpt2, llama)")]
    UnsupportedModel { origin: String, model: String },
    #[error("{origin}: unsupported pre-tokenizer `{pre}` in `tokenizer.ggml.pre` (supported: {supported})")]
    UnsupportedPreTokenizer {
        origin: String,
        pre: String,
        supported: String,
    },
    #[error("{origin}: cannot build the tokenizer: {message}")]
    Build { origin: String, message: String },
    #[error("cannot encode text: {0}")]
    Encode(String),
    #[error("cannot decode token ids: {0}")]
    Decode(String),
    #[error("token id {id} is not in the vocabulary ({vocab_size} tokens)")]
    UnknownId { id: u32, vocab_size: usize },
}

/// A loaded tokenizer: a `tokenizers::Tokenizer` plus the special ids candor needs.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Prepended by `encode(.., add_special_tokens = true)` when `add_bos` is set.
    bos: Option<(u32, String)>,
    /// The model's end-of-sequence token; also the first of `eos_ids`.
    eos: Option<(u32, String)>,
    /// Every id that ends generation: EOS, end-of-turn, end-of-message.
    eos_ids: Vec<u32>,
    /// Ids that `decode(.., skip_special_tokens = true)` drops.
    special_ids: HashSet<u32>,
    /// Whether `encode` adds BOS/EOS itself. GGUF tokenizers do; a tokenizer.json does it
    /// through its own post-processor, so both stay false there.
    add_bos: bool,
    add_eos: bool,
    /// Whether `encode(.., add_special_tokens = true)` starts with BOS, by either route.
    starts_with_bos: bool,
    /// Number of ids `decode` accepts (model vocabulary plus added tokens).
    vocab_size: usize,
    /// How `decode` renders ids; see [`Decoding`].
    decoding: Decoding,
}

/// How `decode` turns ids into text.
#[derive(Debug, Clone)]
enum Decoding {
    /// The tokenizer's own decoder (tokenizer.json, GGUF `gpt2`).
    Inner,
    /// GGUF `llama` (SentencePiece): pieces joined as bytes, `▁` as a space and byte tokens
    /// as their byte, then invalid UTF-8 replaced by U+FFFD per invalid sequence, as
    /// llama.cpp's pieces would be. `tokenizers`' ByteFallback decoder instead turns a whole
    /// run of byte tokens into U+FFFDs when one byte is invalid, valid neighbours included,
    /// which no incremental detokenizer can reproduce.
    SentencePiece {
        /// The byte each `<0xNN>` token stands for.
        byte_tokens: HashMap<u32, u8>,
        /// Drop the leading space `add_space_prefix` put before the first word.
        strip_leading_space: bool,
    },
}

/// What a tokenizer source yields before the common bookkeeping in [`Tokenizer::assemble`].
struct Parts {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    /// End-of-turn and end-of-message ids the source names explicitly.
    eot: Option<u32>,
    eom: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    decoding: Decoding,
}

impl Tokenizer {
    /// Loads a tokenizer from `path`: a GGUF file (recognised by its magic bytes) or a
    /// `tokenizer.json`, in which case a `tokenizer_config.json` in the same directory
    /// supplies the BOS/EOS tokens and any added tokens missing from the JSON.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let read_error = |source| TokenizerError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        let mut magic = [0u8; 4];
        let is_gguf = match file.read_exact(&mut magic) {
            Ok(()) => &magic == b"GGUF",
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(read_error(e)),
        };
        file.rewind().map_err(read_error)?;
        if is_gguf {
            let content =
                gguf_file::Content::read(&mut std::io::BufReader::new(file)).map_err(|e| {
                    TokenizerError::InvalidGguf {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    }
                })?;
            let origin = path.display().to_string();
            Ok(Self::assemble(gguf::build(&content, &origin)?))
        } else {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(read_error)?;
            Self::from_json(path, &bytes)
        }
    }

    /// Builds a tokenizer from the `tokenizer.ggml.*` metadata of a GGUF file.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, TokenizerError> {
        Ok(Self::assemble(gguf::build(content, "GGUF metadata")?))
    }

    /// Builds a tokenizer from the bytes of the tokenizer.json at `path`.
    fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, TokenizerError> {
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::InvalidJson {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        // Prompts are checked against the context length elsewhere; never cut or pad them here.
        inner
            .with_truncation(None)
            .map_err(|e| TokenizerError::InvalidJson {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .with_padding(None);
        let config_path = path.with_file_name("tokenizer_config.json");
        let config = TokenizerConfig::read(&config_path)?.unwrap_or_default();
        config.add_missing_tokens(&mut inner, &config_path)?;
        let lookup =
            |spec: &Option<TokenSpec>, name: &str| -> Result<Option<u32>, TokenizerError> {
                let Some(content) = spec.as_ref().map(TokenSpec::content) else {
                    return Ok(None);
                };
                inner
                    .token_to_id(content)
                    .map(Some)
                    .ok_or_else(|| TokenizerError::InvalidConfig {
                        path: config_path.clone(),
                        message: format!("{name} `{content}` is not in the vocabulary"),
                    })
            };
        let bos = lookup(&config.bos_token, "bos_token")?;
        let eos = lookup(&config.eos_token, "eos_token")?;
        Ok(Self::assemble(Parts {
            inner,
            bos,
            eos,
            eot: None,
            eom: None,
            add_bos: false,
            add_eos: false,
            decoding: Decoding::Inner,
        }))
    }

    /// Common bookkeeping: special ids, end-of-generation ids, vocabulary size.
    fn assemble(parts: Parts) -> Self {
        let inner = parts.inner;
        let special_ids: HashSet<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();
        let with_text = |id: u32| inner.id_to_token(id).map(|text| (id, text));
        let bos = parts.bos.and_then(with_text);
        let eos = parts.eos.and_then(with_text);

        // EOS first, then what the source names, then the special tokens whose text marks an
        // end of turn or message (as llama.cpp does when a file does not name them).
        let by_text = END_OF_TURN_TOKENS
            .iter()
            .chain([&END_OF_MESSAGE_TOKEN])
            .filter_map(|text| inner.token_to_id(text))
            .filter(|id| special_ids.contains(id));
        let mut eos_ids = Vec::new();
        for id in eos
            .as_ref()
            .map(|(id, _)| *id)
            .into_iter()
            .chain(parts.eot)
            .chain(parts.eom)
            .chain(by_text)
        {
            if !eos_ids.contains(&id) {
                eos_ids.push(id);
            }
        }

        let starts_with_bos = match &bos {
            Some(_) if parts.add_bos => true,
            // A tokenizer.json adds BOS through its post-processor, if at all.
            Some((bos, _)) => inner
                .encode_fast("", true)
                .is_ok_and(|encoding| encoding.get_ids().first() == Some(bos)),
            None => false,
        };
        let vocab_size = inner.get_vocab_size(true);
        Self {
            inner,
            bos,
            eos,
            eos_ids,
            special_ids,
            add_bos: parts.add_bos,
            add_eos: parts.add_eos,
            starts_with_bos,
            vocab_size,
            decoding: parts.decoding,
        }
    }

    /// Token ids for `text`. Special-token text in `text` always becomes the special id.
    /// `add_special_tokens` adds what the model wants around a sequence (BOS for Llama and
    /// Gemma, nothing for Qwen or SmolLM2); leave it off for rendered chat templates that
    /// already carry their BOS.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let ids = encoding.get_ids();
        let mut out = Vec::with_capacity(ids.len() + 2);
        if add_special_tokens && self.add_bos {
            out.extend(self.bos.as_ref().map(|(id, _)| *id));
        }
        out.extend_from_slice(ids);
        if add_special_tokens && self.add_eos {
            out.extend(self.eos.as_ref().map(|(id, _)| *id));
        }
        Ok(out)
    }

    /// The text of `ids`. With `skip_special_tokens`, special tokens (BOS, `<|im_end|>`, ...)
    /// are left out. Ids outside the vocabulary are an error.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        if let Some(&id) = ids.iter().find(|&&id| self.inner.id_to_token(id).is_none()) {
            return Err(TokenizerError::UnknownId {
                id,
                vocab_size: self.vocab_size,
            });
        }
        let Decoding::SentencePiece {
            byte_tokens,
            strip_leading_space,
        } = &self.decoding
        else {
            return self
                .inner
                .decode(ids, skip_special_tokens)
                .map_err(|e| TokenizerError::Decode(e.to_string()));
        };
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if skip_special_tokens && self.special_ids.contains(&id) {
                continue;
            }
            match (byte_tokens.get(&id), self.inner.id_to_token(id)) {
                (Some(&byte), _) => bytes.push(byte),
                (None, Some(piece)) => bytes.extend_from_slice(piece.replace('▁', " ").as_bytes()),
                (None, None) => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let text = match text.strip_prefix(' ') {
            Some(rest) if *strip_leading_space => rest,
            _ => &text,
        };
        Ok(text.to_string())
    }

    /// The id of a token given by its vocabulary text (`Ġhello`, `▁hello`, `<|im_end|>`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary text of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos_token(&self) -> Option<(u32, String)> {
        self.bos.clone()
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos_token(&self) -> Option<(u32, String)> {
        self.eos.clone()
    }

    /// Every id that ends generation: EOS, end-of-turn (`<|im_end|>`, `<end_of_turn>`,
    /// `<|eot_id|>`) and end-of-message, EOS first, without repeats.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_ids.clone()
    }

    /// Whether `encode(.., add_special_tokens = true)` starts with BOS.
    pub fn add_bos_token(&self) -> bool {
        self.starts_with_bos
    }

    /// Whether `id` is a special token (control tokens such as BOS or `<|im_start|>`), which
    /// `decode(.., skip_special_tokens = true)` leaves out.
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// The bytes each id stands for, as constrained decoding needs them (a token trie):
    /// byte-level vocabularies (GPT-2, Qwen, Llama 3) map their characters back to
    /// bytes; SentencePiece ones turn `▁` into a space and `<0xNN>` into its byte. A
    /// special token is `None`: it stands for no text.
    pub fn token_bytes(&self) -> Vec<Option<Vec<u8>>> {
        let byte_level = self.inner.get_decoder().is_some_and(has_byte_level);
        let chars = byte_level.then(byte_level_chars);
        (0..self.vocab_size as u32)
            .map(|id| {
                if self.special_ids.contains(&id) {
                    return None;
                }
                let piece = self.inner.id_to_token(id)?;
                if let Decoding::SentencePiece { byte_tokens, .. } = &self.decoding {
                    if let Some(&b) = byte_tokens.get(&id) {
                        return Some(vec![b]);
                    }
                }
                match &chars {
                    Some(map) => piece.chars().map(|c| map.get(&c).copied()).collect(),
                    None => {
                        let hex = piece.strip_prefix("<0x").and_then(|h| h.strip_suffix('>'));
                        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            Some(b) if piece.len() == 6 => Some(vec![b]),
                            _ => Some(piece.replace('\u{2581}', " ").into_bytes()),
                        }
                    }
                }
            })
            .collect()
    }

    /// The underlying `tokenizers` tokenizer. For GGUF tokenizers it does not add BOS/EOS on
    /// its own; [`Tokenizer::encode`] does.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// The parts of `tokenizer_config.json` candor reads.
#[derive(Debug, Default, Deserialize)]
struct TokenizerConfig {
    #[serde(default)]
    bos_token: Option<TokenSpec>,
    #[serde(default)]
    eos_token: Option<TokenSpec>,
    /// Keyed by id, as transformers writes it.
    #[serde(default)]
    added_tokens_decoder: BTreeMap<String, AddedTokenSpec>,
}

/// A token as tokenizer_config.json names it: its text, or an object carrying the text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenSpec {
    Text(String),
    Object { content: String },
}

impl TokenSpec {
    fn content(&self) -> &str {
        match self {
            TokenSpec::Text(content) | TokenSpec::Object { content } => content,
        }
    }
}

#[derive(Debug, Deserialize)]
struct AddedTokenSpec {
    content: String,
    #[serde(default)]
    special: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    normalized: Option<bool>,
}

impl TokenizerConfig {
    /// Reads `path`; a missing file is `None`, an unreadable or malformed one an error.
    fn read(path: &Path) -> Result<Option<Self>, TokenizerError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TokenizerError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TokenizerError::InvalidConfig {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// Adds the tokens of `added_tokens_decoder` that tokenizer.json lacks. Ids are assigned
    /// by `tokenizers`; a token that lands on another id than the config says is reported.
    fn add_missing_tokens(
        &self,
        inner: &mut tokenizers::Tokenizer,
        path: &Path,
    ) -> Result<(), TokenizerError> {
        for (id, spec) in &self.added_tokens_decoder {
            if inner.token_to_id(&spec.content).is_some() {
                continue;
            }
            let token = AddedToken::from(spec.content.clone(), spec.special)
                .lstrip(spec.lstrip)
                .rstrip(spec.rstrip)
                .single_word(spec.single_word)
                .normalized(spec.normalized.unwrap_or(!spec.special));
            let added = if spec.special {
                inner.add_special_tokens([token])
            } else {
                inner.add_tokens([token])
            };
            added.map_err(|e| TokenizerError::InvalidConfig {
                path: path.to_path_buf(),
                message: format!("cannot add token `{}`: {e}", spec.content),
            })?;
            let assigned = inner.token_to_id(&spec.content);
            if assigned.map(|a| a.to_string()).as_deref() != Some(id.as_str()) {
                tracing::warn!(
                    token = %spec.content,
                    config_id = %id,
                    ?assigned,
                    "added token from tokenizer_config.json got a different id"
                );
            }
        }
        Ok(())
    }
}

/// Tiny GGUF tokenizers for unit tests, here and in output/.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Tokenizer;
    use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// A tiny SentencePiece tokenizer (GGUF `llama` model) with byte fallback.
    pub(crate) fn spm(add_space_prefix: bool) -> Arc<Tokenizer> {
        let mut tokens = vec!["<unk>", "<s>", "</s>", "<|im_end|>"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let mut types = vec![2, 3, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        // Each merged token is reachable by merging two tokens, best score (earliest) first.
        let normal = [
            "▁", "H", "e", "l", "o", "w", "r", "d", "!", "ll", "He", "llo", "Hello", "▁Hello",
            "▁w", "or", "ld", "▁wor", "▁world",
        ];
        for t in normal {
            tokens.push(t.to_string());
            types.push(1);
        }
        // A user-defined token, as Gemma has for runs of newlines and spaces.
        tokens.push("\n\n".to_string());
        types.push(4);
        let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
        let metadata = HashMap::from([
            (
                "tokenizer.ggml.model".to_string(),
                Value::String("llama".into()),
            ),
            ("tokenizer.ggml.tokens".to_string(), strings(tokens)),
            (
                "tokenizer.ggml.token_type".to_string(),
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.scores".to_string(),
                Value::Array(scores_values(scores)),
            ),
            (
                "tokenizer.ggml.add_space_prefix".to_string(),
                Value::Bool(add_space_prefix),
            ),
        ]);
        Arc::new(Tokenizer::from_gguf(&content(metadata)).unwrap())
    }

    /// A tiny byte-level BPE tokenizer (GGUF `gpt2` model) whose tokens split `é` and `€`.
    pub(crate) fn byte_level() -> Arc<Tokenizer> {
        // Byte-level alphabet: é = C3 A9 -> "Ã©", € = E2 82 AC -> "âĤ¬", space -> "Ġ".
        let tokens = [
            "<|im_end|>",
            "Ã",
            "©",
            "â",
            "Ĥ",
            "¬",
            "Ġ",
            "a",
            "b",
            "Ġa",
            "âĤ",
        ];
        let mut types = vec![1; tokens.len()];
        types[0] = 3;
        let metadata = HashMap::from([
            (
                "tokenizer.ggml.model".to_string(),
                Value::String("gpt2".into()),
            ),
            (
                "tokenizer.ggml.pre".to_string(),
                Value::String("gpt-2".into()),
            ),
            (
                "tokenizer.ggml.tokens".to_string(),
                strings(tokens.map(String::from).to_vec()),
            ),
            (
                "tokenizer.ggml.token_type".to_string(),
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.merges".to_string(),
                strings(vec!["Ġ a".to_string(), "â Ĥ".to_string()]),
            ),
        ]);
        Arc::new(Tokenizer::from_gguf(&content(metadata)).unwrap())
    }

    fn strings(values: Vec<String>) -> Value {
        Value::Array(values.into_iter().map(Value::String).collect())
    }

    fn scores_values(scores: Vec<f32>) -> Vec<Value> {
        scores.into_iter().map(Value::F32).collect()
    }

    fn content(metadata: HashMap<String, Value>) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_spec_reads_both_forms() {
        let config: TokenizerConfig = serde_json::from_str(
            r#"{"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false}, "pad_token": null}"#,
        )
        .unwrap();
        assert_eq!(config.bos_token.unwrap().content(), "<s>");
        assert_eq!(config.eos_token.unwrap().content(), "</s>");
    }

    fn names(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&id| tok.id_to_token(id).unwrap()).collect()
    }

    #[test]
    fn sentencepiece_merges_by_score_after_a_space_prefix() {
        let tok = test_support::spm(true);
        let ids = tok.encode("Hello world", false).unwrap();
        assert_eq!(names(&tok, &ids), ["▁Hello", "▁world"]);
        assert_eq!(tok.decode(&ids, false).unwrap(), "Hello world");
        // As in llama.cpp, the text after a special token gets its own space prefix.
        let ids = tok.encode("Hello<|im_end|>world", true).unwrap();
        assert_eq!(names(&tok, &ids), ["<s>", "▁Hello", "<|im_end|>", "▁world"]);
    }

    #[test]
    fn sentencepiece_falls_back_to_bytes() {
        let tok = test_support::spm(false);
        let ids = tok.encode("€!", false).unwrap();
        assert_eq!(names(&tok, &ids), ["<0xE2>", "<0x82>", "<0xAC>", "!"]);
        assert_eq!(tok.decode(&ids, false).unwrap(), "€!");
    }

    #[test]
    fn user_defined_tokens_are_cut_out_but_not_special() {
        let tok = test_support::spm(false);
        let ids = tok.encode("Hello\n\n world", false).unwrap();
        assert_eq!(names(&tok, &ids), ["Hello", "\n\n", "▁world"]);
        assert!(!tok.is_special(ids[1]));
        assert_eq!(tok.decode(&ids, true).unwrap(), "Hello\n\n world");
    }

    #[test]
    fn llama_defaults_name_bos_eos_and_end_of_turn() {
        let tok = test_support::spm(true);
        assert_eq!(tok.bos_token(), Some((1, "<s>".to_string())));
        assert_eq!(tok.eos_token(), Some((2, "</s>".to_string())));
        assert_eq!(tok.eos_token_ids(), [2, 3]);
        assert!(tok.add_bos_token());
        assert!(tok.is_special(0) && tok.is_special(3) && !tok.is_special(4));
        assert_eq!(tok.encode("", true).unwrap(), [1]);
    }

    #[test]
    fn an_empty_gguf_vocabulary_is_an_error() {
        use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
        let metadata = [
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", Value::Array(vec![])),
        ];
        let content = Content {
            magic: VersionedMagic::GgufV3,
            metadata: metadata
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        };
        let err = Tokenizer::from_gguf(&content).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GGUF metadata: `tokenizer.ggml.tokens` is empty"
        );
    }

    #[test]
    fn missing_file_is_a_read_error_naming_it() {
        let path = Path::new("/nonexistent/candor/tokenizer.json");
        let err = Tokenizer::from_file(path).unwrap_err();
        assert!(matches!(err, TokenizerError::Read { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("/nonexistent/candor/tokenizer.json"),
            "{err}"
        );
    }
}

/// Whether a decoder (or one in its sequence) is GPT-2's byte-level one.
fn has_byte_level(d: &tokenizers::decoders::DecoderWrapper) -> bool {
    match d {
        tokenizers::decoders::DecoderWrapper::ByteLevel(_) => true,
        tokenizers::decoders::DecoderWrapper::Sequence(s) => {
            s.get_decoders().iter().any(has_byte_level)
        }
        _ => false,
    }
}

/// GPT-2's byte-level alphabet, backwards: each printable stand-in to the byte it is.
/// Printable ASCII and Latin-1 bytes stand for themselves; the other 68 bytes are
/// written as the characters from U+0100 on, in byte order.
fn byte_level_chars() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 0x100u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (char::from(b), b)
            } else {
                let c = char::from_u32(next).expect("U+0100.. are chars");
                next += 1;
                (c, b)
            }
        })
        .collect()
}
