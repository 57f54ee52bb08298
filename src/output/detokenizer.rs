//! Incremental detokenization: generated ids in, complete new text out, one id at a time.
//!
//! A token is not a piece of text on its own. A byte-fallback token (`<0xE2>`) or a
//! byte-level BPE token may hold part of a UTF-8 character, and SentencePiece decoders strip
//! the leading space of the first token they see. So the [`Detokenizer`] decodes a short
//! window, the tokens of the last emitted text (context) followed by the pending ones, and
//! emits how much longer that is than the context alone, the way TGI's `decode_token` and
//! candle-examples' `TokenOutputStream` do (huggingface/text-generation-inference,
//! server/text_generation_server/models/model.py; huggingface/candle,
//! candle-examples/src/token_output_stream.rs). Unlike them it drops the tokens before the
//! window, so each step costs the same however long the output gets.
//!
//! Text that ends in U+FFFD (an incomplete character) is held back until the character
//! completes or [`Detokenizer::finish`] flushes it. The deltas join to exactly
//! `tokenizer.decode(all_ids, skip_special_tokens)`, invalid UTF-8 included, with two
//! exceptions: when more than `MAX_PENDING_TOKENS` tokens in a row leave a character
//! incomplete (held text is then emitted as U+FFFD), and for tokenizer.json files whose
//! ByteFallback decoder turns a whole run of byte tokens into U+FFFDs once one byte in it is
//! invalid, even bytes already shown as a valid character. (GGUF SentencePiece tokenizers
//! decode byte runs locally, see prompt/tokenizer.rs.)
//!
//! Stop strings and reasoning tags work on the deltas: `output/stop.rs` and
//! `reasoning/splitter.rs`.

use std::sync::Arc;

use crate::prompt::tokenizer::{Tokenizer, TokenizerError};

/// Pending tokens allowed to end in an incomplete character before their text is emitted
/// anyway. A UTF-8 character needs at most four byte tokens; more is invalid output, and
/// holding it back longer would only grow the window.
const MAX_PENDING_TOKENS: usize = 16;

/// How a [`Detokenizer`] renders ids.
#[derive(Debug, Clone)]
pub struct DetokenizerOptions {
    /// Leave special tokens (`<|im_end|>`, BOS) out of the text, as users expect of a
    /// completion. Off to show them, e.g. for debugging a chat template.
    pub skip_special_tokens: bool,
}

impl Default for DetokenizerOptions {
    fn default() -> Self {
        Self {
            skip_special_tokens: true,
        }
    }
}

/// Turns one sequence's generated ids into text deltas.
#[derive(Debug)]
pub struct Detokenizer {
    tokenizer: Arc<Tokenizer>,
    skip_special_tokens: bool,
    /// The tokens behind the last delta (`window[..read]`, context for decoding what comes
    /// next) followed by the pending ones whose text is not emitted yet.
    window: Vec<u32>,
    read: usize,
    /// `decode(window[..read])`: how much of a window decode is already emitted.
    prefix_text: String,
}

impl Detokenizer {
    pub fn new(tokenizer: Arc<Tokenizer>, options: DetokenizerOptions) -> Self {
        Self {
            tokenizer,
            skip_special_tokens: options.skip_special_tokens,
            window: Vec::new(),
            read: 0,
            prefix_text: String::new(),
        }
    }

    /// Adds a generated id and returns the new complete text, if any. `None` means the id
    /// added no text yet: a skipped special token, or part of a character.
    pub fn push(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        if self.skip_special_tokens && self.tokenizer.is_special(id) {
            // Decoding skips it too, so it changes nothing and stays out of the window.
            return Ok(None);
        }
        self.window.push(id);
        let text = match self.decode(&self.window) {
            Ok(text) => text,
            Err(e) => {
                // Leave the state as before this id, so the sequence can go on or finish.
                self.window.pop();
                return Err(e);
            }
        };
        let pending = self.window.len() - self.read;
        let full = pending >= MAX_PENDING_TOKENS;
        if text.ends_with(char::REPLACEMENT_CHARACTER) && !full {
            return Ok(None);
        }
        let delta = &text[emitted_len(&text, &self.prefix_text)..];
        if delta.is_empty() && !full {
            // Keep these tokens pending: as context they would strip no leading space.
            return Ok(None);
        }
        let delta = delta.to_string();
        // The tokens just decoded become the context for the next ones.
        self.window.drain(..self.read);
        self.read = self.window.len();
        self.prefix_text = self.decode(&self.window)?;
        Ok(non_empty(delta))
    }

    /// Flushes the pending text (an incomplete character shows as U+FFFD) and ends the
    /// sequence; a later `push` starts a new one.
    pub fn finish(&mut self) -> Result<Option<String>, TokenizerError> {
        let delta = if self.read < self.window.len() {
            let text = self.decode(&self.window)?;
            text[emitted_len(&text, &self.prefix_text)..].to_string()
        } else {
            String::new()
        };
        self.window.clear();
        self.read = 0;
        self.prefix_text.clear();
        Ok(non_empty(delta))
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.tokenizer.decode(ids, self.skip_special_tokens)
    }
}

/// How many bytes at the start of `text` were already emitted as `prefix`. Normally `text`
/// extends `prefix`; if a decoder rewrote the end of it, only the common part counts.
fn emitted_len(text: &str, prefix: &str) -> usize {
    if text.starts_with(prefix) {
        return prefix.len();
    }
    text.char_indices()
        .zip(prefix.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| text.len().min(prefix.len()))
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::tokenizer::test_support::{byte_level, spm};

    fn ids(tokenizer: &Tokenizer, tokens: &[&str]) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| tokenizer.token_to_id(t).unwrap_or_else(|| panic!("{t}")))
            .collect()
    }

    /// Every push's result, then finish's.
    fn deltas(tokenizer: &Arc<Tokenizer>, ids: &[u32], skip: bool) -> Vec<Option<String>> {
        let options = DetokenizerOptions {
            skip_special_tokens: skip,
        };
        let mut detok = Detokenizer::new(tokenizer.clone(), options);
        let mut out: Vec<_> = ids.iter().map(|&id| detok.push(id).unwrap()).collect();
        out.push(detok.finish().unwrap());
        out
    }

    fn joined(deltas: &[Option<String>]) -> String {
        deltas.iter().flatten().map(String::as_str).collect()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn byte_fallback_tokens_join_into_one_character() {
        let tok = spm(false);
        let ids = ids(
            &tok,
            &["▁Hello", "▁world", "<0xE2>", "<0x82>", "<0xAC>", "!"],
        );
        let out = deltas(&tok, &ids, true);
        assert_eq!(
            out,
            [
                some(" Hello"),
                some(" world"),
                None,
                None,
                some("€"),
                some("!"),
                None
            ]
        );
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn sentencepiece_leading_space_is_stripped_once() {
        let tok = spm(true);
        let ids = ids(&tok, &["▁Hello", "▁", "▁world", "!"]);
        let out = deltas(&tok, &ids, true);
        assert_eq!(joined(&out), "Hello  world!");
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
        assert_eq!(out[0], some("Hello"));
    }

    #[test]
    fn a_lone_space_token_first_waits_for_text() {
        let tok = spm(true);
        let ids = ids(&tok, &["▁", "▁Hello"]);
        let out = deltas(&tok, &ids, true);
        assert_eq!(out, [None, some(" Hello"), None]);
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn skipped_special_tokens_keep_the_spacing() {
        let tok = spm(true);
        let ids = ids(&tok, &["▁Hello", "<|im_end|>", "▁world", "</s>"]);
        let skipped = deltas(&tok, &ids, true);
        assert_eq!(skipped, [some("Hello"), None, some(" world"), None, None]);
        assert_eq!(joined(&skipped), tok.decode(&ids, true).unwrap());
        let shown = deltas(&tok, &ids, false);
        assert_eq!(joined(&shown), tok.decode(&ids, false).unwrap());
        assert_eq!(joined(&shown), "Hello<|im_end|> world</s>");
    }

    #[test]
    fn byte_level_tokens_never_split_a_character() {
        let tok = byte_level();
        let ids = ids(&tok, &["a", "Ã", "©", "Ġa", "âĤ", "¬", "b"]);
        let out = deltas(&tok, &ids, true);
        assert_eq!(
            out,
            [
                some("a"),
                None,
                some("é"),
                some(" a"),
                None,
                some("€"),
                some("b"),
                None
            ]
        );
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn valid_bytes_next_to_invalid_ones_survive() {
        let tok = spm(false);
        // `_` then a lead byte with no continuation: one invalid sequence, then `!`.
        let ids = ids(&tok, &["<0x5F>", "<0xE2>", "<0x82>", "!"]);
        let out = deltas(&tok, &ids, true);
        assert_eq!(out, [some("_"), None, None, some("\u{FFFD}!"), None]);
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn finish_flushes_an_incomplete_character() {
        let tok = byte_level();
        let ids = ids(&tok, &["a", "âĤ"]);
        let out = deltas(&tok, &ids, true);
        assert_eq!(out, [some("a"), None, some("\u{FFFD}")]);
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn invalid_bytes_are_emitted_once_the_window_is_full() {
        let tok = byte_level();
        // Lead bytes without continuations: every prefix of this ends in U+FFFD.
        let ids = ids(&tok, &["â"]).repeat(40);
        let out = deltas(&tok, &ids, true);
        assert!(out[..MAX_PENDING_TOKENS - 1].iter().all(Option::is_none));
        assert!(out[MAX_PENDING_TOKENS - 1].is_some());
        assert_eq!(joined(&out), tok.decode(&ids, true).unwrap());
    }

    #[test]
    fn unknown_ids_fail_without_losing_the_sequence() {
        let tok = spm(false);
        let mut detok = Detokenizer::new(tok.clone(), DetokenizerOptions::default());
        let hello = tok.token_to_id("▁Hello").unwrap();
        assert_eq!(detok.push(hello).unwrap(), some(" Hello"));
        let err = detok.push(1_000_000).unwrap_err();
        assert!(err.to_string().contains("1000000"), "{err}");
        let world = tok.token_to_id("▁world").unwrap();
        assert_eq!(detok.push(world).unwrap(), some(" world"));
        assert_eq!(detok.finish().unwrap(), None);
    }

    #[test]
    fn the_window_stays_small_over_long_outputs() {
        let tok = spm(true);
        let cycle = ids(&tok, &["▁Hello", "<0xE2>", "<0x82>", "<0xAC>", "▁world"]);
        let mut detok = Detokenizer::new(tok.clone(), DetokenizerOptions::default());
        let mut text = String::new();
        let mut all = Vec::new();
        for &id in cycle.iter().cycle().take(5_000) {
            all.push(id);
            text.extend(detok.push(id).unwrap());
            assert!(
                detok.window.len() <= 8,
                "window grew to {}",
                detok.window.len()
            );
        }
        text.extend(detok.finish().unwrap());
        assert_eq!(text, tok.decode(&all, true).unwrap());
    }

    #[test]
    fn emitted_len_falls_back_to_the_common_prefix() {
        assert_eq!(emitted_len("hello world", "hello"), 5);
        assert_eq!(emitted_len("hellø", "hello"), 4);
        assert_eq!(emitted_len("hé", "héllo"), 3);
    }
}
