// The Responses API (issue 15) streamed through the official openai npm package, against
// the tiny Qwen3: `responses.create({stream: true})` yields typed events in order whose
// deltas add up to the non-streamed response, and `responses.stream()` (the SDK's own
// accumulation) ends with the same response. A logit bias on <think> makes the random
// model think, a budget closes the block.
// Usage: node responses.mjs BASE_URL MODEL
import OpenAI from "openai";

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: "unused" });
const params = {
  model,
  input: "What is 2+2?",
  max_output_tokens: 12,
  temperature: 0,
  logit_bias: { 151667: 100 },
  thinking_token_budget: 3,
  ignore_eos: true,
};
let failed = 0;
const check = (name, ok, detail) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : `: ${JSON.stringify(detail)}`}`);
  if (!ok) failed++;
};

const whole = await client.responses.create(params);
const types = [];
let thinking = "";
let text = "";
let last = null;
let ordered = true;
for await (const event of await client.responses.create({ ...params, stream: true })) {
  ordered &&= event.sequence_number === types.length;
  types.push(event.type);
  if (event.type === "response.reasoning_text.delta") thinking += event.delta;
  if (event.type === "response.output_text.delta") text += event.delta;
  last = event;
}
check(
  "node responses.create({stream: true}): created, in_progress, ..., incomplete, numbered",
  ordered && types[0] === "response.created" && types[1] === "response.in_progress" &&
    types.at(-1) === "response.incomplete",
  types,
);
check(
  "node: the reasoning and text deltas add up to the non-streamed items",
  whole.output[0].type === "reasoning" && thinking === whole.output[0].content[0].text &&
    text === whole.output_text && text.length > 0 &&
    last.response.usage.output_tokens_details.reasoning_tokens === 3,
  { thinking, text, whole: whole.output },
);

const stream = client.responses.stream(params);
let streamed = "";
stream.on("response.output_text.delta", (e) => {
  streamed += e.delta;
});
const final = await stream.finalResponse();
check(
  "node responses.stream(): finalResponse() equals the non-streamed response",
  streamed === whole.output_text && final.output_text === whole.output_text &&
    JSON.stringify(final.output.map((i) => i.type)) === JSON.stringify(whole.output.map((i) => i.type)),
  { streamed, final: final.output_text, whole: whole.output_text },
);
console.log(`openai-node responses: ${3 - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
