//! Turning generated token ids back into text: incremental detokenization and stop
//! strings. Separating the thinking from the answer is [`crate::reasoning`]'s.

pub mod detokenizer;
pub mod stop;
