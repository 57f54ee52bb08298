//! The `candor` binary: parse the command line, start logging, run the command.

use anyhow::{bail, Context, Result};
use candor::bench::{self, BenchReport, BenchSpec, Spread};
use candor::cli::{
    BenchArgs, ChatArgs, Cli, Command, DTypeArg, GenerateArgs, ModelArgs, SamplingArgs, ServeArgs,
};
use candor::engine::params::GenerateParams;
use candor::engine::sampler::SamplingParams;
use candor::engine::{EngineConfig, EngineError, EngineHandle, Event, Usage};
use candor::loaded_model::{LoadConfig, LoadedModel};
use candor::prompt::{self, PromptError, PromptInput, PromptRequest};
use candor::{device, inspect, model_source};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Generate(args) => run_generate(args),
        Command::Chat(args) => run_chat(args),
        Command::Inspect(args) => run_inspect(&args.model),
        Command::Bench(args) => run_bench(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn dtype_for(
    arg: Option<DTypeArg>,
    device: &candor_models::Device,
) -> Option<candor_models::DType> {
    let dtype = arg.map(|d| match d {
        DTypeArg::F32 => candor_models::DType::F32,
        DTypeArg::F16 => candor_models::DType::F16,
        DTypeArg::Bf16 => candor_models::DType::BF16,
    });
    dtype.or(if device.is_cpu() {
        None
    } else {
        Some(candor_models::DType::BF16)
    })
}

fn run_serve(args: ServeArgs) -> Result<()> {
    use candor::api::{router, serve, AppState, ServeOptions, ServerConfig};
    let model = model_source::resolve(args.model.as_deref())?;
    let path = model.path;
    let device = device::parse_device(&args.load.device)?;
    let name = args.served_model_name.clone().unwrap_or(model.name);
    let state = AppState::with_responses_store(
        ServerConfig {
            served_model_name: name.clone(),
            api_keys: args
                .api_key
                .iter()
                .filter(|k| !k.is_empty())
                .cloned()
                .collect(),
            max_per_client: match args.max_per_client {
                Some(0) => None,
                Some(n) => Some(n),
                None => Some(args.max_running.max(1) + args.max_queue / 2),
            },
            ctx_size: args.ctx_size,
            engine: candor::engine::EngineConfig {
                max_queue: args.max_queue,
                max_running: args.max_running.max(1),
                max_batch_tokens: args.max_batch_tokens.max(1),
                block_size: args.block_size.max(1),
                kv_cache: args.kv_cache_memory,
                attention: None,
            },
            metrics: !args.no_metrics,
            webui: !args.no_webui,
            cors_origins: args.cors_origin.clone(),
            body_limit_bytes: args.body_limit,
            body_timeout: seconds(args.body_timeout),
            request_timeout: seconds(args.request_timeout),
            reasoning: candor::reasoning::ReasoningConfig {
                format: args.reasoning_format,
                budget: (args.reasoning_budget >= 0).then_some(args.reasoning_budget as usize),
                effort_budgets: args.reasoning_effort_budgets.clone(),
                budget_message: args.reasoning_budget_message.clone(),
            },
        },
        args.responses_store,
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(
            "listening on http://{} (model {name}); /health answers 503 until it is loaded",
            listener.local_addr()?
        );
        let cfg = LoadConfig {
            model: path.clone(),
            device: Some(device.clone()),
            dtype: dtype_for(args.load.dtype, &device),
            chat_template: args.load.chat_template.clone(),
            reasoning_markers: args.reasoning_markers.clone(),
            progress: None,
        };
        let loader_state = state.clone();
        let ctx_size = args.ctx_size;
        let tool_call_format = args.tool_call_format;
        let loader = tokio::task::spawn_blocking(move || -> Result<()> {
            let lm = LoadedModel::load(&cfg)
                .with_context(|| format!("cannot load {}", cfg.model.display()))?;
            let ctx = ctx_size.map_or(lm.context_length(), |c| c.min(lm.context_length()));
            tracing::info!(
                "loaded {} ({}) on {} in {:.2}s; context {} tokens",
                cfg.model.display(),
                lm.model.config().arch.name(),
                device::describe(&device),
                lm.load_time.as_secs_f64(),
                ctx
            );
            if let Some(source) = &lm.template_source {
                tracing::info!("using the {source}");
            }
            if let Some(m) = &lm.reasoning_markers {
                tracing::info!(
                    "reasoning model: thinking between {} and {} is returned {}",
                    m.start,
                    m.end,
                    match loader_state.config.reasoning.format {
                        candor::reasoning::ReasoningFormat::Separated => "as reasoning_content",
                        candor::reasoning::ReasoningFormat::Raw => "inside content (raw)",
                        candor::reasoning::ReasoningFormat::Hidden => "to nobody (hidden)",
                    }
                );
            }
            let mut lm = lm;
            if tool_call_format.is_some() {
                lm.tool_format = tool_call_format;
            }
            match lm.tool_format {
                Some(f) => tracing::info!("tool calls: read in the {f} format"),
                None => tracing::info!(
                    "tool calls: the chat template describes none (--tool-call-format sets a format)"
                ),
            }
            let lm = Arc::new(lm);
            loader_state.set_loaded(lm.clone())?;
            // The vocabulary for structured output, built now rather than by the first
            // request that asks for it.
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                match lm.grammars() {
                    Ok(_) => tracing::info!(
                        "structured output ready ({} ms to index the vocabulary)",
                        started.elapsed().as_millis()
                    ),
                    Err(e) => tracing::warn!("structured output is unavailable: {e}"),
                }
            });
            Ok(())
        });
        let options = ServeOptions {
            header_timeout: seconds(args.header_timeout),
            max_connections: args.max_connections,
            shutdown_timeout: match args.shutdown_timeout {
                Some(s) => seconds(s),
                None => seconds(args.request_timeout).map(|t| t + Duration::from_secs(5)),
            },
        };
        let app = router(state.clone());
        let serve = tokio::spawn(serve(listener, app, state, options, shutdown_signal()));
        // A model that cannot load ends the server with the reason.
        loader.await??;
        serve.await?;
        Ok::<(), anyhow::Error>(())
    })?;
    // Connections still open (a client that went quiet mid-request) are dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    tracing::info!("server stopped");
    Ok(())
}

/// A flag in seconds where 0 means no limit.
fn seconds(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn run_inspect(model: &str) -> Result<()> {
    let model = model_source::resolve(Some(model))?;
    let checkpoint = candor_models::Checkpoint::open(&model.path)?;
    print!("{}", inspect::report(&checkpoint));
    Ok(())
}

/// Loads the model with a progress bar on stderr.
fn load(args: &ModelArgs) -> Result<LoadedModel> {
    let model = model_source::resolve(Some(&args.model))?;
    let device = device::parse_device(&args.load.device)?;
    let dtype = dtype_for(args.load.dtype, &device);
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("loading {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar.set_message(model.name.clone());
    let progress_bar = bar.clone();
    let cfg = LoadConfig {
        model: model.path.clone(),
        device: Some(device.clone()),
        dtype,
        chat_template: args.load.chat_template.clone(),
        reasoning_markers: None,
        progress: Some(Arc::new(move |done, total| {
            progress_bar.set_length(total);
            progress_bar.set_position(done);
        })),
    };
    let mut lm =
        LoadedModel::load(&cfg).with_context(|| format!("cannot load {}", model.path.display()))?;
    lm.name = model.name;
    bar.finish_and_clear();
    let c = lm.model.config();
    tracing::info!(
        "loaded {} ({}, {} layers, context {}) on {} in {:.2}s",
        lm.name,
        c.arch.name(),
        c.num_layers,
        c.max_position_embeddings,
        device::describe(&device),
        lm.load_time.as_secs_f64()
    );
    match &lm.template_source {
        Some(source) => tracing::info!("using the {source}"),
        None => tracing::warn!("no chat template: use --raw, or pass one with --chat-template"),
    }
    Ok(lm)
}

fn params(s: &SamplingArgs) -> GenerateParams {
    GenerateParams {
        sampling: SamplingParams {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repetition_penalty: s.repetition_penalty,
            seed: s.seed,
            ..SamplingParams::default()
        },
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        ..GenerateParams::new(SamplingParams::default(), 0)
    }
}

/// Builds a prompt as the server does (no reasoning split: the CLI prints the thinking
/// as the model writes it); only the prompt must fit, max_tokens is capped to what does.
fn build_prompt(lm: &LoadedModel, input: PromptInput) -> Result<Vec<u32>> {
    let request = PromptRequest {
        input,
        reasoning: None,
        max_tokens: None,
        context: lm.context_length(),
    };
    match prompt::build(lm.prompt_tools(), request) {
        Ok(p) => Ok(p.ids),
        Err(PromptError::NoTemplate) => bail!(
            "the model has no chat template: pass --chat-template FILE, or --raw to send the \
             prompt as it is"
        ),
        Err(PromptError::ContextLengthExceeded {
            prompt_tokens,
            context,
            ..
        }) => bail!(
            "the prompt has {prompt_tokens} tokens but the model's context holds {context}: \
             shorten it"
        ),
        Err(e) => Err(e.into()),
    }
}

/// The conversation as a chat prompt.
fn chat_prompt(lm: &LoadedModel, messages: &[Value]) -> Result<Vec<u32>> {
    build_prompt(
        lm,
        PromptInput::Chat {
            messages: messages.to_vec(),
            kwargs: Default::default(),
            tools: None,
        },
    )
}

fn print_piece(stdout: &std::io::Stdout, piece: &str) {
    let mut out = stdout.lock();
    let _ = out.write_all(piece.as_bytes());
    let _ = out.flush();
}

fn report(u: &Usage) {
    let computed = u.prompt_tokens - u.cached_tokens;
    eprintln!(
        "\n[prompt {} tokens ({} cached) at {:.1} tok/s, generated {} tokens at {:.1} tok/s, finish: {:?}]",
        u.prompt_tokens,
        u.cached_tokens,
        computed as f64 / u.time_to_first_token.as_secs_f64().max(1e-9),
        u.completion_tokens,
        u.decode_tokens_per_s,
        u.finish
    );
}

/// The engine the CLI commands run on: one sequence at a time, the KV cache kept between
/// the turns of a chat by the prefix cache.
fn cli_engine(lm: Arc<LoadedModel>) -> anyhow::Result<EngineHandle> {
    let context = lm.context_length();
    let cfg = EngineConfig {
        max_queue: 0,
        max_running: 1,
        ..EngineConfig::default()
    };
    Ok(EngineHandle::start(lm, cfg, context)?)
}

/// Runs one prompt, printing the answer as it is produced; returns it with its counts.
fn run_prompt(
    engine: &EngineHandle,
    prompt: Vec<u32>,
    params: &GenerateParams,
) -> Result<(String, Usage)> {
    let tokens = prompt.len();
    let mut events = match engine.submit(prompt, vec![params.clone()], false) {
        Ok(mut receivers) => receivers.remove(0),
        Err(EngineError::TooLarge { capacity, .. }) => bail!(
            "the prompt has {tokens} tokens but the model's context (or the memory for its KV \
             cache) holds {capacity}: shorten it"
        ),
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let mut answer = String::new();
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Token { text, .. } => {
                print_piece(&stdout, &text);
                answer.push_str(&text);
            }
            Event::Done(usage) => return Ok((answer, usage)),
            Event::Error(e) => bail!("{e}"),
            // The CLI never scores its prompt.
            Event::PromptLogprobs(_) => {}
        }
    }
    bail!("the engine stopped")
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let lm = load(&args.model)?;
    let prompt = if args.raw {
        build_prompt(&lm, PromptInput::Text(args.prompt.clone()))?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": args.prompt}));
        chat_prompt(&lm, &messages)?
    };
    let engine = cli_engine(Arc::new(lm))?;
    let (_, usage) = run_prompt(&engine, prompt, &params(&args.sampling))?;
    println!();
    report(&usage);
    Ok(())
}

fn run_chat(args: ChatArgs) -> Result<()> {
    let lm = load(&args.model)?;
    if lm.template.is_none() {
        bail!("the model has no chat template: pass one with --chat-template FILE");
    }
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    let params = params(&args.sampling);
    eprintln!("chatting with {}: type a message and press enter; /reset clears the conversation, /exit or Ctrl-D quits", lm.name);
    let lm = Arc::new(lm);
    let engine = cli_engine(lm.clone())?;
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let input = line.trim();
        match input {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.retain(|m: &Value| m["role"] == "system");
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        messages.push(json!({"role": "user", "content": input}));
        let result = chat_prompt(&lm, &messages).and_then(|p| run_prompt(&engine, p, &params));
        match result {
            Ok((answer, usage)) => {
                println!();
                messages.push(json!({"role": "assistant", "content": answer}));
                report(&usage);
            }
            Err(e) => {
                // Keep the conversation usable: drop the turn that failed.
                messages.pop();
                eprintln!("error: {e}");
            }
        }
    }
    Ok(())
}

fn run_bench(args: BenchArgs) -> Result<()> {
    if let Some(t) = args.threads {
        if t == 0 {
            bail!("--threads must be at least 1");
        }
        // Read by candle's and rayon's pools when they start, which is after this.
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", t.to_string());
    }
    let lm = Arc::new(load(&args.model)?);
    let spec = BenchSpec {
        prompt_tokens: args.prompt_tokens,
        generate_tokens: args.gen_tokens,
        repetitions: args.repetitions.max(1),
    };
    let engine = cli_engine(lm.clone())?;
    let runs = bench::run(&lm, &engine, spec, |rep, u| {
        tracing::info!(
            "repetition {rep}/{}: prompt {:.2} tok/s, generation {:.2} tok/s",
            spec.repetitions,
            u.prompt_tokens as f64 / u.time_to_first_token.as_secs_f64(),
            u.decode_tokens_per_s
        )
    })
    .map_err(anyhow::Error::msg)?;
    let pp: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let tg: Vec<f64> = runs.iter().map(|r| r.1).collect();
    let report = BenchReport {
        model: lm.name.clone(),
        threads: candle_core::utils::get_num_threads(),
        prompt_tokens: spec.prompt_tokens,
        generate_tokens: spec.generate_tokens,
        repetitions: spec.repetitions,
        load_seconds: lm.load_time.as_secs_f64(),
        pp: Spread::of(&pp),
        tg: Spread::of(&tg),
        runs,
        peak_rss_bytes: bench::peak_rss_bytes(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
