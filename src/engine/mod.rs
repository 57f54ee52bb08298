//! Generation: sampling and the token loop over a loaded model.

pub mod generate;
pub mod sampler;
