// The chat page in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against real `candor serve` processes started by tests/e2e/run.sh.
// Usage: node webui.mjs R1_URL KEYED_URL KEY OUT_DIR
//   R1_URL     a server of tiny-qwen2-r1 (thinks from its first token; no API key)
//   KEYED_URL  a server with --api-key KEY of a model that does not think (SmolLM2)
//   OUT_DIR    where the screenshots go
// Random weights write arbitrary words: the checks are about where the text goes, what
// the page sends, and what it shows; one stored conversation with real Markdown, code
// and math checks the rendering and makes the screenshots.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { check, report, section } from "./webui_checks.mjs";

const [R1, KEYED, KEY, OUT] = process.argv.slice(2);
mkdirSync(OUT, { recursive: true });

// A fresh browser profile every launch (Playwright makes a temporary user-data-dir).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

async function metric(base, name) {
  const text = await (await fetch(new URL("metrics", base))).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

async function until(what, f, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A page on a fresh context, recording every chat request the page sends. */
async function open(url, { viewport = DESKTOP, colorScheme = "light" } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  const requests = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/chat/completions")) requests.push({ body: r.postDataJSON(), headers: r.headers() });
  });
  page.on("pageerror", (e) => check(`no script error on the page (${e.message})`, false));
  await page.goto(url);
  return { context, page, requests };
}

async function setSettings(page, values) {
  if (await page.locator("#settings").isHidden()) await page.click("#open-settings");
  for (const [id, value] of Object.entries(values)) {
    const input = page.locator(`#${id}`);
    if (id === "effort") await input.selectOption(value);
    else await input.fill(String(value));
    await input.dispatchEvent("change");
  }
}

async function idle(page) {
  await page.locator("#send").waitFor({ state: "visible", timeout: 60000 });
}

// ---------------------------------------------------------------- the thinking model
await section("the thinking model", async () => {
  const { context, page, requests } = await open(R1);
  await page.locator("#model-name", { hasText: "tiny-qwen2-r1" }).waitFor();
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    return {
      loadMs: n.loadEventEnd - n.startTime,
      bytes: n.encodedBodySize + resources.reduce((s, r) => s + r.encodedBodySize, 0),
    };
  });
  console.log(`     page load ${nav.loadMs.toFixed(0)} ms, ${nav.bytes} bytes transferred`);
  check(`the page loads within 1 s (${nav.loadMs.toFixed(0)} ms)`, nav.loadMs > 0 && nav.loadMs < 1000);
  check(`the page transfers under 1 MB (${nav.bytes} bytes)`, nav.bytes > 0 && nav.bytes < 1_000_000);
  check("a thinking model is badged and offered the effort control",
    (await page.locator("#model-badge").isVisible()) &&
    (await page.click("#open-settings"), await page.locator("#effort-row").isVisible()));

  // Watch the thinking panel as it changes: open while it fills, closed once the answer starts.
  await page.evaluate(() => {
    window.panelStates = [];
    new MutationObserver(() => {
      const d = document.querySelector(".msg.assistant:last-of-type .thinking");
      if (!d || d.hidden) return;
      window.panelStates.push({
        open: d.open,
        label: d.querySelector(".thinking-label").textContent,
        length: d.querySelector(".thinking-text").textContent.length,
        answer: document.querySelector(".msg.assistant:last-of-type .answer").textContent.length,
      });
    }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await setSettings(page, { effort: "budget", budget: 160, temperature: 0.8, seed: 7, "max-tokens": 200 });
  // The page's request and the direct one below must find the same prefix cache: whether
  // the prompt is computed afresh or reused can change a sampled token of a random model
  // (its next-token distribution is nearly flat).
  await fetch(new URL("v1/chat/completions", R1), {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Is 1001 prime?" }], max_tokens: 1 }),
  });
  await page.fill("#prompt", "Is 1001 prime?");
  await page.keyboard.press("Enter");
  await idle(page);
  const states = await page.evaluate(() => window.panelStates);
  const filling = states.filter((s) => s.open && s.label === "Thinking…" && s.length > 0 && s.answer === 0);
  check(`the thinking panel is open and fills while the model thinks (${new Set(filling.map((s) => s.length)).size} sizes seen)`,
    new Set(filling.map((s) => s.length)).size >= 2);
  const last = states.at(-1);
  check("the panel collapses when the answer begins", last && !last.open && last.answer > 0 && last.label.startsWith("Thought for"));
  const label = await page.locator(".thinking-label").last().textContent();
  const meta = await page.locator(".thinking-meta").last().textContent();
  check(`the collapsed line gives seconds, tokens and the budget ("${label} ${meta}")`,
    /^Thought for \d+\.\d s$/.test(label) && meta === "· 160 tokens · closed by the 160-token budget");
  const sent = requests.at(-1)?.body;
  check("the request carries the settings (budget, temperature, seed, max tokens, usage)",
    sent && sent.thinking_token_budget === 160 && sent.temperature === 0.8 && sent.seed === 7 &&
    sent.max_tokens === 200 && sent.stream === true && sent.stream_options?.include_usage === true &&
    sent.reasoning_effort === undefined);
  // The same request, not streamed, straight to the API.
  const direct = await (await fetch(new URL("v1/chat/completions", R1), {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...sent, stream: false, stream_options: undefined }),
  })).json();
  const thinking = await page.locator(".thinking-text").last().textContent();
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("candor.conversations.v1"))[0].messages.at(-1));
  const want = direct.choices?.[0]?.message;
  check(`the thinking shown equals the API's reasoning_content for the same seeded request (${thinking.length} and ${want?.reasoning_content?.length} characters)`,
    thinking.length > 0 && thinking === want?.reasoning_content);
  check("the answer kept equals the API's content", stored.content === want?.content && stored.content.length > 0);
  const stats = await page.locator(".stats").last().textContent();
  const usage = direct.usage;
  check(`the stats line gives TTFT, tok/s and usage ("${stats}")`,
    /^TTFT \d+\.\d\d s · \d+\.\d tok\/s · prompt \d+/.test(stats) &&
    stats.includes(`reasoning ${usage.completion_tokens_details.reasoning_tokens}`) &&
    stats.includes(`answer ${usage.completion_tokens - usage.completion_tokens_details.reasoning_tokens}`));
  await page.click(".thinking summary");
  check("the collapsed panel opens again on click", await page.locator(".thinking").last().evaluate((d) => d.open));

  // The effort control reaches the request; earlier thinking goes back as reasoning_content.
  await setSettings(page, { effort: "low", "max-tokens": 24 });
  await page.fill("#prompt", "line one");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("line two");
  check("Shift+Enter makes a new line without sending", (await page.inputValue("#prompt")) === "line one\nline two" && requests.length === 1);
  await page.keyboard.press("Enter");
  await idle(page);
  const second = requests.at(-1).body;
  check("a changed effort is sent as reasoning_effort",
    second.reasoning_effort === "low" && second.thinking_token_budget === undefined && second.max_tokens === 24);
  check("the history goes back with the earlier thinking as reasoning_content",
    second.messages.length === 3 && second.messages[1].role === "assistant" &&
    second.messages[1].reasoning_content === thinking && second.messages[2].content === "line one\nline two");
  await setSettings(page, { effort: "none" });
  await page.fill("#prompt", "no thinking");
  await page.keyboard.press("Enter");
  await idle(page);
  check("effort none is sent as such", requests.at(-1).body.reasoning_effort === "none");

  // Regenerate the last answer, then edit the first question and send it again.
  await page.locator(".msg.assistant.last .regenerate").click();
  await idle(page);
  const regenerated = requests.at(-1).body;
  check("regenerate sends the same conversation again", requests.length === 4 &&
    JSON.stringify(regenerated.messages) === JSON.stringify(requests[2].body.messages) &&
    (await page.locator(".msg").count()) === 6);
  await page.locator(".msg.user .edit").first().click();
  await page.locator(".edit-form textarea").fill("Is 1003 prime?");
  await page.locator(".edit-form textarea").press("Enter");
  await idle(page);
  const edited = requests.at(-1).body;
  check("edit-and-resend cuts the conversation at the edited question",
    edited.messages.length === 1 && edited.messages[0].content === "Is 1003 prime?" && (await page.locator(".msg").count()) === 2);

  // Stop in the middle of a long generation: the server frees the sequence.
  await setSettings(page, { effort: "budget", budget: 4000, "max-tokens": 4000 });
  await page.fill("#prompt", "Think for a long time.");
  await page.keyboard.press("Enter");
  await until("thinking text", async () => (await page.locator(".thinking-text").last().textContent()).length > 20);
  const runningBefore = await metric(R1, "candor_requests_running");
  await page.click("#stop");
  await idle(page);
  await until("the sequence to be freed", async () =>
    (await metric(R1, "candor_requests_running")) === 0 && (await metric(R1, "candor_kv_blocks_used")) === 0, 10000)
    .then(() => check(`Stop aborts the stream and /metrics shows the sequence freed (running ${runningBefore} -> 0)`, runningBefore === 1),
      (e) => check(`Stop frees the sequence (${e.message})`, false));
  check("the stopped answer says so", (await page.locator(".msg.assistant.last .notice").textContent()).includes("Stopped"));

  // Reload: the conversations are still there.
  const before = await page.locator(".msg").count();
  await page.reload();
  await page.locator("#model-name", { hasText: "tiny-qwen2-r1" }).waitFor();
  const after = {
    messages: await page.locator(".msg").count(),
    conversations: await page.locator("#conversations li").count(),
    open: await page.locator(".thinking:not([hidden])").last().evaluate((d) => d.open),
    label: await page.locator(".thinking:not([hidden]) .thinking-label").last().textContent(),
  };
  check(`after a reload the conversation is back, its thinking collapsed (${JSON.stringify(after)})`,
    after.messages === before && after.conversations === 1 && !after.open && after.label.startsWith("Thought for"));
  await setSettings(page, { "max-tokens": 16 });
  await page.click("#new-chat");
  check("new chat empties the page", (await page.locator(".msg").count()) === 0);
  await page.fill("#prompt", "Another conversation");
  await page.keyboard.press("Enter");
  await idle(page);
  check("the list holds both conversations", (await page.locator("#conversations li").count()) === 2);
  await page.locator("#conversations li .open", { hasText: "Is 1003 prime?" }).click();
  check("switching shows the other conversation", (await page.locator(".msg.user .bubble").first().textContent()) === "Is 1003 prime?");
  await page.locator("#conversations li .delete").first().click();
  check("a conversation can be deleted", (await page.locator("#conversations li").count()) === 1);
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: `${OUT}/tiny-model-desktop-light.png` });
  await context.close();
});

// ---------------------------------------------------------------- rendering, screenshots
const SAMPLE = [{
  id: "sample", title: "Sum of the first n odd numbers", updated: Date.now(), messages: [
    { role: "user", content: "What is the sum of the first n odd numbers? Show it in Python too." },
    {
      role: "assistant",
      reasoning: "The odd numbers are 1, 3, 5, … The k-th one is 2k − 1.\nSumming 2k − 1 for k = 1..n gives n(n+1) − n = n².\nCheck: 1 + 3 + 5 = 9 = 3². Good. A short proof and a code sample will do.",
      reasoningTokens: 58, thinkingMs: 1240, budget: null,
      content: "The sum is $n^2$:\n\n$$\\sum_{k=1}^{n} (2k-1) = 2\\cdot\\frac{n(n+1)}{2} - n = n^2$$\n\n```python\ndef odd_sum(n: int) -> int:\n    return sum(2 * k - 1 for k in range(1, n + 1))\n\nassert odd_sum(3) == 9\n```\n\n| n | sum |\n|---|---|\n| 3 | 9 |\n| 4 | 16 |",
      finish: "stop", stats: { ttftMs: 85, tokPerS: 41.7, prompt: 21, reasoning: 58, answer: 74 },
    },
  ],
}];
const HOSTILE = [{
  id: "hostile", title: "Hostile output", updated: 0, messages: [
    { role: "user", content: "Try something." },
    {
      role: "assistant", finish: "stop",
      content: "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>[link](javascript:window.pwned=3)",
    },
  ],
}];

for (const [name, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
  for (const colorScheme of ["light", "dark"]) await section(`rendering, ${name} ${colorScheme}`, async () => {
    const { context, page } = await open(R1, { viewport, colorScheme });
    await page.evaluate((sample) => {
      localStorage.setItem("candor.conversations.v1", JSON.stringify(sample));
      localStorage.setItem("candor.current.v1", JSON.stringify("sample"));
    }, SAMPLE);
    await page.reload();
    await page.locator("#model-name", { hasText: "tiny-qwen2-r1" }).waitFor();
    await page.click(".thinking summary");
    // KaTeX and highlight.js are loaded when math and code first appear; then the fonts.
    await page.locator(".answer .katex-display").waitFor();
    await page.locator(".answer .hljs-keyword").first().waitFor();
    await page.evaluate(() => document.fonts.ready);
    if (name === "phone") {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(`nothing is wider than a phone (${colorScheme}: ${wide} px)`, wide <= PHONE.width);
      check("the conversation list folds away on a phone", !(await page.locator("#sidebar").isVisible()) ||
        (await page.locator("#sidebar").boundingBox()).x < 0);
    }
    await page.screenshot({ path: `${OUT}/${name}-${colorScheme}.png` });
    if (name === "desktop" && colorScheme === "light") {
      check("code is highlighted and has a copy button",
        (await page.locator(".answer .hljs-keyword").count()) > 0 && (await page.locator(".code-block .copy").count()) === 1);
      check("math is typeset by KaTeX (inline and display)",
        (await page.locator(".answer .katex").count()) === 2 && (await page.locator(".answer .katex-display").count()) === 1);
      await context.grantPermissions(["clipboard-read", "clipboard-write"]);
      await page.locator(".code-block .copy").focus();
      await page.keyboard.press("Enter");
      await page.locator(".code-block .copy", { hasText: "Copied" }).waitFor({ timeout: 5000 });
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      check("the copy button answers the keyboard and copies the code", copied.startsWith("def odd_sum(n: int) -> int:\n"));
    }
    if (name === "desktop" && colorScheme === "light") {
      await page.evaluate((hostile) => {
        localStorage.setItem("candor.conversations.v1", JSON.stringify(hostile));
        localStorage.setItem("candor.current.v1", JSON.stringify("hostile"));
      }, HOSTILE);
      await page.reload();
      await page.locator(".answer a").click({ timeout: 2000 }).catch(() => {});
      check("model output cannot run script (img onerror, script, javascript: link)",
        (await page.evaluate(() => window.pwned)) === undefined && (await page.locator(".answer script, .answer [onerror]").count()) === 0);
    }
    await context.close();
  });
}

// ---------------------------------------------------------------- --api-key
await section("--api-key", async () => {
  const { context, page, requests } = await open(KEYED);
  await page.locator("#key-dialog[open]").waitFor();
  check("a server with --api-key serves the page and asks for the key", await page.locator("#key-input").isVisible());
  await page.fill("#key-input", KEY);
  await page.click("#key-dialog button[value=save]");
  await page.locator("#model-name", { hasText: "smollm2" }).waitFor();
  await page.click("#open-settings");
  check("a model without thinking markers gets no effort control", !(await page.locator("#effort-row").isVisible()));
  await setSettings(page, { "max-tokens": 8, temperature: 0 });
  await page.fill("#prompt", "Say hello.");
  await page.click("#send");
  await idle(page);
  check("the chat request carries the key", requests.at(-1)?.headers.authorization === `Bearer ${KEY}`);
  check("the answer arrives without a thinking panel",
    (await page.locator(".answer").last().textContent()).length > 0 && (await page.locator(".thinking").last().isHidden()));
  await page.reload();
  await page.locator("#model-name", { hasText: "smollm2" }).waitFor();
  check("the key is kept across reloads", !(await page.locator("#key-dialog").evaluate((d) => d.open)));
  // A key that stops working is asked for again before anything is sent.
  await page.evaluate(() => localStorage.setItem("candor.apiKey", "wrong"));
  await page.fill("#prompt", "Hi again");
  await page.keyboard.press("Enter");
  await page.locator("#key-dialog[open]").waitFor();
  await page.fill("#key-input", KEY);
  // The retry starts after the dialog closes, while #send is still showing: wait for the
  // request itself, then for its answer, or `idle` can return before the retry is sent.
  const retried = page.waitForRequest(
    (r) => r.url().endsWith("/v1/chat/completions") && r.headers().authorization === `Bearer ${KEY}`,
    { timeout: 10000 },
  );
  await page.click("#key-dialog button[value=save]");
  await retried.catch(() => {});
  await idle(page);
  check("after a 401 the new key is used and the turn goes through",
    requests.at(-1).headers.authorization === `Bearer ${KEY}` && (await page.locator(".msg.assistant").count()) === 2);
  await context.close();
});

await browser.close();
report("webui");
