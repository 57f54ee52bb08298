// The chat page: conversations, settings, and one streamed generation at a time.
// It talks to candor only through its public API (api.js); everything it keeps stays in
// this browser (store.js); drawing a message is view.js's job.

import { ApiError, AuthError, fetchModel, streamChat } from "./api.js";
import { copyText } from "./render.js";
import * as store from "./store.js";
import { assistantMessage, editUserMessage, updateAssistant, userMessage } from "./view.js";

const $ = (id) => document.getElementById(id);
const ui = {
  sidebar: $("sidebar"),
  list: $("conversations"),
  messages: $("messages"),
  empty: $("empty"),
  error: $("error"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  settings: $("settings"),
  openSettings: $("open-settings"),
  openSidebar: $("open-sidebar"),
  modelName: $("model-name"),
  modelBadge: $("model-badge"),
  effortRow: $("effort-row"),
  effort: $("effort"),
  budget: $("budget"),
  effortNote: $("effort-note"),
  temperature: $("temperature"),
  maxTokens: $("max-tokens"),
  seed: $("seed"),
  system: $("system"),
  keyDialog: $("key-dialog"),
  keyInput: $("key-input"),
  keyReason: $("key-reason"),
};

const state = {
  /** /v1/models' entry: {id, max_model_len?, reasoning?}. */
  model: null,
  conversations: store.loadConversations(),
  currentId: store.loadCurrentId(),
  settings: store.loadSettings(),
  /** The AbortController of the generation in flight. */
  controller: null,
};

function current() {
  let conversation = state.conversations.find((c) => c.id === state.currentId);
  if (!conversation) {
    conversation = store.newConversation();
    state.currentId = conversation.id;
  }
  return conversation;
}

function save(conversation) {
  if (conversation.messages.length) {
    conversation.title = store.titleOf(conversation);
    conversation.updated = Date.now();
    if (!state.conversations.includes(conversation)) state.conversations.unshift(conversation);
    state.conversations.sort((a, b) => b.updated - a.updated);
  }
  store.saveConversations(state.conversations);
  store.saveCurrentId(state.currentId);
  renderList();
}

function showError(message) {
  ui.error.textContent = message || "";
  ui.error.hidden = !message;
}

// ---- the conversation list ----

function renderList() {
  const items = state.conversations.map((c) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = c.title;
    open.title = c.title;
    if (c.id === state.currentId) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => switchTo(c.id));
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete icon";
    del.textContent = "✕";
    del.setAttribute("aria-label", `Delete “${c.title}”`);
    del.addEventListener("click", () => remove(c.id));
    li.append(open, del);
    return li;
  });
  ui.list.replaceChildren(...items);
}

function switchTo(id) {
  if (state.controller) state.controller.abort();
  state.currentId = id;
  store.saveCurrentId(id);
  renderList();
  renderConversation();
  setSidebar(false);
  ui.prompt.focus();
}

function remove(id) {
  if (id === state.currentId && state.controller) state.controller.abort();
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (id === state.currentId) state.currentId = state.conversations[0]?.id ?? null;
  store.saveConversations(state.conversations);
  store.saveCurrentId(state.currentId);
  renderList();
  renderConversation();
}

function newChat() {
  if (state.controller) state.controller.abort();
  const conversation = store.newConversation();
  state.currentId = conversation.id;
  store.saveCurrentId(conversation.id);
  renderList();
  renderConversation();
  setSidebar(false);
  ui.prompt.focus();
}

// ---- the messages ----

function renderConversation() {
  const conversation = current();
  const nodes = conversation.messages.map((m, i) => {
    if (m.role === "user") return userMessage(m, i);
    const node = assistantMessage(i);
    updateAssistant(node, m);
    return node;
  });
  ui.empty.hidden = nodes.length > 0;
  ui.messages.replaceChildren(ui.empty, ...nodes);
  markLast();
  showError("");
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** Regenerate is offered on the last answer only. */
function markLast() {
  const nodes = ui.messages.querySelectorAll(".msg.assistant");
  nodes.forEach((n, i) => n.classList.toggle("last", i === nodes.length - 1));
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

// ---- settings ----

function effectiveBudget() {
  const r = state.model?.reasoning;
  if (!r) return null;
  const { effort, budget } = state.settings;
  if (effort === "budget") return Math.max(0, Number(budget) || 0);
  if (effort === "default") return r.default_budget;
  return r.effort_budgets?.[effort] ?? null;
}

function renderSettings() {
  const s = state.settings;
  ui.effort.value = s.effort;
  ui.budget.value = s.budget;
  ui.budget.hidden = s.effort !== "budget";
  ui.temperature.value = s.temperature;
  ui.maxTokens.value = s.maxTokens;
  ui.seed.value = s.seed;
  ui.system.value = s.system;
  const budget = effectiveBudget();
  ui.effortNote.textContent =
    s.effort === "none" ? "" : budget === null ? "unlimited thinking" : `at most ${budget} thinking tokens`;
}

function readSettings() {
  state.settings = {
    effort: ui.effort.value,
    budget: ui.budget.value === "" ? 0 : Number(ui.budget.value),
    temperature: ui.temperature.value,
    maxTokens: ui.maxTokens.value,
    seed: ui.seed.value,
    system: ui.system.value,
  };
  store.saveSettings(state.settings);
  renderSettings();
}

function requestBody(conversation) {
  const s = state.settings;
  const messages = [];
  if (s.system.trim()) messages.push({ role: "system", content: s.system });
  for (const m of conversation.messages) {
    if (m.role === "user") messages.push({ role: "user", content: m.content });
    else {
      const turn = { role: "assistant", content: m.content || "" };
      // The template decides whether earlier thinking reaches the model (Qwen3 keeps it
      // after the last user turn; R1 templates drop it).
      if (m.reasoning) turn.reasoning_content = m.reasoning;
      messages.push(turn);
    }
  }
  const body = { model: state.model?.id, messages, stream: true, stream_options: { include_usage: true } };
  if (s.temperature !== "") body.temperature = Number(s.temperature);
  if (s.maxTokens !== "") body.max_tokens = Number(s.maxTokens);
  if (s.seed !== "") body.seed = Number(s.seed);
  if (state.model?.reasoning) {
    if (s.effort === "budget") body.thinking_token_budget = effectiveBudget();
    else if (s.effort !== "default") body.reasoning_effort = s.effort;
  }
  return body;
}

// ---- generation ----

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.messages.setAttribute("aria-busy", String(busy));
}

/** Streams the next assistant turn of the current conversation. */
async function generate() {
  const conversation = current();
  const body = requestBody(conversation);
  const message = { role: "assistant", content: "", reasoning: "", reasoningTokens: 0, budget: effectiveBudget() };
  conversation.messages.push(message);
  const node = assistantMessage(conversation.messages.length - 1);
  ui.empty.hidden = true;
  ui.messages.append(node);
  markLast();
  showError("");
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const sent = performance.now();
  let first;
  let answerDeltas = 0;
  let usage = null;
  let frame = 0;
  const draw = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const follow = nearBottom();
      updateAssistant(node, message, { live: state.controller === controller });
      if (follow) ui.messages.scrollTop = ui.messages.scrollHeight;
    });
  };
  const ticker = setInterval(draw, 100);
  updateAssistant(node, message, { live: true });
  let retry = false;
  try {
    await streamChat(body, controller.signal, {
      reasoning(text) {
        const now = performance.now();
        first ??= now;
        message.thinkingStart ??= now;
        message.reasoning += text;
        message.reasoningTokens += 1;
        draw();
      },
      content(text) {
        const now = performance.now();
        first ??= now;
        if (message.thinkingStart !== undefined && message.thinkingMs === undefined) {
          message.thinkingMs = now - message.thinkingStart;
        }
        message.content += text;
        answerDeltas += 1;
        draw();
      },
      usage(u) {
        usage = u;
      },
      finish(reason) {
        message.finish = reason;
      },
    });
  } catch (e) {
    if (e.name === "AbortError") message.stopped = true;
    else if (e instanceof AuthError) retry = true;
    else message.error = e instanceof ApiError || e instanceof Error ? e.message : String(e);
  } finally {
    clearInterval(ticker);
    cancelAnimationFrame(frame);
  }
  const end = performance.now();
  if (state.controller === controller) state.controller = null;
  setBusy(state.controller !== null);
  if (message.thinkingStart !== undefined && message.thinkingMs === undefined) {
    message.thinkingMs = end - message.thinkingStart;
  }
  delete message.thinkingStart;
  const failedEmpty = !message.content && !message.reasoning && !message.stopped;
  if (retry || (message.error && failedEmpty)) {
    // Nothing came back: take the turn out again, so the conversation stays as it was.
    conversation.messages.pop();
    node.remove();
    markLast();
    if (retry && (await askKey("The server refused the API key. Enter the key it was started with."))) {
      return generate();
    }
    const last = conversation.messages.at(-1);
    if (last?.role === "user") {
      conversation.messages.pop();
      if (!ui.prompt.value) ui.prompt.value = last.content;
      renderConversation();
    }
    save(conversation);
    showError(retry ? "No API key: nothing was sent." : message.error);
    return;
  }
  const completion = usage?.completion_tokens ?? message.reasoningTokens + answerDeltas;
  const reasoningTokens = usage?.completion_tokens_details?.reasoning_tokens ?? message.reasoningTokens;
  message.reasoningTokens = reasoningTokens;
  message.budgetClosed =
    message.budget > 0 && reasoningTokens >= message.budget && !(message.finish === "length" && !message.content);
  message.stats = {
    ttftMs: first === undefined ? undefined : first - sent,
    tokPerS: first !== undefined && end - first > 0 && completion > 1 ? ((completion - 1) * 1000) / (end - first) : 0,
    prompt: usage?.prompt_tokens,
    cached: usage?.prompt_tokens_details?.cached_tokens,
    reasoning: reasoningTokens,
    answer: completion - reasoningTokens,
  };
  updateAssistant(node, message);
  if (conversation.id === state.currentId) save(conversation);
  else store.saveConversations(state.conversations);
}

function send() {
  const text = ui.prompt.value;
  if (!text.trim() || state.controller) return;
  if (!state.model) {
    showError("The model is not ready yet.");
    return;
  }
  const conversation = current();
  conversation.messages.push({ role: "user", content: text });
  ui.prompt.value = "";
  autosize();
  ui.messages.append(userMessage(conversation.messages.at(-1), conversation.messages.length - 1));
  save(conversation);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  generate();
}

function regenerate() {
  if (state.controller) return;
  const conversation = current();
  if (conversation.messages.at(-1)?.role === "assistant") conversation.messages.pop();
  renderConversation();
  generate();
}

function edit(index) {
  if (state.controller) return;
  const conversation = current();
  const node = ui.messages.querySelector(`.msg.user[data-index="${index}"]`);
  const { form, area, cancel } = editUserMessage(node, conversation.messages[index].content);
  cancel.addEventListener("click", () => renderConversation());
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.key === "Escape") renderConversation();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!area.value.trim()) return;
    conversation.messages.splice(index);
    conversation.messages.push({ role: "user", content: area.value });
    save(conversation);
    renderConversation();
    generate();
  });
}

// ---- the API key and the model ----

function askKey(reason) {
  ui.keyReason.textContent = reason;
  ui.keyInput.value = store.loadKey();
  return new Promise((resolve) => {
    ui.keyDialog.addEventListener(
      "close",
      () => {
        const saved = ui.keyDialog.returnValue === "save";
        if (saved) store.saveKey(ui.keyInput.value.trim());
        resolve(saved);
      },
      { once: true },
    );
    ui.keyDialog.returnValue = "";
    ui.keyDialog.showModal();
  });
}

async function loadModel() {
  for (;;) {
    try {
      state.model = await fetchModel();
      break;
    } catch (e) {
      if (e instanceof AuthError) {
        if (!(await askKey("This server needs an API key. It is kept in this browser (localStorage)."))) {
          ui.modelName.textContent = "API key needed";
          showError("This server needs an API key: open Settings to enter it.");
          return;
        }
      } else {
        ui.modelName.textContent = e.status === 503 ? "loading the model…" : "server unreachable";
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  showError("");
  const m = state.model;
  ui.modelName.textContent = m.id;
  ui.modelBadge.hidden = !m.reasoning;
  ui.effortRow.hidden = !m.reasoning;
  if (m.max_model_len) ui.maxTokens.max = m.max_model_len;
  renderSettings();
  // When the page became ready to chat, for benches/page_load.mjs (User Timing).
  performance.mark("candor:model-shown");
}

// ---- wiring ----

function autosize() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 240)}px`;
}

function setSidebar(open) {
  ui.sidebar.classList.toggle("open", open);
  ui.openSidebar.setAttribute("aria-expanded", String(open));
}

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.prompt.addEventListener("input", autosize);
ui.stop.addEventListener("click", () => state.controller?.abort());
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.controller && !ui.keyDialog.open) state.controller.abort();
});
$("new-chat").addEventListener("click", newChat);
ui.openSidebar.addEventListener("click", () => setSidebar(!ui.sidebar.classList.contains("open")));
$("close-sidebar").addEventListener("click", () => setSidebar(false));
ui.openSettings.addEventListener("click", () => {
  ui.settings.hidden = !ui.settings.hidden;
  ui.openSettings.setAttribute("aria-expanded", String(!ui.settings.hidden));
});
for (const input of [ui.effort, ui.budget, ui.temperature, ui.maxTokens, ui.seed, ui.system]) {
  input.addEventListener("change", readSettings);
}
$("change-key").addEventListener("click", async () => {
  if (await askKey("The API key this browser sends (kept in localStorage); empty to send none.")) loadModel();
});
ui.messages.addEventListener("click", async (e) => {
  const target = e.target.closest("button");
  if (!target) return;
  const msg = target.closest(".msg");
  if (target.classList.contains("copy")) {
    await copyText(target.closest(".code-block").querySelector("code").innerText);
    flash(target);
  } else if (target.classList.contains("copy-answer")) {
    await copyText(current().messages[Number(msg.dataset.index)].content);
    flash(target);
  } else if (target.classList.contains("regenerate")) regenerate();
  else if (target.classList.contains("edit")) edit(Number(msg.dataset.index));
});

function flash(button) {
  const text = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = text), 1200);
}

// KaTeX or highlight.js arrived (loaded when math or code first appeared): draw the
// answers with them.
document.addEventListener("candor:render-ready", () => {
  const messages = current().messages;
  for (const node of ui.messages.querySelectorAll(".msg.assistant")) {
    const answer = node.querySelector(".answer");
    answer.candorSource = undefined;
    updateAssistant(node, messages[Number(node.dataset.index)], { live: answer.classList.contains("streaming") });
  }
});

renderSettings();
renderList();
renderConversation();
loadModel();
ui.prompt.focus();
