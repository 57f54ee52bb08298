#!/usr/bin/env python3
"""Correctness, then speed, of one candor binary on one device, printed as one table.

Made for an NVIDIA GPU machine without Rust or internet (benches/gpu/run.sh calls it with
the CUDA build of scripts/build-cuda.sh); it runs the same way on the CPU
(`--device cpu --shape tiny`) to check the script itself. Needs python3 and numpy (for the
random model of the speed part); everything else is the standard library, and candor is
reached only through its HTTP API.

Correctness (models/tests/data, the tiny random models of every family):
  logits   teacher-forced log-probabilities of the 12 reference tokens
           (/v1/completions, echo + logprobs, max_tokens 0) against transformers' F32
           logits: max |delta| <= 1e-4 in f32; in bf16 <= 1e-2 of the spread of the
           position's logits (max - min), or no worse than the CPU's bf16 path (rounding
           the weights to bf16 alone costs up to 1.2e-2 on the tiny qwen2 model).
  greedy   GGUF files: 32 greedy tokens on the device equal those on the CPU (the same
           binary with --device cpu), or the first difference is a near-tie (the CPU's two
           best log-probabilities there within 0.05); also SmolLM2 and Gemma 3 from
           $CANDOR_ASSETS when that folder is there.
  batched  8 different greedy requests at once give what each gives alone.
Speed (a random bf16 model of DeepSeek-R1-Distill-Qwen-1.5B's shape, made here with numpy,
3.55 GB, a byte-level tokenizer): batch-1 decode tokens/s, aggregate decode tokens/s with
8 and 64 concurrent streams, and prefill tokens/s of a 2,048-token prompt.

usage: gpu_check.py --bin CANDOR [--launcher with-cuda-libs.sh] [--device cuda]
                    [--shape r1-1.5b|tiny] [--only correctness|speed] [--work DIR]
"""
import argparse
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "models", "tests", "data")
FAMILIES = ["llama", "llama-tied", "qwen2", "qwen3", "gemma3", "gemma3-softcap"]
ROWS = []  # (part, check, model, measured, goal, verdict)


def row(part, check, model, measured, goal, verdict):
    ROWS.append((part, check, model, measured, goal, verdict))
    print(f"[gpu-check] {part} | {check} | {model} | {measured} | {goal} | {verdict}", flush=True)


# ---- safetensors and tokenizer files -------------------------------------------------------

def read_safetensors(path):
    """name -> (dtype, shape, raw bytes)"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = (meta["dtype"], meta["shape"], body[a:b])
    return out


def byte_level_tokenizer():
    """GPT-2's byte-to-character table as a BPE vocabulary without merges: id = byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    vocab = {chr(c): b for b, c in sorted(zip(printable, chars))}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    return {
        "version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": byte_level,
        "post_processor": None, "decoder": byte_level,
        "model": {"type": "BPE", "vocab": vocab, "merges": [], "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False},
    }


def tiny_model(family, work):
    """A copy of a tiny reference model's folder with a byte-level tokenizer."""
    dst = os.path.join(work, "tiny", family)
    if not os.path.exists(os.path.join(dst, "tokenizer.json")):
        os.makedirs(dst, exist_ok=True)
        src = os.path.join(DATA, family)
        for name in os.listdir(src):
            if name.endswith(".json") or (name.startswith("model") and name.endswith(".safetensors")):
                shutil.copy(os.path.join(src, name), dst)
        with open(os.path.join(dst, "tokenizer.json"), "w") as f:
            json.dump(byte_level_tokenizer(), f)
    return dst


# ---- the server ----------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`candor serve` on a free port, stopped on exit; its log kept under the work dir."""

    def __init__(self, args, model, device, extra=(), timeout=240):
        self.port = free_port()
        self.log_path = os.path.join(args.work, "logs", f"{os.path.basename(model)}-{device}-{self.port}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        # The launcher on the CPU too: a CUDA build needs the CUDA libraries to start at all.
        cmd = ([args.launcher] if args.launcher else []) + [
            args.bin, "serve", "--model", model, "--port", str(self.port), "--device", device,
            "--served-model-name", "m", "--max-queue", "256", *extra]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"server not healthy in {timeout} s: {self.tail()}")
            time.sleep(0.2)
        self.load_s = time.time() - t0

    def tail(self):
        """The server's error line, else its last lines."""
        self.log.flush()
        with open(self.log_path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("[cuda-libs]")]
        errors = [ln for ln in lines if ln.startswith("error") or "ERROR" in ln]
        return " / ".join(errors[-2:] or lines[-3:])

    def post(self, path, body, timeout=300):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path}: HTTP {e.code}: {e.read()[:300]!r}") from None

    def stream(self, body, timeout=600):
        """A streamed completion: (seconds to the first token, seconds to the end, tokens)."""
        body = dict(body, stream=True, stream_options={"include_usage": True})
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/completions",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        first, tokens = None, 0
        with urllib.request.urlopen(req, timeout=timeout) as r:
            for line in r:
                line = line.strip()
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("choices") and first is None:
                    first = time.perf_counter()
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        end = time.perf_counter()
        return (first or end) - t0, end - t0, tokens

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def greedy(server, prompt, n, top=2):
    """n greedy tokens after `prompt` (token ids) with each step's top log-probabilities."""
    r = server.post("/v1/completions", {"model": "m", "prompt": prompt, "max_tokens": n, "temperature": 0,
                                        "ignore_eos": True, "logprobs": top})
    lp = r["choices"][0]["logprobs"]
    return lp["tokens"], lp["top_logprobs"]


# ---- correctness ---------------------------------------------------------------------------

def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def check_logits(args):
    for family in FAMILIES:
        model = tiny_model(family, args.work)
        ref = read_safetensors(os.path.join(DATA, family, "reference.safetensors"))
        ids = list(struct.unpack(f"<{len(ref['input_ids'][2]) // 8}q", ref["input_ids"][2]))
        rows, vocab = ref["logits"][1]
        flat = struct.unpack(f"<{rows * vocab}f", ref["logits"][2])
        logits = [flat[i * vocab:(i + 1) * vocab] for i in range(rows - 1)]
        want = [log_softmax(r)[ids[i + 1]] for i, r in enumerate(logits)]
        # bf16: relative to the spread of the row's logits (max - min), what a log-prob's
        # error compares with once the weights themselves are rounded to 8 bits.
        spread = [max(r) - min(r) for r in logits]
        def measure(device, dtype):
            with Server(args, model, device, ["--dtype", dtype]) as s:
                r = s.post("/v1/completions", {"model": "m", "prompt": ids, "max_tokens": 0, "echo": True,
                                               "logprobs": 1, "temperature": 0})
            got = r["choices"][0]["logprobs"]["token_logprobs"][1:]
            if dtype == "bf16":
                return max(abs(g - w) / sp for g, w, sp in zip(got, want, spread))
            return max(abs(g - w) for g, w in zip(got, want))

        for dtype, tol in (("f32", 1e-4), ("bf16", 1e-2)):
            check = f"logprobs vs transformers F32 ({dtype})"
            try:
                diff = measure(args.device, dtype)
                what = "max |Δ| / logit spread" if dtype == "bf16" else "max |Δ|"
                measured, verdict = f"{what} {diff:.1e}", "pass" if diff <= tol else "FAIL"
                if dtype == "bf16" and diff > tol and args.device != "cpu":
                    # Rounding the weights to bf16 alone can cost this much on a tiny random
                    # model: the CPU's bf16 path is the baseline then.
                    cpu = measure("cpu", dtype)
                    measured += f" (CPU bf16: {cpu:.1e})"
                    verdict = "pass (as the CPU)" if diff <= 1.05 * cpu else "FAIL"
                row("correctness", check, family, measured, f"≤ {tol:g}", verdict)
            except Exception as e:  # noqa: BLE001 - one failure must not hide the others
                row("correctness", check, family, str(e)[:160], "", "ERROR")


def gguf_files(args):
    files = []
    for family in FAMILIES:
        for q in ("f32", "q8_0"):
            p = os.path.join(DATA, family, f"model-{q}.gguf")
            if os.path.exists(p):
                files.append((f"{family} {q.upper()}", p, list(range(3, 15))))
    assets = os.environ.get("CANDOR_ASSETS", os.path.expanduser("~/.cache/candor/assets"))
    for name, rel in (("SmolLM2-135M Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                      ("Gemma 3 270M Q4_K_M", "gemma-3-270m-q4_k_m.gguf")):
        p = os.path.join(assets, rel)
        if os.path.exists(p):
            files.append((name, p, [1, 504, 3458, 314, 2683, 282, 4354, 314, 253, 1205, 30]))
        else:
            row("correctness", "greedy 32 tokens vs CPU", name, f"not run: no {p}", "", "skipped")
    return files


def check_greedy(args):
    for name, path, prompt in gguf_files(args):
        try:
            with Server(args, path, "cpu") as s:
                cpu, cpu_top = greedy(s, prompt, 32)
            with Server(args, path, args.device) as s:
                dev, _ = greedy(s, prompt, 32)
            diff = next((i for i, (a, b) in enumerate(zip(cpu, dev)) if a != b), None)
            if diff is None:
                row("correctness", f"greedy 32 tokens, {args.device} vs CPU", name, "32/32 equal", "equal", "pass")
            else:
                best = sorted(cpu_top[diff].values(), reverse=True)
                margin = best[0] - best[1] if len(best) > 1 else float("inf")
                tie = margin < 0.05
                row("correctness", f"greedy 32 tokens, {args.device} vs CPU", name,
                    f"{diff}/32 equal; then CPU's top-2 margin {margin:.3f}", "equal or near-tie",
                    "pass (near-tie)" if tie else "FAIL")
        except Exception as e:  # noqa: BLE001
            row("correctness", f"greedy 32 tokens, {args.device} vs CPU", name, str(e)[:160], "", "ERROR")


def check_batched(args):
    cases = [("llama safetensors f32", tiny_model("llama", args.work), ["--dtype", "f32"]),
             ("qwen3 safetensors bf16", tiny_model("qwen3", args.work), ["--dtype", "bf16"])]
    q8 = os.path.join(DATA, "gemma3", "model-q8_0.gguf")
    if os.path.exists(q8):
        cases.append(("gemma3 Q8_0", q8, []))
    prompts = [[(j * 37 + 11 * i) % 250 + 3 for j in range(5 + 3 * i)] for i in range(8)]
    for name, model, extra in cases:
        try:
            with Server(args, model, args.device, extra) as s:
                alone = [greedy(s, p, 16, top=1)[0] for p in prompts]
                together = [None] * len(prompts)

                def run(i):
                    together[i] = greedy(s, prompts[i], 16, top=1)[0]

                threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            same = sum(a == b for a, b in zip(alone, together))
            row("correctness", "8 requests batched vs alone", name, f"{same}/8 equal", "8/8",
                "pass" if same == len(prompts) else "FAIL")
        except Exception as e:  # noqa: BLE001
            row("correctness", "8 requests batched vs alone", name, str(e)[:160], "", "ERROR")


# ---- speed ---------------------------------------------------------------------------------

SHAPES = {
    # DeepSeek-R1-Distill-Qwen-1.5B
    "r1-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                    num_key_value_heads=2, vocab_size=151936),
    # a few MB, to check this script on a CPU
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
}


def random_qwen2(shape, work):
    """A random bf16 Qwen2 checkpoint of `shape`: config.json, model.safetensors, tokenizer.json."""
    import numpy as np

    dims = SHAPES[shape]
    dst = os.path.join(work, f"random-{shape}-bf16")
    if os.path.exists(os.path.join(dst, "tokenizer.json")):
        return dst
    os.makedirs(dst, exist_ok=True)
    h, f, v = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    d = h // dims["num_attention_heads"]
    kv = dims["num_key_value_heads"] * d
    config = dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_act="silu",
                  max_position_embeddings=131072, rms_norm_eps=1e-6, rope_theta=10000.0,
                  tie_word_embeddings=False, use_sliding_window=False, torch_dtype="bfloat16",
                  bos_token_id=0, eos_token_id=1, **dims)
    tensors = [("model.embed_tokens.weight", (v, h), 0.02), ("model.norm.weight", (h,), None),
               ("lm_head.weight", (v, h), 0.02)]
    for i in range(dims["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", (h,), None), (p + "post_attention_layernorm.weight", (h,), None),
                    (p + "self_attn.q_proj.weight", (h, h), 0.02), (p + "self_attn.q_proj.bias", (h,), 0.02),
                    (p + "self_attn.k_proj.weight", (kv, h), 0.02), (p + "self_attn.k_proj.bias", (kv,), 0.02),
                    (p + "self_attn.v_proj.weight", (kv, h), 0.02), (p + "self_attn.v_proj.bias", (kv,), 0.02),
                    (p + "self_attn.o_proj.weight", (h, h), 0.02), (p + "mlp.gate_proj.weight", (f, h), 0.02),
                    (p + "mlp.up_proj.weight", (f, h), 0.02), (p + "mlp.down_proj.weight", (h, f), 0.02)]
    header, offset = {}, 0
    for name, shp, _ in tensors:
        n = 2 * math.prod(shp)
        header[name] = {"dtype": "BF16", "shape": list(shp), "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    rng = np.random.default_rng(0)
    with open(os.path.join(dst, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(head)) + head)
        for name, shp, std in tensors:
            if std is None:  # norms: about 1
                x = 1.0 + 0.02 * rng.standard_normal(shp, dtype=np.float32)
            else:  # uniform with the given standard deviation
                x = (rng.random(shp, dtype=np.float32) - 0.5) * np.float32(std * math.sqrt(12))
            out.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    with open(os.path.join(dst, "config.json"), "w") as fh:
        json.dump(config, fh)
    with open(os.path.join(dst, "tokenizer.json"), "w") as fh:
        json.dump(byte_level_tokenizer(), fh)
    return dst


def speed(args):
    t0 = time.time()
    try:
        model = random_qwen2(args.shape, args.work)
    except Exception as e:  # noqa: BLE001
        row("speed", "random model", args.shape, str(e)[:160], "", "ERROR")
        return
    size = os.path.getsize(os.path.join(model, "model.safetensors"))
    print(f"[gpu-check] random {args.shape} model: {size / 1e9:.2f} GB in {time.time() - t0:.0f} s", flush=True)
    goals = {"batch 1": 840, "8 streams": None, "64 streams": 20000, "prefill": 100000}
    reference = {"batch 1": 16, "8 streams": 124, "64 streams": 857, "prefill": 93000}
    # One pass may hold a whole 2,048-token prompt, and 64 sequences of 2,048 + 256 tokens.
    extra = ["--dtype", "bf16", "--max-running", "64", "--max-batch-tokens", "2048", "--ctx-size", "4096"]

    def verdict(name, value):
        goal = goals[name]
        note = f"PyTorch eager {reference[name]:,}" + (f"; goal ≥ {goal:,}" if goal else "")
        return note, ("" if goal is None else ("pass" if value >= goal else "below goal"))

    try:
        with Server(args, model, args.device, extra) as s:
            print(f"[gpu-check] loaded in {s.load_s:.1f} s", flush=True)
            prompt = [(j * 7 + 3) % 250 + 3 for j in range(16)]
            s.stream({"model": "m", "prompt": prompt, "max_tokens": 8, "ignore_eos": True})  # warm-up
            ttft, total, n = s.stream({"model": "m", "prompt": prompt, "max_tokens": 256, "ignore_eos": True})
            tps = (n - 1) / max(total - ttft, 1e-9)
            note, v = verdict("batch 1", tps)
            row("speed", "decode, batch 1 (tok/s)", args.shape, f"{tps:,.0f}", note, v)
            for streams, name in ((8, "8 streams"), (64, "64 streams")):
                done = []

                def client(i):
                    p = [(j * 11 + 5 * i) % 250 + 3 for j in range(16)]
                    done.append(s.stream({"model": "m", "prompt": p, "max_tokens": 128, "ignore_eos": True})[2])

                threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
                start = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                agg = sum(done) / (time.perf_counter() - start)
                note, v = verdict(name, agg)
                row("speed", f"decode, {streams} concurrent streams (tok/s, all streams)", args.shape, f"{agg:,.0f}",
                    note, v)
            best = 0.0
            for k in range(3):  # the first compiles what a long prompt needs
                p = [(j * 13 + 7 * k) % 250 + 3 for j in range(2048)]
                t = time.perf_counter()
                s.post("/v1/completions", {"model": "m", "prompt": p, "max_tokens": 1})
                best = max(best, 2048 / (time.perf_counter() - t))
            note, v = verdict("prefill", best)
            row("speed", "prefill, 2,048-token prompt (tok/s, best of 3)", args.shape, f"{best:,.0f}", note, v)
    except Exception as e:  # noqa: BLE001
        row("speed", "server", args.shape, str(e)[:200], "", "ERROR")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the candor binary")
    ap.add_argument("--launcher", help="run the binary through this (with-cuda-libs.sh) on the device")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shape", default="r1-1.5b", choices=sorted(SHAPES))
    ap.add_argument("--only", choices=["correctness", "speed"])
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "candor-gpu-check"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    started = time.time()
    if args.only != "speed":
        check_logits(args)
        check_greedy(args)
        check_batched(args)
    if args.only != "correctness":
        speed(args)
    print(f"\n{args.device}: {len(ROWS)} rows in {time.time() - started:.0f} s (server logs in {args.work}/logs)\n")
    print("| part | check | model | measured | goal / reference | verdict |")
    print("|---|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(str(x) for x in r) + " |")
    return 1 if any(r[5] in ("FAIL", "ERROR") for r in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
