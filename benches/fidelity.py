#!/usr/bin/env python3
"""How faithful quantized inference is, in candor and in llama.cpp, measured the way the
quantization community measures it: teacher-forced over real English text, each engine's
run of a quantized GGUF against the same engine's run of the same weights dequantized to
F32 (written here with PyPI `gguf`).

Per scored token: KL divergence of the quantized model's next-token distribution from the
F32 model's, whether both pick the same most likely token (top-1 agreement), and the
log-probability of the actual next token (for perplexity).

candor is asked through its API, as any client would (`/v1/completions` with the prompt
as token ids, `echo: true`, `logprobs: TOP`, `max_tokens: 0`), so it returns the TOP most
likely tokens at each position, not the whole distribution. KL is therefore computed over
the F32 run's TOP tokens plus one bucket for the rest of the vocabulary (a token missing
from the quantized run's TOP gets that run's smallest listed probability). llama.cpp gives
every logit (`logits_all=True`): its KL is reported both the same way and exactly over the
whole vocabulary, which shows what the approximation costs.

Both engines score the same token ids (tokenized once by llama.cpp from the GGUF), in
windows of WINDOW tokens (a BOS first where the model wants one), each window scored from
its second token. The text is benches/data/alice-ch1-2.txt (public domain).

Usage (after `bash scripts/fetch-test-assets.sh` and `cargo build --release`):
    ~/.cache/candor/llama-venv/bin/python benches/fidelity.py [--window 512] [--top 20]
        [--threads 2] [--models smollm2,gemma] [--max-tokens N]
"""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CANDOR_CACHE", Path.home() / ".cache/candor"))
ASSETS = CACHE / "assets"
CANDOR = Path(os.environ.get("CANDOR_BIN", ROOT / "target/release/candor"))
TEXT = ROOT / "benches/data/alice-ch1-2.txt"
MODELS = {
    "smollm2": ("SmolLM2 135M Q4_1", ASSETS / "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma": ("Gemma 3 270M Q4_K_M", ASSETS / "gemma-3-270m-q4_k_m.gguf"),
}


def dequantized(path: Path) -> Path:
    """The same GGUF with every tensor dequantized to F32 (made once, cached)."""
    import gguf

    out = CACHE / "fidelity" / (path.stem + ".f32.gguf")
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(out) + ".part", arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        if field.name == "general.file_type":
            writer.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data.reshape(tuple(reversed([int(d) for d in t.shape]))),
                          raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.rename(str(out) + ".part", out)
    return out


def windows(ids: list[int], window: int, bos: int | None) -> list[list[int]]:
    step = window - (bos is not None)
    return [([bos] if bos is not None else []) + ids[i:i + step] for i in range(0, len(ids), step)
            if len(ids[i:i + step]) > 1]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Candor:
    """A `candor serve` on a free port."""

    def __init__(self, model: Path, threads: int, window: int):
        self.port = free_port()
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [str(CANDOR), "serve", "--model", str(model), "--port", str(self.port),
             "--ctx-size", str(max(window + 8, 1024)), "--max-running", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(1200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"candor exited: {self.proc.stderr.read()}")
                time.sleep(0.25)
        raise RuntimeError("candor did not become healthy")

    def score(self, ids: list[int], top: int) -> list[tuple[float, dict[str, float]]]:
        """(logprob of the token, {text: logprob} of the TOP most likely) per token after
        the first."""
        body = json.dumps({"prompt": ids, "echo": True, "logprobs": top, "max_tokens": 0,
                           "temperature": 0}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/completions", body,
                                     {"Content-Type": "application/json"})
        lp = json.load(urllib.request.urlopen(req, timeout=600))["choices"][0]["logprobs"]
        return list(zip(lp["token_logprobs"][1:], lp["top_logprobs"][1:]))

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    m = rows.max(axis=-1, keepdims=True)
    return rows - m - np.log(np.exp(rows - m).sum(axis=-1, keepdims=True))


def top_kl(ref: dict, got: dict) -> float:
    """KL(ref || got) over ref's listed tokens plus one bucket for the rest."""
    floor = min(got.values())
    p = {k: math.exp(v) for k, v in ref.items()}
    q = {k: math.exp(got.get(k, floor)) for k in ref}
    kl = sum(p[k] * math.log(p[k] / q[k]) for k in p if p[k] > 0)
    p_rest, q_rest = max(1 - sum(p.values()), 0.0), max(1 - sum(q.values()), 1e-12)
    if p_rest > 0:
        kl += p_rest * math.log(p_rest / q_rest)
    return max(kl, 0.0)


class Tally:
    def __init__(self):
        self.kl, self.kl_full, self.same_top1, self.nll_q, self.nll_ref, self.n = [], [], 0, 0.0, 0.0, 0

    def add(self, kl, same, lp_q, lp_ref, kl_full=None):
        self.kl.append(kl)
        if kl_full is not None:
            self.kl_full.append(kl_full)
        self.same_top1 += same
        self.nll_q -= lp_q
        self.nll_ref -= lp_ref
        self.n += 1

    def row(self) -> dict:
        return {
            "tokens": self.n,
            "kl_top": float(np.mean(self.kl)),
            "kl_top_p99": float(np.percentile(self.kl, 99)),
            "kl_full": float(np.mean(self.kl_full)) if self.kl_full else None,
            "top1": self.same_top1 / self.n,
            "ppl_q": math.exp(self.nll_q / self.n),
            "ppl_f32": math.exp(self.nll_ref / self.n),
        }


def measure(name: str, path: Path, args) -> dict:
    f32 = dequantized(path)
    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    text = TEXT.read_text()
    ids = vocab.tokenize(text.encode(), add_bos=False, special=False)[: args.max_tokens]
    bos = vocab.token_bos() if vocab.metadata.get("tokenizer.ggml.add_bos_token") == "true" else None
    wins = windows(ids, args.window, bos)
    scored = sum(len(w) - 1 for w in wins)
    print(f"{name}: {len(ids)} tokens, {len(wins)} windows, {scored} scored", file=sys.stderr)

    # candor: the quantized file and its F32 copy, side by side.
    out = {}
    servers = [Candor(path, args.threads, args.window), Candor(f32, args.threads, args.window)]
    try:
        tally = Tally()
        for w in wins:
            q, ref = servers[0].score(w, args.top), servers[1].score(w, args.top)
            for (lq, tq), (lr, tr) in zip(q, ref):
                same = max(tq, key=tq.get) == max(tr, key=tr.get)
                tally.add(top_kl(tr, tq), same, lq, lr)
        out["candor"] = tally.row()
    finally:
        for s in servers:
            s.close()

    # llama.cpp: every logit of every position.
    kw = dict(n_ctx=args.window + 8, n_batch=args.window, logits_all=True,
              n_threads=args.threads, verbose=False)
    lq_model, lr_model = Llama(model_path=str(path), **kw), Llama(model_path=str(f32), **kw)
    tally = Tally()
    for w in wins:
        rows = []
        for llm in (lq_model, lr_model):
            llm.reset()
            llm.eval(w)
            rows.append(log_softmax(np.array(llm.scores[: len(w) - 1])))
        q, ref = rows
        full = (np.exp(ref) * (ref - q)).sum(axis=-1)
        for j in range(len(w) - 1):
            tq = {int(i): float(q[j, i]) for i in np.argsort(-q[j])[: args.top]}
            tr = {int(i): float(ref[j, i]) for i in np.argsort(-ref[j])[: args.top]}
            tally.add(top_kl(tr, tq), int(np.argmax(q[j]) == np.argmax(ref[j])),
                      q[j, w[j + 1]], ref[j, w[j + 1]], kl_full=max(float(full[j]), 0.0))
    out["llama.cpp"] = tally.row()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--models", default="smollm2,gemma")
    ap.add_argument("--max-tokens", type=int, default=None, help="score only the first N tokens")
    args = ap.parse_args()
    print(f"| model | engine | tokens | mean KL (top-{args.top} + rest) | p99 KL | exact KL | "
          "top-1 agreement | perplexity quantized | perplexity F32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in args.models.split(","):
        name, path = MODELS[key]
        for engine, r in measure(name, path, args).items():
            exact = f"{r['kl_full']:.5f}" if r["kl_full"] is not None else "-"
            print(f"| {name} | {engine} | {r['tokens']} | {r['kl_top']:.5f} | {r['kl_top_p99']:.4f} | "
                  f"{exact} | {100 * r['top1']:.2f}% | {r['ppl_q']:.3f} | {r['ppl_f32']:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
