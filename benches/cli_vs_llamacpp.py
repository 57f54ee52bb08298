#!/usr/bin/env python3
"""Prefill and decode speed of `candor generate` against llama.cpp on the same GGUF.

Both run in the same session on the same machine, one after the other, with the same
prompt (raw, so both see identical token ids), greedy, the same number of generated
tokens and the same thread count. Figures are reported as candor / llama.cpp ratios,
because these machines are shared and absolute numbers drift between runs.

Usage (after `bash scripts/fetch-test-assets.sh` and `cargo build --release`):
    ~/.cache/candor/llama-venv/bin/python benches/cli_vs_llamacpp.py [--runs 3] [--tokens 64]
        [--threads 2] [--r1-1.5b Q4_K_M,Q8_0,Q4_0,Q6_K] [--only-r1] [--repeat N]
llama.cpp comes from PyPI `llama-cpp-python` (see README, "Tests and their data").
`--r1-1.5b` adds a random-weight model of DeepSeek-R1-Distill-Qwen-1.5B's shape in those
types, made (once, cached) by scripts/make_r1_1p5b_shaped.py with PyPI `gguf` and
llama.cpp's quantizer; the prompt is then repeated 3 times (157 tokens) as in issue 13.
`--repeat N` repeats it N times for every model instead (10: 570 tokens, 36: 2,052 on the
1.5B-shaped model's tokenizer), to measure prefill of long prompts; the table then says
how many tokens the prompt was.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("CANDOR_ASSETS", Path.home() / ".cache/candor/assets"))
CANDOR = Path(os.environ.get("CANDOR_BIN", ROOT / "target/release/candor"))
MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
PROMPT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a wooden press adapted from "
    "wine making. Within a few decades printing shops had spread across Europe, and the "
    "price of books fell sharply. Scholars, merchants and clergy"
)
LINE = re.compile(r"prompt (\d+) tokens \((\d+) cached\) at ([\d.]+) tok/s, generated (\d+) tokens at ([\d.]+) tok/s")


def candor(model: Path, tokens: int, threads: int, prompt: str) -> tuple[float, float, int]:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RUST_LOG="warn")
    out = subprocess.run(
        [str(CANDOR), "generate", "--model", str(model), "--raw", "--prompt", prompt,
         "--temperature", "0", "--max-tokens", str(tokens)],
        capture_output=True, text=True, env=env, check=True,
    )
    m = LINE.search(out.stderr)
    if not m:
        raise RuntimeError(f"no speed line in candor's stderr:\n{out.stderr}")
    return float(m.group(3)), float(m.group(5)), int(m.group(1))


def llamacpp(llm: Llama, tokens: int, prompt: str) -> tuple[float, float]:
    ids = llm.tokenize(prompt.encode(), add_bos=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    import numpy as np

    # Without logits_all, llama-cpp-python fills no `scores`: read the last token's
    # logits from the context (greedy, as candor's --temperature 0).
    def next_token() -> int:
        logits = llama_cpp.llama_get_logits(llm.ctx)
        return int(np.argmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),))))

    tok = next_token()
    for _ in range(tokens - 1):
        llm.eval([tok])
        tok = next_token()
    t2 = time.perf_counter()
    return len(ids) / (t1 - t0), (tokens - 1) / (t2 - t1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--r1-1.5b", dest="r1", default="", help="types of the 1.5B-shaped model to add")
    ap.add_argument("--only-r1", action="store_true", help="skip SmolLM2 and Gemma")
    ap.add_argument("--repeat", type=int, default=0, help="copies of the passage in the prompt")
    args = ap.parse_args()
    paths = [] if args.only_r1 else [ASSETS / name for name in MODELS]
    if args.r1:
        r1 = Path.home() / ".cache/candor/r1-1.5b-shaped"
        subprocess.run([sys.executable, str(ROOT / "scripts/make_r1_1p5b_shaped.py"), "--out", str(r1),
                        "--types", args.r1], check=True)
        paths += [r1 / f"r1-1.5b-shaped-{t.lower()}.gguf" for t in args.r1.split(",")]
    print(f"threads {args.threads}, {args.tokens} generated tokens, median of {args.runs} runs\n")
    print("| model | prompt tokens | candor prefill tok/s | llama.cpp prefill tok/s | ratio | candor decode tok/s | llama.cpp decode tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        name = path.name
        repeat = args.repeat or (3 if name.startswith("r1-") else 1)
        prompt = PROMPT * repeat
        # About 57 tokens per copy; llama.cpp needs the whole prompt and the answer in its context.
        n_ctx = max(1024, 256 * ((60 * repeat + args.tokens) // 256 + 1))
        llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
                    verbose=False, logits_all=False)
        c, l = [], []
        for _ in range(args.runs):  # interleave, so drift hits both alike
            c.append(candor(path, args.tokens, args.threads, prompt))
            l.append(llamacpp(llm, args.tokens, prompt))
        cp, cd = statistics.median(x[0] for x in c), statistics.median(x[1] for x in c)
        lp, ld = statistics.median(x[0] for x in l), statistics.median(x[1] for x in l)
        print(f"| {name} | {c[0][2]} | {cp:.1f} | {lp:.1f} | {cp / lp:.2f} | {cd:.1f} | {ld:.1f} | {cd / ld:.2f} |")
        del llm


if __name__ == "__main__":
    main()
