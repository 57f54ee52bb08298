// The page's only way to the server: the public OpenAI-compatible API (/v1/models and
// streaming /v1/chat/completions), with the API key from localStorage when there is one.

import { loadKey } from "./store.js";

/** A 401: the server wants a (different) API key. */
export class AuthError extends Error {}

/** Any other failure, with the server's OpenAI-shaped message. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = loadKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  if (response.status === 401) return new AuthError(message);
  return new ApiError(message, response.status);
}

/** The served model: {id, max_model_len?, reasoning?} (candor's extended fields). */
export async function fetchModel() {
  const response = await fetch("v1/models", { headers: headers() });
  if (!response.ok) throw await failure(response);
  const list = await response.json();
  if (!list.data?.length) throw new ApiError("The server lists no model.", 200);
  return list.data[0];
}

/**
 * Streams one chat completion. `on` gets {reasoning, content} text deltas, then the
 * usage and the finish reason; resolves when the stream ends, rejects on an error (an
 * AbortError when `signal` aborts it).
 */
export async function streamChat(body, signal, on) {
  const response = await fetch("v1/chat/completions", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue; // comments (keep-alives)
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(chunk.error.message, 200);
        if (chunk.usage) on.usage?.(chunk.usage);
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        const delta = choice.delta || {};
        if (delta.reasoning_content) on.reasoning?.(delta.reasoning_content);
        if (delta.content) on.content?.(delta.content);
        if (choice.finish_reason) on.finish?.(choice.finish_reason);
      }
    }
  }
}
