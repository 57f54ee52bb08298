"""End to end with the official `openai` Python SDK against a running candor server.

Usage: python openai_sdk.py BASE_URL MODEL API_KEY   (run by tests/e2e/run.sh)
Prints one line per check and `N passed, N failed` at the end; exits 1 on any failure.
"""

import sys

import openai

from checks import check, report

BASE, MODEL, KEY = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=BASE, api_key=KEY)


MSGS = [{"role": "user", "content": "What is the capital of France?"}]


@check("chat, non-streaming")
def _():
    r = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=8, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + 8


@check("chat, streaming joins to the non-streamed answer, with include_usage")
def _():
    whole = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=10, temperature=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=MSGS, max_tokens=10, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    text, roles, finish, usage = "", [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)
    assert roles == ["assistant"] and finish == "length"
    assert usage is not None and usage.completion_tokens == 10


@check("text completions")
def _():
    r = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=4, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    assert r.usage.completion_tokens == 4


@check("n=2")
def _():
    r = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=4, n=2, seed=1)
    assert [c.index for c in r.choices] == [0, 1]


@check("logprobs")
def _():
    r = client.chat.completions.create(
        model=MODEL, messages=MSGS, max_tokens=3, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == 3 and all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in content)


@check("models.list()")
def _():
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL], ids


@check("BadRequestError")
def _():
    try:
        client.chat.completions.create(model=MODEL, messages=MSGS, temperature=5)
    except openai.BadRequestError as e:
        assert e.body["param"] == "temperature", e.body
        return
    raise AssertionError("no error")


@check("NotFoundError")
def _():
    try:
        client.chat.completions.create(model="no-such-model", messages=MSGS)
    except openai.NotFoundError:
        return
    raise AssertionError("no error")


@check("AuthenticationError")
def _():
    bad = openai.OpenAI(base_url=BASE, api_key="wrong-key")
    try:
        bad.models.list()
    except openai.AuthenticationError:
        return
    raise AssertionError("no error")


report("openai-python")
