//! Constrained decoding: the answer must match a grammar (a JSON schema, any JSON object,
//! a regular expression, one of a list of strings, a Lark grammar), enforced token by
//! token with llguidance, the library vLLM, SGLang and mistral.rs use. Only the answer is
//! constrained: the engine leaves the thinking free and starts the grammar where the
//! answer starts (see `engine::output_processor`).
//!
//! [`Grammars`] holds the model's vocabulary as llguidance needs it (a token trie, built
//! once per model); [`Grammars::compile`] checks a request's grammar and gives the
//! [`Constraint`] each of its sequences carries.

use crate::prompt::tokenizer::Tokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};
use std::sync::Arc;

/// What a request asks the answer to match.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// `response_format: {"type": "json_object"}`: any JSON object.
    JsonObject,
    /// `response_format: {"type": "json_schema", ...}`.
    JsonSchema(Value),
    /// vLLM's `guided_regex`.
    Regex(String),
    /// vLLM's `guided_choice`: exactly one of these strings.
    Choice(Vec<String>),
    /// vLLM's `guided_grammar`, in Lark syntax (llguidance's dialect).
    Lark(String),
}

impl Grammar {
    fn top_level(&self) -> TopLevelGrammar {
        match self {
            Grammar::JsonObject => TopLevelGrammar::from_json_schema(compact(json!({
                "type": "object"
            }))),
            Grammar::JsonSchema(schema) => {
                TopLevelGrammar::from_json_schema(compact(schema.clone()))
            }
            Grammar::Regex(rx) => TopLevelGrammar::from_regex(rx),
            Grammar::Choice(choices) => {
                let alternatives: Vec<String> = choices
                    .iter()
                    .map(|c| serde_json::to_string(c).expect("a string serializes"))
                    .collect();
                TopLevelGrammar::from_lark(format!("start: {}", alternatives.join(" | ")))
            }
            Grammar::Lark(lark) => TopLevelGrammar::from_lark(lark.clone()),
        }
    }
}

/// JSON written without free whitespace (`{"a":1,"b":[2]}`), as vLLM's default: a model
/// must not be able to fill its answer with blank lines inside an object. A schema that
/// sets its own `x-guidance` options keeps them.
fn compact(mut schema: Value) -> Value {
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance")
            .or_insert_with(|| json!({"whitespace_flexible": false}));
    }
    schema
}

/// The model's vocabulary as llguidance sees it, and the factory of matchers over it.
pub struct Grammars {
    factory: ParserFactory,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grammars")
    }
}

/// candor's tokenizer behind llguidance's [`TokenizerEnv`].
struct Vocabulary {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer.encode(text, false).unwrap_or_default()
        })
    }
}

impl Grammars {
    /// Builds the token trie of `tokenizer` over `n_vocab` ids (the model's logits, which
    /// may outnumber the tokenizer's ids); `eos` are the ids that end the answer.
    pub fn new(tokenizer: Arc<Tokenizer>, n_vocab: usize, eos: &[u32]) -> Result<Self, String> {
        let mut words: Vec<Vec<u8>> = tokenizer
            .token_bytes()
            .into_iter()
            .enumerate()
            .map(|(id, bytes)| {
                bytes.unwrap_or_else(|| {
                    // A special token: llguidance's marker, then a name no text can spell.
                    let mut w = format!(".<[{id}]>").into_bytes();
                    w[0] = TokTrie::SPECIAL_TOKEN_MARKER;
                    w
                })
            })
            .collect();
        while words.len() < n_vocab {
            let mut w = format!(".<[{}]>", words.len()).into_bytes();
            w[0] = TokTrie::SPECIAL_TOKEN_MARKER;
            words.push(w);
        }
        words.truncate(n_vocab);
        let first_eos = *eos
            .first()
            .ok_or("the model has no end-of-sequence token")?;
        let info = TokRxInfo::new(n_vocab as u32, first_eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(eos);
        let env: TokEnv = Arc::new(Vocabulary { trie, tokenizer });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| e.to_string())?;
        factory.quiet();
        Ok(Self { factory })
    }

    /// Checks `grammar` and gives the state a sequence starts with; the error says what
    /// is wrong with the grammar (a 400 for the request).
    pub fn compile(&self, grammar: &Grammar) -> Result<Constraint, String> {
        let parser = self.factory.create_parser(grammar.top_level());
        let matcher = Matcher::new(parser);
        match matcher.get_error() {
            Some(e) => Err(e),
            None => Ok(Constraint { matcher }),
        }
    }
}

/// One sequence's place in its grammar.
pub struct Constraint {
    matcher: Matcher,
}

impl Clone for Constraint {
    /// An independent copy (each of `n` choices walks the grammar on its own).
    fn clone(&self) -> Self {
        Self {
            matcher: self.matcher.deep_clone(),
        }
    }
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("stopped", &self.matcher.is_stopped())
            .finish()
    }
}

impl Constraint {
    /// The tokens the grammar allows next (end-of-sequence ones once it accepts).
    pub fn allowed(&mut self) -> Result<SimpleVob, String> {
        self.matcher.compute_mask().map_err(|e| e.to_string())
    }

    /// Sets every logit the grammar does not allow to minus infinity; `also` stays
    /// allowed whatever the grammar says (a reasoning model's start marker).
    pub fn mask(&mut self, logits: &mut [f32], also: Option<u32>) -> Result<(), String> {
        let allowed = self.allowed()?;
        for (id, l) in logits.iter_mut().enumerate() {
            if !allowed.is_allowed(id as u32) && also != Some(id as u32) {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Moves past a generated token.
    pub fn consume(&mut self, token: u32) -> Result<(), String> {
        self.matcher.consume_token(token).map_err(|e| e.to_string())
    }

    /// The grammar is complete and allows nothing more.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }
}
