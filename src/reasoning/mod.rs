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
