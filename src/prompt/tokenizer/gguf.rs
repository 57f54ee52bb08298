//! Rebuilding a tokenizer from GGUF `tokenizer.ggml.*` metadata as a `tokenizers` pipeline
//! that gives the same ids as llama.cpp (ggml-org/llama.cpp, src/llama-vocab.cpp).
//!
//! Two models are supported:
//! - `gpt2`: byte-level BPE with the file's merges. The pre-tokenizer regexes follow
//!   `tokenizer.ggml.pre` as in llama.cpp's `llm_tokenizer_bpe`: each regex splits the pieces
//!   of the previous one, keeping matches and the text between them.
//! - `llama`: SentencePiece BPE as llama.cpp's `llm_tokenizer_spm` runs it: spaces become `▁`
//!   (with a leading one when `add_space_prefix`), then the adjacent pair whose joined text
//!   is the best-scoring vocabulary token merges first, and characters left without a token
//!   become `<0xNN>` byte tokens. That is a BPE whose merges are every split of every token,
//!   ranked by the token's score.
//!
//! In both, control and unknown tokens are special added tokens and user-defined tokens
//! (Gemma's `\n\n`, runs of spaces, HTML tags) are plain added tokens: all are cut out of the
//! raw text before the model sees it, as llama.cpp's `tokenizer_st_partition` does.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper};
use tokenizers::{SplitDelimiterBehavior, Tokenizer as HfTokenizer};

use super::{Decoding, Parts, TokenizerError};

/// SentencePiece's escaped space (U+2581).
const SPIECE_SPACE: &str = "\u{2581}";

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
const TOKEN_TYPE_BYTE: i64 = 6;

/// The GPT-2 split: contractions, letters, digits, other symbols, each with an optional
/// leading space, and whitespace runs that leave the last space to the next word.
const REGEX_GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Qwen2: case-insensitive contractions, single digits, newlines kept with punctuation.
const REGEX_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3: as Qwen2 but digits in groups of up to three.
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a `gpt2` tokenizer splits text before BPE, chosen by `tokenizer.ggml.pre`.
struct PreTokenizerKind {
    /// `tokenizer.ggml.pre` values that select it.
    names: &'static [&'static str],
    /// Applied in order, each to the pieces the previous one produced.
    regexes: &'static [&'static str],
    /// A piece that is itself a vocabulary token is not merged (llama.cpp `ignore_merges`).
    ignore_merges: bool,
    /// llama.cpp's default for `add_bos` when the file does not say.
    add_bos: bool,
}

/// The pre-tokenizers llama.cpp assigns to these names (src/llama-vocab.cpp, `load`).
const PRE_TOKENIZERS: &[PreTokenizerKind] = &[
    PreTokenizerKind {
        names: &["default"],
        regexes: &[
            r"[\p{P}\$\+<=>\^~\|]+",
            REGEX_GPT2,
            r"\p{N}+",
            r"[0-9][0-9][0-9]",
        ],
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizerKind {
        names: &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "exaone4",
            "mpt",
            "olmo",
            "jais",
            "trillion",
            "granite-docling",
        ],
        regexes: &[REGEX_GPT2],
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizerKind {
        names: &[
            "smollm",
            "starcoder",
            "refact",
            "command-r",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
        ],
        regexes: &[r"\p{N}", REGEX_GPT2],
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizerKind {
        names: &[
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "megrez",
            "stablelm2",
            "hunyuan",
            "solar-open",
        ],
        regexes: &[REGEX_QWEN2],
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizerKind {
        names: &[
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
        ],
        regexes: &[REGEX_LLAMA3],
        ignore_merges: true,
        add_bos: true,
    },
    PreTokenizerKind {
        names: &["dbrx", "smaug-bpe"],
        regexes: &[REGEX_LLAMA3],
        ignore_merges: false,
        add_bos: false,
    },
];

/// Reads the tokenizer out of `content`; `origin` names the file in errors.
pub(super) fn build(content: &Content, origin: &str) -> Result<Parts, TokenizerError> {
    let meta = Metadata { content, origin };
    let model = meta
        .string("tokenizer.ggml.model")?
        .ok_or_else(|| meta.missing("tokenizer.ggml.model"))?;
    let tokens = meta
        .string_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| meta.missing("tokenizer.ggml.tokens"))?;
    if tokens.is_empty() {
        return Err(meta.invalid("tokenizer.ggml.tokens", "is empty"));
    }
    let types = meta.int_array("tokenizer.ggml.token_type", tokens.len())?;

    let vocab = vocab(&tokens, &meta)?;
    let (mut inner, defaults, decoding) = match model {
        "gpt2" => gpt2(&meta, vocab)?,
        "llama" => llama(&meta, vocab, &tokens, types.as_deref())?,
        other => {
            return Err(TokenizerError::UnsupportedModel {
                origin: origin.to_string(),
                model: other.to_string(),
            })
        }
    };
    add_special_tokens(&mut inner, &tokens, types.as_deref(), &meta)?;

    let id = |key: &str, default: Option<u32>| -> Result<Option<u32>, TokenizerError> {
        let id = meta.u32(key)?.or(default);
        Ok(id.filter(|&id| {
            let known = (id as usize) < tokens.len();
            if !known {
                tracing::warn!(origin, key, id, "special token id out of range, ignored");
            }
            known
        }))
    };
    let bos = id("tokenizer.ggml.bos_token_id", defaults.bos)?;
    let eos = id("tokenizer.ggml.eos_token_id", defaults.eos)?;
    let eot = id("tokenizer.ggml.eot_token_id", None)?;
    let eom = id("tokenizer.ggml.eom_token_id", None)?;
    let add_bos = meta
        .bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(defaults.add_bos);
    let add_eos = meta.bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    if add_bos && bos.is_none() {
        return Err(meta.invalid(
            "tokenizer.ggml.add_bos_token",
            "is true, but `tokenizer.ggml.bos_token_id` is not set",
        ));
    }
    if add_eos && eos.is_none() {
        return Err(meta.invalid(
            "tokenizer.ggml.add_eos_token",
            "is true, but `tokenizer.ggml.eos_token_id` is not set",
        ));
    }
    Ok(Parts {
        inner,
        bos,
        eos,
        eot,
        eom,
        add_bos,
        add_eos,
        decoding,
    })
}

/// What a model type assumes when the file leaves a key out (llama.cpp's defaults).
struct Defaults {
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

fn vocab(tokens: &[String], meta: &Metadata) -> Result<Vocab, TokenizerError> {
    let mut vocab = Vocab::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        if let Some(first) = vocab.insert(token.clone(), id as u32) {
            return Err(meta.invalid(
                "tokenizer.ggml.tokens",
                &format!("has the token `{token}` twice (ids {first} and {id})"),
            ));
        }
    }
    Ok(vocab)
}

/// Byte-level BPE with the file's merges and a pre-tokenizer chosen by `tokenizer.ggml.pre`.
fn gpt2(
    meta: &Metadata,
    vocab: Vocab,
) -> Result<(HfTokenizer, Defaults, Decoding), TokenizerError> {
    // llama.cpp warns and falls back to "default" when the key is missing.
    let pre = meta.string("tokenizer.ggml.pre")?.unwrap_or("default");
    let kind = PRE_TOKENIZERS
        .iter()
        .find(|kind| kind.names.contains(&pre))
        .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer {
            origin: meta.origin.to_string(),
            pre: pre.to_string(),
            supported: PRE_TOKENIZERS
                .iter()
                .flat_map(|kind| kind.names)
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        })?;

    let merges = meta
        .string_array("tokenizer.ggml.merges")?
        .ok_or_else(|| meta.missing("tokenizer.ggml.merges"))?;
    let merges = usable_merges(&merges, &vocab, meta);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(kind.ignore_merges)
        .build()
        .map_err(|e| meta.build_error(e))?;

    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(kind.regexes.len() + 1);
    for regex in kind.regexes {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| meta.build_error(e))?;
        steps.push(split.into());
    }
    // The regexes did the splitting; ByteLevel only maps bytes to its printable alphabet.
    steps.push(ByteLevel::new(false, false, false).into());

    let mut inner = HfTokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(PreTokenizerSequence::new(steps)));
    inner.with_decoder(Some(ByteLevel::new(false, false, false)));
    Ok((
        inner,
        Defaults {
            bos: None,
            eos: None,
            add_bos: kind.add_bos,
        },
        Decoding::Inner,
    ))
}

/// Parses `left right` merge strings, dropping (with a warning) any without a space or whose
/// parts or result are not tokens: llama.cpp can never apply those, `tokenizers` rejects them.
fn usable_merges(merges: &[String], vocab: &Vocab, meta: &Metadata) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(merges.len());
    let mut dropped = 0usize;
    for merge in merges {
        // As llama.cpp: split at the first space after the first byte.
        let split = merge
            .char_indices()
            .find(|&(i, c)| i >= 1 && c == ' ')
            .map(|(i, _)| (&merge[..i], &merge[i + 1..]));
        let usable = split.is_some_and(|(left, right)| {
            vocab.contains_key(left)
                && vocab.contains_key(right)
                && vocab.contains_key(&format!("{left}{right}"))
        });
        if let (true, Some((left, right))) = (usable, split) {
            out.push((left.to_string(), right.to_string()));
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(
            origin = meta.origin,
            dropped,
            "merges whose parts are not tokens were dropped"
        );
    }
    out
}

/// SentencePiece BPE: merges from scores, `▁` for spaces, byte fallback.
fn llama(
    meta: &Metadata,
    vocab: Vocab,
    tokens: &[String],
    types: Option<&[i64]>,
) -> Result<(HfTokenizer, Defaults, Decoding), TokenizerError> {
    let scores = meta.float_array("tokenizer.ggml.scores", tokens.len())?;
    // llama.cpp scores every token 0 when the file has no scores.
    let scores = scores.unwrap_or_else(|| vec![0.0; tokens.len()]);
    let merges = merges_from_scores(tokens, &scores);

    let unk = meta
        .u32("tokenizer.ggml.unknown_token_id")?
        .unwrap_or(0)
        .try_into()
        .ok()
        .and_then(|id: usize| tokens.get(id));
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder.build().map_err(|e| meta.build_error(e))?;

    let add_space_prefix = meta
        .bool("tokenizer.ggml.add_space_prefix")?
        .unwrap_or(true);
    let mut normalizers: Vec<NormalizerWrapper> = Vec::with_capacity(2);
    if add_space_prefix {
        normalizers.push(Prepend::new(SPIECE_SPACE.to_string()).into());
    }
    normalizers.push(
        Replace::new(" ", SPIECE_SPACE)
            .map_err(|e| meta.build_error(e))?
            .into(),
    );
    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new(SPIECE_SPACE, " ")
            .map_err(|e| meta.build_error(e))?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }

    let mut inner = HfTokenizer::new(bpe);
    inner
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| meta.build_error(e))?;
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    let decoding = Decoding::SentencePiece {
        byte_tokens: byte_tokens(tokens, types),
        strip_leading_space: add_space_prefix,
    };
    Ok((
        inner,
        Defaults {
            bos: Some(1),
            eos: Some(2),
            add_bos: true,
        },
        decoding,
    ))
}

/// The byte of every `<0xNN>` byte token (by type, or by text when the file has no types).
fn byte_tokens(tokens: &[String], types: Option<&[i64]>) -> HashMap<u32, u8> {
    tokens
        .iter()
        .enumerate()
        .filter(|(id, _)| types.is_none_or(|types| types[*id] == TOKEN_TYPE_BYTE))
        .filter_map(|(id, text)| {
            let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
            let byte = u8::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)?;
            Some((id as u32, byte))
        })
        .collect()
}

/// BPE merges that reproduce SentencePiece merging by score: for every token, every split
/// into two tokens is a merge, and merges rank by the token's score, best first (ties by
/// token id, then by split position). llama.cpp merges the best-scoring adjacent pair,
/// leftmost first on ties, which a BPE with these ranks also does.
fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    // Two lookups per split of every token (2M for Gemma 3's 262k tokens): aHash, not
    // the standard library's DoS-resistant SipHash, for these trusted strings.
    let known: ahash::AHashSet<&str> = tokens.iter().map(String::as_str).collect();
    let mut splits: Vec<(f32, usize, usize)> = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        for (pos, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(pos);
            if known.contains(left) && known.contains(right) {
                splits.push((scores[id], id, pos));
            }
        }
    }
    splits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    splits
        .into_iter()
        .map(|(_, id, pos)| {
            let (left, right) = tokens[id].split_at(pos);
            (left.to_string(), right.to_string())
        })
        .collect()
}

/// Control and unknown tokens become special added tokens, user-defined ones plain added
/// tokens; all match the raw text, before normalization.
fn add_special_tokens(
    inner: &mut HfTokenizer,
    tokens: &[String],
    types: Option<&[i64]>,
    meta: &Metadata,
) -> Result<(), TokenizerError> {
    let Some(types) = types else {
        return Ok(());
    };
    let mut special = Vec::new();
    let mut user_defined = Vec::new();
    for (token, &kind) in tokens.iter().zip(types) {
        match kind {
            TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNKNOWN => {
                special.push(AddedToken::from(token.clone(), true).normalized(false))
            }
            TOKEN_TYPE_USER_DEFINED => {
                user_defined.push(AddedToken::from(token.clone(), false).normalized(false))
            }
            _ => {}
        }
    }
    inner
        .add_special_tokens(special)
        .map_err(|e| meta.build_error(e))?;
    inner
        .add_tokens(user_defined)
        .map_err(|e| meta.build_error(e))?;
    Ok(())
}

/// Typed access to `tokenizer.ggml.*` keys with errors that name the file and the key.
struct Metadata<'a> {
    content: &'a Content,
    origin: &'a str,
}

impl Metadata<'_> {
    fn missing(&self, key: &str) -> TokenizerError {
        TokenizerError::MissingMetadata {
            origin: self.origin.to_string(),
            key: key.to_string(),
        }
    }

    fn invalid(&self, key: &str, problem: &str) -> TokenizerError {
        TokenizerError::InvalidMetadata {
            origin: self.origin.to_string(),
            key: key.to_string(),
            problem: problem.to_string(),
        }
    }

    fn build_error(&self, e: impl std::fmt::Display) -> TokenizerError {
        TokenizerError::Build {
            origin: self.origin.to_string(),
            message: e.to_string(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<&str>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(key, "is not a string")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(key, "is not a boolean")),
        }
    }

    fn u32(&self, key: &str) -> Result<Option<u32>, TokenizerError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        integer(value)
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| self.invalid(key, "is not a token id"))
    }

    fn array(&self, key: &str) -> Result<Option<&[Value]>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(values)) => Ok(Some(values)),
            Some(_) => Err(self.invalid(key, "is not an array")),
        }
    }

    fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, TokenizerError> {
        let Some(values) = self.array(key)? else {
            return Ok(None);
        };
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.invalid(key, "is not an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An integer array with at least `len` entries (one per token).
    fn int_array(&self, key: &str, len: usize) -> Result<Option<Vec<i64>>, TokenizerError> {
        let Some(values) = self.array(key)? else {
            return Ok(None);
        };
        if values.len() < len {
            return Err(self.invalid(
                key,
                &format!("has {} entries for {len} tokens", values.len()),
            ));
        }
        values
            .iter()
            .map(|v| integer(v).ok_or_else(|| self.invalid(key, "is not an array of integers")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A float array with at least `len` entries (llama.cpp also accepts i32 scores).
    fn float_array(&self, key: &str, len: usize) -> Result<Option<Vec<f32>>, TokenizerError> {
        let Some(values) = self.array(key)? else {
            return Ok(None);
        };
        if values.len() < len {
            return Err(self.invalid(
                key,
                &format!("has {} entries for {len} tokens", values.len()),
            ));
        }
        values
            .iter()
            .map(|v| match v {
                Value::F32(f) => Ok(*f),
                Value::F64(f) => Ok(*f as f32),
                other => integer(other)
                    .map(|i| i as f32)
                    .ok_or_else(|| self.invalid(key, "is not an array of numbers")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some((*v).into()),
        Value::I8(v) => Some((*v).into()),
        Value::U16(v) => Some((*v).into()),
        Value::I16(v) => Some((*v).into()),
        Value::U32(v) => Some((*v).into()),
        Value::I32(v) => Some((*v).into()),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

/// Pieces of `text` after the regex steps of a pre-tokenizer, for tests.
#[cfg(test)]
fn split_with(pre: &str, text: &str) -> Vec<String> {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
    let kind = PRE_TOKENIZERS
        .iter()
        .find(|kind| kind.names.contains(&pre))
        .expect("known pre-tokenizer");
    let steps: Vec<PreTokenizerWrapper> = kind
        .regexes
        .iter()
        .map(|r| {
            Split::new(
                SplitPattern::Regex(r.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .expect("regex compiles")
            .into()
        })
        .collect();
    let mut pretokenized = PreTokenizedString::from(text);
    PreTokenizerSequence::new(steps)
        .pre_tokenize(&mut pretokenized)
        .expect("pre-tokenize");
    pretokenized
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(s, _, _)| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pre_tokenizer_regex_compiles() {
        for kind in PRE_TOKENIZERS {
            for regex in kind.regexes {
                assert!(
                    Split::new(
                        SplitPattern::Regex(regex.to_string()),
                        SplitDelimiterBehavior::Isolated,
                        false
                    )
                    .is_ok(),
                    "{regex}"
                );
            }
        }
    }

    #[test]
    fn smollm_splits_digits_one_by_one() {
        assert_eq!(
            split_with("smollm", "abc 1234 def"),
            ["abc", " ", "1", "2", "3", "4", " def"]
        );
    }

    #[test]
    fn gpt2_keeps_the_last_space_for_the_next_word() {
        assert_eq!(split_with("gpt-2", "a   b\n"), ["a", "  ", " b", "\n"]);
    }

    #[test]
    fn qwen2_and_llama3_differ_only_in_digit_groups() {
        let text = "I'LL pay 12345 now\n\n  ok";
        assert_eq!(
            split_with("qwen2", text),
            ["I", "'LL", " pay", " ", "1", "2", "3", "4", "5", " now", "\n\n", " ", " ok"]
        );
        assert_eq!(
            split_with("llama-bpe", text),
            ["I", "'LL", " pay", " ", "123", "45", " now", "\n\n", " ", " ok"]
        );
    }

    #[test]
    fn default_splits_punctuation_and_digit_triples() {
        assert_eq!(
            split_with("default", "x+=123456!"),
            ["x", "+=", "123", "456", "!"]
        );
    }

    #[test]
    fn merges_rank_by_the_merged_token_score() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .into_iter()
            .map(String::from)
            .collect();
        // "bc" scores better than "ab", so "abc" tokenizes as a + bc, then abc.
        let scores = [0.0, 0.0, 0.0, -5.0, -1.0, -3.0];
        let merges = merges_from_scores(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(pairs, [("b", "c"), ("a", "bc"), ("ab", "c"), ("a", "b")]);
    }

    #[test]
    fn unknown_merge_parts_are_dropped() {
        let vocab: Vocab = [("a", 0), ("b", 1), ("ab", 2)]
            .into_iter()
            .map(|(t, i)| (t.to_string(), i))
            .collect();
        let content = Content {
            magic: candle_core::quantized::gguf_file::VersionedMagic::GgufV3,
            metadata: HashMap::new(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        };
        let meta = Metadata {
            content: &content,
            origin: "test",
        };
        let merges = ["a b", "a c", "b a", "ab"].map(String::from);
        assert_eq!(
            usable_merges(&merges, &vocab, &meta),
            [("a".to_string(), "b".to_string())]
        );
    }
}
