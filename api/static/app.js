// Stadtretter Wissens-Chat: the chat UI as one mountable component. Used by the page (main.js) and by the widget
// (widget.js, inside a Shadow DOM). Plain ES modules, no build step, no external resources:
//   state.js     the conversation (messages, filters, conversation id) in localStorage
//   api.js       questions (streamed via sse.js) and feedback to the server, German errors
//   views.js     the DOM (message-views.js renders each message part)
//   feedback.js  rating and comments, copy.js  "Antwort kopieren"
// This module wires them: participant's actions → state → server → view.

import { ChatApi, HttpError, askBody } from "./api.js";
import { copyAnswer } from "./copy.js";
import { Feedback } from "./feedback.js";
import { MAX_QUESTION, MESSAGES } from "./messages.js";
import { Conversation, resetAnswer } from "./state.js";
import { ChatView } from "./views.js";
import { Vocabulary } from "./vocabulary.js";

let instances = 0;

/**
 * Render the chat into `root` (an element with class sr-app). options: vocabulary (the server's, required),
 * apiBase (the server's origin when embedded elsewhere), compact, title, storageKey, idPrefix, headerExtra.
 */
export function mountChat(root, options) {
  const chat = new Chat(root, options);
  chat.mount();
  return chat;
}

class Chat {
  constructor(root, options) {
    instances += 1;
    const opts = {
      apiBase: "",
      compact: false,
      title: "Stadtretter Wissens-Chat",
      storageKey: "stadtretter-chat:v1",
      idPrefix: `sr${instances}`,
      headerExtra: null,
      ...options,
    };
    this.root = root;
    this.base = opts.apiBase.replace(/\/$/, "");
    this.busy = false;
    this.controller = null;
    this.conversation = new Conversation(opts.storageKey);
    this.api = new ChatApi(this.base);
    this.view = new ChatView(root, { ...opts, vocabulary: new Vocabulary(opts.vocabulary), base: this.base });
    this.feedback = new Feedback(this.conversation, this.view, this.api);
  }

  mount() {
    const view = this.view;
    view.mount(this.conversation.filters);
    for (const input of view.filterInputs) {
      input.addEventListener("change", () => {
        this.conversation.filters[input.dataset.group] = input.value;
        this.conversation.save();
        view.updateFilterSummary(this.conversation.filters);
      });
    }
    view.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(view.input.value);
    });
    view.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        this.send(view.input.value);
      }
    });
    view.input.addEventListener("input", () => {
      view.clearInputError();
      view.autoGrow();
    });
    this.root.addEventListener("click", (event) => this.onClick(event));
    this.root.addEventListener("submit", (event) => {
      const form = event.target.closest?.(".sr-feedback");
      if (form) {
        event.preventDefault();
        this.feedback.send(form.dataset.id, form.querySelector("textarea").value);
      }
    });
    view.skipLink?.addEventListener("click", (event) => {
      event.preventDefault();
      view.input.focus();
    });
    view.renderLog(this.conversation.messages);
    if (this.conversation.messages.length) view.scrollToEnd(true);
  }

  onClick(event) {
    const target = event.target.closest("[data-action]");
    if (!target || !this.root.contains(target)) return;
    const action = target.dataset.action;
    const msg = target.dataset.id && this.conversation.find(target.dataset.id);
    if (action === "new") this.newConversation();
    else if (action === "example") {
      this.view.input.value = target.textContent.trim();
      this.send(this.view.input.value);
    } else if (action === "cite" && msg) {
      event.preventDefault();
      this.view.focusCitation(msg, Number(target.dataset.n));
    } else if (action === "retry" && msg) this.retry(msg);
    else if (action === "copy" && msg) copyAnswer(msg, target, this.view, this.base);
    else if (action === "rate" && msg) this.feedback.rate(msg, target.dataset.rating);
    else if (action === "feedback-cancel" && msg) this.feedback.cancel(msg);
  }

  setBusy(busy) {
    this.busy = busy;
    this.view.setBusy(busy);
  }

  newConversation() {
    if (this.controller) this.controller.abort();
    this.setBusy(false);
    this.conversation.reset();
    this.view.renderLog(this.conversation.messages);
    this.view.clearInput();
    this.view.clearInputError();
    this.view.announce("Neues Gespräch begonnen.");
    this.view.input.focus();
  }

  async send(raw) {
    const view = this.view;
    const question = String(raw || "").trim();
    if (this.busy) return view.announce(MESSAGES.busy);
    if (!question) {
      view.showInputError(MESSAGES.empty);
      view.input.focus();
      return;
    }
    if (question.length > MAX_QUESTION) return view.showInputError(MESSAGES.tooLong);
    view.clearInputError();
    const history = this.conversation.history();
    const [user, answer] = this.conversation.addQuestion(question);
    view.appendMessage(user);
    view.appendMessage(answer);
    view.clearInput();
    this.conversation.save();
    view.scrollToEnd(true);
    await this.ask(answer, history);
  }

  retry(msg) {
    if (this.busy) return this.view.announce(MESSAGES.busy);
    const index = this.conversation.messages.indexOf(msg);
    resetAnswer(msg);
    this.view.updateAnswer(msg);
    this.ask(msg, this.conversation.history(index));
  }

  /** Ask the server and stream the answer into `msg`; text is re-rendered at most once per animation frame. */
  async ask(msg, history) {
    const view = this.view;
    const conversation = this.conversation;
    this.setBusy(true);
    view.announce("Antwort wird erstellt …");
    const controller = new AbortController();
    this.controller = controller;
    let pending = false;
    const renderSoon = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        const stick = view.nearEnd();
        view.updateText(msg);
        if (stick) view.scrollToEnd(true);
      });
    };
    const onEvent = (event, data) => {
      if (event === "meta") {
        if (data.conversation_id) conversation.conversationId = data.conversation_id;
      } else if (event === "token") {
        msg.content += data.text ?? "";
        msg.tokenCount += 1;
        renderSoon();
      } else if (event === "citations") {
        msg.citations = data.citations || [];
        view.updateSources(msg);
      } else if (event === "phase") {
        msg.phase = data;
        view.updatePhase(msg);
      }
    };
    try {
      const body = askBody(msg, history, conversation.conversationId);
      const data = await this.api.ask(body, { signal: controller.signal, onEvent });
      if (typeof data.answer === "string") msg.content = data.answer;
      if (Array.isArray(data.citations)) msg.citations = data.citations;
      if (data.phase !== undefined && data.phase !== null) msg.phase = data.phase;
      msg.abstained = Boolean(data.abstained);
      msg.highlights = Array.isArray(data.highlights) ? data.highlights : [];
      msg.notice = data.notice || null;
      if (data.conversation_id) conversation.conversationId = data.conversation_id;
      msg.status = "done";
      view.updateAnswer(msg);
      const count = msg.citations.length;
      view.announce(
        msg.abstained
          ? `Keine belastbare Antwort gefunden. ${count} nächstliegende Quellen.`
          : `Antwort fertig, ${count} ${count === 1 ? "Quelle" : "Quellen"}.`,
      );
    } catch (error) {
      if (error.name === "AbortError") return;
      msg.status = "error";
      msg.error = error instanceof HttpError ? error.message : MESSAGES.server;
      view.updateAnswer(msg);
      view.announce(msg.error);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.setBusy(false);
      }
      conversation.save();
      view.scrollToEnd();
    }
  }
}
