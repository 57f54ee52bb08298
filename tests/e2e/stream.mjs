// A streaming chat through the official `openai` npm package against a running candor.
// Usage: node stream.mjs BASE_URL MODEL API_KEY   (run by tests/e2e/run.sh)
import OpenAI from "openai";

const [base, model, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey });
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Say hello." }],
  max_tokens: 8,
  temperature: 0,
  stream: true,
});
let text = "";
let finish = null;
for await (const chunk of stream) {
  for (const c of chunk.choices) {
    text += c.delta?.content ?? "";
    finish = c.finish_reason ?? finish;
  }
}
const ok = text.length > 0 && finish === "length";
console.log(`${ok ? "ok  " : "FAIL"} node streaming chat: ${JSON.stringify(text)} (${finish})`);
console.log(`openai-node: ${ok ? 1 : 0} passed, ${ok ? 0 : 1} failed`);
process.exit(ok ? 0 : 1);
