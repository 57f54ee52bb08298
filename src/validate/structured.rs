//! What the answer must match: `response_format` (OpenAI's `json_object` and
//! `json_schema`), and vLLM's extensions `guided_json`, `guided_regex`, `guided_choice`,
//! `guided_grammar` (Lark) or the same under `structured_outputs` (`json`, `regex`,
//! `choice`, `grammar`). At most one of them per request. Whether the grammar compiles is
//! the constraint's to say (`crate::constraint`); here only the shapes are checked.

use super::values::{invalid, missing, wrong_type};
use super::ValidationError;
use crate::constraint::Grammar;
use crate::openai::CommonRequestFields;
use serde_json::Value;

/// A request's grammar and the field it came from (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestGrammar {
    pub grammar: Grammar,
    pub param: String,
}

/// The grammar a request asks for, if any. `response_format` is chat's only.
pub(super) fn grammar(
    common: &CommonRequestFields,
    response_format: Option<&Value>,
) -> Result<Option<RequestGrammar>, ValidationError> {
    let mut found: Vec<RequestGrammar> = Vec::new();
    if let Some(format) = response_format {
        if let Some(g) = from_response_format(format)? {
            found.push(g);
        }
    }
    let guided = [
        ("guided_json", &common.guided_json),
        ("guided_regex", &common.guided_regex),
        ("guided_choice", &common.guided_choice),
        ("guided_grammar", &common.guided_grammar),
    ];
    for (name, value) in guided {
        if let Some(v) = value {
            found.push(guided_one(name, name, v)?);
        }
    }
    if let Some(so) = &common.structured_outputs {
        let Value::Object(fields) = so else {
            return Err(wrong_type("structured_outputs", "an object", so));
        };
        for (key, kind) in [
            ("json", "guided_json"),
            ("regex", "guided_regex"),
            ("choice", "guided_choice"),
            ("grammar", "guided_grammar"),
        ] {
            if let Some(v) = fields.get(key).filter(|v| !v.is_null()) {
                found.push(guided_one(&format!("structured_outputs.{key}"), kind, v)?);
            }
        }
    }
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|g| g.param.as_str()).collect();
        return Err(invalid(
            &found[1].param,
            "invalid_value",
            format!(
                "Give one of response_format, guided_json, guided_regex, guided_choice, \
                 guided_grammar and structured_outputs; this request has {}.",
                names.join(" and ")
            ),
        ));
    }
    Ok(found.pop())
}

fn from_response_format(format: &Value) -> Result<Option<RequestGrammar>, ValidationError> {
    let Value::Object(fields) = format else {
        return Err(wrong_type("response_format", "an object", format));
    };
    let grammar = match fields.get("type") {
        Some(Value::String(t)) if t == "text" => return Ok(None),
        Some(Value::String(t)) if t == "json_object" => Grammar::JsonObject,
        Some(Value::String(t)) if t == "json_schema" => {
            let spec = fields
                .get("json_schema")
                .ok_or_else(|| missing("response_format.json_schema"))?;
            let Value::Object(spec) = spec else {
                return Err(wrong_type("response_format.json_schema", "an object", spec));
            };
            match spec.get("name") {
                Some(Value::String(_)) | None => {}
                Some(other) => {
                    return Err(wrong_type(
                        "response_format.json_schema.name",
                        "a string",
                        other,
                    ))
                }
            }
            // OpenAI's schema is optional; without one any JSON value is accepted.
            let schema = match spec.get("schema") {
                None | Some(Value::Null) => serde_json::json!({}),
                Some(s @ (Value::Object(_) | Value::Bool(true))) => s.clone(),
                Some(other) => {
                    return Err(wrong_type(
                        "response_format.json_schema.schema",
                        "a JSON schema object",
                        other,
                    ))
                }
            };
            Grammar::JsonSchema(schema)
        }
        Some(Value::String(t)) => {
            return Err(invalid(
                "response_format",
                "invalid_value",
                format!(
                    "Invalid value: '{t}'. Supported values are: 'text', 'json_object' and \
                     'json_schema'."
                ),
            ))
        }
        Some(other) => return Err(wrong_type("response_format.type", "a string", other)),
        None => return Err(missing("response_format.type")),
    };
    Ok(Some(RequestGrammar {
        grammar,
        param: "response_format".into(),
    }))
}

/// One of vLLM's fields: `param` is where it was, `kind` which one it is.
fn guided_one(param: &str, kind: &str, v: &Value) -> Result<RequestGrammar, ValidationError> {
    let grammar = match kind {
        "guided_json" => match v {
            Value::Object(_) => Grammar::JsonSchema(v.clone()),
            Value::String(s) => Grammar::JsonSchema(serde_json::from_str(s).map_err(|e| {
                invalid(
                    param,
                    "invalid_value",
                    format!("'{param}' is not a JSON schema: {e}."),
                )
            })?),
            other => return Err(wrong_type(param, "a JSON schema", other)),
        },
        "guided_regex" => match v {
            Value::String(s) => Grammar::Regex(s.clone()),
            other => return Err(wrong_type(param, "a string", other)),
        },
        "guided_choice" => {
            let choices: Option<Vec<String>> = v
                .as_array()
                .map(|a| a.iter().map(|c| c.as_str().map(str::to_string)).collect())
                .unwrap_or(None);
            match choices {
                Some(c) if !c.is_empty() => Grammar::Choice(c),
                _ => return Err(wrong_type(param, "a non-empty array of strings", v)),
            }
        }
        _ => match v {
            Value::String(s) if !s.trim().is_empty() => Grammar::Lark(s.clone()),
            other => return Err(wrong_type(param, "a Lark grammar (a string)", other)),
        },
    };
    Ok(RequestGrammar {
        grammar,
        param: param.to_string(),
    })
}
