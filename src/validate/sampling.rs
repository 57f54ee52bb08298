//! The fields both completion endpoints share: choices, sampling, penalties, stop
//! strings, streaming, and the token limits.

use crate::engine::sampler::SamplingParams;
use crate::openai::CommonRequestFields;
use crate::validate::values::{
    boolean, decimal_in, decimal_range, describe, empty_string, integer_in, invalid, number,
    string, wrong_type,
};
use crate::validate::{Limits, ValidationError, MAX_N, MAX_STOP};
use serde_json::Value;

pub(super) struct Common {
    pub(super) n: usize,
    pub(super) sampling: SamplingParams,
    pub(super) stop: Vec<String>,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
    pub(super) ignore_eos: bool,
}

pub(super) fn common(f: &CommonRequestFields, limits: &Limits) -> Result<Common, ValidationError> {
    let n = integer_in(&f.n, "n", 1, MAX_N as i128)?.unwrap_or(1) as usize;
    let stop = stop(&f.stop)?;
    let stream = boolean(&f.stream, "stream")?.unwrap_or(false);
    // Lenient where OpenAI refuses: stream_options without stream is ignored, not an error.
    let include_usage = match &f.stream_options {
        None => false,
        Some(Value::Object(options)) => boolean(
            &options.get("include_usage").cloned(),
            "stream_options.include_usage",
        )?
        .unwrap_or(false),
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    } && stream;
    string(&f.user, "user")?;
    let ignore_eos = boolean(&f.ignore_eos, "ignore_eos")?.unwrap_or(false);

    let defaults = SamplingParams::default();
    let temperature = decimal_in(&f.temperature, "temperature", 0.0, 2.0)?
        .map_or(defaults.temperature, |t| t as f32);
    let top_p = match number(&f.top_p, "top_p")? {
        None => defaults.top_p,
        Some(p) if p <= 0.0 => {
            return Err(invalid(
                "top_p",
                "decimal_below_min_value",
                format!("Invalid 'top_p': expected a value > 0, but got {p} instead."),
            ))
        }
        Some(p) => decimal_range("top_p", p, 0.0, 1.0)? as f32,
    };
    // vLLM: -1 (and 0) disable top-k.
    let top_k = integer_in(&f.top_k, "top_k", -1, i128::MAX)?.map_or(defaults.top_k, |k| {
        usize::try_from(k.max(0)).unwrap_or(usize::MAX)
    });
    let min_p = decimal_in(&f.min_p, "min_p", 0.0, 1.0)?.map_or(defaults.min_p, |p| p as f32);
    let repetition_penalty = match number(&f.repetition_penalty, "repetition_penalty")? {
        None => defaults.repetition_penalty,
        Some(r) if r <= 0.0 => {
            return Err(invalid(
                "repetition_penalty",
                "decimal_below_min_value",
                format!("Invalid 'repetition_penalty': expected a value > 0, but got {r} instead."),
            ))
        }
        Some(r) => r as f32,
    };
    let presence_penalty = decimal_in(&f.presence_penalty, "presence_penalty", -2.0, 2.0)?
        .map_or(defaults.presence_penalty, |p| p as f32);
    let frequency_penalty = decimal_in(&f.frequency_penalty, "frequency_penalty", -2.0, 2.0)?
        .map_or(defaults.frequency_penalty, |p| p as f32);
    let logit_bias = logit_bias(&f.logit_bias, limits)?;
    // Any 64-bit integer; a negative seed is taken as its two's complement.
    let seed = integer_in(&f.seed, "seed", i64::MIN as i128, u64::MAX as i128)?.map(|s| {
        if s < 0 {
            s as i64 as u64
        } else {
            s as u64
        }
    });

    Ok(Common {
        n,
        sampling: SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            presence_penalty,
            frequency_penalty,
            logit_bias,
            seed,
        },
        stop,
        stream,
        include_usage,
        ignore_eos,
    })
}

/// `max_tokens` or `max_completion_tokens`: at least 1 and within the context.
pub(super) fn token_limit(
    value: &Option<Value>,
    param: &str,
    limits: &Limits,
) -> Result<Option<usize>, ValidationError> {
    let Some(n) = integer_in(value, param, 1, i128::MAX)? else {
        return Ok(None);
    };
    if n > limits.context_length as i128 {
        return Err(invalid(
            param,
            "integer_above_max_value",
            format!(
                "Invalid '{param}': {n} is more than this model's context length of {} \
                 tokens (prompt and completion together).",
                limits.context_length
            ),
        ));
    }
    Ok(Some(n as usize))
}

fn stop(value: &Option<Value>) -> Result<Vec<String>, ValidationError> {
    let one = |s: &str, param: &str| {
        if s.is_empty() {
            Err(empty_string(param))
        } else {
            Ok(s.to_string())
        }
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![one(s, "stop")?]),
        Some(Value::Array(items)) => {
            if items.len() > MAX_STOP {
                return Err(invalid(
                    "stop",
                    "array_above_max_length",
                    format!(
                        "Invalid 'stop': array too long. Expected an array with maximum length \
                         {MAX_STOP}, but got an array with length {} instead.",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let param = format!("stop[{i}]");
                    match item {
                        Value::String(s) => one(s, &param),
                        other => Err(wrong_type(&param, "a string", other)),
                    }
                })
                .collect()
        }
        Some(other) => Err(wrong_type("stop", "a string or an array of strings", other)),
    }
}

fn logit_bias(value: &Option<Value>, limits: &Limits) -> Result<Vec<(u32, f32)>, ValidationError> {
    let map = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("logit_bias", "an object", other)),
    };
    map.iter()
        .map(|(key, bias)| {
            let id = match key.parse::<u32>() {
                Ok(id) if (id as usize) < limits.vocab_size => id,
                Ok(id) => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_value",
                        format!(
                            "Invalid key in 'logit_bias': token id {id} is outside the \
                             vocabulary of {} tokens.",
                            limits.vocab_size
                        ),
                    ))
                }
                Err(_) => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_value",
                        format!(
                            "Invalid key in 'logit_bias': '{key}' is not a token id \
                             (a non-negative integer)."
                        ),
                    ))
                }
            };
            let bias = match bias {
                Value::Number(x) => x.as_f64().unwrap_or(f64::NAN),
                other => {
                    return Err(invalid(
                        "logit_bias",
                        "invalid_type",
                        format!(
                            "Invalid type for 'logit_bias' of token {id}: expected a number, \
                             but got {} instead.",
                            describe(other)
                        ),
                    ))
                }
            };
            if !(-100.0..=100.0).contains(&bias) {
                return Err(invalid(
                    "logit_bias",
                    "invalid_value",
                    format!(
                        "Invalid 'logit_bias' of token {id}: expected a value between -100 and \
                         100, but got {bias} instead."
                    ),
                ));
            }
            Ok((id, bias as f32))
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use crate::validate::test_support::*;
    use crate::validate::Limits;

    use serde_json::json;

    #[test]
    fn temperature_range() {
        for t in [0, 1, 2] {
            assert_eq!(
                chat(json!({"temperature": t}))
                    .unwrap()
                    .sampling
                    .temperature,
                t as f32
            );
        }
        assert_eq!(
            chat(json!({"temperature": 0.7}))
                .unwrap()
                .sampling
                .temperature,
            0.7
        );
        assert_eq!(
            refused(chat(json!({"temperature": -0.1}))),
            is("temperature", "decimal_below_min_value")
        );
        let e = chat(json!({"temperature": 2.5})).unwrap_err();
        assert_eq!(e.code(), "decimal_above_max_value");
        assert_eq!(
            e.message(),
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but \
             got 2.5 instead."
        );
    }

    #[test]
    fn top_p_range() {
        assert_eq!(chat(json!({"top_p": 1})).unwrap().sampling.top_p, 1.0);
        assert_eq!(chat(json!({"top_p": 0.01})).unwrap().sampling.top_p, 0.01);
        assert_eq!(
            refused(chat(json!({"top_p": 0}))),
            is("top_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"top_p": -1}))),
            is("top_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"top_p": 1.01}))),
            is("top_p", "decimal_above_max_value")
        );
    }

    #[test]
    fn n_range() {
        assert_eq!(chat(json!({"n": 16})).unwrap().n, 16);
        assert_eq!(
            refused(chat(json!({"n": 0}))),
            is("n", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"n": -3}))),
            is("n", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"n": 17}))),
            is("n", "integer_above_max_value")
        );
        assert_eq!(completion(json!({"n": 4})).unwrap().n, 4);
        assert_eq!(
            refused(completion(json!({"n": 17}))),
            is("n", "integer_above_max_value")
        );
    }

    #[test]
    fn stop_sequences() {
        assert_eq!(chat(json!({"stop": "\n"})).unwrap().stop, vec!["\n"]);
        assert_eq!(
            chat(json!({"stop": []})).unwrap().stop,
            Vec::<String>::new()
        );
        assert_eq!(
            chat(json!({"stop": ["a", "b", "c", "d"]})).unwrap().stop,
            vec!["a", "b", "c", "d"]
        );
        let e = chat(json!({"stop": ["a", "b", "c", "d", "e"]})).unwrap_err();
        assert_eq!((e.param(), e.code()), ("stop", "array_above_max_length"));
        assert_eq!(
            e.message(),
            "Invalid 'stop': array too long. Expected an array with maximum length 4, but got \
             an array with length 5 instead."
        );
        assert_eq!(
            refused(chat(json!({"stop": ""}))),
            is("stop", "empty_string")
        );
        assert_eq!(
            refused(chat(json!({"stop": ["a", ""]}))),
            is("stop[1]", "empty_string")
        );
        assert_eq!(
            refused(chat(json!({"stop": ["a", 1]}))),
            is("stop[1]", "invalid_type")
        );
        assert_eq!(completion(json!({"stop": "x"})).unwrap().stop, vec!["x"]);
    }

    #[test]
    fn penalty_ranges() {
        for field in ["presence_penalty", "frequency_penalty"] {
            assert!(chat(json!({ field: -2 })).is_ok());
            assert!(chat(json!({ field: 2.0 })).is_ok());
            assert_eq!(
                refused(chat(json!({ field: -2.1 }))),
                is(field, "decimal_below_min_value")
            );
            assert_eq!(
                refused(chat(json!({ field: 2.1 }))),
                is(field, "decimal_above_max_value")
            );
        }
        assert_eq!(
            chat(json!({"repetition_penalty": 1.3}))
                .unwrap()
                .sampling
                .repetition_penalty,
            1.3
        );
        assert!(chat(json!({"repetition_penalty": 5})).is_ok());
        for r in [json!(0), json!(-1.0)] {
            let e = chat(json!({ "repetition_penalty": r })).unwrap_err();
            assert_eq!(
                (e.param(), e.code()),
                ("repetition_penalty", "decimal_below_min_value")
            );
        }
    }

    #[test]
    fn min_p_and_top_k() {
        assert_eq!(chat(json!({"min_p": 0})).unwrap().sampling.min_p, 0.0);
        assert_eq!(chat(json!({"min_p": 1})).unwrap().sampling.min_p, 1.0);
        assert_eq!(
            refused(chat(json!({"min_p": -0.01}))),
            is("min_p", "decimal_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"min_p": 1.5}))),
            is("min_p", "decimal_above_max_value")
        );
        assert_eq!(chat(json!({"top_k": 40})).unwrap().sampling.top_k, 40);
        assert_eq!(chat(json!({"top_k": 0})).unwrap().sampling.top_k, 0);
        assert_eq!(
            chat(json!({"top_k": -1})).unwrap().sampling.top_k,
            0,
            "vLLM's off"
        );
        assert_eq!(
            chat(json!({"top_k": 1_000_000})).unwrap().sampling.top_k,
            1_000_000
        );
        assert_eq!(
            refused(chat(json!({"top_k": -2}))),
            is("top_k", "integer_below_min_value")
        );
    }

    #[test]
    fn logit_bias_keys_and_values() {
        assert_eq!(
            chat(json!({"logit_bias": {"999": 100, "0": -100, "7": 0.5}}))
                .unwrap()
                .sampling
                .logit_bias,
            vec![(999, 100.0), (0, -100.0), (7, 0.5)]
        );
        assert_eq!(
            chat(json!({"logit_bias": {}})).unwrap().sampling.logit_bias,
            vec![]
        );
        for (bias, fragment) in [
            (
                json!({"1000": 1}),
                "token id 1000 is outside the vocabulary of 1000 tokens",
            ),
            (json!({"abc": 1}), "'abc' is not a token id"),
            (json!({"-1": 1}), "'-1' is not a token id"),
            (json!({"1.5": 1}), "'1.5' is not a token id"),
            (
                json!({"5": 100.5}),
                "expected a value between -100 and 100, but got 100.5",
            ),
            (
                json!({"5": -101}),
                "expected a value between -100 and 100, but got -101",
            ),
            (json!({"5": "x"}), "expected a number, but got a string"),
        ] {
            let e = chat(json!({ "logit_bias": bias })).unwrap_err();
            assert_eq!(e.param(), "logit_bias", "{bias}");
            assert!(e.message().contains(fragment), "{}", e.message());
        }
    }

    #[test]
    fn max_tokens_rules() {
        assert_eq!(chat(json!({"max_tokens": 1})).unwrap().max_tokens, Some(1));
        assert_eq!(
            chat(json!({"max_tokens": 2048})).unwrap().max_tokens,
            Some(2048)
        );
        assert_eq!(
            chat(json!({"max_completion_tokens": 7}))
                .unwrap()
                .max_tokens,
            Some(7)
        );
        assert_eq!(
            chat(json!({"max_tokens": 5, "max_completion_tokens": 9}))
                .unwrap()
                .max_tokens,
            Some(9)
        );
        assert_eq!(
            refused(chat(json!({"max_tokens": 0}))),
            is("max_tokens", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(json!({"max_completion_tokens": 0}))),
            is("max_completion_tokens", "integer_below_min_value")
        );
        let e = chat(json!({"max_tokens": 4096})).unwrap_err();
        assert_eq!(
            (e.param(), e.code()),
            ("max_tokens", "integer_above_max_value")
        );
        assert_eq!(
            e.message(),
            "Invalid 'max_tokens': 4096 is more than this model's context length of 2048 \
             tokens (prompt and completion together)."
        );
        assert_eq!(
            refused(chat(json!({"max_tokens": 5, "max_completion_tokens": -1}))),
            is("max_completion_tokens", "integer_below_min_value")
        );
        let with_default = Limits {
            default_max_tokens: Some(256),
            ..limits()
        };
        assert_eq!(
            chat_with(chat_body(json!({})), &with_default)
                .unwrap()
                .max_tokens,
            Some(256)
        );
        assert_eq!(
            chat_with(chat_body(json!({"max_tokens": 3})), &with_default)
                .unwrap()
                .max_tokens,
            Some(3)
        );
    }

    #[test]
    fn seeds() {
        assert_eq!(chat(json!({"seed": 42})).unwrap().sampling.seed, Some(42));
        assert_eq!(chat(json!({"seed": 0})).unwrap().sampling.seed, Some(0));
        assert_eq!(
            chat(json!({"seed": -1})).unwrap().sampling.seed,
            Some(u64::MAX)
        );
        assert_eq!(
            chat(json!({"seed": u64::MAX})).unwrap().sampling.seed,
            Some(u64::MAX)
        );
        assert_eq!(
            chat(json!({"seed": i64::MIN})).unwrap().sampling.seed,
            Some(1 << 63)
        );
        assert_eq!(chat(json!({})).unwrap().sampling.seed, None);
    }

    #[test]
    fn streaming_and_usage() {
        let v = chat(json!({"stream": true})).unwrap();
        assert!(v.stream && !v.include_usage);
        let v = chat(json!({"stream": true, "stream_options": {"include_usage": true}})).unwrap();
        assert!(v.stream && v.include_usage);
        let v = chat(json!({"stream": true, "stream_options": {}})).unwrap();
        assert!(!v.include_usage);
        let v = chat(json!({"stream": false, "stream_options": {"include_usage": true}})).unwrap();
        assert!(
            !v.stream && !v.include_usage,
            "usage chunks only exist in streams"
        );
        let v =
            completion(json!({"stream": true, "stream_options": {"include_usage": true}})).unwrap();
        assert!(v.stream && v.include_usage);
    }

    #[test]
    fn completion_shares_the_sampling_rules() {
        for (field, value, code) in [
            ("temperature", json!(3), "decimal_above_max_value"),
            ("top_p", json!(0), "decimal_below_min_value"),
            ("presence_penalty", json!(-3), "decimal_below_min_value"),
            ("frequency_penalty", json!("x"), "invalid_type"),
            ("top_k", json!(-5), "integer_below_min_value"),
            ("min_p", json!(2), "decimal_above_max_value"),
            ("repetition_penalty", json!(0), "decimal_below_min_value"),
            ("logit_bias", json!({"x": 1}), "invalid_value"),
            ("seed", json!("s"), "invalid_type"),
            (
                "stop",
                json!(["a", "b", "c", "d", "e"]),
                "array_above_max_length",
            ),
            ("stream", json!("yes"), "invalid_type"),
            ("user", json!(1), "invalid_type"),
            ("ignore_eos", json!(1), "invalid_type"),
        ] {
            assert_eq!(
                refused(completion(json!({ field: value }))),
                is(field, code),
                "{field}: {value}"
            );
        }
    }
}
