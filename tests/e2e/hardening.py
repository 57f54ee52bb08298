#!/usr/bin/env python3
"""Issue 11's probes against the real binary, on loopback, the way each defect was found:
slow clients (headers a byte at a time, a body that stops), a few hundred silent sockets
against the connection cap, errors from every layer in OpenAI's shape, a request that can
never fit, /tokenize beside /health, and SIGTERM while a client holds a half-sent request
and a stream is in flight.

Usage: hardening.py BINARY MODEL   (starts its own servers on free ports)
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN, MODEL = sys.argv[1], sys.argv[2]
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(*flags):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="candor-hardening-", suffix=".log", delete=False)
    proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--port", str(port), *flags],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc, port, log.name
        except Exception:
            if proc.poll() is not None:
                sys.exit("server exited:\n" + open(log.name).read())
            time.sleep(0.2)
    sys.exit("server not healthy")


def request(port, method, path, body=None, key=None, raw=None, timeout=60):
    """(status, headers, parsed JSON body or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, headers, text = r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, dict(e.headers), e.read().decode()
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


def openai_error(v):
    return (isinstance(v, dict) and isinstance(v.get("error"), dict)
            and {"message", "type", "param", "code"} <= set(v["error"]))


def closed(sock):
    """True once the server has closed the socket (EOF or reset)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if r:
            return sock.recv(4096) == b""
        return False
    except OSError:
        return True


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


KEY = "k1"
proc, port, log = start("--api-key", "k1,k2", "--header-timeout", "2", "--body-timeout", "2",
                        "--max-connections", "16", "--max-running", "2", "--max-queue", "4",
                        "--body-limit", "65536", "--ctx-size", "256")
try:
    # 25 clients sending their headers a byte at a time: all closed by the header timer
    # (2 s; those beyond the connection cap wait their turn, then get their own 2 s).
    socks = []
    for _ in range(25):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        socks.append(s)
    t0 = time.time()
    alive = set(range(len(socks)))
    while alive and time.time() - t0 < 20:
        for i in list(alive):
            try:
                socks[i].send(b"a")
            except OSError:
                alive.discard(i)
                continue
            if closed(socks[i]):
                alive.discard(i)
        time.sleep(0.25)
    check("slow headers: 25 connections sending a byte at a time are closed", not alive,
          f"{len(alive)} still open after {time.time() - t0:.1f} s")
    for s in socks:
        s.close()

    # A body that stops arriving: 408 with OpenAI's body once --body-timeout passes.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"")
    s.settimeout(15)
    answer = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.1 408")
    try:
        ok = ok and openai_error(json.loads(body))
    except ValueError:
        ok = False
    check("a partial body gets 408 with OpenAI's error body, then the connection closes", ok,
          answer[:300])

    # A few hundred silent sockets cannot take the server's file descriptors: it holds
    # at most --max-connections of them; the rest wait in the kernel's backlog.
    base = open_fds(proc.pid)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    most = 0
    for _ in range(12):
        most = max(most, open_fds(proc.pid))
        time.sleep(0.25)
    check("300 silent sockets: the server holds at most --max-connections (16)",
          most - base <= 16, f"{most - base} more descriptors than before")
    for s in silent:
        s.close()
    status, _, _ = request(port, "GET", "/health", timeout=60)
    check("/health is served once the silent sockets are gone", status == 200, status)

    # Errors from every layer carry OpenAI's body.
    status, _, v = request(port, "GET", "/v1/chat/completions", key=KEY)
    check("GET /v1/chat/completions: 405 with OpenAI's body", status == 405 and openai_error(v), v)
    status, _, v = request(port, "DELETE", "/v1/completions", key=KEY)
    check("DELETE /v1/completions: 405 with OpenAI's body", status == 405 and openai_error(v), v)
    status, _, v = request(port, "GET", "/v1/models/%ff%fe", key=KEY)
    check("GET /v1/models/%ff%fe: OpenAI's body", status in (400, 404) and openai_error(v), v)
    status, _, v = request(port, "POST", "/v1/chat/completions", key=KEY, raw=b" " * 70000)
    check("a body over --body-limit (Content-Length): 413 with OpenAI's body",
          status == 413 and openai_error(v), v)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(80):
            s.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
    except OSError:
        pass
    s.settimeout(10)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        ok = head.startswith(b"HTTP/1.1 413") and openai_error(json.loads(body))
    except ValueError:
        ok = False
    check("a chunked body over --body-limit: 413 with OpenAI's body", ok, answer[:300])

    # A request that can never fit (7 sequences; 2 running + 4 waiting at most): 400.
    status, _, v = request(port, "POST", "/v1/completions", key=KEY,
                           body={"prompt": ["a"] * 7, "max_tokens": 1})
    check("7 prompts where 6 fit: 400 naming prompt",
          status == 400 and v["error"]["param"] == "prompt", v)
finally:
    proc.kill()
    proc.wait()

# A second server, with a long header timeout so that only shutdown can end a half-sent
# request, and the default body limit for /tokenize.
proc, port, log = start("--header-timeout", "120", "--ctx-size", "256")
try:
    # Two large /tokenize calls beside /health: /health answers while both still run.
    content = "The quick brown fox jumps over the lazy dog. " * 150_000
    done = []

    def tokenize():
        request(port, "POST", "/tokenize", body={"content": content, "with_pieces": True},
                timeout=300)
        done.append(time.time())

    workers = [threading.Thread(target=tokenize) for _ in range(2)]
    for w in workers:
        w.start()
    time.sleep(0.3)
    t0 = time.time()
    status, _, _ = request(port, "GET", "/health")
    health_done = time.time()
    for w in workers:
        w.join()
    check("/health answers while two 6.7 MB /tokenize calls run",
          status == 200 and len(done) == 2 and health_done < min(done),
          f"/health took {health_done - t0:.2f} s; tokenize ended {[round(d - t0, 2) for d in done]}")

    # SIGTERM while one client holds a half-sent request and a stream is in flight: the
    # stream finishes, the half-open connection is closed, the process exits 0.
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Ty")
    stream = socket.create_connection(("127.0.0.1", port))
    body = json.dumps({"messages": [{"role": "user", "content": "Count."}], "max_tokens": 40,
                       "ignore_eos": True, "stream": True}).encode()
    stream.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                   b"\r\n\r\n" + body)
    stream.settimeout(60)
    got = stream.recv(65536)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        while True:
            chunk = stream.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = None
    elapsed = time.time() - t0
    check("SIGTERM with a half-sent request: the stream in flight finishes",
          b"data: [DONE]" in got, got[-200:])
    check("SIGTERM with a half-sent request: exits 0 without waiting for that client",
          code == 0 and closed(half), f"exit {code} after {elapsed:.1f} s\n" + open(log).read()[-600:])
    half.close()
    stream.close()
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()

print(f"hardening: {len(failures)} failed")
sys.exit(1 if failures else 0)
