#!/usr/bin/env python3
"""Generate tiny random-weight reference models and their reference logits.

The files land in ``models/tests/data/<case>/`` and back the Rust golden tests
of the ``candor-models`` crate: a Rust test loads the weights (Hugging Face
safetensors, or GGUF), prefills the first ``prompt_len`` tokens of
``input_ids``, decodes the rest one token at a time with its KV cache, and
compares every position with ``logits``.

How to run (from the repository root)::

    python3 -m venv ~/.cache/candor/ref-venv
    ~/.cache/candor/ref-venv/bin/pip install -r scripts/requirements-reference.txt
    ~/.cache/candor/ref-venv/bin/python scripts/gen_reference_models.py

Options: ``--out DIR`` (default ``models/tests/data``), ``--cases a,b`` (default
all), ``--skip-gguf-check`` (skip the NumPy re-implementation that checks the
GGUF files against the Hugging Face logits), ``--llama-cpp DIR`` (also run the
``convert_hf_to_gguf.py`` of a llama.cpp checkout, with its own ``gguf-py``,
on every case, vocabulary skipped, and compare its metadata and tensor bytes
with the files written here).

The script needs no network access: every configuration is built in code and
nothing is fetched from the Hugging Face hub.  It is deterministic (fixed seeds,
float32, eager attention, CPU) and idempotent: each case directory is emptied
and rewritten on every run.

Per case it writes

* ``config.json`` and the weights exactly as ``model.save_pretrained(dir)``
  writes them (float32 safetensors; the ``llama`` case is sharded into two files
  plus ``model.safetensors.index.json``);
* ``reference.safetensors`` with ``input_ids`` (I64, ``(n,)``), ``logits``
  (F32, ``(n, vocab)``, one full forward pass) and ``prompt_len`` (I64, ``(1,)``);
* except for ``gemma3-softcap``: ``model-f32.gguf``, ``model-f16.gguf`` and
  ``model-q8_0.gguf``, holding the same weights laid out the way llama.cpp's
  ``convert_hf_to_gguf.py`` lays them out (tensor names, Q/K row permutation for
  llama, +1 on Gemma RMSNorm weights, ``rope_freqs`` for Llama 3 rope scaling,
  F32 for 1-D tensors).

Checks it runs and prints: HF incremental decoding (prefill + one token at a
time through ``past_key_values``) against the full forward pass, and a small
NumPy forward pass that follows llama.cpp's semantics (interleaved rope for
llama, NeoX rope for qwen2/qwen3/gemma3, sliding-window layers from the GGUF
metadata) over each GGUF file against the reference logits.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

import gguf

# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

HIDDEN = 64
HEADS = 4
KV_HEADS = 2
VOCAB = 256
FFN = 128
MAX_POS = 512
BOS, EOS = 1, 2

# Fixed 12-token sequence; the Rust tests prefill the first PROMPT_LEN tokens
# and decode the remaining ones one by one.
INPUT_IDS = [1, 17, 42, 99, 128, 3, 255, 64, 7, 200, 31, 150]
PROMPT_LEN = 8

# Standard deviations of the re-initialised weights.  The default init (0.02)
# gives near-zero logits, which would make a 1e-4 comparison meaningless.
STD_EMBED = 0.3      # token embeddings and lm_head
STD_MATRIX = 0.15    # every other 2-D weight
STD_NORM = 0.2       # norm weights: 1 +- 0.2 (llama/qwen), 0 +- 0.2 (gemma: x * (1 + w))
STD_BIAS = 0.1


def llama_config(tied: bool, rope_scaling: bool) -> transformers.LlamaConfig:
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if rope_scaling:
        rope = {
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            # small so that the scaling changes most frequencies of head_dim 16
            "original_max_position_embeddings": 16,
        }
    return transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
        num_hidden_layers=2, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POS, rms_norm_eps=1e-5, rope_parameters=rope,
        tie_word_embeddings=tied, bos_token_id=BOS, eos_token_id=EOS,
        architectures=["LlamaForCausalLM"],
    )


def qwen2_config() -> transformers.Qwen2Config:
    return transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
        num_hidden_layers=2, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POS, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True, use_sliding_window=False,
        bos_token_id=BOS, eos_token_id=EOS, architectures=["Qwen2ForCausalLM"],
    )


def qwen3_config() -> transformers.Qwen3Config:
    return transformers.Qwen3Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
        num_hidden_layers=2, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        head_dim=32, max_position_embeddings=MAX_POS, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False, use_sliding_window=False,
        bos_token_id=BOS, eos_token_id=EOS, architectures=["Qwen3ForCausalLM"],
    )


def gemma3_config(softcap: bool) -> transformers.Gemma3TextConfig:
    return transformers.Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
        num_hidden_layers=3, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        head_dim=32, max_position_embeddings=MAX_POS, rms_norm_eps=1e-6,
        hidden_activation="gelu_pytorch_tanh",
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        sliding_window=4,
        # HF's legacy int (layer i is sliding iff (i + 1) % 3 != 0), kept
        # consistent with layer_types so config.json does not say 6.
        sliding_window_pattern=3,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        query_pre_attn_scalar=32,
        attn_logit_softcapping=50.0 if softcap else None,
        final_logit_softcapping=30.0 if softcap else None,
        tie_word_embeddings=True, pad_token_id=0, bos_token_id=BOS, eos_token_id=EOS,
        architectures=["Gemma3ForCausalLM"],
    )


# name -> (config factory, model class, gguf arch or None, seed, sharded)
CASES = {
    "llama": (lambda: llama_config(tied=False, rope_scaling=True),
              transformers.LlamaForCausalLM, "llama", 1001, True),
    "llama-tied": (lambda: llama_config(tied=True, rope_scaling=False),
                   transformers.LlamaForCausalLM, "llama", 1002, False),
    "qwen2": (qwen2_config, transformers.Qwen2ForCausalLM, "qwen2", 1003, False),
    "qwen3": (qwen3_config, transformers.Qwen3ForCausalLM, "qwen3", 1004, False),
    "gemma3": (lambda: gemma3_config(softcap=False),
               transformers.Gemma3ForCausalLM, "gemma3", 1005, False),
    # llama.cpp's converter refuses Gemma 3 configs with attn_logit_softcapping
    # (it asserts the value is None), so this case has no GGUF files.
    "gemma3-softcap": (lambda: gemma3_config(softcap=True),
                       transformers.Gemma3ForCausalLM, None, 1006, False),
}


# --------------------------------------------------------------------------
# Hugging Face side
# --------------------------------------------------------------------------

def build_model(case: str):
    make_config, model_cls, _arch, seed, _sharded = CASES[case]
    config = make_config()
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = model_cls(config).to(torch.float32).eval()
    reinit(model, seed, gemma_norm=config.model_type.startswith("gemma"))
    return model


@torch.no_grad()
def reinit(model: torch.nn.Module, seed: int, gemma_norm: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    # named_parameters() yields a tied embedding / lm_head only once.
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if name.endswith("norm.weight"):
            value = (0.0 if gemma_norm else 1.0) + STD_NORM * noise
        elif name.endswith(".bias"):
            value = STD_BIAS * noise
        elif "embed_tokens" in name or name.startswith("lm_head"):
            value = STD_EMBED * noise
        else:
            value = STD_MATRIX * noise
        p.copy_(value)


@torch.no_grad()
def hf_logits(model, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full forward pass, and prefill + incremental decode through the cache."""
    full = model(input_ids=ids[None], use_cache=False).logits[0]
    out = model(input_ids=ids[None, :PROMPT_LEN], use_cache=True)
    steps = [out.logits[0]]
    # transformers 5.2x renamed past_key_values (argument and output) to cache
    arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    cache = getattr(out, arg)
    for i in range(PROMPT_LEN, ids.shape[0]):
        out = model(input_ids=ids[None, i:i + 1], use_cache=True, **{arg: cache})
        cache = getattr(out, arg)
        steps.append(out.logits[0])
    return full, torch.cat(steps, dim=0)


# case -> (description, config overrides, whether the logits must change)
SENSITIVITY = {
    "llama": [("without llama3 rope scaling",
               {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}, True)],
    "gemma3": [("without sliding window (window 12)", {"sliding_window": 12}, True),
               ("all layers sliding (llama.cpp's default pattern 6)",
                {"layer_types": ["sliding_attention"] * 3}, True),
               ("local rope base 1e6 instead of 1e4",
                {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                                     "sliding_attention": {"rope_type": "default", "rope_theta": 1e6}}},
                True)],
    # transformers' Gemma3Attention never passes attn_logit_softcapping to the
    # attention function (Gemma2 does), so HF's Gemma 3 ignores it.
    "gemma3-softcap": [("without attn_logit_softcapping (HF Gemma 3 ignores it)",
                        {"attn_logit_softcapping": None}, False),
                       ("without final_logit_softcapping", {"final_logit_softcapping": None}, True)],
}


@torch.no_grad()
def sensitivity(case: str, model, ids: torch.Tensor, full: torch.Tensor) -> None:
    """Show which features of a case change the logits."""
    for what, overrides, must_change in SENSITIVITY.get(case, []):
        config = CASES[case][0]()
        for k, v in overrides.items():
            setattr(config, k, v)
        config._attn_implementation = "eager"
        other = CASES[case][1](config).to(torch.float32).eval()
        other.load_state_dict(model.state_dict())
        diff = (other(input_ids=ids[None], use_cache=False).logits[0] - full).abs().max().item()
        print(f"[{case}] {what}: logits change by up to {diff:.3g}")
        if must_change:
            assert diff > 1e-2, f"{case}: '{what}' barely changes the logits"
        else:
            assert diff == 0.0, f"{case}: '{what}' unexpectedly changes the logits"


def load_saved_tensors(d: Path) -> dict[str, torch.Tensor]:
    """Read back what save_pretrained wrote (what convert_hf_to_gguf.py reads)."""
    index = d / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(d / f), framework="pt") as st:
            for k in st.keys():
                tensors[k] = st.get_tensor(k)
    return tensors


# --------------------------------------------------------------------------
# GGUF side (conventions of llama.cpp's convert_hf_to_gguf.py)
# --------------------------------------------------------------------------

def permute_qk(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """convert_hf_to_gguf LlamaModel.permute: HF's rotate-half (NeoX) row order
    to the interleaved (GPT-J) order used by llama.cpp's LLAMA_ROPE_TYPE_NORM.
    Within each head, output row 2*i comes from HF row i and row 2*i+1 from
    HF row i + head_dim/2.  n_head is the head count of that projection."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def llama3_rope_factors(rope: dict, head_dim: int) -> torch.Tensor:
    """convert_hf_to_gguf LlamaModel.generate_extra_tensors: rope_freqs.weight,
    one divisor per rotated pair: theta_i = pos * base^(-2i/d) / factor_i."""
    base = rope["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor = rope["factor"]
    low, high = rope["low_freq_factor"], rope["high_freq_factor"]
    old_ctx = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32)


# HF tensor suffix (after "model.layers.N.") -> GGUF suffix (after "blk.N.")
LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# post_attention_layernorm is the pre-FFN norm in llama/qwen, but the
# post-attention norm in Gemma (which has a separate pre_feedforward_layernorm).
LAYER_MAP_LLAMA = {"post_attention_layernorm.weight": "ffn_norm.weight"}
LAYER_MAP_GEMMA = {
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}


def gguf_tensors(arch: str, cfg: dict, hf: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """HF tensors -> (GGUF name, float32 tensor) in llama.cpp's conventions."""
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    layer_map = dict(LAYER_MAP, **(LAYER_MAP_GEMMA if arch == "gemma3" else LAYER_MAP_LLAMA))
    out: list[tuple[str, torch.Tensor]] = []

    rope = cfg.get("rope_parameters") or {}
    if arch == "llama" and rope.get("rope_type") == "llama3":
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
        out.append(("rope_freqs.weight", llama3_rope_factors(rope, head_dim)))

    def convert(name: str, t: torch.Tensor) -> tuple[str, torch.Tensor]:
        t = t.to(torch.float32)
        if name == "model.embed_tokens.weight":
            new = "token_embd.weight"
        elif name == "model.norm.weight":
            new = "output_norm.weight"
        elif name == "lm_head.weight":
            new = "output.weight"
        else:
            parts = name.split(".")
            assert parts[:2] == ["model", "layers"], name
            bid, suffix = int(parts[2]), ".".join(parts[3:])
            new = f"blk.{bid}.{layer_map[suffix]}"
            if arch == "llama" and suffix.startswith("self_attn.q_proj."):
                t = permute_qk(t, n_head)
            elif arch == "llama" and suffix.startswith("self_attn.k_proj."):
                t = permute_qk(t, n_kv)
        # Gemma3RMSNorm computes x * (1 + w); llama.cpp stores 1 + w.
        if arch == "gemma3" and name.endswith("norm.weight"):
            t = t + 1.0
        return new, t

    names = [n for n in hf if n != "lm_head.weight" or not cfg.get("tie_word_embeddings")]
    # same order as the converter would meet them: sorted HF names
    for name in sorted(names):
        out.append(convert(name, hf[name]))
    return out


def byte_tokens() -> list[str]:
    """GPT-2 byte-level BPE alphabet: token i is the printable stand-in for byte i."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, (chr(c) for c in cs)))
    return [table[b] for b in range(256)]


FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}
MATRIX_TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}


def write_gguf(path: Path, arch: str, case: str, cfg: dict,
               tensors: list[tuple[str, torch.Tensor]], kind: str) -> None:
    w = gguf.GGUFWriter(str(path), arch)  # writes general.architecture
    w.add_type("model")
    w.add_name(f"candor-test-{case}")

    # TextModel.set_gguf_parameters
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    rope = cfg.get("rope_parameters") or {}
    full = rope.get("full_attention", rope)
    # rope_type "default" and "llama3" write no rope.scaling.* keys (llama3 is
    # carried by the rope_freqs tensor instead).
    w.add_rope_freq_base(full["rope_theta"])
    if "sliding_attention" in rope:
        w.add_rope_freq_base_swa(rope["sliding_attention"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if cfg.get("head_dim") is not None:
        # the converter writes these whenever config.json has head_dim
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    w.add_file_type(FILE_TYPES[kind])

    if arch == "llama":  # LlamaModel.set_gguf_parameters
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    if arch == "gemma3":  # Gemma3Model.set_gguf_parameters
        assert cfg.get("attn_logit_softcapping") is None
        if cfg.get("final_logit_softcapping"):
            w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        w.add_sliding_window(cfg["sliding_window"])
        # Not written by the converter (llama.cpp then assumes pattern 6: layer
        # il is sliding iff il % 6 < 5, right for the real Gemma 3 models).  Our
        # 3-layer model has layers 0,1 sliding and 2 global, so we carry the
        # per-layer array that llama.cpp's load_swa_pattern reads first.
        w.add_sliding_window_pattern([t == "sliding_attention" for t in cfg["layer_types"]])

    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # Minimal byte-level vocabulary so that tools accept the file; the Rust
    # tests only use the weights.  llama.cpp requires a merges array for "gpt2".
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(byte_tokens())
    w.add_token_types([gguf.TokenType.NORMAL] * VOCAB)
    w.add_token_merges(["Ġ Ġ"])
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)

    for name, t in tensors:
        data = t.numpy()
        if data.ndim <= 1 or name.endswith("_norm.weight"):
            qtype = gguf.GGMLQuantizationType.F32
        else:
            qtype = MATRIX_TYPES[kind]
        if qtype == gguf.GGMLQuantizationType.F16:
            data = data.astype(np.float16)
        elif qtype == gguf.GGMLQuantizationType.Q8_0:
            data = gguf.quants.quantize(data, qtype)
        w.add_tensor(name, data, raw_dtype=qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --------------------------------------------------------------------------
# Independent check: NumPy forward pass over a GGUF file, llama.cpp semantics
# --------------------------------------------------------------------------

def _field(r: gguf.GGUFReader, key: str, default=None):
    f = r.get_field(key)
    return default if f is None else f.contents()


def gguf_forward(path: Path, ids: list[int]) -> np.ndarray:
    r = gguf.GGUFReader(str(path))
    arch = _field(r, "general.architecture")
    W = {t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64)
         .reshape([int(x) for x in reversed(t.shape)]) for t in r.tensors}
    n_embd = _field(r, f"{arch}.embedding_length")
    n_layer = _field(r, f"{arch}.block_count")
    n_head = _field(r, f"{arch}.attention.head_count")
    n_kv = _field(r, f"{arch}.attention.head_count_kv")
    hd = _field(r, f"{arch}.attention.key_length", n_embd // n_head)
    n_rot = _field(r, f"{arch}.rope.dimension_count", hd)
    eps = _field(r, f"{arch}.attention.layer_norm_rms_epsilon")
    base = _field(r, f"{arch}.rope.freq_base", 10000.0)
    base_swa = _field(r, f"{arch}.rope.freq_base_swa", 10000.0)
    n_swa = _field(r, f"{arch}.attention.sliding_window", 0)
    pattern = _field(r, f"{arch}.attention.sliding_window_pattern")
    if arch != "gemma3" or not n_swa:
        is_swa = [False] * n_layer
    elif isinstance(pattern, list):
        is_swa = [bool(x) for x in pattern]
    else:
        p = 6 if pattern is None else pattern
        is_swa = [p == 0 or il % p < p - 1 for il in range(n_layer)]
    softcap = _field(r, f"{arch}.final_logit_softcapping", 0.0)
    neox = arch in ("qwen2", "qwen3", "gemma3")
    ff = W.get("rope_freqs.weight", np.ones(n_rot // 2))

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, pos, b):  # x: (T, H, hd)
        inv = b ** (-np.arange(0, n_rot, 2) / n_rot) / ff
        ang = pos[:, None] * inv[None, :]                        # (T, n_rot/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x = x.copy()
        if neox:
            a, bb = x[..., :n_rot // 2].copy(), x[..., n_rot // 2:n_rot].copy()
            x[..., :n_rot // 2], x[..., n_rot // 2:n_rot] = a * c - bb * s, a * s + bb * c
        else:
            a, bb = x[..., 0:n_rot:2].copy(), x[..., 1:n_rot:2].copy()
            x[..., 0:n_rot:2], x[..., 1:n_rot:2] = a * c - bb * s, a * s + bb * c
        return x

    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    x = W["token_embd.weight"][ids]
    if arch == "gemma3":
        x = x * math.sqrt(n_embd)
    for il in range(n_layer):
        p = f"blk.{il}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = h @ W[p + "attn_q.weight"].T + W.get(p + "attn_q.bias", 0.0)
        k = h @ W[p + "attn_k.weight"].T + W.get(p + "attn_k.bias", 0.0)
        v = h @ W[p + "attn_v.weight"].T + W.get(p + "attn_v.bias", 0.0)
        q, k, v = q.reshape(T, n_head, hd), k.reshape(T, n_kv, hd), v.reshape(T, n_kv, hd)
        if p + "attn_q_norm.weight" in W:
            q = rms(q, W[p + "attn_q_norm.weight"])
            k = rms(k, W[p + "attn_k_norm.weight"])
        b = base_swa if is_swa[il] else base
        q, k = rope(q, pos, b), rope(k, pos, b)
        mask = np.tril(np.ones((T, T), dtype=bool))
        if is_swa[il]:
            qi, ki = np.arange(T)[:, None], np.arange(T)[None, :]
            mask &= (qi - ki) < n_swa
        att = np.empty((T, n_head, hd))
        for hh in range(n_head):
            kvh = hh // (n_head // n_kv)
            sc = q[:, hh] @ k[:, kvh].T / math.sqrt(hd)
            sc = np.where(mask, sc, -np.inf)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            att[:, hh] = sc @ v[:, kvh]
        o = att.reshape(T, n_head * hd) @ W[p + "attn_output.weight"].T
        if arch == "gemma3":
            o = rms(o, W[p + "post_attention_norm.weight"])
        x = x + o
        h = rms(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        if arch == "gemma3":
            g = 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        else:
            g = g / (1 + np.exp(-g))
        f = (g * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        if arch == "gemma3":
            f = rms(f, W[p + "post_ffw_norm.weight"])
        x = x + f
    x = rms(x, W["output_norm.weight"])
    logits = x @ W.get("output.weight", W["token_embd.weight"]).T
    if softcap:
        logits = np.tanh(logits / softcap) * softcap
    return logits


# --------------------------------------------------------------------------
# Optional cross-check against llama.cpp's own converter
# --------------------------------------------------------------------------

def crosscheck_llama_cpp(llama_cpp: Path, out_root: Path, cases: list[str]) -> None:
    """Convert each case with llama.cpp's converter (tokenizer part skipped)
    and compare with our GGUF files: metadata except general.name/tokenizer.*,
    and every tensor's type, shape and bytes.  Must run in a fresh process
    because it puts llama.cpp's gguf-py first on sys.path."""
    import logging
    import tempfile
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    sys.path.insert(0, str(llama_cpp))
    for mod in [m for m in sys.modules if m == "gguf" or m.startswith("gguf.")]:
        del sys.modules[mod]
    import gguf as lgguf  # llama.cpp's copy
    try:  # llama.cpp after the split of convert_hf_to_gguf.py into conversion/
        from conversion import get_model_class

        def model_class(hf_arch):
            return get_model_class(hf_arch, mmproj=False)
    except ImportError:
        import convert_hf_to_gguf as conv

        def model_class(hf_arch):
            return conv.ModelBase.from_model_architecture(hf_arch)
    logging.getLogger("hf-to-gguf").setLevel(logging.ERROR)
    logging.getLogger("gguf.gguf_writer").setLevel(logging.ERROR)
    ftypes = {"f32": lgguf.LlamaFileType.ALL_F32, "f16": lgguf.LlamaFileType.MOSTLY_F16,
              "q8_0": lgguf.LlamaFileType.MOSTLY_Q8_0}
    ignored = ("general.name", "general.size_label", "general.basename", "general.finetune")

    def kv(r):
        return {k: f.contents() for k, f in r.fields.items()
                if not k.startswith(("GGUF.", "tokenizer.")) and k not in ignored}

    for case in cases:
        _make, cls, arch, _seed, _sharded = CASES[case]
        src = out_root / case
        with tempfile.TemporaryDirectory() as tmp:
            # the converter drops embedding rows beyond the tokenizer's vocabulary
            # for Gemma 3, so give it a tokenizer.json with all 256 tokens
            work = Path(tmp) / case
            shutil.copytree(src, work)
            (work / "tokenizer.json").write_text(json.dumps(
                {"model": {"vocab": {f"t{i}": i for i in range(VOCAB)}}, "added_tokens": []}))
            conv_cls = model_class(cls.__name__)
            conv_cls.set_vocab = lambda self: None
            for kind, ftype in ftypes.items():
                out = Path(tmp) / f"{kind}.gguf"
                try:
                    conv_cls(work, ftype, out, eager=True, model_name="x").write()
                except AssertionError as e:
                    print(f"[{case}] llama.cpp converter refuses this config "
                          f"(AssertionError {e}); our files: {'none' if arch is None else 'written'}")
                    assert arch is None
                    break
                assert arch is not None, case
                theirs, ours = lgguf.GGUFReader(str(out)), lgguf.GGUFReader(str(src / f"model-{kind}.gguf"))
                a, b = kv(theirs), kv(ours)
                extra = {k: b[k] for k in b if k not in a}
                assert {k: v for k, v in b.items() if k in a} == a and set(a) <= set(b), (case, kind, a, b)
                ta, tb = {t.name: t for t in theirs.tensors}, {t.name: t for t in ours.tensors}
                assert set(ta) == set(tb), (case, kind, set(ta) ^ set(tb))
                for n, t in ta.items():
                    u = tb[n]
                    assert (t.tensor_type, list(t.shape), t.data.tobytes()) == \
                        (u.tensor_type, list(u.shape), u.data.tobytes()), (case, kind, n)
                print(f"[{case}] model-{kind}.gguf identical to llama.cpp's conversion "
                      f"({len(ta)} tensors, {len(a)} keys); keys only in ours: {extra or 'none'}")


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def generate(case: str, out_root: Path, check_gguf: bool) -> None:
    _make, _cls, arch, _seed, sharded = CASES[case]
    d = out_root / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)

    model = build_model(case)
    ids = torch.tensor(INPUT_IDS, dtype=torch.int64)
    full, incremental = hf_logits(model, ids)
    inc_diff = (full - incremental).abs().max().item()
    print(f"[{case}] logits std {full.std().item():.3f}  max |logit| {full.abs().max().item():.3f}  "
          f"HF incremental vs full max diff {inc_diff:.2e}")
    assert inc_diff < 1e-5, f"{case}: incremental decoding differs by {inc_diff}"
    sensitivity(case, model, ids, full)

    if sharded:
        total = sum(p.numel() * 4 for p in model.parameters())
        model.save_pretrained(d, max_shard_size=int(total * 0.6))
        index = json.loads((d / "model.safetensors.index.json").read_text())
        shards = sorted(set(index["weight_map"].values()))
        assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
    else:
        model.save_pretrained(d)
        assert (d / "model.safetensors").exists()

    save_file(
        {
            "input_ids": ids.clone(),
            "logits": full.to(torch.float32).contiguous(),
            "prompt_len": torch.tensor([PROMPT_LEN], dtype=torch.int64),
        },
        str(d / "reference.safetensors"),
    )

    # Reload what was saved: the files must reproduce the reference logits.
    cfg = json.loads((d / "config.json").read_text())
    saved = load_saved_tensors(d)
    reloaded = CASES[case][1].from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        again = reloaded(input_ids=ids[None], use_cache=False).logits[0]
    reload_diff = (again - full).abs().max().item()
    assert reload_diff == 0.0, f"{case}: reloaded model differs by {reload_diff}"

    if arch is None:
        return
    tensors = gguf_tensors(arch, cfg, saved)
    for kind in ("f32", "f16", "q8_0"):
        path = d / f"model-{kind}.gguf"
        write_gguf(path, arch, case, cfg, tensors, kind)
        if check_gguf:
            diff = np.abs(gguf_forward(path, INPUT_IDS) - full.double().numpy()).max()
            print(f"[{case}] {path.name}: NumPy llama.cpp-semantics forward vs HF max diff {diff:.2e}")
            if kind == "f32":
                assert diff < 1e-4, f"{case}: {path.name} forward differs by {diff}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parent.parent
    ap.add_argument("--out", type=Path, default=repo / "models" / "tests" / "data")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--skip-gguf-check", action="store_true")
    ap.add_argument("--llama-cpp", type=Path, metavar="DIR",
                    help="llama.cpp checkout: compare our GGUFs with its converter's output")
    args = ap.parse_args()

    torch.set_num_threads(1)  # deterministic reductions, small machine
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    for case in args.cases.split(","):
        if case not in CASES:
            print(f"unknown case {case!r}; known: {', '.join(CASES)}", file=sys.stderr)
            return 2
        generate(case, args.out, check_gguf=not args.skip_gguf_check)
    if args.llama_cpp:
        crosscheck_llama_cpp(args.llama_cpp, args.out, args.cases.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
