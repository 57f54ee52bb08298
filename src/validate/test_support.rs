//! Shared by the validation tests: a model's limits and minimal valid bodies.

use crate::validate::{validate_chat, validate_completion, Limits, ValidRequest, ValidationError};
use serde_json::{json, Value};

pub(crate) fn limits() -> Limits {
    Limits {
        served_model_name: "smollm2".into(),
        context_length: 2048,
        vocab_size: 1000,
        default_max_tokens: None,
    }
}

/// A minimal valid chat body with `fields` set on top (`null` sets a field to null).
pub(crate) fn chat_body(fields: Value) -> Value {
    let mut body = json!({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

pub(crate) fn chat_with(body: Value, limits: &Limits) -> Result<ValidRequest, ValidationError> {
    validate_chat(&serde_json::from_value(body).unwrap(), limits)
}

pub(crate) fn chat(fields: Value) -> Result<ValidRequest, ValidationError> {
    chat_with(chat_body(fields), &limits())
}

pub(crate) fn chat_without(field: &str) -> Result<ValidRequest, ValidationError> {
    let mut body = chat_body(json!({}));
    body.as_object_mut().unwrap().remove(field);
    chat_with(body, &limits())
}

pub(crate) fn completion_with(
    fields: Value,
    limits: &Limits,
) -> Result<ValidRequest, ValidationError> {
    let mut body = json!({"model": "smollm2", "prompt": "hi"});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    validate_completion(&serde_json::from_value(body).unwrap(), limits)
}

pub(crate) fn completion(fields: Value) -> Result<ValidRequest, ValidationError> {
    completion_with(fields, &limits())
}

/// The (param, code) of a refused request.
pub(crate) fn refused(r: Result<ValidRequest, ValidationError>) -> (String, &'static str) {
    let e = r.expect_err("the request should be refused");
    (e.param().to_string(), e.code())
}

pub(crate) fn is(param: &str, code: &'static str) -> (String, &'static str) {
    (param.to_string(), code)
}
