// The conversation of one chat: its messages, filters and server conversation id, kept in localStorage so it
// survives a reload. Stored format: { v: 1, conversationId, filters: { phase, type }, messages: [...] }.

import { MESSAGES } from "./messages.js";

const MAX_HISTORY = 40; // messages (the API accepts at most 40)
const MAX_STORED = 80;
const MAX_HISTORY_CHARS = 8000;

function blank() {
  return { v: 1, conversationId: null, filters: { phase: "", type: "" }, messages: [] };
}

export class Conversation {
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.counter = 0;
    const { conversationId, filters, messages } = this.load();
    Object.assign(this, { conversationId, filters, messages });
  }

  load() {
    try {
      const raw = window.localStorage.getItem(this.storageKey);
      if (!raw) return blank();
      const state = { ...blank(), ...JSON.parse(raw) };
      if (!Array.isArray(state.messages)) state.messages = [];
      for (const msg of state.messages) {
        if (msg.role === "assistant" && msg.status === "streaming") {
          msg.status = "error";
          msg.error = MESSAGES.reloaded;
        }
      }
      return state;
    } catch {
      return blank();
    }
  }

  save() {
    try {
      const state = { v: 1, conversationId: this.conversationId, filters: this.filters, messages: this.messages.slice(-MAX_STORED) };
      window.localStorage.setItem(this.storageKey, JSON.stringify(state));
    } catch {
      /* storage full or disabled: the conversation simply does not survive a reload */
    }
  }

  /** Start over; the filters stay. */
  reset() {
    const { conversationId, messages } = blank();
    Object.assign(this, { conversationId, messages });
    this.save();
  }

  find(id) {
    return this.messages.find((m) => m.id === id);
  }

  newId() {
    this.counter += 1;
    return `${Date.now().toString(36)}${this.counter}`;
  }

  /** Add a question and its (still empty) answer; returns both messages. */
  addQuestion(question) {
    const filters = { ...this.filters };
    const user = { id: this.newId(), role: "user", content: question, filters };
    const answer = { id: this.newId(), role: "assistant", question, filters, feedback: null };
    resetAnswer(answer);
    this.messages.push(user, answer);
    return [user, answer];
  }

  /** The finished exchanges before a message, as the API's chat history. */
  history(beforeIndex = this.messages.length) {
    const history = [];
    for (const msg of this.messages.slice(0, beforeIndex)) {
      if (msg.role !== "assistant" || msg.status !== "done" || !msg.content) continue;
      history.push({ role: "user", content: msg.question.slice(0, MAX_HISTORY_CHARS) });
      history.push({ role: "assistant", content: msg.content.slice(0, MAX_HISTORY_CHARS) });
    }
    return history.slice(-MAX_HISTORY);
  }
}

/** An answer waiting for (new) text: empty and streaming. */
export function resetAnswer(msg) {
  Object.assign(msg, { content: "", citations: [], phase: null, abstained: false, notice: null, error: null, status: "streaming", tokenCount: 0, highlights: [] });
}
