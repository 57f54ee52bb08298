#!/usr/bin/env bash
# End-to-end tests: the real `candor serve` binary on free loopback ports, driven by the
# official openai Python SDK, the official openai npm package, and curl (SSE framing
# checked byte for byte):
#   - SmolLM2 (the API itself; 32 concurrent streaming clients), then SIGTERM during a
#     stream (clean end, exit 0);
#   - two tiny reasoning models (the reasoning trace, tests/e2e/reasoning_sdk.py);
#   - structured output and tool calls through both SDKs (structured_sdk.py, structured.mjs);
#   - the Responses API through both SDKs (responses_sdk.py, responses.mjs);
#   - hostile and slow clients (tests/e2e/hardening.py) and a 45 s soak (benches/soak.py);
#   - `candor bench` (its JSON report);
#   - the chat page in headless Chromium (tests/e2e/webui.mjs; screenshots into
#     target/webui-screenshots).
# Installs the clients itself (a venv in the cache, npm ci here, Debian's chromium when
# /usr/bin/chromium is missing). Run from the repository root after `cargo build` and
# scripts/fetch-test-assets.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${CANDOR_CACHE:-$HOME/.cache/candor}"
BIN="${CANDOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/candor}"
ASSETS="$CACHE/assets"
KEY="e2e-key"

venv="$CACHE/e2e-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# The Responses API's reasoning_text events need openai >= 1.99 (a cached venv may be older).
"$venv/bin/python" -c "from openai.types.responses import ResponseReasoningTextDeltaEvent" 2>/dev/null \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "openai>=1.99"
(cd tests/e2e && npm ci --silent --no-audit --no-fund)
# The browser the page is tested in: Debian's, driven by playwright-core (which downloads
# no browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

logs="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server NAME PORT ARGS...: starts `candor serve` in the background (pid in $server).
start_server() {
  local name=$1 port=$2; shift 2
  "$BIN" serve --port "$port" "$@" >"$logs/$name.log" 2>&1 &
  server=$!
  pids+=("$server")
}

wait_healthy() {
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name server exited:"; cat "$logs/$name.log"; exit 1; fi
    sleep 0.2
  done
  echo "$name server not healthy after 120 s"; cat "$logs/$name.log"; exit 1
}

port=$(free_port)
start_server smollm2 "$port" --model "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --served-model-name smollm2 --api-key "$KEY" --ctx-size 1024
smol=$server
r1_port=$(free_port)
start_server r1 "$r1_port" --model "$ASSETS/tiny-qwen2-r1"
r1=$server
q3_port=$(free_port)
start_server q3 "$q3_port" --model "$ASSETS/tiny-qwen3-think"
q3=$server
wait_healthy smollm2 "$port" "$smol"
wait_healthy r1 "$r1_port" "$r1"
wait_healthy q3 "$q3_port" "$q3"
base="http://127.0.0.1:$port/v1"

passed=0; failed=0
"$venv/bin/python" tests/e2e/openai_sdk.py "$base" smollm2 "$KEY" && passed=$((passed + 1)) || failed=$((failed + 1))
node tests/e2e/stream.mjs "$base" smollm2 "$KEY" && passed=$((passed + 1)) || failed=$((failed + 1))
"$venv/bin/python" tests/e2e/load.py "$base" smollm2 "$KEY" && passed=$((passed + 1)) || failed=$((failed + 1))
"$venv/bin/python" tests/e2e/reasoning_sdk.py "http://127.0.0.1:$r1_port/v1" "http://127.0.0.1:$q3_port/v1" \
  && passed=$((passed + 1)) || failed=$((failed + 1))

# The chat page in a real browser: the thinking model without a key, SmolLM2 with one.
node tests/e2e/webui.mjs "http://127.0.0.1:$r1_port/" "http://127.0.0.1:$port/" "$KEY" \
  "${CARGO_TARGET_DIR:-target}/webui-screenshots" && passed=$((passed + 1)) || failed=$((failed + 1))

# Structured output and tool calls through both SDKs, on the tiny Qwen3.
"$venv/bin/python" tests/e2e/structured_sdk.py "http://127.0.0.1:$q3_port/v1" tiny-qwen3-think \
  && passed=$((passed + 1)) || failed=$((failed + 1))
node tests/e2e/structured.mjs "http://127.0.0.1:$q3_port/v1" tiny-qwen3-think \
  && passed=$((passed + 1)) || failed=$((failed + 1))

# The Responses API (/v1/responses) through both SDKs, on the tiny Qwen3.
"$venv/bin/python" tests/e2e/responses_sdk.py "http://127.0.0.1:$q3_port/v1" tiny-qwen3-think \
  && passed=$((passed + 1)) || failed=$((failed + 1))
node tests/e2e/responses.mjs "http://127.0.0.1:$q3_port/v1" tiny-qwen3-think \
  && passed=$((passed + 1)) || failed=$((failed + 1))

# Issue 11's probes (slow and silent clients, the connection cap, errors of every layer,
# SIGTERM with a half-sent request) on their own servers of the tiny model.
"$venv/bin/python" tests/e2e/hardening.py "$BIN" "$ASSETS/tiny-qwen2-r1" \
  && passed=$((passed + 1)) || failed=$((failed + 1))

# curl: a streaming chat, framing checked byte for byte: only `data: <one line>\n\n`
# events (keep-alive comments aside), chunks before `data: [DONE]\n\n` at the very end.
check_sse() {
  python3 - "$1" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"data: [DONE]\n\n"), raw[-40:]
events = [e for e in raw.split(b"\n\n") if e]
for e in events[:-1]:
    assert e.startswith(b"data: ") and b"\n" not in e, e
    chunk = json.loads(e[6:])
    assert chunk["object"] == "chat.completion.chunk", chunk
assert len(events) >= 3, events
PY
}
body="$logs/body"
curl -sS -N "$base/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"smollm2","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"stream":true}' >"$body"
if check_sse "$body"; then echo "ok   curl SSE framing"; passed=$((passed + 1)); else failed=$((failed + 1)); cat "$body"; fi

# curl: a streamed response of the Responses API, framed as OpenAI's: `event: TYPE` and
# `data: {"type": TYPE, "sequence_number": N, ...}` pairs numbered from 0, created first,
# completed or incomplete last, no [DONE].
curl -sS -N "http://127.0.0.1:$q3_port/v1/responses" -H 'Content-Type: application/json' \
  -d '{"input":"Hi","max_output_tokens":6,"temperature":0,"stream":true}' >"$body"
if python3 - "$body" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
events = [e for e in raw.split(b"\n\n") if e and not e.startswith(b":")]
types = []
for n, e in enumerate(events):
    name, data = e.split(b"\n")
    assert name.startswith(b"event: ") and data.startswith(b"data: "), e
    payload = json.loads(data[6:])
    assert payload["type"] == name[7:].decode() and payload["sequence_number"] == n, e
    types.append(payload["type"])
assert types[0] == "response.created" and types[-1] in ("response.completed", "response.incomplete"), types
assert b"[DONE]" not in raw
PY
then echo "ok   curl: Responses SSE framing (event: lines, sequence numbers)"; passed=$((passed + 1)); else failed=$((failed + 1)); cat "$body"; fi

# SIGTERM while a stream is in flight: the stream still ends properly (finish chunk and
# [DONE]), new connections are refused, and the server exits 0.
curl -sS -N "$base/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"smollm2","messages":[{"role":"user","content":"Count to a hundred."}],"max_tokens":60,"ignore_eos":true,"temperature":0,"stream":true}' >"$body" &
client=$!
for _ in $(seq 1 200); do [ -s "$body" ] && break; sleep 0.05; done
kill -TERM "$smol"
sleep 0.5
refused=0
curl -fsS -m 5 "http://127.0.0.1:$port/health" >/dev/null 2>&1 || refused=1
wait "$client" || true
code=0; wait "$smol" || code=$?
if [ -s "$body" ] && check_sse "$body" && grep -q '"finish_reason":"length"' "$body" && [ "$code" -eq 0 ] && [ "$refused" -eq 1 ]; then
  echo "ok   SIGTERM during a stream: stream completed, new connections refused, exit 0"; passed=$((passed + 1))
else
  echo "FAIL SIGTERM during a stream (exit $code, refused $refused)"; tail -c 300 "$body"; tail -5 "$logs/smollm2.log"; failed=$((failed + 1))
fi

# A short soak: mixed traffic (streams, cancelled streams, bad requests, three API keys)
# for 45 s; no stream may be lost and nothing may answer 5xx. benches/soak.py runs it
# for as long as asked (20 minutes in benches/RESULTS.md).
if python3 benches/soak.py --binary "$BIN" --model "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --duration 45 --clients 4 --sample-every 5 >"$logs/soak.txt" 2>&1; then
  echo "ok   soak: 45 s of mixed traffic, no stream lost"; passed=$((passed + 1))
else
  echo "FAIL soak"; cat "$logs/soak.txt"; failed=$((failed + 1))
fi

# `candor bench` runs and says what it measured, as JSON.
if "$BIN" bench --model "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" -p 24 -n 6 -r 2 -t 1 --json \
  >"$logs/bench.json" 2>"$logs/bench.log" && python3 - "$logs/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["threads"] == 1 and r["prompt_tokens"] == 24 and r["generate_tokens"] == 6, r
assert len(r["runs"]) == 2 and r["pp"]["mean"] > 0 and r["tg"]["mean"] > 0, r
assert r["peak_rss_bytes"] > 0 and r["load_seconds"] > 0, r
PY
then
  echo "ok   candor bench: pp and tg tokens/s, load time and peak RSS as JSON"; passed=$((passed + 1))
else
  echo "FAIL candor bench"; cat "$logs/bench.json" "$logs/bench.log"; failed=$((failed + 1))
fi

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
