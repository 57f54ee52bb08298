#!/usr/bin/env python3
"""What structured output costs: decode tokens/s of streamed chats with and without a
`json_schema` response format, at 1 and 16 concurrent streams, against `candor serve`
(started here, release binary, SmolLM2 by default). Each round runs the plain and the
constrained batch back to back; the report gives each round's ratio and the median.

Both batches generate exactly --tokens tokens per stream (the plain one with
`ignore_eos`; the schema cannot be complete sooner), so they differ only by the masks.
The batch figure is the streams' tokens after their first over the batch's wall time from
its first token to its last.

  python3 benches/structured_bench.py --rounds 5
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--binary", default="target/release/candor")
ap.add_argument("--model", default=os.path.expanduser(
    "~/.cache/candor/assets/SmolLM2-135M-Instruct.Q4_1.gguf"))
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--tokens", type=int, default=128)
ap.add_argument("--clients", default="1,16")
args = ap.parse_args()

# Every token of the answer goes through the JSON grammar's structure (keys, enums,
# numbers, booleans), and no answer can be complete before --tokens: both runs generate
# exactly --tokens tokens (`ignore_eos` for the plain one), so the two batches do the same
# work but for the masks.
SCHEMA = {
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "minimum": 0, "maximum": 9999},
                    "tag": {"enum": ["alpha", "beta", "gamma"]},
                    "ok": {"type": "boolean"},
                },
                "required": ["id", "tag", "ok"],
                "additionalProperties": False,
            },
            "minItems": 500,
        },
    },
    "required": ["rows"],
    "additionalProperties": False,
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


port = free_port()
log = tempfile.NamedTemporaryFile(prefix="candor-structured-", suffix=".log", delete=False)
server = subprocess.Popen([args.binary, "serve", "--model", args.model, "--port", str(port),
                           "--ctx-size", "2048"], stdout=log, stderr=subprocess.STDOUT)
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.2)
time.sleep(1.0)  # the vocabulary index for structured output is built after loading


def stream(i, constrained, out):
    body = {"messages": [{"role": "user", "content": f"List {i + 500} rows of data as JSON."}],
            "max_tokens": args.tokens, "temperature": 0.8, "seed": i, "stream": True,
            "ignore_eos": True, "chat_template_kwargs": {"enable_thinking": False},
            "stream_options": {"include_usage": True}}
    if constrained:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "notes", "schema": SCHEMA}}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    first = last = None
    tokens = 0
    for line in r:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        elif chunk["choices"] and chunk["choices"][0]["delta"].get("content") is not None:
            now = time.time()
            first = first or now
            last = now
    out[i] = (first, last, tokens)


def batch(n, constrained):
    out = {}
    threads = [threading.Thread(target=stream, args=(i, constrained, out)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = min(v[0] for v in out.values())
    last = max(v[1] for v in out.values())
    tokens = sum(v[2] - 1 for v in out.values())
    mean_tokens = sum(v[2] for v in out.values()) / n
    assert mean_tokens == args.tokens, f"streams ended early: {mean_tokens} tokens on average"
    return tokens / (last - first), mean_tokens


results = {}
try:
    for n in [int(c) for c in args.clients.split(",")]:
        batch(n, True)  # warm-up
        ratios, plain, cons = [], [], []
        for _ in range(args.rounds):
            p, _ = batch(n, False)
            c, mean_tokens = batch(n, True)
            plain.append(p)
            cons.append(c)
            ratios.append(c / p)
        results[n] = {"plain_tok_s": round(statistics.median(plain), 1),
                      "json_schema_tok_s": round(statistics.median(cons), 1),
                      "ratio_median": round(statistics.median(ratios), 3),
                      "ratios": [round(r, 3) for r in ratios],
                      "tokens_per_stream": round(mean_tokens, 1)}
        print(n, "streams:", json.dumps(results[n]), flush=True)
finally:
    server.terminate()
    server.wait()
print(json.dumps(results, indent=1))
