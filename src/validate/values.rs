//! Typed reads of a request's raw JSON values, and the errors that name their param.
//!
//! Every field goes through one of [`number`], [`integer`], [`boolean`], [`string`]
//! (absent or null is `None`), and a bounded one through [`decimal_in`] or
//! [`integer_in`], which read and check the range in one call with OpenAI's messages
//! and codes.

use crate::validate::ValidationError;
use serde_json::Value;

pub(super) fn number(value: &Option<Value>, param: &str) -> Result<Option<f64>, ValidationError> {
    match value {
        None => Ok(None),
        Some(v @ Value::Number(x)) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong_type(param, "a number", v)),
        Some(other) => Err(wrong_type(param, "a number", other)),
    }
}

/// An integer, also from an integral decimal (`2.0`) as Python clients may send it.
pub(super) fn integer(value: &Option<Value>, param: &str) -> Result<Option<i128>, ValidationError> {
    /// Past 2^53 a decimal no longer holds every integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        None => Ok(None),
        Some(v @ Value::Number(x)) => {
            if let Some(i) = x.as_i64() {
                Ok(Some(i as i128))
            } else if let Some(u) = x.as_u64() {
                Ok(Some(u as i128))
            } else {
                match x.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => Ok(Some(f as i128)),
                    _ => Err(wrong_type(param, "an integer", v)),
                }
            }
        }
        Some(other) => Err(wrong_type(param, "an integer", other)),
    }
}

pub(super) fn boolean(value: &Option<Value>, param: &str) -> Result<Option<bool>, ValidationError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(param, "a boolean", other)),
    }
}

pub(super) fn string<'a>(
    value: &'a Option<Value>,
    param: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(param, "a string", other)),
    }
}

/// A number within `min..=max`, or `None` when absent.
pub(super) fn decimal_in(
    value: &Option<Value>,
    param: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ValidationError> {
    number(value, param)?
        .map(|x| decimal_range(param, x, min, max))
        .transpose()
}

/// An integer within `min..=max`, or `None` when absent.
pub(super) fn integer_in(
    value: &Option<Value>,
    param: &str,
    min: i128,
    max: i128,
) -> Result<Option<i128>, ValidationError> {
    integer(value, param)?
        .map(|x| integer_range(param, x, min, max))
        .transpose()
}

/// `x` within `min..=max` (an already read decimal).
pub(super) fn decimal_range(
    param: &str,
    x: f64,
    min: f64,
    max: f64,
) -> Result<f64, ValidationError> {
    in_range(
        param,
        "decimal",
        ["decimal_below_min_value", "decimal_above_max_value"],
        x,
        min,
        max,
    )
}

fn integer_range(param: &str, x: i128, min: i128, max: i128) -> Result<i128, ValidationError> {
    in_range(
        param,
        "integer",
        ["integer_below_min_value", "integer_above_max_value"],
        x,
        min,
        max,
    )
}

/// `x` if it is within `min..=max`, else OpenAI's error for a `kind` ("decimal",
/// "integer") below or above its bounds, with the matching code.
fn in_range<T: PartialOrd + std::fmt::Display>(
    param: &str,
    kind: &str,
    [below, above]: [&'static str; 2],
    x: T,
    min: T,
    max: T,
) -> Result<T, ValidationError> {
    if x < min {
        Err(invalid(
            param,
            below,
            format!(
                "Invalid '{param}': {kind} below minimum value. Expected a value >= {min}, \
                 but got {x} instead."
            ),
        ))
    } else if x > max {
        Err(invalid(
            param,
            above,
            format!(
                "Invalid '{param}': {kind} above maximum value. Expected a value <= {max}, \
                 but got {x} instead."
            ),
        ))
    } else {
        Ok(x)
    }
}

pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(x) if x.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn invalid(param: &str, code: &'static str, message: String) -> ValidationError {
    ValidationError::Invalid {
        message,
        param: param.into(),
        code,
    }
}

pub(super) fn wrong_type(param: &str, expected: &str, got: &Value) -> ValidationError {
    invalid(
        param,
        "invalid_type",
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            describe(got)
        ),
    )
}

pub(super) fn missing(param: &str) -> ValidationError {
    invalid(
        param,
        "missing_required_parameter",
        format!("Missing required parameter: '{param}'."),
    )
}

pub(super) fn empty_array(param: &str) -> ValidationError {
    invalid(
        param,
        "empty_array",
        format!(
            "Invalid '{param}': empty array. Expected an array with minimum length 1, but got \
             an empty array instead."
        ),
    )
}

pub(super) fn empty_string(param: &str) -> ValidationError {
    invalid(
        param,
        "empty_string",
        format!(
            "Invalid '{param}': empty string. Expected a string with minimum length 1, but got \
             an empty string instead."
        ),
    )
}

#[cfg(test)]
mod tests {

    use crate::validate::test_support::*;
    use crate::validate::ValidationError;

    use serde_json::json;

    #[test]
    fn wrong_types_name_their_param() {
        let e = chat(json!({"temperature": "hot"})).unwrap_err();
        assert_eq!(
            e,
            ValidationError::Invalid {
                message: "Invalid type for 'temperature': expected a number, but got a string \
                          instead."
                    .into(),
                param: "temperature".into(),
                code: "invalid_type",
            }
        );
        for (field, value) in [
            ("top_p", json!("1")),
            ("n", json!("2")),
            ("n", json!(1.5)),
            ("max_tokens", json!("10")),
            ("max_completion_tokens", json!(true)),
            ("seed", json!(1.5)),
            ("seed", json!("1")),
            ("presence_penalty", json!([])),
            ("frequency_penalty", json!({})),
            ("logprobs", json!("yes")),
            ("logprobs", json!(1)),
            ("top_logprobs", json!(2.5)),
            ("stream", json!(1)),
            ("stream_options", json!("x")),
            ("user", json!(5)),
            ("top_k", json!(1.5)),
            ("min_p", json!("0.1")),
            ("repetition_penalty", json!(false)),
            ("chat_template_kwargs", json!([])),
            ("ignore_eos", json!("true")),
            ("logit_bias", json!([1])),
            ("stop", json!(3)),
        ] {
            assert_eq!(
                refused(chat(json!({ field: value }))),
                is(field, "invalid_type"),
                "{field}: {value}"
            );
        }
        assert_eq!(
            refused(chat(
                json!({"stream": true, "stream_options": {"include_usage": "yes"}})
            )),
            is("stream_options.include_usage", "invalid_type")
        );
        let e = chat(json!({"n": 1.5})).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid type for 'n': expected an integer, but got a decimal instead."
        );
    }

    #[test]
    fn integral_decimals_count_as_integers() {
        let v = chat(json!({"n": 2.0, "max_tokens": 10.0, "seed": 3.0})).unwrap();
        assert_eq!((v.n, v.max_tokens, v.sampling.seed), (2, Some(10), Some(3)));
    }
}
