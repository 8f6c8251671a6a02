// The chat's calls to the server: questions (answer streamed as Server-Sent Events) and feedback. Failures become
// an HttpError with the German message to show.

import { MESSAGES } from "./messages.js";
import { readEventStream } from "./sse.js";

export class HttpError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** The request body of /v1/ask for an answer message (its question and filters) and the history before it. */
export function askBody(msg, history, conversationId) {
  const filters = {};
  if (msg.filters?.phase) filters.phase = [msg.filters.phase];
  if (msg.filters?.type) filters.type = [msg.filters.type];
  const body = { question: msg.question, history, stream: true };
  if (Object.keys(filters).length) body.filters = filters;
  if (conversationId) body.conversation_id = conversationId;
  return body;
}

async function httpError(response) {
  let detail = null;
  try {
    const data = await response.json();
    if (typeof data.detail === "string") detail = data.detail;
  } catch {
    /* not JSON */
  }
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After"));
    const hint = wait > 0 ? ` Neue Fragen sind in etwa ${wait} Sekunden wieder möglich.` : "";
    return new HttpError((detail || MESSAGES.rateLimited) + hint, 429);
  }
  if (response.status === 422) return new HttpError(MESSAGES.invalid, 422);
  if (response.status === 403) return new HttpError(detail || MESSAGES.networkWidget, 403);
  if (response.status === 503) return new HttpError(detail || MESSAGES.unavailable, 503);
  if (response.status >= 500) return new HttpError(MESSAGES.server, response.status);
  return new HttpError(detail || MESSAGES.server, response.status);
}

export class ChatApi {
  /** base: the chat server's origin ("" on the chat's own page, the server's origin in the widget). */
  constructor(base) {
    this.base = base;
  }

  async post(path, body, { signal, accept } = {}) {
    const headers = { "Content-Type": "application/json" };
    if (accept) headers.Accept = accept;
    // On the chat's own page with a login (closed course group): the session's CSRF token (api/auth.py).
    const csrf = this.base ? null : document.querySelector('meta[name="csrf-token"]');
    if (csrf) headers["X-CSRF-Token"] = csrf.content;
    let response;
    try {
      response = await fetch(`${this.base}${path}`, { method: "POST", headers, body: JSON.stringify(body), signal });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new HttpError(this.base ? MESSAGES.networkWidget : MESSAGES.network, 0);
    }
    if (!response.ok) throw await httpError(response);
    return response;
  }

  /**
   * Ask a question. While the answer streams, onEvent(name, data) gets the "meta", "token", "citations" and
   * "phase" events; resolves with the final answer (the "done" event, or the JSON body of a non-streamed answer).
   */
  async ask(body, { signal, onEvent }) {
    const response = await this.post("/v1/ask", body, { signal, accept: "text/event-stream, application/json" });
    if (!(response.headers.get("content-type") || "").includes("text/event-stream")) return response.json();
    let result = null;
    await readEventStream(response, (event, data) => {
      if (signal.aborted) return;
      if (event === "done") result = data;
      else if (event === "error") throw new HttpError(data.message || data.detail || MESSAGES.server, 500);
      else onEvent(event, data);
    });
    if (!result) throw new HttpError(MESSAGES.interrupted, 0);
    return result;
  }

  sendFeedback(body) {
    return this.post("/v1/feedback", body);
  }
}
