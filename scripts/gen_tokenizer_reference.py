#!/usr/bin/env python3
"""Writes llama.cpp's token ids for candor's tokenizer tests.

For each GGUF test model, tokenizes the texts in tests/fixtures/tokenizer/texts.json plus a
few chat-template strings with llama.cpp (through llama-cpp-python, special tokens parsed as
for a rendered chat template) and writes tests/fixtures/tokenizer/<model>.json, which
tests/tokenizer.rs compares candor's ids against. The output is generated: rerun this script
instead of editing it.

    bash scripts/fetch-test-assets.sh
    ~/.cache/candor/llama-venv/bin/python scripts/gen_tokenizer_reference.py

Assets are read from $CANDOR_ASSETS (default ~/.cache/candor/assets).
"""

import json
import os
import sys
from pathlib import Path

import llama_cpp

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"
ASSETS = Path(os.environ.get("CANDOR_ASSETS", Path.home() / ".cache" / "candor" / "assets"))

# Per model: the GGUF file, and chat-template text whose special tokens must become single ids.
MODELS = {
    "smollm2": (
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        [
            "<|im_start|>user\nHi<|im_end|>\n",
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
            "<|im_start|>assistant\nSure!<|im_end|><|endoftext|>",
            "text before<|im_end|>text after <|im_start|> spaced",
        ],
    ),
    "gemma3": (
        "gemma-3-270m-q4_k_m.gguf",
        [
            "<start_of_turn>user\nHi<end_of_turn>\n",
            "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
            "<start_of_turn>model\nSure!<end_of_turn><eos>",
            "text before<end_of_turn>text after <start_of_turn> spaced",
            "<b>bold</b> and <h1>title</h1> with <code>x</code>",
        ],
    ),
}


def tokenize(llm, text, add_bos):
    return llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)


def main():
    texts = json.loads((FIXTURES / "texts.json").read_text(encoding="utf-8"))["texts"]
    for name, (file, chat) in MODELS.items():
        path = ASSETS / file
        if not path.is_file():
            sys.exit(f"missing {path}: run `bash scripts/fetch-test-assets.sh` first")
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        cases = [(text, False) for text in texts + chat]
        # With add_bos, llama.cpp adds BOS only where the model asks for it (Gemma, not SmolLM2).
        cases += [(text, True) for text in texts[:2] + chat]
        lines = [
            json.dumps({"text": text, "add_bos": add_bos, "ids": tokenize(llm, text, add_bos)},
                       ensure_ascii=False)
            for text, add_bos in cases
        ]
        header = {
            "generated_by": "scripts/gen_tokenizer_reference.py",
            "llama_cpp_python": llama_cpp.__version__,
            "model": file,
        }
        head = json.dumps(header, ensure_ascii=False)[1:-1]
        out = "{" + head + ',\n"cases": [\n' + ",\n".join(lines) + "\n]}\n"
        (FIXTURES / f"{name}.json").write_text(out, encoding="utf-8")
        print(f"wrote {FIXTURES / (name + '.json')} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
