#!/usr/bin/env python3
"""Greedy continuations of real GGUF models by llama.cpp, for tests/real_models.rs.

For SmolLM2-135M-Instruct (Q4_1) and Gemma 3 270M (Q4_K_M), and several fixed prompts,
raw and chat-templated, records the prompt token ids handed to llama.cpp and the ids of
its greedy continuation (EOS ignored), plus at each step llama.cpp's best logits, so that
a test can measure how far the two engines' logits are apart and tell a real divergence
from a near-tie.

Chat prompts are rendered with Jinja like transformers does (trim_blocks,
lstrip_blocks) from the template candor uses for the model (SmolLM2's from the GGUF,
Gemma's built-in src/prompt/template/gemma3.jinja), then tokenized by llama.cpp with
special-token parsing. The Rust test asserts that candor renders and tokenizes to the
very same ids before comparing continuations, so both engines see identical input.

Run (after `bash scripts/fetch-test-assets.sh`), with llama-cpp-python installed:
    python3 -m venv ~/.cache/candor/llama-venv
    ~/.cache/candor/llama-venv/bin/pip install llama-cpp-python==0.3.36 numpy jinja2
    ~/.cache/candor/llama-venv/bin/python scripts/gen_llamacpp_reference.py
Writes tests/fixtures/llamacpp/<model>.json. Deterministic: rerunning gives the same file.
"""

import json
import os
from pathlib import Path

import jinja2
import numpy as np
from llama_cpp import Llama, llama_cpp

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("CANDOR_ASSETS", Path.home() / ".cache/candor/assets"))
OUT = ROOT / "tests/fixtures/llamacpp"
STEPS = 40

RAW_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village by the sea,",
    "Les plus beaux paysages de la Provence sont",
]
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Write a haiku about the sea."},
    ],
    [
        {"role": "user", "content": "Hi! Can you help me with math?"},
        {"role": "assistant", "content": "Of course. What do you need?"},
        {"role": "user", "content": "What is 12 times 7?"},
    ],
]

MODELS = {
    "smollm2": {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "template": None},
    "gemma3": {"file": "gemma-3-270m-q4_k_m.gguf", "template": ROOT / "src/prompt/template/gemma3.jinja"},
}


def render(template: str, messages, bos: str, eos: str) -> str:
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )


TOP = 8


def greedy(llm: Llama, ids: list[int]) -> tuple[list[int], list[list[list[float]]]]:
    """Greedy tokens, and at each step llama.cpp's TOP best (id, logit) pairs."""
    llm.reset()
    llm.eval(ids)
    out, tops = [], []
    for _ in range(STEPS):
        logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        best = np.argsort(-logits, kind="stable")[:TOP]
        tok = int(best[0])
        out.append(tok)
        tops.append([[int(i), round(float(logits[i]), 5)] for i in best])
        llm.eval([tok])
    return out, tops


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in MODELS.items():
        path = ASSETS / spec["file"]
        llm = Llama(
            model_path=str(path),
            n_ctx=512,
            n_threads=2,
            seed=0,
            verbose=False,
            logits_all=True,
            # F32 KV cache: keep llama.cpp's own rounding out of the comparison.
            type_k=llama_cpp.GGML_TYPE_F32,
            type_v=llama_cpp.GGML_TYPE_F32,
        )
        meta = llm.metadata
        bos = llm.detokenize([llm.token_bos()], special=True).decode()
        eos = llm.detokenize([llm.token_eos()], special=True).decode()
        template = spec["template"].read_text() if spec["template"] else meta["tokenizer.chat_template"]
        cases = []
        for text in RAW_PROMPTS:
            ids = llm.tokenize(text.encode(), add_bos=True, special=False)
            cases.append({"kind": "raw", "prompt": text, "prompt_ids": ids})
        for messages in CHATS:
            text = render(template, messages, bos, eos)
            ids = llm.tokenize(text.encode(), add_bos=False, special=True)
            cases.append({"kind": "chat", "messages": messages, "rendered": text, "prompt_ids": ids})
        for case in cases:
            case["continuation"], case["top_logits"] = greedy(llm, case["prompt_ids"])
            case["continuation_text"] = llm.detokenize(case["continuation"]).decode("utf-8", "replace")
            print(f"{name} {case['kind']}: {case['continuation_text'][:70]!r}")
        (OUT / f"{name}.json").write_text(
            json.dumps(
                {
                    "model": spec["file"],
                    "engine": "llama-cpp-python " + __import__("llama_cpp").__version__,
                    "steps": STEPS,
                    "cases": cases,
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
