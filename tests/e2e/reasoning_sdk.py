"""The reasoning trace end to end with the official `openai` Python SDK.

Usage: python reasoning_sdk.py R1_BASE_URL QWEN3_BASE_URL   (run by tests/e2e/run.sh)

Two candor servers on tiny random-weight models with the real Qwen3 tokenizer
(scripts/make_tiny_reasoning_models.py): `tiny-qwen2-r1`, whose DeepSeek-R1-style template
opens <think> in the prompt, and `tiny-qwen3-think` with Qwen3's own template. Random weights
produce arbitrary words: the checks are about which field the text lands in, the counts and
the budgets. The SDK exposes fields it does not know (reasoning_content, reasoning) through
the message and delta objects.
"""

import sys

import openai

from checks import check, report

R1_BASE, Q3_BASE = sys.argv[1], sys.argv[2]
r1 = openai.OpenAI(base_url=R1_BASE, api_key="unused")
q3 = openai.OpenAI(base_url=Q3_BASE, api_key="unused")
R1, Q3 = "tiny-qwen2-r1", "tiny-qwen3-think"
MSGS = [{"role": "user", "content": "What is 2+2?"}]
THINK = 151667  # <think> in the Qwen3 vocabulary


def field(obj, name):
    """A field the SDK's types do not declare."""
    v = getattr(obj, name, None)
    if v is None and getattr(obj, "model_extra", None):
        v = obj.model_extra.get(name)
    return v


def whole(client, model, **kw):
    r = client.chat.completions.create(model=model, messages=kw.pop("messages", MSGS), temperature=0, **kw)
    m = r.choices[0].message
    return {
        "reasoning_content": field(m, "reasoning_content"),
        "reasoning": field(m, "reasoning"),
        "content": m.content,
        "finish": r.choices[0].finish_reason,
        "reasoning_tokens": r.usage.completion_tokens_details.reasoning_tokens,
        "completion_tokens": r.usage.completion_tokens,
        "prompt_tokens": r.usage.prompt_tokens,
    }


def streamed(client, model, **kw):
    s = client.chat.completions.create(
        model=model, messages=kw.pop("messages", MSGS), temperature=0, stream=True,
        stream_options={"include_usage": True}, **kw,
    )
    out = {"reasoning_content": None, "reasoning": None, "content": "", "finish": None}
    first_reasoning_before_content = True
    for chunk in s:
        if not chunk.choices:
            out["reasoning_tokens"] = chunk.usage.completion_tokens_details.reasoning_tokens
            out["completion_tokens"] = chunk.usage.completion_tokens
            out["prompt_tokens"] = chunk.usage.prompt_tokens
            continue
        d = chunk.choices[0].delta
        for name in ("reasoning_content", "reasoning"):
            piece = field(d, name)
            if piece:
                if out["content"]:
                    first_reasoning_before_content = False
                out[name] = (out[name] or "") + piece
        out["content"] += d.content or ""
        out["finish"] = chunk.choices[0].finish_reason or out["finish"]
    assert first_reasoning_before_content, "thinking streamed after the answer began"
    return out


def both(client, model, **kw):
    a = whole(client, model, **kw)
    b = streamed(client, model, **kw)
    assert a == b, f"streamed {b} != non-streamed {a}"
    assert a["reasoning_content"] == a["reasoning"]
    return a


@check("R1: a block opened by the prompt and cut by max_tokens is all reasoning")
def _():
    a = both(r1, R1, max_tokens=12, extra_body={"ignore_eos": True})
    assert a["reasoning_content"] and a["content"] == "", a
    assert a["finish"] == "length" and a["reasoning_tokens"] == 12 == a["completion_tokens"], a


@check("R1: thinking_token_budget N gives N reasoning tokens, then an answer")
def _():
    for n in (1, 4):
        a = both(r1, R1, max_tokens=20, extra_body={"thinking_token_budget": n, "ignore_eos": True})
        assert a["reasoning_tokens"] == n and a["content"], a
        cut = whole(r1, R1, max_tokens=n, extra_body={"ignore_eos": True})
        assert a["reasoning_content"] == cut["reasoning_content"], (a, cut)


@check("R1: the budget under llama-server's names, with a lead-in message")
def _():
    a = both(r1, R1, max_tokens=20, extra_body={"reasoning_budget_tokens": 2, "ignore_eos": True,
                                                 "reasoning_budget_message": "Time to answer."})
    assert a["reasoning_tokens"] == 2 and a["reasoning_content"].endswith("\nTime to answer."), a
    b = both(r1, R1, max_tokens=20, extra_body={"thinking_budget_tokens": 2, "ignore_eos": True})
    assert b["reasoning_tokens"] == 2, b


@check("R1: include_reasoning false hides the thinking but counts it")
def _():
    a = both(r1, R1, max_tokens=12, extra_body={"max_reasoning_tokens": 3, "include_reasoning": False,
                                                 "ignore_eos": True})
    assert a["reasoning_content"] is None and a["reasoning_tokens"] == 3 and a["content"], a


@check("R1: reasoning_effort none closes the block at once")
def _():
    a = both(r1, R1, max_tokens=8, reasoning_effort="none", extra_body={"ignore_eos": True})
    assert a["reasoning_content"] is None and a["reasoning_tokens"] == 0 and a["content"], a


@check("R1: reasoning_effort low uses its budget from the table (1024 > max_tokens)")
def _():
    a = both(r1, R1, max_tokens=8, reasoning_effort="low", extra_body={"ignore_eos": True})
    assert a["reasoning_tokens"] == 8, a


@check("R1: an unknown reasoning_effort is a BadRequestError naming the field")
def _():
    try:
        r1.chat.completions.create(model=R1, messages=MSGS, extra_body={"reasoning_effort": "huge"})
    except openai.BadRequestError as e:
        assert e.body["param"] == "reasoning_effort", e.body
    else:
        raise AssertionError("no error")


@check("R1: reasoning_effort max (OpenAI's spec, vLLM) is the top of the effort table")
def _():
    r = r1.chat.completions.create(
        model=R1, messages=MSGS, max_tokens=8, extra_body={"reasoning_effort": "max"}
    )
    assert r.choices[0].finish_reason in ("stop", "length"), r


@check("Qwen3: no thinking unless the model opens a block")
def _():
    a = both(q3, Q3, max_tokens=8, extra_body={"ignore_eos": True})
    assert a["reasoning_content"] is None and a["reasoning_tokens"] == 0 and a["content"], a


@check("Qwen3: the model opening <think> itself, bounded by a budget")
def _():
    a = both(q3, Q3, max_tokens=12, logit_bias={str(THINK): 100},
             extra_body={"max_reasoning_tokens": 3, "ignore_eos": True})
    assert a["reasoning_tokens"] == 3 and a["reasoning_content"] == "<think>" * 3, a
    assert a["content"] == "<think>" * 5, a  # mentioned in the answer: stays there


@check("Qwen3: enable_thinking false and reasoning_effort none give the same answer")
def _():
    a = both(q3, Q3, max_tokens=8, extra_body={"chat_template_kwargs": {"enable_thinking": False},
                                               "ignore_eos": True})
    b = both(q3, Q3, max_tokens=8, reasoning_effort="none", extra_body={"ignore_eos": True})
    assert a == b and a["reasoning_tokens"] == 0, (a, b)


@check("Qwen3: multi-turn with prior reasoning under either name")
def _():
    def turn(name):
        return [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "Let me check.", name: "I need the clock."},
            {"role": "tool", "content": "12:00", "tool_call_id": "1"},
        ]
    a = both(q3, Q3, max_tokens=6, messages=turn("reasoning_content"), extra_body={"ignore_eos": True})
    b = both(q3, Q3, max_tokens=6, messages=turn("reasoning"), extra_body={"ignore_eos": True})
    assert a == b, (a, b)
    c = whole(q3, Q3, max_tokens=6, messages=turn("other"), extra_body={"ignore_eos": True})
    assert c["prompt_tokens"] < a["prompt_tokens"], "the prior reasoning did not reach the template"


report("reasoning")
