// Structured output through the official openai npm package (issue 12): a Zod schema
// as the response format (zodResponseFormat), parsed by the SDK itself.
// Usage: node structured.mjs BASE_URL MODEL
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: "unused" });
const Answer = z.object({
  verdict: z.enum(["yes", "no"]),
  confidence: z.number().int().min(0).max(9),
});
let parsed = 0;
for (let seed = 0; seed < 4; seed++) {
  const c = await client.chat.completions.parse({
    model,
    messages: [{ role: "user", content: "Is water wet?" }],
    response_format: zodResponseFormat(Answer, "answer"),
    max_tokens: 100,
    temperature: 1.0,
    seed,
    chat_template_kwargs: { enable_thinking: false },
  });
  const choice = c.choices[0];
  if (choice.finish_reason === "stop") {
    Answer.parse(choice.message.parsed);
    parsed++;
  }
}
if (parsed >= 2) {
  console.log("ok   zodResponseFormat: the SDK parses the answers");
} else {
  console.log(`FAIL zodResponseFormat: ${parsed} of 4 parsed`);
  process.exit(1);
}
