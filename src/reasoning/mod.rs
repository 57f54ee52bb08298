//! Everything about a reasoning model's thinking, in two parts:
//! - [`policy`]: what the server and each request want (`--reasoning-format`, budgets, the
//!   `reasoning_effort` table) combined into one request's [`policy::ReasoningPlan`];
//! - [`splitter`]: the token-level state machine that separates the thinking from the
//!   answer as a sequence is generated.
//!
//! [`ReasoningParams`] is what a sequence carries into the engine; the engine's
//! per-sequence output ([`crate::engine::output_processor`]) runs the splitter and closes the
//! thinking when its budget is spent. Rendering the prompt that starts it is
//! [`crate::prompt`]'s.

pub mod policy;
pub mod splitter;

pub use policy::{
    Effort, EffortBudgets, ReasoningConfig, ReasoningFormat, ReasoningPlan, ReasoningRequest,
};
pub use splitter::{Markers, Phase, ReasoningSplitter};

use std::sync::Arc;

/// How a sequence's thinking is followed and bounded.
#[derive(Debug, Clone)]
pub struct ReasoningParams {
    pub markers: Arc<Markers>,
    /// Where the rendered prompt leaves the model.
    pub phase: Phase,
    /// Leave markers and thinking in the answer text (`--reasoning-format raw`).
    pub raw: bool,
    /// Model-generated thinking tokens allowed; then `closing` is inserted.
    pub budget: Option<usize>,
    /// Token ids that end the block when the budget is spent (lead-in and end marker).
    pub closing: Vec<u32>,
}

impl ReasoningParams {
    /// How a sequence whose rendered prompt is `prompt` follows and bounds its thinking:
    /// the phase the prompt leaves the model in, and the tokens that close the block when
    /// the plan's budget is spent (`encode` tokenizes without special tokens).
    pub fn new<E>(
        markers: &Arc<Markers>,
        prompt: &str,
        plan: &ReasoningPlan,
        encode: impl Fn(&str) -> Result<Vec<u32>, E>,
    ) -> Result<Self, E> {
        // The end marker by its id where it has one: the splitter recognises it by id,
        // and tokenizing its text might not give that id back.
        let closing = match markers.end_id {
            Some(end_id) => {
                let (before, after) = Markers::closing_parts(plan.budget_message.as_deref());
                let mut ids = encode(&before)?;
                ids.push(end_id);
                ids.extend(encode(after)?);
                ids
            }
            None => encode(&markers.closing_text(plan.budget_message.as_deref()))?,
        };
        Ok(Self {
            markers: markers.clone(),
            phase: Phase::from_prompt(prompt, markers),
            raw: plan.raw,
            budget: plan.budget,
            closing,
        })
    }
}
