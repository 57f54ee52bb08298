//! `tools`, `tool_choice` and `parallel_tool_calls`, and the assistant and tool messages
//! of a tool conversation. Shapes only: which format the model writes its calls in is
//! the model's (`crate::tools`).

use super::values::{boolean, invalid, missing, wrong_type};
use super::ValidationError;
use crate::openai::ChatCompletionRequest;
use crate::tools::{ToolChoice, ToolDef, ToolRequest};
use serde_json::{json, Value};

/// The request's tools, or None when it offers none.
pub(super) fn tools(req: &ChatCompletionRequest) -> Result<Option<ToolRequest>, ValidationError> {
    let parallel = boolean(&req.parallel_tool_calls, "parallel_tool_calls")?.unwrap_or(true);
    let raw = match &req.tools {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut defs = Vec::with_capacity(raw.len());
    for (i, tool) in raw.iter().enumerate() {
        defs.push(tool_def(tool, &format!("tools[{i}]"))?);
        if defs[..i].iter().any(|d| d.name == defs[i].name) {
            return Err(invalid(
                &format!("tools[{i}].function.name"),
                "invalid_value",
                format!("Two tools are named '{}'.", defs[i].name),
            ));
        }
    }
    let choice = match &req.tool_choice {
        None => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(invalid(
                    "tool_choice",
                    "invalid_value",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'none', 'auto', \
                         'required' and an object naming a function."
                    ),
                ))
            }
        },
        Some(Value::Object(o)) => {
            match o.get("type") {
                Some(Value::String(t)) if t == "function" => {}
                Some(other) => {
                    return Err(invalid(
                        "tool_choice.type",
                        "invalid_value",
                        format!("Invalid value: {other}. Only 'function' is supported."),
                    ))
                }
                None => return Err(missing("tool_choice.type")),
            }
            match o.get("function").and_then(|f| f.get("name")) {
                Some(Value::String(n)) => ToolChoice::Named(n.clone()),
                Some(other) => {
                    return Err(wrong_type("tool_choice.function.name", "a string", other))
                }
                None => return Err(missing("tool_choice.function.name")),
            }
        }
        Some(other) => return Err(wrong_type("tool_choice", "a string or an object", other)),
    };
    if defs.is_empty() {
        return match choice {
            ToolChoice::Auto | ToolChoice::None => Ok(None),
            _ => Err(invalid(
                "tool_choice",
                "invalid_value",
                "'tool_choice' asks for a call but the request gives no 'tools'.".into(),
            )),
        };
    }
    if let ToolChoice::Named(n) = &choice {
        if !defs.iter().any(|d| &d.name == n) {
            return Err(invalid(
                "tool_choice.function.name",
                "invalid_value",
                format!("No tool named '{n}' is among 'tools'."),
            ));
        }
    }
    Ok(Some(ToolRequest {
        raw,
        tools: defs,
        choice,
        parallel,
    }))
}

fn tool_def(tool: &Value, at: &str) -> Result<ToolDef, ValidationError> {
    let Value::Object(fields) = tool else {
        return Err(wrong_type(at, "an object", tool));
    };
    match fields.get("type") {
        Some(Value::String(t)) if t == "function" => {}
        Some(Value::String(t)) => {
            return Err(invalid(
                &format!("{at}.type"),
                "invalid_value",
                format!("Tools of type '{t}' are not supported; only 'function' is."),
            ))
        }
        Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
        None => return Err(missing(&format!("{at}.type"))),
    }
    let f = match fields.get("function") {
        Some(Value::Object(f)) => f,
        Some(other) => return Err(wrong_type(&format!("{at}.function"), "an object", other)),
        None => return Err(missing(&format!("{at}.function"))),
    };
    let name = match f.get("name") {
        Some(Value::String(n))
            if !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            n.clone()
        }
        Some(Value::String(n)) => {
            return Err(invalid(
                &format!("{at}.function.name"),
                "invalid_value",
                format!(
                    "Invalid function name '{n}': use a-z, A-Z, 0-9, underscores and dashes, \
                     at most 64."
                ),
            ))
        }
        Some(other) => {
            return Err(wrong_type(
                &format!("{at}.function.name"),
                "a string",
                other,
            ))
        }
        None => return Err(missing(&format!("{at}.function.name"))),
    };
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(other) => {
            return Err(wrong_type(
                &format!("{at}.function.parameters"),
                "a JSON schema object",
                other,
            ))
        }
    };
    let strict = match f.get("strict") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(wrong_type(
                &format!("{at}.function.strict"),
                "a boolean",
                other,
            ))
        }
    };
    Ok(ToolDef {
        name,
        parameters,
        strict,
    })
}
