// How fast the chat page opens: Debian's Chromium, headless, through playwright-core (the
// copy tests/e2e/run.sh installs), against a running `candor serve`.
//
//   node benches/page_load.mjs http://127.0.0.1:8080/ [RUNS]
//
// One fresh browser; its first navigation ("cold": nothing compiled or cached in the
// browser yet), then RUNS (default 15) navigations each in a fresh context ("new
// visitor": no HTTP cache, no storage, the browser process warm) and RUNS reloads of one
// page ("reload": revalidated from the HTTP cache). Times are the page's own
// Navigation Timing: responseEnd of the HTML, DOMContentLoaded, first contentful paint,
// the load event, and when the page is ready to chat (the model's name from /v1/models on
// screen: the page's `candor:model-shown` mark). Prints medians and ranges, and the bytes
// transferred by then (the Markdown renderer, fetched right after the load event,
// included).
import { chromium } from "../tests/e2e/node_modules/playwright-core/index.mjs";

const [url, runsArg] = process.argv.slice(2);
if (!url) {
  console.error("usage: node benches/page_load.mjs URL [RUNS]");
  process.exit(2);
}
const runs = Number(runsArg || 15);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function timing(page) {
  await page.locator("#model-name").filter({ hasText: /\S/ }).waitFor();
  return page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    const bytes = n.transferSize + performance.getEntriesByType("resource").reduce((s, r) => s + r.transferSize, 0);
    return { html: n.responseEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,
             fcp: fcp ? fcp.startTime : NaN, load: n.loadEventEnd - n.startTime,
             model: (performance.getEntriesByName("candor:model-shown")[0] || { startTime: NaN }).startTime, bytes };
  });
}

const series = { cold: [], "new visitor": [], reload: [] };
{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url, { waitUntil: "load" });
  series.cold.push(await timing(page));
  await context.close();
}
for (let i = 0; i < runs; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url, { waitUntil: "load" });
  series["new visitor"].push(await timing(page));
  await context.close();
}
{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url, { waitUntil: "load" });
  for (let i = 0; i < runs; i++) {
    await page.reload({ waitUntil: "load" });
    series.reload.push(await timing(page));
  }
  await context.close();
}
await browser.close();

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (xs) => xs.length === 1 ? `${xs[0].toFixed(0)}` : `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
console.log("| navigation | runs | HTML ms | DOMContentLoaded ms | first paint ms | load ms | model shown ms | bytes |");
console.log("|---|---|---|---|---|---|---|---|");
for (const [name, xs] of Object.entries(series)) {
  const col = (k) => fmt(xs.map((x) => x[k]));
  console.log(`| ${name} | ${xs.length} | ${col("html")} | ${col("dcl")} | ${col("fcp")} | ${col("load")} | ${col("model")} | ${median(xs.map((x) => x.bytes))} |`);
}
