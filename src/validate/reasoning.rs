//! A chat request's reasoning controls: `include_reasoning`, `reasoning_effort`, the
//! thinking budget under each of its names, and the message that closes it. What they
//! mean is [`crate::reasoning::policy`]'s.

use crate::openai::ChatCompletionRequest;
use crate::reasoning::{Effort, ReasoningRequest};
use crate::validate::values::{boolean, integer_in, invalid, string};
use crate::validate::ValidationError;

/// The reasoning controls of a chat request.
pub(super) fn reasoning_fields(
    req: &ChatCompletionRequest,
) -> Result<ReasoningRequest, ValidationError> {
    let include = boolean(&req.include_reasoning, "include_reasoning")?;
    let effort = match string(&req.reasoning_effort, "reasoning_effort")? {
        None => None,
        Some(e) => Some(Effort::parse(e).ok_or_else(|| {
            invalid(
                "reasoning_effort",
                "invalid_value",
                format!(
                    "Invalid value: '{e}'. Supported values are: {}.",
                    Effort::NAMES
                        .iter()
                        .chain(&["max"])
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?),
    };
    let mut budget: Option<(Option<usize>, &str)> = None;
    for (value, name) in [
        (&req.thinking_token_budget, "thinking_token_budget"),
        (&req.reasoning_budget_tokens, "reasoning_budget_tokens"),
        (&req.thinking_budget_tokens, "thinking_budget_tokens"),
        (&req.max_reasoning_tokens, "max_reasoning_tokens"),
    ] {
        let Some(n) = integer_in(value, name, -1, u32::MAX as i128)? else {
            continue;
        };
        let b = (n >= 0).then_some(n as usize);
        match budget {
            Some((other, first)) if other != b => {
                return Err(invalid(
                    name,
                    "invalid_value",
                    format!("'{name}' and '{first}' set different thinking budgets; send one."),
                ))
            }
            _ => budget = Some((b, name)),
        }
    }
    let budget_message =
        string(&req.reasoning_budget_message, "reasoning_budget_message")?.map(str::to_string);
    Ok(ReasoningRequest {
        include,
        effort,
        budget: budget.map(|(b, _)| b),
        budget_message,
    })
}

#[cfg(test)]
mod tests {
    use crate::reasoning::{Effort, ReasoningRequest};

    use crate::validate::test_support::*;

    use serde_json::json;

    #[test]
    fn reasoning_fields() {
        let v = chat(
            json!({"include_reasoning": false, "reasoning_effort": "low",
                            "thinking_token_budget": 5, "max_reasoning_tokens": 5,
                            "reasoning_budget_message": "Answer now."}),
        )
        .unwrap();
        assert_eq!(
            v.reasoning,
            ReasoningRequest {
                include: Some(false),
                effort: Some(Effort::Low),
                budget: Some(Some(5)),
                budget_message: Some("Answer now.".into()),
            }
        );
        assert_eq!(
            chat(json!({"reasoning_budget_tokens": -1}))
                .unwrap()
                .reasoning
                .budget,
            Some(None)
        );
        assert_eq!(
            refused(chat(json!({"reasoning_effort": "huge"}))),
            is("reasoning_effort", "invalid_value")
        );
        assert_eq!(
            chat(json!({"reasoning_effort": "max"}))
                .unwrap()
                .reasoning
                .effort,
            Some(Effort::Max),
            "OpenAI's spec and vLLM take `max`"
        );
        assert_eq!(
            refused(chat(json!({"thinking_budget_tokens": -2}))),
            is("thinking_budget_tokens", "integer_below_min_value")
        );
        assert_eq!(
            refused(chat(
                json!({"thinking_token_budget": 1, "max_reasoning_tokens": 2})
            )),
            is("max_reasoning_tokens", "invalid_value")
        );
        assert_eq!(
            refused(chat(json!({"include_reasoning": "no"}))),
            is("include_reasoning", "invalid_type")
        );
    }
}
