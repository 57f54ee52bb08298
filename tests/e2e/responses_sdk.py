#!/usr/bin/env python3
"""The Responses API (issue 15) through the official openai Python SDK, against the tiny
random-weight Qwen3 (its own template, Hermes tool calls): `responses.create` streamed and
not (a reasoning item, then a message; reasoning tokens counted; the streamed events
folded by the SDK equal the non-streamed response), `responses.parse` with a Pydantic
model, a function tool loop with `function_call_output`, and a two-turn conversation
through `previous_response_id`, then retrieve, input_items and delete.

The random model never opens <think> by itself: a logit bias on <think> makes it, and a
thinking budget closes the block (as tests/e2e/reasoning_sdk.py does on chat).

Usage: responses_sdk.py BASE_URL MODEL
"""
import json
import sys
from typing import Literal

import openai
from pydantic import BaseModel, Field

from checks import check, report

base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key="unused")
THINK = 151667  # <think> in the Qwen3 vocabulary
THINKING = {"logit_bias": {str(THINK): 100}, "thinking_token_budget": 3, "ignore_eos": True}
NO_THINK = {"chat_template_kwargs": {"enable_thinking": False}}


def summary(r):
    """What a response says, without what differs between two runs (ids, times)."""
    items = []
    for item in r.output:
        d = item.to_dict()
        d.pop("id", None)
        d.pop("call_id", None)
        items.append(d)
    u = r.usage
    return {
        "status": r.status, "output": items, "output_text": r.output_text,
        "usage": (u.input_tokens, u.output_tokens, u.output_tokens_details.reasoning_tokens),
    }


@check("responses.create: a reasoning item, then a message; reasoning_tokens counted")
def _():
    r = client.responses.create(model=model, input="What is 2+2?", max_output_tokens=12,
                                temperature=0, extra_body=THINKING)
    assert [i.type for i in r.output] == ["reasoning", "message"], r.output
    reasoning, message = r.output
    assert reasoning.content[0].type == "reasoning_text", reasoning
    assert reasoning.content[0].text == "<think>" * 3, reasoning
    assert reasoning.summary == [], reasoning
    assert r.usage.output_tokens_details.reasoning_tokens == 3, r.usage
    assert r.output_text == message.content[0].text and r.output_text, r
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens", r


@check("responses.create(stream=True): typed events in order that add up to the response")
def _():
    whole = client.responses.create(model=model, input="What is 2+2?", max_output_tokens=12,
                                    temperature=0, extra_body=THINKING)
    events = list(client.responses.create(model=model, input="What is 2+2?", max_output_tokens=12,
                                          temperature=0, stream=True, extra_body=THINKING))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"], types
    assert types[-1] == "response.incomplete", types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    thinking = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert thinking == whole.output[0].content[0].text, (thinking, whole.output[0])
    assert text == whole.output_text, (text, whole.output_text)
    assert summary(events[-1].response) == summary(whole), (events[-1].response, whole)


class City(BaseModel):
    name: str = Field(max_length=10)
    population: int = Field(ge=0, le=10_000_000)
    region: Literal["north", "south", "east", "west"]


@check("responses.stream(text_format=City): the SDK's accumulation equals the response")
def _():
    # get_final_response() wants response.completed: a bounded JSON answer ends by itself.
    kw = dict(model=model, input="Describe a city.", max_output_tokens=200, temperature=0,
              extra_body=NO_THINK)
    whole = client.responses.parse(text_format=City, **kw)
    assert whole.status == "completed", whole
    with client.responses.stream(text_format=City, **kw) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == whole.output_text and summary(final) == summary(whole), (final, whole)
    assert isinstance(final.output_parsed, City), final.output_parsed


@check("responses.parse(text_format=City) gives City objects")
def _():
    parsed = []
    for seed in range(4):
        r = client.responses.parse(model=model, input="Describe a city.", text_format=City,
                                   max_output_tokens=200, temperature=1.0,
                                   extra_body={"seed": seed, **NO_THINK})
        if r.status == "completed":
            parsed.append(r.output_parsed)
    assert len(parsed) >= 2 and all(isinstance(p, City) for p in parsed), parsed


TOOLS = [{
    "type": "function", "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True,
}]


@check("a function tool loop: function_call, then function_call_output, then the answer")
def _():
    first = client.responses.create(
        model=model, input="What is the weather in Paris?", tools=TOOLS, tool_choice="required",
        parallel_tool_calls=False, max_output_tokens=120, temperature=0, extra_body=NO_THINK)
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", first.output
    args = json.loads(calls[0].arguments)
    assert isinstance(args["city"], str), args
    # The whole conversation sent back, as the SDK's docs show.
    convo = [{"role": "user", "content": "What is the weather in Paris?"}]
    convo += [i.model_dump(exclude_none=True) for i in first.output]
    convo.append({"type": "function_call_output", "call_id": calls[0].call_id,
                  "output": json.dumps({"temperature_c": 21})})
    second = client.responses.create(model=model, input=convo, tools=TOOLS, tool_choice="none",
                                     max_output_tokens=16, temperature=0, extra_body=NO_THINK)
    assert second.output[-1].type == "message", second.output
    # The same through previous_response_id: the same prompt, so the same answer.
    third = client.responses.create(
        model=model, previous_response_id=first.id, tools=TOOLS, tool_choice="none",
        input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                "output": json.dumps({"temperature_c": 21})}],
        max_output_tokens=16, temperature=0, extra_body=NO_THINK)
    assert third.output_text == second.output_text, (third.output_text, second.output_text)
    assert third.usage.input_tokens == second.usage.input_tokens


@check("a streamed tool call through responses.stream: arguments as deltas, parsed by the SDK")
def _():
    with client.responses.stream(
            model=model, input="What is the weather in Paris?", tools=TOOLS,
            tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=120,
            temperature=0, extra_body=NO_THINK) as stream:
        pieces = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    call = [i for i in final.output if i.type == "function_call"][0]
    assert "".join(pieces) == call.arguments and len(pieces) >= 3, (pieces, call)
    assert call.parsed_arguments == json.loads(call.arguments), call


@check("two turns through previous_response_id; retrieve, input_items and delete")
def _():
    # Instructions are not carried over by previous_response_id: sent again each turn.
    brief = "You are a careful assistant. Answer in one short sentence, and nothing else."
    first = client.responses.create(model=model, input="My name is Ann.", instructions=brief,
                                    max_output_tokens=8, temperature=0, extra_body=NO_THINK)
    second = client.responses.create(model=model, input="What is my name?", instructions=brief,
                                     previous_response_id=first.id, max_output_tokens=8,
                                     temperature=0, extra_body=NO_THINK)
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens
    assert second.usage.input_tokens_details.cached_tokens > 0, second.usage
    got = client.responses.retrieve(second.id)
    assert got.id == second.id and got.output_text == second.output_text
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"], items
    assert items.data[0].content[0].text == "What is my name?", items
    client.responses.delete(second.id)
    try:
        client.responses.retrieve(second.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a deleted response was found")


@check("what candor cannot honour is a BadRequestError naming the field")
def _():
    for kw, param in [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ]:
        kw.setdefault("input", "Hi")
        try:
            client.responses.create(model=model, **kw)
        except openai.BadRequestError as e:
            assert e.body["param"] == param, e.body
        else:
            raise AssertionError(f"{kw} accepted")


report("responses")
