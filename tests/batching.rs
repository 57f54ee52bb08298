//! Continuous batching: batched equals alone, preemption, prefix reuse, cancellation.
//!
//! Runs the engine in process on the tiny random models of every family
//! (models/tests/data, given a byte-level tokenizer here, since only the ids matter) and on
//! SmolLM2 (scripts/fetch-test-assets.sh).

mod common;

use common::{request, send, wait_until_idle};

use axum::http::StatusCode;
use candor::api::{router, AppState, ServerConfig};
use candor::engine::params::GenerateParams;
use candor::engine::sampler::SamplingParams;
use candor::engine::{EngineConfig, EngineHandle, Event, KvCacheSize, Usage};
use candor::loaded_model::{LoadConfig, LoadedModel};
use candor_models::{DType, PagedAttention};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

const FAMILIES: [&str; 5] = ["llama", "llama-tied", "qwen2", "qwen3", "gemma3"];

/// GPT-2's byte-to-character table: a byte-level BPE vocabulary without merges.
fn byte_level_tokenizer_json() -> String {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut pairs: Vec<(u32, u32)> = printable.into_iter().zip(chars).collect();
    pairs.sort();
    let vocab: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|&(b, c)| (char::from_u32(c).unwrap().to_string(), json!(b)))
        .collect();
    json!({
        "version": "1.0",
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        "model": {"type": "BPE", "vocab": vocab, "merges": [], "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
                  "byte_fallback": false, "ignore_merges": false}
    })
    .to_string()
}

/// A copy of a tiny reference model folder with a byte-level tokenizer.
fn tiny(family: &str) -> Arc<LoadedModel> {
    tiny_in(family, None)
}

fn tiny_in(family: &str, dtype: Option<candor_models::DType>) -> Arc<LoadedModel> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/data")
        .join(family);
    static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "candor-batching-{}-{copy}-{family}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let wanted =
            name.ends_with(".json") || name.starts_with("model") && name.ends_with(".safetensors");
        if wanted {
            std::fs::copy(src.join(&name), dir.join(&name)).unwrap();
        }
    }
    std::fs::write(dir.join("tokenizer.json"), byte_level_tokenizer_json()).unwrap();
    let lm = LoadedModel::load(&LoadConfig {
        model: dir.clone(),
        dtype,
        ..LoadConfig::default()
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(lm)
}

/// A way the engine's KV pool can be computed and read: the model's dtype and the
/// attention path. The CPU f32 kernel, and the candle-ops path a GPU takes, in f32, f16 and
/// bf16 (on the CPU here).
#[derive(Clone, Copy)]
struct KvPath {
    name: &'static str,
    dtype: Option<DType>,
    attention: Option<PagedAttention>,
}

const KV_PATHS: [KvPath; 4] = [
    KvPath {
        name: "f32 kernel",
        dtype: None,
        attention: None,
    },
    KvPath {
        name: "f32 candle ops",
        dtype: None,
        attention: Some(PagedAttention::Reference),
    },
    KvPath {
        name: "f16 candle ops",
        dtype: Some(DType::F16),
        attention: None,
    },
    KvPath {
        name: "bf16 candle ops",
        dtype: Some(DType::BF16),
        attention: None,
    },
];

impl KvPath {
    fn model(&self, family: &str) -> Arc<LoadedModel> {
        tiny_in(family, self.dtype)
    }

    fn config(&self, cfg: EngineConfig) -> EngineConfig {
        EngineConfig {
            attention: self.attention,
            ..cfg
        }
    }
}

fn smollm2() -> Arc<LoadedModel> {
    common::smollm2()
}

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        ignore_eos: true,
        ..GenerateParams::new(SamplingParams::greedy(), max_tokens)
    }
}

/// Waits for one sequence: its token ids and usage.
async fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> (Vec<u32>, Usage) {
    let mut tokens = Vec::new();
    loop {
        match rx.recv().await.expect("the engine answers") {
            Event::Token { token, .. } => tokens.extend(token),
            Event::PromptLogprobs(_) => panic!("no prompt logprobs were asked for"),
            Event::Done(u) => return (tokens, u),
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
}

/// Eight requests of different prompt lengths and max_tokens.
fn requests(vocab: u32) -> Vec<(Vec<u32>, usize)> {
    (0..8u32)
        .map(|i| {
            let len = 3 + (i as usize * 7) % 40;
            let prompt = (0..len as u32)
                .map(|j| (j * 31 + i * 17 + 5) % vocab)
                .collect();
            (prompt, 4 + (i as usize * 5) % 17)
        })
        .collect()
}

/// Bytes of one KV block of `block_size` tokens for `lm`, to size a pool in blocks.
fn block_bytes(lm: &LoadedModel, block_size: usize) -> usize {
    let c = lm.model.config();
    candor_models::paged::PagedKvStore::bytes_per_block(
        c.num_layers,
        c.num_kv_heads,
        c.head_dim,
        block_size,
        lm.model.dtype(),
    )
}

/// Eight running sequences, 24-token steps and 4-token blocks: tiny models' prompts span
/// several steps and blocks.
fn small_steps() -> EngineConfig {
    EngineConfig {
        max_running: 8,
        max_batch_tokens: 24,
        block_size: 4,
        ..Default::default()
    }
}

async fn batched_equals_alone(lm: Arc<LoadedModel>, name: &str, cfg: EngineConfig) {
    let vocab = lm.vocab_size().min(256) as u32;
    let reqs = requests(vocab);
    let ctx = lm.context_length();
    // Alone: one request at a time through its own engine.
    let alone_engine = EngineHandle::start(
        lm.clone(),
        EngineConfig {
            max_running: 1,
            ..cfg.clone()
        },
        ctx,
    )
    .unwrap();
    let mut alone = Vec::new();
    for (p, n) in &reqs {
        let rx = alone_engine
            .submit(p.clone(), vec![greedy(*n)], true)
            .unwrap()
            .remove(0);
        alone.push(collect(rx).await.0);
    }
    // Batched: all at once.
    let engine = EngineHandle::start(lm.clone(), cfg, ctx).unwrap();
    let rxs: Vec<_> = reqs
        .iter()
        .map(|(p, n)| {
            engine
                .submit(p.clone(), vec![greedy(*n)], true)
                .unwrap()
                .remove(0)
        })
        .collect();
    let outs = futures_util::future::join_all(rxs.into_iter().map(collect)).await;
    for (i, ((tokens, usage), want)) in outs.iter().zip(&alone).enumerate() {
        assert_eq!(
            tokens, want,
            "{name}: request {i} batched differs from alone"
        );
        assert_eq!(usage.completion_tokens, reqs[i].1, "{name}: request {i}");
    }
    let m = engine.metrics();
    assert!(
        m.steps.load(std::sync::atomic::Ordering::Relaxed)
            < reqs.iter().map(|r| r.1 as u64).sum::<u64>(),
        "{name}: the requests did not share forward passes"
    );
}

#[tokio::test]
async fn batched_equals_alone_for_every_family_on_every_path() {
    for path in KV_PATHS {
        for family in FAMILIES {
            let name = format!("{family}, {}", path.name);
            batched_equals_alone(path.model(family), &name, path.config(small_steps())).await;
        }
    }
}

#[tokio::test]
async fn batched_equals_alone_on_smollm2() {
    let cfg = EngineConfig {
        max_running: 8,
        max_batch_tokens: 64,
        ..Default::default()
    };
    batched_equals_alone(smollm2(), "smollm2", cfg).await;
}

#[tokio::test]
async fn a_tiny_pool_preempts_and_every_request_still_completes_the_same() {
    for path in KV_PATHS {
        a_tiny_pool_preempts(path).await;
    }
}

async fn a_tiny_pool_preempts(path: KvPath) {
    let lm = path.model("llama");
    // 16 blocks of 4 tokens: enough for any one request, far less than eight at once.
    let per_block = block_bytes(&lm, 4);
    let small = path.config(EngineConfig {
        max_running: 8,
        max_batch_tokens: 24,
        block_size: 4,
        kv_cache: Some(KvCacheSize::Bytes(16 * per_block)),
        ..Default::default()
    });
    let ctx = lm.context_length();
    let reqs = requests(256);
    let big = EngineHandle::start(
        lm.clone(),
        path.config(EngineConfig {
            block_size: 4,
            ..Default::default()
        }),
        ctx,
    )
    .unwrap();
    let tight = EngineHandle::start(lm.clone(), small, ctx).unwrap();
    let submit_all = |e: &EngineHandle| {
        reqs.iter()
            .map(|(p, n)| {
                e.submit(p.clone(), vec![greedy(*n)], true)
                    .unwrap()
                    .remove(0)
            })
            .collect::<Vec<_>>()
    };
    let want = futures_util::future::join_all(submit_all(&big).into_iter().map(collect)).await;
    let got = futures_util::future::join_all(submit_all(&tight).into_iter().map(collect)).await;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.0, w.0, "{}: request {i}", path.name);
    }
    let preemptions = tight
        .metrics()
        .preemptions
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(preemptions > 0, "{}: the pool was never short", path.name);
    // A request that can never fit is refused up front.
    let err = tight
        .submit(vec![1; 40], vec![greedy(30)], true)
        .unwrap_err();
    assert!(err.to_string().contains("--kv-cache-memory"), "{err}");
    // Neither can an empty prompt, nor more choices than may ever run and wait at once.
    let err = tight.submit(Vec::new(), vec![greedy(2)], true).unwrap_err();
    assert_eq!(err, candor::engine::EngineError::EmptyPrompt);
    let one = EngineHandle::start(
        lm.clone(),
        EngineConfig {
            max_queue: 0,
            max_running: 1,
            ..Default::default()
        },
        ctx,
    )
    .unwrap();
    let err = one
        .submit(vec![1, 2], vec![greedy(2), greedy(2)], true)
        .unwrap_err();
    assert!(
        matches!(err, candor::engine::EngineError::TooManyChoices { .. }),
        "{err}"
    );
}

/// Submits one greedy request and waits for it.
async fn run_one(e: &EngineHandle, prompt: &[u32], max_tokens: usize) -> (Vec<u32>, Usage) {
    let rx = e
        .submit(prompt.to_vec(), vec![greedy(max_tokens)], true)
        .unwrap()
        .remove(0);
    collect(rx).await
}

#[tokio::test]
async fn prompts_reuse_cached_blocks_down_to_the_token() {
    for (path, family) in KV_PATHS
        .iter()
        .flat_map(|p| ["llama", "gemma3"].map(|f| (p, f)))
    {
        let lm = path.model(family);
        let family = format!("{family}, {}", path.name);
        let ctx = lm.context_length();
        let cfg = path.config(small_steps());
        let warm = EngineHandle::start(lm.clone(), cfg.clone(), ctx).unwrap();
        let cold = || EngineHandle::start(lm.clone(), cfg.clone(), ctx).unwrap();
        // 18 prompt tokens: 4 full blocks and 2 tokens of a fifth.
        let prompt: Vec<u32> = (0..18u32).map(|j| (j * 37 + 11) % 256).collect();
        let (first, u) = run_one(&warm, &prompt, 6).await;
        assert_eq!(u.cached_tokens, 0, "{family}");
        // The same prompt again (a regenerated answer): everything but the last token
        // comes from the cache, part of it copied out of a block the first one filled.
        let (again, u) = run_one(&warm, &prompt, 6).await;
        assert_eq!(u.cached_tokens, prompt.len() - 1, "{family}");
        assert_eq!(
            again, first,
            "{family}: a cached prompt answered differently"
        );
        // The next turn: the prompt, the answer (its last token never went through the
        // model) and a new message. The cache holds all but that token: 18 + 5 = 23.
        let mut turn = prompt.clone();
        turn.extend(&first);
        turn.extend([7, 8, 9]);
        let (next, u) = run_one(&warm, &turn, 5).await;
        assert_eq!(u.cached_tokens, prompt.len() + first.len() - 1, "{family}");
        assert_eq!(
            next,
            run_one(&cold(), &turn, 5).await.0,
            "{family}: next turn"
        );
        // A prompt diverging inside a block takes the common start of it: 16 + 1 tokens.
        let mut fork = prompt[..17].to_vec();
        fork.extend([200, 201, 202]);
        let (forked, u) = run_one(&warm, &fork, 4).await;
        assert_eq!(u.cached_tokens, 17, "{family}");
        assert_eq!(forked, run_one(&cold(), &fork, 4).await.0, "{family}: fork");
    }
}

#[tokio::test]
async fn prompts_arriving_together_compute_their_common_start_once() {
    for path in KV_PATHS {
        arriving_together(path).await;
    }
}

async fn arriving_together(path: KvPath) {
    let lm = path.model("qwen3");
    let ctx = lm.context_length();
    let cfg = path.config(small_steps());
    // Eight prompts opening with the same 22 tokens (a system prompt), then each its own.
    let common: Vec<u32> = (0..22u32).map(|j| (j * 13 + 3) % 256).collect();
    let reqs: Vec<Vec<u32>> = (0..8u32)
        .map(|i| {
            let mut p = common.clone();
            p.extend((0..2 + i).map(|j| (i * 41 + j * 7 + 100) % 256));
            p
        })
        .collect();
    let mut alone = Vec::new();
    for p in &reqs {
        alone.push(
            run_one(
                &EngineHandle::start(lm.clone(), cfg.clone(), ctx).unwrap(),
                p,
                5,
            )
            .await
            .0,
        );
    }
    let engine = EngineHandle::start(lm.clone(), cfg, ctx).unwrap();
    let rxs: Vec<_> = reqs
        .iter()
        .map(|p| {
            engine
                .submit(p.clone(), vec![greedy(5)], true)
                .unwrap()
                .remove(0)
        })
        .collect();
    let outs = futures_util::future::join_all(rxs.into_iter().map(collect)).await;
    for (i, ((tokens, usage), want)) in outs.iter().zip(&alone).enumerate() {
        assert_eq!(tokens, want, "{}: request {i}", path.name);
        if i > 0 {
            // The 5 full blocks of the common start came from the first request's pass.
            assert!(
                usage.cached_tokens >= 20,
                "{}: request {i}: {usage:?}",
                path.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Over HTTP with SmolLM2: prefix reuse, cancellation, /metrics.

fn server(engine: EngineConfig) -> (axum::Router, Arc<AppState>) {
    let state = AppState::new(ServerConfig {
        engine,
        ..common::server_config("smollm2")
    });
    state.set_loaded(smollm2()).unwrap();
    (router(state.clone()), state)
}

async fn post(app: &axum::Router, body: Value) -> Value {
    let (status, bytes) = send(app.clone(), "POST", "/v1/chat/completions", Some(&body)).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&bytes).unwrap()
}

async fn metric(app: &axum::Router, name: &str) -> f64 {
    let (status, bytes) = send(app.clone(), "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_shared_system_prompt_is_reused_from_the_prefix_cache() {
    let system = "You are a helpful assistant who answers questions about geography, history \
                  and science in two short sentences, without lists, and never makes things up.";
    let chat = |q: &str| {
        json!({"model": "smollm2", "temperature": 0, "max_tokens": 8,
               "messages": [{"role": "system", "content": system}, {"role": "user", "content": q}]})
    };
    let (cold, _) = server(EngineConfig::default());
    let alone = post(&cold, chat("What is the capital of Italy?")).await;
    assert_eq!(alone["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    let (app, _) = server(EngineConfig::default());
    let first = post(&app, chat("What is the capital of France?")).await;
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let second = post(&app, chat("What is the capital of Italy?")).await;
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= 16, "{second}");
    assert_eq!(
        second["choices"][0]["message"],
        alone["choices"][0]["message"]
    );
    assert!(metric(&app, "candor_prefix_cache_hits_total").await >= cached as f64);
    // n > 1: the later choices take the prompt's blocks from the first.
    let mut n3 = chat("Name a river.");
    n3["n"] = json!(3);
    let v = post(&app, n3).await;
    assert_eq!(v["choices"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_cancelled_stream_frees_its_blocks_at_once() {
    let (app, state) = server(EngineConfig::default());
    let body = json!({"model": "smollm2", "temperature": 0, "max_tokens": 500, "ignore_eos": true,
                      "stream": true, "messages": [{"role": "user", "content": "Count to a thousand."}]});
    let req = request("POST", "/v1/chat/completions", Some(&body));
    let resp = app.clone().oneshot(req).await.unwrap();
    let mut stream = resp.into_body();
    for _ in 0..3 {
        stream.frame().await.unwrap().unwrap();
    }
    assert!(metric(&app, "candor_kv_blocks_used").await > 0.0);
    drop(stream);
    wait_until_idle(&state.loaded().unwrap().engine).await;
    // The gauges are published at the start of the engine's next loop: give it one.
    let _ = post(
        &app,
        json!({"model": "smollm2", "max_tokens": 1,
                              "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(metric(&app, "candor_kv_blocks_used").await, 0.0);
    assert!(metric(&app, "candor_requests_finished_total").await >= 2.0);
}

/// The model's log-softmax at every position of `prompt`, computed in one pass on its own
/// cache: row `p` predicts token `p + 1`.
fn reference_logprobs(lm: &LoadedModel, prompt: &[u32]) -> Vec<Vec<f32>> {
    let mut cache = candor_models::ContiguousCache::new(lm.model.config().num_layers);
    let mut inputs = vec![candor_models::SequenceInput {
        tokens: prompt,
        start_pos: 0,
        cache: &mut cache,
        logits: candor_models::LogitsFor::All,
    }];
    let rows: Vec<Vec<f32>> = lm.model.forward(&mut inputs).unwrap().to_vec2().unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.truncate(lm.vocab_size());
            let max = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = r.iter().map(|x| (x - max).exp()).sum();
            r.iter().map(|x| x - max - sum.ln()).collect()
        })
        .collect()
}

/// Waits for one sequence that scores its prompt: the prompt logprobs, then the usage.
async fn collect_scores(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> (Vec<candor::engine::sampler::TokenLogprobs>, Vec<u32>, Usage) {
    let (mut scores, mut tokens) = (Vec::new(), Vec::new());
    loop {
        match rx.recv().await.expect("the engine answers") {
            Event::PromptLogprobs(l) => scores.extend(l),
            Event::Token { token, .. } => tokens.extend(token),
            Event::Done(u) => return (scores, tokens, u),
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
}

#[tokio::test]
async fn prompt_logprobs_are_the_models_at_every_position() {
    for family in ["llama", "gemma3"] {
        let lm = tiny(family);
        let ctx = lm.context_length();
        // Prompts of 50 tokens over 24-token steps: every prompt spans three chunks.
        let prompts: Vec<Vec<u32>> = (0..4u32)
            .map(|i| (0..50u32).map(|j| (j * 37 + i * 11 + 3) % 200).collect())
            .collect();
        let engine = EngineHandle::start(lm.clone(), small_steps(), ctx).unwrap();
        // The first prompt once without scoring: its blocks are now in the prefix cache,
        // which a scored prompt must not use for the positions it reports.
        collect(
            engine
                .submit(prompts[0].clone(), vec![greedy(2)], true)
                .unwrap()
                .remove(0),
        )
        .await;
        let scoring = |max_tokens| GenerateParams {
            prompt_logprobs: Some(3),
            ..greedy(max_tokens)
        };
        // Scored together, with generation after the prompt for two of them.
        let rxs: Vec<_> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let max_tokens = if i % 2 == 0 { 0 } else { 3 };
                engine
                    .submit(p.clone(), vec![scoring(max_tokens)], true)
                    .unwrap()
                    .remove(0)
            })
            .collect();
        let outs = futures_util::future::join_all(rxs.into_iter().map(collect_scores)).await;
        for (i, (prompt, (scores, tokens, usage))) in prompts.iter().zip(&outs).enumerate() {
            let want = reference_logprobs(&lm, prompt);
            assert_eq!(
                scores.len(),
                prompt.len() - 1,
                "{family} {i}: one per token after the first"
            );
            for (t, s) in scores.iter().enumerate().map(|(j, s)| (j + 1, s)) {
                assert_eq!(s.token, prompt[t]);
                let w = want[t - 1][prompt[t] as usize];
                assert!(
                    (s.logprob - w).abs() < 1e-4,
                    "{family} {i} token {t}: {} vs {w}",
                    s.logprob
                );
                assert_eq!(s.top.len(), 3);
                for &(id, lp) in &s.top {
                    assert!(
                        (lp - want[t - 1][id as usize]).abs() < 1e-4,
                        "{family} {i} token {t}"
                    );
                }
            }
            assert_eq!(usage.cached_tokens, 0, "{family} {i}: computed, not cached");
            assert_eq!(tokens.len(), usage.completion_tokens);
            assert_eq!(
                usage.completion_tokens,
                if i % 2 == 0 { 0 } else { 3 },
                "{family} {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_preempted_scoring_reports_each_prompt_token_once() {
    let lm = tiny("llama");
    let per_block = block_bytes(&lm, 4);
    // 20 blocks of 4 tokens: one 40-token prompt and its answer fit, four at once do not.
    let tight = EngineConfig {
        max_running: 4,
        max_batch_tokens: 24,
        block_size: 4,
        kv_cache: Some(KvCacheSize::Bytes(20 * per_block)),
        ..Default::default()
    };
    let engine = EngineHandle::start(lm.clone(), tight, lm.context_length()).unwrap();
    let prompts: Vec<Vec<u32>> = (0..4u32)
        .map(|i| (0..40u32).map(|j| (j * 13 + i * 7 + 1) % 200).collect())
        .collect();
    let params = GenerateParams {
        prompt_logprobs: Some(1),
        ..greedy(30)
    };
    let rxs: Vec<_> = prompts
        .iter()
        .map(|p| {
            engine
                .submit(p.clone(), vec![params.clone()], true)
                .unwrap()
                .remove(0)
        })
        .collect();
    let outs = futures_util::future::join_all(rxs.into_iter().map(collect_scores)).await;
    assert!(
        engine
            .metrics()
            .preemptions
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    for (prompt, (scores, _, usage)) in prompts.iter().zip(&outs) {
        let want = reference_logprobs(&lm, prompt);
        let tokens: Vec<u32> = scores.iter().map(|s| s.token).collect();
        assert_eq!(tokens, prompt[1..], "each prompt token once, in order");
        for (j, s) in scores.iter().enumerate() {
            assert!((s.logprob - want[j][prompt[j + 1] as usize]).abs() < 1e-4);
        }
        assert_eq!(usage.completion_tokens, 30);
    }
}
