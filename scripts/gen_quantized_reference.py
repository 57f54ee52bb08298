#!/usr/bin/env python3
"""Reference logits for the F16 and Q8_0 GGUF files of the golden-test models.

``gen_reference_models.py`` writes, per case, ``reference.safetensors`` with the
logits transformers computes from the original F32 weights, and GGUF files whose
2-D tensors are F32, F16 or Q8_0.  An F16 or Q8_0 file cannot reproduce those
logits: its weights are rounded.  This script computes what transformers gives
on *exactly the weights the file holds*, so that the Rust golden tests can tell
the file's weight rounding (not ours to fix) from candor's own computation.

For every case that has GGUF files it

1. reads ``model-f16.gguf`` and ``model-q8_0.gguf`` with ``gguf.GGUFReader`` and
   dequantizes every tensor with ``gguf.quants.dequantize`` (to float32);
2. maps them back to the Hugging Face names and layout, undoing what the
   converter did: the llama Q/K row permutation (interleaved rope order back to
   rotate-half), the ``+ 1`` on Gemma 3 RMSNorm weights, and the tied
   ``lm_head`` (a GGUF without ``output.weight`` uses ``token_embd``);
   ``rope_freqs.weight`` is derived from the config, so it is only checked;
3. loads them, strictly, into the transformers model built from the case's
   local ``config.json`` (no hub access), float32, eager attention, and runs one
   full forward pass over the reference ``input_ids``;
4. writes ``models/tests/data/<case>/reference-quant.safetensors`` with
   ``logits_f16`` and ``logits_q8_0`` (F32, ``(n, vocab)``).

As a check of the mapping it does the same with ``model-f32.gguf``: that must
reproduce ``logits`` of ``reference.safetensors`` bit for bit.

It prints, per case and file type, max |logits_<type> - logits|: the error the
file's own weight rounding causes.  For Q8_0 it also predicts the extra error
of candor's quantized matmul, which the golden tests' tolerance has to cover:
candle's CPU Q8_0 matmul (like llama.cpp's) rounds the *activations* to Q8_0
blocks too (32 values sharing one f16 scale amax/127) before the integer dot
product.  The script emulates that by rounding the input of every ``nn.Linear``
the same way, runs the model in float64 and in float32, and prints max |Δ| of
the emulation against ``logits_q8_0`` and ``logits``, and between its float64
and float32 runs.  The last number shows that Q8_0 rounding is discontinuous:
an f32-level change of a matmul input can move a block's f16 scale by one ulp
(or a value across a rounding boundary), and the following quantized layers
amplify that to a visible change of the logits.  The emulated logits are not
saved (``--no-emulation`` skips this part).

How to run (from the repository root, after ``gen_reference_models.py``, which
empties each case directory and so deletes this script's output too)::

    ~/.cache/candor/ref-venv/bin/python scripts/gen_quantized_reference.py

Options: ``--data DIR`` (default ``models/tests/data``), ``--cases a,b``
(default: every case directory with GGUF files).  Deterministic (float32, one
thread, CPU) and idempotent: each output file is rewritten with the same bytes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import gguf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The generator's own tables, so that the inverse mapping cannot drift from it.
from gen_reference_models import (  # noqa: E402
    LAYER_MAP, LAYER_MAP_GEMMA, LAYER_MAP_LLAMA, llama3_rope_factors,
)

TYPES = ("f16", "q8_0")
QK8_0 = 32


# --------------------------------------------------------------------------
# GGUF -> Hugging Face state dict
# --------------------------------------------------------------------------

def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of gen_reference_models.permute_qk: GGUF row h*d + 2i back to HF
    row h*d + i, and GGUF row h*d + 2i + 1 back to HF row h*d + d/2 + i."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def read_gguf(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """All tensors of a GGUF file, dequantized to float32, in numpy row-major shape."""
    r = gguf.GGUFReader(str(path))
    arch = r.get_field("general.architecture").contents()
    out = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape)]  # GGUF lists ne0 (the fastest) first
        out[t.name] = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type),
                                 dtype=np.float32).reshape(shape)
    return arch, out


def hf_state_dict(arch: str, cfg: dict, tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """GGUF tensors -> HF names and layout (undoes gen_reference_models.gguf_tensors)."""
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    layer_map = dict(LAYER_MAP, **(LAYER_MAP_GEMMA if arch == "gemma3" else LAYER_MAP_LLAMA))
    inverse = {g: h for h, g in layer_map.items()}
    assert len(inverse) == len(layer_map)
    sd: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name == "rope_freqs.weight":
            # Not a parameter: transformers derives it from rope_parameters.
            head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
            expect = llama3_rope_factors(cfg["rope_parameters"], head_dim).numpy()
            assert np.array_equal(t, expect), "rope_freqs.weight disagrees with config.json"
            continue
        if name == "token_embd.weight":
            new = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            new = "model.norm.weight"
        elif name == "output.weight":
            new = "lm_head.weight"
        else:
            blk, bid, suffix = name.split(".", 2)
            assert blk == "blk", name
            new = f"model.layers.{int(bid)}.{inverse[suffix]}"
            if arch == "llama" and suffix.startswith("attn_q."):
                t = unpermute_qk(t, n_head)
            elif arch == "llama" and suffix.startswith("attn_k."):
                t = unpermute_qk(t, n_kv)
        if arch == "gemma3" and new.endswith("norm.weight"):
            # Gemma3RMSNorm computes x * (1 + w); the file holds 1 + w (F32, as
            # every 1-D tensor).  The subtraction is exact in f32.
            t = t - np.float32(1.0)
        sd[new] = torch.from_numpy(np.array(t, dtype=np.float32))  # a writable copy
    if "lm_head.weight" not in sd:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]  # tied
    return sd


def build_model(case_dir: Path, sd: dict[str, torch.Tensor]):
    cfg = transformers.AutoConfig.from_pretrained(case_dir, local_files_only=True)
    cfg._attn_implementation = "eager"
    (arch_name,) = cfg.architectures
    model = getattr(transformers, arch_name)(cfg).to(torch.float32).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # Non-persistent buffers (rotary inv_freq) are not in the state dict.
    assert not missing and not unexpected, (missing, unexpected)
    for name, p in model.named_parameters():  # every parameter came from the file
        assert torch.equal(p, sd[name]), name
    return model


# --------------------------------------------------------------------------
# Q8_0 activation rounding (candle / llama.cpp CPU quantized matmul)
# --------------------------------------------------------------------------

def q8_0_round(x: torch.Tensor) -> torch.Tensor:
    """What candle's BlockQ8_0::from_float does to a matmul input, dequantized:
    per block of 32 along the last axis, d = amax / 127 (f32), q = round(x / d)
    (half away from zero), stored scale f16(d); the dot product sees q * f16(d)."""
    shape = x.shape
    b = x.detach().to(torch.float32).reshape(-1, QK8_0).numpy()
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0)).astype(np.float32)
    y = b * inv
    q = np.sign(y) * np.floor(np.abs(y) + np.float32(0.5))  # f32::round
    out = q.astype(np.float32) * d.astype(np.float16).astype(np.float32)
    return torch.from_numpy(out).reshape(shape).to(x.dtype)


def emulate_q8_0_activations(model) -> list:
    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.in_features % QK8_0 == 0
            hooks.append(m.register_forward_pre_hook(lambda _m, args: (q8_0_round(args[0]),)))
    return hooks


@torch.no_grad()
def emulation_report(case: str, model, ids: torch.Tensor, logits: torch.Tensor, ref_q: torch.Tensor) -> str:
    """Runs the Q8_0 model with its matmul inputs rounded to Q8_0 blocks, in float64
    (rounding decisions as in exact arithmetic) and in float32, and describes the result.
    Leaves the model in float64 with the hooks removed."""
    hooks = emulate_q8_0_activations(model)
    e32 = logits_of(model, ids)
    e64 = logits_of(model.to(torch.float64), ids)
    for h in hooks:
        h.remove()
    gap = ref_q.topk(2, dim=-1).values
    gap = gap[:, 0] - gap[:, 1]
    same = (e64.argmax(-1) == ref_q.argmax(-1)).sum().item()
    return (f"[{case}] q8_0  with Q8_0 activation rounding (emulated in f64): "
            f"max |Δ| vs logits_q8_0 {(e64 - ref_q).abs().max().item():.3e}, "
            f"vs logits {(e64 - logits).abs().max().item():.3e}; same argmax as logits_q8_0 at "
            f"{same}/{len(ids)} positions (smallest top-2 gap {gap.min().item():.3g}); "
            f"the f32 emulation differs from the f64 one by {(e32 - e64).abs().max().item():.3e}")


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

@torch.no_grad()
def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids[None], use_cache=False).logits[0].to(torch.float32).contiguous()


def run_case(case_dir: Path, emulate: bool) -> None:
    case = case_dir.name
    ref = load_file(str(case_dir / "reference.safetensors"))
    ids, logits = ref["input_ids"], ref["logits"]
    cfg = json.loads((case_dir / "config.json").read_text())

    out: dict[str, torch.Tensor] = {}
    for kind in ("f32",) + TYPES:
        arch, tensors = read_gguf(case_dir / f"model-{kind}.gguf")
        model = build_model(case_dir, hf_state_dict(arch, cfg, tensors))
        got = logits_of(model, ids)
        diff = (got - logits).abs().max().item()
        if kind == "f32":
            # Same weights, same forward pass: the mapping must be exact.  (Also
            # for gemma3: the file holds fl(1 + w), fl(1 + w) - 1 is exact in f32
            # for these weights, and Gemma3RMSNorm adds the 1 back.)
            assert diff == 0.0, f"{case}: model-f32.gguf mapped back differs from logits by {diff}"
            print(f"[{case}] f32   GGUF mapped back: max |Δ| vs logits {diff:.3e} (mapping check)")
            continue
        out[f"logits_{kind}"] = got
        line = f"[{case}] {kind:<5} max |logits_{kind} - logits| = {diff:.3e}"
        if kind == "q8_0" and emulate:
            line += "\n" + emulation_report(case, model, ids, logits, got)
        print(line)
    save_file(out, str(case_dir / "reference-quant.safetensors"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", type=Path, default=repo / "models" / "tests" / "data")
    ap.add_argument("--cases", help="comma-separated case names (default: all with GGUF files)")
    ap.add_argument("--no-emulation", action="store_true",
                    help="skip the Q8_0 activation-rounding emulation (printed only)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}")
    if args.cases:
        dirs = [args.data / c for c in args.cases.split(",")]
    else:
        dirs = sorted(d for d in args.data.iterdir() if (d / "model-f16.gguf").exists())
    for d in dirs:
        if not all((d / f"model-{k}.gguf").exists() for k in ("f32",) + TYPES):
            print(f"{d}: no GGUF files (run gen_reference_models.py first?)", file=sys.stderr)
            return 2
        run_case(d, emulate=not args.no_emulation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
