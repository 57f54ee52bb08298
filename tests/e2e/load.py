"""A bounded load test: 32 concurrent streaming clients, each sending several chats.

Usage: python load.py BASE_URL MODEL API_KEY   (run by tests/e2e/run.sh; loopback only)

Every stream must end with `data: [DONE]`, carry a finish_reason and a usage chunk whose
completion_tokens equals the tokens asked for (ignore_eos), with no error anywhere. Stops by
itself: a fixed number of requests, each with a timeout.
"""

import json
import sys
import threading
import time

import http.client
import urllib.parse

BASE, MODEL, KEY = sys.argv[1], sys.argv[2], sys.argv[3]
CLIENTS, CHATS, TOKENS = 32, 3, 12
errors = []
done = []
lock = threading.Lock()


def client(i):
    url = urllib.parse.urlparse(BASE)
    for j in range(CHATS):
        body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": TOKENS, "ignore_eos": True, "temperature": 0.8, "seed": i * 10 + j,
                "messages": [{"role": "user", "content": f"Client {i}, chat {j}: tell me a fact."}]}
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
            conn.request("POST", url.path + "/chat/completions", body=json.dumps(body),
                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read().decode()
            conn.close()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}: {raw[:200]!r}")
            events = [line[6:] for line in raw.split("\n") if line.startswith("data: ")]
            if not raw.endswith("data: [DONE]\n\n"):
                raise RuntimeError(f"no [DONE] at the end: {raw[-100:]!r}")
            chunks = [json.loads(e) for e in events[:-1]]
            if any("error" in c for c in chunks):
                raise RuntimeError(f"error chunk: {chunks}")
            finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]
                      and c["choices"][0]["finish_reason"]]
            usage = chunks[-1].get("usage")
            if finish != ["length"] or not usage or usage["completion_tokens"] != TOKENS:
                raise RuntimeError(f"incomplete: finish {finish}, usage {usage}")
            with lock:
                done.append((i, j))
        except Exception as e:  # noqa: BLE001 - collect every failure
            with lock:
                errors.append(f"client {i} chat {j}: {e!r}")


t0 = time.time()
threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.time() - t0
for e in errors[:10]:
    print("FAIL", e)
ok = not errors and len(done) == CLIENTS * CHATS
print(f"{'ok  ' if ok else 'FAIL'} load: {len(done)}/{CLIENTS * CHATS} streams complete with [DONE], "
      f"{len(errors)} errors, {CLIENTS * CHATS * TOKENS / wall:.0f} tok/s over {wall:.1f} s")
sys.exit(0 if ok else 1)
