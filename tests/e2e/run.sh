#!/usr/bin/env bash
# End-to-end tests: the real `candor serve` binary on a free loopback port with SmolLM2,
# driven by the official openai Python SDK, the official openai npm package, and curl
# (SSE framing checked byte for byte). Installs the clients itself (a venv in the cache,
# npm ci here). Run from the repository root after `cargo build`.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${CANDOR_CACHE:-$HOME/.cache/candor}"
BIN="${CANDOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/candor}"
MODEL="$CACHE/assets/SmolLM2-135M-Instruct.Q4_1.gguf"
KEY="e2e-key"

venv="$CACHE/e2e-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import openai" 2>/dev/null || "$venv/bin/pip" install --quiet --disable-pip-version-check "openai>=1.50"
(cd tests/e2e && npm ci --silent --no-audit --no-fund)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$(mktemp)"
"$BIN" serve --model "$MODEL" --port "$port" --served-model-name smollm2 --api-key "$KEY" --ctx-size 1024 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "server exited:"; cat "$log"; exit 1; fi
  sleep 0.2
done
base="http://127.0.0.1:$port/v1"

passed=0; failed=0
"$venv/bin/python" tests/e2e/openai_sdk.py "$base" smollm2 "$KEY" && passed=$((passed + 1)) || failed=$((failed + 1))
node tests/e2e/stream.mjs "$base" smollm2 "$KEY" && passed=$((passed + 1)) || failed=$((failed + 1))

# curl: a streaming chat, framing checked byte for byte: only `data: <one line>\n\n`
# events (keep-alive comments aside), chunks before `data: [DONE]\n\n` at the very end.
body="$(mktemp)"
curl -sS -N "$base/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"smollm2","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"stream":true}' >"$body"
if python3 - "$body" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"data: [DONE]\n\n"), raw[-40:]
events = [e for e in raw.split(b"\n\n") if e]
for e in events[:-1]:
    assert e.startswith(b"data: ") and b"\n" not in e, e
    chunk = json.loads(e[6:])
    assert chunk["object"] == "chat.completion.chunk", chunk
assert len(events) >= 3, events
print("ok   curl SSE framing")
PY
then passed=$((passed + 1)); else failed=$((failed + 1)); cat "$body"; fi
rm -f "$body"

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
