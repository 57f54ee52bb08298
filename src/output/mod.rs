//! Turning generated token ids back into text: incremental detokenization and stop strings.

pub mod detokenizer;
pub mod reasoning;
pub mod stop;
