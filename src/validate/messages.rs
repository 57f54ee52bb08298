//! The prompt material: chat messages (roles and text content) and text prompts.

use crate::validate::values::{empty_array, empty_string, invalid, missing, wrong_type};
use crate::validate::{CompletionPrompt, ValidationError};
use serde_json::Value;

/// Roles a chat message may have.
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

pub(super) fn messages(value: &Option<Value>) -> Result<Vec<Value>, ValidationError> {
    let messages = match value {
        None => return Err(missing("messages")),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(empty_array("messages"));
    }
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(fields) = message else {
            return Err(wrong_type(&at, "an object", message));
        };
        let role = match fields.get("role") {
            None | Some(Value::Null) => return Err(missing(&format!("{at}.role"))),
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.as_str(),
            Some(Value::String(role)) => {
                return Err(invalid(
                    &format!("{at}.role"),
                    "invalid_value",
                    format!(
                        "Invalid value: '{role}'. Supported values are: 'system', 'developer', \
                         'user', 'assistant', and 'tool'."
                    ),
                ))
            }
            Some(other) => return Err(wrong_type(&format!("{at}.role"), "a string", other)),
        };
        content(fields.get("content"), role, &format!("{at}.content"))?;
    }
    Ok(messages.clone())
}

/// A message's content: a string, a list of text parts, or (assistant and tool
/// messages only) null or absent.
fn content(value: Option<&Value>, role: &str, at: &str) -> Result<(), ValidationError> {
    let may_be_null = matches!(role, "assistant" | "tool");
    let parts = match value {
        None if may_be_null => return Ok(()),
        None => return Err(missing(at)),
        Some(Value::Null) if may_be_null => return Ok(()),
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(wrong_type(
                at,
                "a string or an array of content parts",
                other,
            ))
        }
    };
    if parts.is_empty() {
        return Err(empty_array(at));
    }
    for (j, part) in parts.iter().enumerate() {
        let part_at = format!("{at}[{j}]");
        let Value::Object(fields) = part else {
            return Err(wrong_type(&part_at, "an object", part));
        };
        match fields.get("type") {
            Some(Value::String(t)) if t == "text" => {}
            Some(Value::String(t)) => {
                return Err(ValidationError::Unsupported {
                    message: format!(
                        "Content parts of type '{t}' are not supported yet \
                         ('{part_at}.type'); only 'text' parts are."
                    ),
                    param: at.into(),
                    code: "unsupported_value",
                })
            }
            None | Some(Value::Null) => return Err(missing(&format!("{part_at}.type"))),
            Some(other) => return Err(wrong_type(&format!("{part_at}.type"), "a string", other)),
        }
        match fields.get("text") {
            Some(Value::String(_)) => {}
            None | Some(Value::Null) => return Err(missing(&format!("{part_at}.text"))),
            Some(other) => return Err(wrong_type(&format!("{part_at}.text"), "a string", other)),
        }
    }
    Ok(())
}

pub(super) fn prompts(value: &Option<Value>) -> Result<Vec<CompletionPrompt>, ValidationError> {
    match value {
        None => Err(missing("prompt")),
        Some(Value::String(s)) if s.is_empty() => Err(empty_string("prompt")),
        Some(Value::String(s)) => Ok(vec![CompletionPrompt::Text(s.clone())]),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(empty_array("prompt"));
            }
            // One prompt of token ids, as OpenAI's legacy API and vLLM take it.
            if items.iter().all(Value::is_number) {
                return Ok(vec![CompletionPrompt::Tokens(token_ids(items, "prompt")?)]);
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let param = format!("prompt[{i}]");
                    match item {
                        Value::String(s) if s.is_empty() => Err(empty_string(&param)),
                        Value::String(s) => Ok(CompletionPrompt::Text(s.clone())),
                        Value::Array(ids) if ids.is_empty() => Err(empty_array(&param)),
                        Value::Array(ids) => Ok(CompletionPrompt::Tokens(token_ids(ids, &param)?)),
                        other => Err(wrong_type(
                            &param,
                            "a string or an array of token ids",
                            other,
                        )),
                    }
                })
                .collect()
        }
        Some(other) => Err(wrong_type(
            "prompt",
            "a string, an array of strings, an array of token ids or an array of such arrays",
            other,
        )),
    }
}

/// Token ids: integers from 0 to 2^32 - 1 (whether the vocabulary has them is the
/// prompt builder's to say).
fn token_ids(items: &[Value], param: &str) -> Result<Vec<u32>, ValidationError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    wrong_type(&format!("{param}[{i}]"), "a token id (an integer >= 0)", v)
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::test_support::*;
    use crate::validate::{validate_completion, ValidationError};
    use serde_json::json;
    use serde_json::Value;

    #[test]
    fn messages_shape() {
        assert_eq!(
            refused(chat_without("messages")),
            is("messages", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"messages": "hi"}))),
            is("messages", "invalid_type")
        );
        assert_eq!(
            refused(chat(json!({"messages": []}))),
            is("messages", "empty_array")
        );
        assert_eq!(
            refused(chat(
                json!({"messages": [{"role": "user", "content": "a"}, "b"]})
            )),
            is("messages[1]", "invalid_type")
        );
    }

    #[test]
    fn message_roles() {
        for role in ROLES {
            assert!(chat(json!({"messages": [{"role": role, "content": "x"}]})).is_ok());
        }
        assert_eq!(
            refused(chat(json!({"messages": [{"content": "x"}]}))),
            is("messages[0].role", "missing_required_parameter")
        );
        assert_eq!(
            refused(chat(json!({"messages": [{"role": 1, "content": "x"}]}))),
            is("messages[0].role", "invalid_type")
        );
        let e = chat(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "robot", "content": "c"}
        ]}))
        .unwrap_err();
        assert_eq!(e.param(), "messages[2].role");
        assert_eq!(e.code(), "invalid_value");
        assert_eq!(
            e.message(),
            "Invalid value: 'robot'. Supported values are: 'system', 'developer', 'user', \
             'assistant', and 'tool'."
        );
    }

    #[test]
    fn message_content() {
        let one = |message: Value| chat(json!({"messages": [message]}));
        assert!(one(json!({"role": "user", "content": ""})).is_ok());
        assert!(one(json!({"role": "assistant", "content": null})).is_ok());
        assert!(one(json!({"role": "assistant"})).is_ok());
        assert!(one(json!({"role": "tool", "content": null})).is_ok());
        assert_eq!(
            refused(one(json!({"role": "user"}))),
            is("messages[0].content", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(json!({"role": "system", "content": null}))),
            is("messages[0].content", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": 5}))),
            is("messages[0].content", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": []}))),
            is("messages[0].content", "empty_array")
        );
        assert!(one(json!({"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}
        ]}))
        .is_ok());
        assert_eq!(
            refused(one(json!({"role": "user", "content": ["a"]}))),
            is("messages[0].content[0]", "invalid_type")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": [{"text": "a"}]}))),
            is("messages[0].content[0].type", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(json!({"role": "user", "content": [{"type": "text"}]}))),
            is("messages[0].content[0].text", "missing_required_parameter")
        );
        assert_eq!(
            refused(one(
                json!({"role": "user", "content": [{"type": "text", "text": 1}]})
            )),
            is("messages[0].content[0].text", "invalid_type")
        );
        let e = chat(json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:..."}}
            ]}
        ]}))
        .unwrap_err();
        assert!(matches!(e, ValidationError::Unsupported { .. }));
        assert_eq!(e.param(), "messages[1].content");
        assert_eq!(
            e.message(),
            "Content parts of type 'image_url' are not supported yet \
             ('messages[1].content[1].type'); only 'text' parts are."
        );
    }

    #[test]
    fn completion_prompts() {
        let prompt = |p: Value| completion(json!({ "prompt": p }));
        let no_prompt = serde_json::from_value(json!({"model": "smollm2"})).unwrap();
        assert_eq!(
            refused(validate_completion(&no_prompt, &limits())),
            is("prompt", "missing_required_parameter")
        );
        assert_eq!(refused(prompt(json!(""))), is("prompt", "empty_string"));
        assert_eq!(refused(prompt(json!([]))), is("prompt", "empty_array"));
        assert_eq!(refused(prompt(json!(5))), is("prompt", "invalid_type"));
        assert_eq!(refused(prompt(json!({}))), is("prompt", "invalid_type"));
        assert_eq!(
            refused(prompt(json!(["a", ""]))),
            is("prompt[1]", "empty_string")
        );
        assert_eq!(
            refused(prompt(json!(["a", null]))),
            is("prompt[1]", "invalid_type")
        );
        let tokens = |ids: &[u32]| CompletionPrompt::Tokens(ids.to_vec());
        let prompts_of = |p: Value| match prompt(p).unwrap().input {
            crate::validate::Input::Completion { prompts, .. } => prompts,
            other => panic!("{other:?}"),
        };
        assert_eq!(prompts_of(json!([1, 2, 3])), vec![tokens(&[1, 2, 3])]);
        assert_eq!(
            prompts_of(json!([[1, 2], [3]])),
            vec![tokens(&[1, 2]), tokens(&[3])]
        );
        assert_eq!(
            prompts_of(json!(["a", [7]])),
            vec![CompletionPrompt::Text("a".into()), tokens(&[7])]
        );
        assert_eq!(
            refused(prompt(json!([1, -2]))),
            is("prompt[1]", "invalid_type")
        );
        assert_eq!(
            refused(prompt(json!([1, 2.5]))),
            is("prompt[1]", "invalid_type")
        );
        assert_eq!(
            refused(prompt(json!([[1], []]))),
            is("prompt[1]", "empty_array")
        );
        assert_eq!(
            refused(prompt(json!([[1], ["x"]]))),
            is("prompt[1][0]", "invalid_type")
        );
        assert_eq!(
            refused(prompt(json!([4294967296u64]))),
            is("prompt[0]", "invalid_type")
        );
    }
}
