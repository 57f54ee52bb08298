// What the page keeps in the browser's localStorage: the conversations, the settings
// and the API key. Nothing is sent anywhere but to this server's API.

const CONVERSATIONS = "candor.conversations.v1";
const CURRENT = "candor.current.v1";
const SETTINGS = "candor.settings.v1";
const API_KEY = "candor.apiKey";

function read(key, fallback) {
  try {
    const text = localStorage.getItem(key);
    return text === null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    // Full or disabled storage: the page still works, it only forgets on reload.
    console.warn("candor: could not save to localStorage", e);
  }
}

export const DEFAULT_SETTINGS = {
  effort: "default", // "default" | "none" | "low" | "medium" | "high" | "budget"
  budget: 256, // thinking tokens, when effort is "budget"
  temperature: "", // "" = the model's default
  maxTokens: "",
  seed: "",
  system: "",
};

export function loadSettings() {
  return { ...DEFAULT_SETTINGS, ...read(SETTINGS, {}) };
}

export function saveSettings(settings) {
  write(SETTINGS, settings);
}

export function loadKey() {
  return localStorage.getItem(API_KEY) || "";
}

export function saveKey(key) {
  if (key) localStorage.setItem(API_KEY, key);
  else localStorage.removeItem(API_KEY);
}

/** Every conversation, newest first: {id, title, updated, messages: [...]}. */
export function loadConversations() {
  const list = read(CONVERSATIONS, []);
  return Array.isArray(list) ? list.filter((c) => c && c.id && Array.isArray(c.messages)) : [];
}

export function saveConversations(list) {
  write(CONVERSATIONS, list);
}

export function loadCurrentId() {
  return read(CURRENT, null);
}

export function saveCurrentId(id) {
  write(CURRENT, id);
}

export function newConversation() {
  const id = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return { id, title: "New chat", updated: Date.now(), messages: [] };
}

/** A conversation's title: the start of its first user message. */
export function titleOf(conversation) {
  const first = conversation.messages.find((m) => m.role === "user");
  if (!first) return "New chat";
  const line = first.content.trim().split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line || "New chat";
}
