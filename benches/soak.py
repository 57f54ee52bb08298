#!/usr/bin/env python3
"""Soak test: mixed traffic against `candor serve` for a set time, then a report.

Starts the server itself (three API keys, so three clients for --max-per-client) and runs
client threads, each looping over a random mix: streamed and plain chats, streamed and
plain text completions, short and long prompts, streams the client abandons halfway,
bad requests (which must get a 4xx with OpenAI's error body), and /tokenize. Resident
memory of the server is sampled every few seconds.

Reports requests served, answers by kind, streams lost (a stream that neither ended with
`data: [DONE]` nor was abandoned by the client: must be 0), p50/p99 time to first token,
and the memory samples. Exits 1 when a stream was lost, an answer was a 5xx or not
OpenAI-shaped, or the server died.

  python3 benches/soak.py --duration 3600                 # release binary, SmolLM2
  python3 benches/soak.py --duration 45 --binary target/debug/candor --clients 4
"""
import argparse
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--binary", default="target/release/candor")
ap.add_argument("--model", default=os.path.expanduser(
    "~/.cache/candor/assets/SmolLM2-135M-Instruct.Q4_1.gguf"))
ap.add_argument("--duration", type=float, default=600, help="seconds of traffic")
ap.add_argument("--clients", type=int, default=8, help="client threads")
ap.add_argument("--sample-every", type=float, default=5, help="seconds between memory samples")
ap.add_argument("--json", help="also write the report here")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("server_args", nargs="*", help="more flags for `candor serve` (after --)")
args = ap.parse_args()

KEYS = ["soak-a", "soak-b", "soak-c"]
WORDS = ("river stone light paper garden window number music letter cloud bridge silver "
         "forest engine harbor market winter candle mirror valley").split()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


port = free_port()
log = tempfile.NamedTemporaryFile(prefix="candor-soak-", suffix=".log", delete=False)
server = subprocess.Popen(
    [args.binary, "serve", "--model", args.model, "--port", str(port), "--api-key", ",".join(KEYS),
     "--ctx-size", "2048", *args.server_args],
    stdout=log, stderr=subprocess.STDOUT)


def rss_mib():
    try:
        with open(f"/proc/{server.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    if server.poll() is not None:
        sys.exit("the server exited:\n" + open(log.name).read())
    time.sleep(0.2)
else:
    sys.exit("the server did not become healthy")

lock = threading.Lock()
counts = collections.Counter()
ttfts = []
lost = []
bad = []
deadline = time.time() + args.duration


def record(kind, ttft=None):
    with lock:
        counts[kind] += 1
        if ttft is not None:
            ttfts.append(ttft)


def prompt_text(rng, long):
    n = rng.randint(600, 1200) if long else rng.randint(3, 20)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def is_openai_error(body):
    try:
        e = json.loads(body)["error"]
        return all(k in e for k in ("message", "type", "param", "code"))
    except (ValueError, KeyError, TypeError):
        return False


def one(rng):
    key = rng.choice(KEYS)
    kind = rng.choices(
        ["chat", "chat_stream", "completion", "completion_stream", "abandon", "bad", "tokenize"],
        weights=[3, 5, 2, 2, 2, 2, 1])[0]
    long = rng.random() < 0.15
    text = prompt_text(rng, long)
    max_tokens = rng.randint(1, 48)
    if kind.startswith("chat") or kind == "abandon":
        path = "/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                "temperature": rng.choice([0, 0.7])}
    elif kind.startswith("completion"):
        path = "/v1/completions"
        body = {"prompt": text, "max_tokens": max_tokens, "n": rng.choice([1, 1, 2])}
    elif kind == "tokenize":
        path, body = "/tokenize", {"content": text, "with_pieces": rng.random() < 0.5}
    else:
        path = rng.choice(["/v1/chat/completions", "/v1/completions"])
        body = rng.choice([
            {"messages": "not a list"}, {"prompt": "x", "temperature": 9},
            {"messages": [{"role": "wizard", "content": "x"}]}, {"prompt": "x", "n": 1000},
            {"prompt": "x", "max_tokens": -3}, "a string body",
        ])
    stream = kind.endswith("stream") or kind == "abandon"
    if isinstance(body, dict) and stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.time()
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            data = resp.read()
            if resp.status in (429, 503):
                record(f"busy {resp.status}")
            elif kind == "bad" and 400 <= resp.status < 500 and is_openai_error(data):
                record("bad request refused")
            else:
                record(f"unexpected {resp.status}")
                with lock:
                    bad.append((kind, resp.status, data[:200]))
            return
        if not stream:
            data = resp.read()
            json.loads(data)
            record(kind, time.time() - t0 if kind != "tokenize" else None)
            return
        first = None
        events = 0
        stop_after = rng.randint(1, 4) if kind == "abandon" else None
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            if first is None:
                first = time.time() - t0
            payload = line[6:].strip()
            if payload == b"[DONE]":
                record(kind, first)
                return
            if b'"error"' in payload[:12]:
                record("stream error event")
                with lock:
                    bad.append((kind, "error event", payload[:200]))
                return
            events += 1
            if stop_after is not None and events >= stop_after:
                record("abandoned stream", first)
                return
        with lock:
            lost.append((kind, events))
    except (OSError, http.client.HTTPException, ValueError) as e:
        with lock:
            bad.append((kind, type(e).__name__, str(e)[:200]))
            counts["connection error"] += 1
    finally:
        conn.close()


def client(i):
    rng = random.Random(args.seed * 1000 + i)
    while time.time() < deadline and server.poll() is None:
        one(rng)


memory = []


def sampler():
    start = time.time()
    while time.time() < deadline and server.poll() is None:
        memory.append((round(time.time() - start, 1), rss_mib()))
        time.sleep(args.sample_every)


threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
threads.append(threading.Thread(target=sampler))
for t in threads:
    t.start()
for t in threads:
    t.join()
alive = server.poll() is None
memory.append((round(args.duration, 1), rss_mib()))
server.terminate()
try:
    code = server.wait(timeout=60)
except subprocess.TimeoutExpired:
    server.kill()
    code = None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None


mem = [m for _, m in memory if m is not None]
third = max(1, len(mem) // 3)
report = {
    "duration_s": args.duration,
    "clients": args.clients,
    "requests": sum(counts.values()),
    "served": sum(v for k, v in counts.items() if k in
                  ("chat", "chat_stream", "completion", "completion_stream", "tokenize",
                   "abandoned stream")),
    "answers": dict(sorted(counts.items())),
    "streams_lost": len(lost),
    "unexpected": len(bad),
    "ttft_p50_ms": round(pct(ttfts, 50) * 1000) if ttfts else None,
    "ttft_p99_ms": round(pct(ttfts, 99) * 1000) if ttfts else None,
    "rss_mib_first_third_max": round(max(mem[:third]), 1) if mem else None,
    "rss_mib_last_third_max": round(max(mem[-third:]), 1) if mem else None,
    "rss_mib_max": round(max(mem), 1) if mem else None,
    "rss_samples": memory,
    "server_alive_at_end": alive,
    "server_exit_code": code,
}
print(json.dumps({k: v for k, v in report.items() if k != "rss_samples"}, indent=1))
print("rss MiB every ~%gs: %s" % (args.sample_every, " ".join(
    f"{m:.0f}" for m in mem)))
for b in bad[:10]:
    print("unexpected:", b)
for item in lost[:10]:
    print("lost stream:", item)
if args.json:
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
ok = alive and code == 0 and not lost and not bad
print("soak:", "ok" if ok else "FAILED", "(server log: %s)" % log.name)
sys.exit(0 if ok else 1)
