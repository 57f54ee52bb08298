// Builds and updates the DOM of one message. A message is plain data (kept in
// localStorage); these functions only draw it.

import { markdownToHtml } from "./render.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(className, text, label) {
  const b = el("button", className, text);
  b.type = "button";
  if (label) b.setAttribute("aria-label", label);
  return b;
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function userMessage(message, index) {
  const node = el("article", "msg user");
  node.dataset.index = index;
  node.append(el("div", "bubble", message.content));
  const actions = el("div", "actions");
  actions.append(button("edit", "Edit", "Edit and send again"));
  node.append(actions);
  return node;
}

/** An editor in place of a user message's bubble. */
export function editUserMessage(node, content) {
  const form = el("form", "edit-form");
  const area = el("textarea");
  area.value = content;
  area.rows = Math.min(10, content.split("\n").length + 1);
  area.setAttribute("aria-label", "Edited message");
  const save = el("button", "primary", "Send");
  save.type = "submit";
  const cancel = button("cancel-edit", "Cancel");
  const row = el("div", "actions");
  row.append(cancel, save);
  form.append(area, row);
  node.replaceChildren(form);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
  return { form, area, cancel };
}

export function assistantMessage(index) {
  const node = el("article", "msg assistant");
  node.dataset.index = index;
  const thinking = el("details", "thinking");
  thinking.hidden = true;
  const summary = el("summary");
  summary.append(el("span", "thinking-label"), el("span", "thinking-meta"));
  thinking.append(summary, el("div", "thinking-text"));
  const actions = el("div", "actions");
  actions.append(button("copy-answer", "Copy", "Copy the answer"), button("regenerate", "Regenerate", "Regenerate the answer"));
  node.append(thinking, el("div", "answer markdown"), el("div", "notice"), el("div", "stats"), actions);
  return node;
}

/** What the thinking panel's one line says. */
export function thinkingSummary(message, live, now) {
  const thinkingNow = live && !message.content && !message.finish;
  const ms = thinkingNow ? now - message.thinkingStart : message.thinkingMs || 0;
  const tokens = plural(message.reasoningTokens || 0, "token");
  if (thinkingNow) return { label: "Thinking…", meta: `· ${seconds(ms)} · ${tokens}` };
  const notes = [];
  if (message.budgetClosed) notes.push(`closed by the ${message.budget}-token budget`);
  if (!message.content && message.stopped) notes.push("stopped");
  else if (!message.content && message.finish === "length") notes.push("cut by max tokens");
  return { label: `Thought for ${seconds(ms)}`, meta: ["", tokens, ...notes].join(" · ").trim() };
}

function statsLine(message) {
  const s = message.stats;
  if (!s) return "";
  const parts = [];
  if (s.ttftMs !== undefined) parts.push(`TTFT ${(s.ttftMs / 1000).toFixed(2)} s`);
  if (s.tokPerS) parts.push(`${s.tokPerS.toFixed(1)} tok/s`);
  if (s.prompt !== undefined) parts.push(`prompt ${s.prompt}${s.cached ? ` (${s.cached} cached)` : ""}`);
  if (s.reasoning !== undefined) parts.push(`reasoning ${s.reasoning}`);
  if (s.answer !== undefined) parts.push(`answer ${s.answer}`);
  return parts.join(" · ");
}

/** Draws an assistant message's current state (called once per frame while it streams). */
export function updateAssistant(node, message, { live = false, now = performance.now() } = {}) {
  const thinking = node.querySelector(".thinking");
  const hasThinking = Boolean(message.reasoning) || (live && message.thinkingStart !== undefined);
  thinking.hidden = !hasThinking;
  if (hasThinking) {
    const { label, meta } = thinkingSummary(message, live, now);
    thinking.querySelector(".thinking-label").textContent = label;
    thinking.querySelector(".thinking-meta").textContent = meta;
    const text = thinking.querySelector(".thinking-text");
    if (text.textContent !== message.reasoning) text.textContent = message.reasoning || "";
    // Open while the model thinks; closed once, when the answer starts; then the
    // reader's to open and close.
    const phase = live && !message.content && !message.finish ? "thinking" : "done";
    if (thinking.dataset.phase !== phase) {
      if (phase === "thinking") thinking.open = true;
      else if (thinking.dataset.phase === "thinking") thinking.open = false;
      thinking.dataset.phase = phase;
    }
    thinking.classList.toggle("live", phase === "thinking");
  }
  const answer = node.querySelector(".answer");
  if (answer.candorSource !== message.content) {
    answer.innerHTML = message.content ? markdownToHtml(message.content) : "";
    answer.candorSource = message.content;
  }
  answer.classList.toggle("streaming", live);
  const notices = [];
  if (message.stopped) notices.push("Stopped.");
  if (message.content && message.finish === "length") notices.push("Cut by the token limit.");
  if (message.error) notices.push(message.error);
  const notice = node.querySelector(".notice");
  notice.textContent = notices.join(" ");
  notice.hidden = notices.length === 0;
  node.querySelector(".stats").textContent = statsLine(message);
  node.querySelector(".actions").hidden = live;
}
