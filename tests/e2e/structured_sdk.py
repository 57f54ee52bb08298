#!/usr/bin/env python3
"""Structured output and tool calls through the official openai Python SDK (issue 12),
against a tiny random-weight Qwen3 (Hermes tool format): the SDK's own parsing of a
Pydantic response format, and a tool loop streamed through `chat.completions.stream`,
whose deltas the SDK itself reassembles.

Usage: structured_sdk.py BASE_URL MODEL
"""
import json
import sys
from typing import Literal

import openai
from pydantic import BaseModel, Field

base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key="unused")
no_think = {"chat_template_kwargs": {"enable_thinking": False}}
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


class City(BaseModel):
    name: str = Field(max_length=10)
    population: int = Field(ge=0, le=10_000_000)
    region: Literal["north", "south", "east", "west"]


# parse(): the SDK sends the model's JSON schema (strict) and parses the answer back.
parsed = []
for seed in range(4):
    completion = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Describe a city."}],
        response_format=City, max_tokens=200, temperature=1.0, seed=seed, extra_body=no_think)
    choice = completion.choices[0]
    if choice.finish_reason == "stop":
        parsed.append(choice.message.parsed)
check("chat.completions.parse(response_format=City) gives City objects",
      len(parsed) >= 2 and all(isinstance(p, City) for p in parsed), parsed)


class GetWeather(BaseModel):
    """The weather in a city."""
    city: str = Field(max_length=10)
    unit: Literal["celsius", "fahrenheit"]


tools = [openai.pydantic_function_tool(GetWeather)]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
with client.chat.completions.stream(
        model=model, messages=messages, tools=tools, max_tokens=200, temperature=0,
        tool_choice={"type": "function", "function": {"name": "GetWeather"}},
        extra_body=no_think) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
message = final.choices[0].message
calls = message.tool_calls or []
check("a forced call streamed: the SDK reassembles one GetWeather call",
      final.choices[0].finish_reason == "tool_calls" and len(calls) == 1
      and calls[0].function.name == "GetWeather"
      and isinstance(calls[0].function.parsed_arguments, GetWeather), final)

# The non-streamed call is the same call.
whole = client.chat.completions.create(
    model=model, messages=messages, tools=tools, max_tokens=200, temperature=0,
    tool_choice={"type": "function", "function": {"name": "GetWeather"}}, extra_body=no_think)
w = whole.choices[0].message.tool_calls[0].function
check("the streamed call equals the non-streamed one",
      calls and (w.name, json.loads(w.arguments)) == (calls[0].function.name,
                                                      json.loads(calls[0].function.arguments)),
      (w, calls))

# The loop: the call and its result go back; the model answers.
messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "20 degrees, sunny"})
answer = client.chat.completions.create(model=model, messages=messages, tools=tools,
                                        max_tokens=8, extra_body=no_think)
check("the tool result is accepted and answered",
      answer.choices[0].message.content is not None or answer.choices[0].message.tool_calls,
      answer)

print(f"structured_sdk: {len(failures)} failed")
sys.exit(1 if failures else 0)
