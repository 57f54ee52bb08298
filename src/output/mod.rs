//! Turning generated token ids back into text: incremental detokenization and stop strings.

pub mod detokenizer;
pub mod stop;
