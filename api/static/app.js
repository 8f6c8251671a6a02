// Stadtretter Wissens-Chat: the chat UI as one mountable component. Used by the page (main.js) and by the widget
// (widget.js, inside a Shadow DOM). Plain ES module, no build step, no external resources.

import { icons, typeIcon } from "./icons.js";
import { readEventStream } from "./sse.js";
import {
  TYPE_LABELS,
  answerMarkdown,
  citationLinks,
  escapeHTML as esc,
  formatDate,
  phaseKey,
  phaseLabel,
  renderAnswerHTML,
} from "./format.js";

const EXAMPLES = [
  "Wie lässt sich ein kostenloses Innenstadt-WLAN dauerhaft finanzieren?",
  "Wie bereite ich eine Passantenbefragung in der Innenstadt vor?",
  "Was ist ein Verfügungsfonds und wofür kann er eingesetzt werden?",
  "Wie gelingt der Generationenwechsel im inhabergeführten Handel?",
];
const PHASE_OPTIONS = [
  ["", "Alle"],
  ["E", "Evaluation"],
  ["K", "Konzeption"],
  ["T", "Transformation"],
];
const TYPE_OPTIONS = [
  ["", "Alle"],
  ["article", "Artikel"],
  ["webtalk", "WebTalk"],
  ["course", "Kursmaterial"],
];
const MAX_QUESTION = 2000;
const MAX_HISTORY = 40; // messages (the API accepts at most 40)
const MAX_STORED = 80;

const MESSAGES = {
  empty: "Bitte geben Sie zuerst eine Frage ein.",
  tooLong: `Die Frage ist zu lang (höchstens ${MAX_QUESTION} Zeichen).`,
  busy: "Bitte warten Sie, bis die aktuelle Antwort fertig ist.",
  network:
    "Keine Verbindung zum Wissens-Chat. Bitte prüfen Sie Ihre Internetverbindung und versuchen Sie es erneut.",
  networkWidget:
    "Keine Verbindung zum Wissens-Chat. Entweder ist der Server gerade nicht erreichbar oder diese Website ist für den Chat nicht freigeschaltet.",
  unavailable: "Der Wissens-Chat ist gerade nicht verfügbar. Bitte versuchen Sie es in einigen Minuten erneut.",
  server: "Beim Beantworten ist ein Fehler aufgetreten. Bitte versuchen Sie es erneut.",
  invalid: "Die Frage konnte nicht verarbeitet werden. Bitte formulieren Sie sie kürzer oder anders.",
  rateLimited: "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut.",
  interrupted: "Die Antwort wurde unterbrochen. Bitte versuchen Sie es erneut.",
  reloaded: "Die Antwort wurde durch das Neuladen der Seite unterbrochen. Bitte versuchen Sie es erneut.",
  feedbackFailed: "Das Feedback konnte nicht gesendet werden. Bitte versuchen Sie es später erneut.",
  copyFailed: "Kopieren war nicht möglich. Bitte markieren Sie den Text und kopieren Sie ihn von Hand.",
};

class HttpError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

let instances = 0;

export function mountChat(root, options = {}) {
  const chat = new Chat(root, options);
  chat.mount();
  return chat;
}

class Chat {
  constructor(root, options) {
    instances += 1;
    this.root = root;
    this.opts = {
      apiBase: "",
      compact: false,
      title: "Stadtretter Wissens-Chat",
      storageKey: "stadtretter-chat:v1",
      idPrefix: `sr${instances}`,
      headerExtra: null,
      ...options,
    };
    this.base = this.opts.apiBase.replace(/\/$/, "");
    this.busy = false;
    this.controller = null;
    this.counter = 0;
    this.state = this.load();
  }

  // ---------------------------------------------------------------------------------------------------------
  // State and persistence

  blankState() {
    return { v: 1, conversationId: null, filters: { phase: "", type: "" }, messages: [] };
  }

  load() {
    try {
      const raw = window.localStorage.getItem(this.opts.storageKey);
      if (!raw) return this.blankState();
      const state = { ...this.blankState(), ...JSON.parse(raw) };
      if (!Array.isArray(state.messages)) state.messages = [];
      for (const msg of state.messages) {
        if (msg.role === "assistant" && msg.status === "streaming") {
          msg.status = "error";
          msg.error = MESSAGES.reloaded;
        }
      }
      return state;
    } catch {
      return this.blankState();
    }
  }

  save() {
    try {
      const state = { ...this.state, messages: this.state.messages.slice(-MAX_STORED) };
      window.localStorage.setItem(this.opts.storageKey, JSON.stringify(state));
    } catch {
      /* storage full or disabled: the conversation simply does not survive a reload */
    }
  }

  newId() {
    this.counter += 1;
    return `${Date.now().toString(36)}${this.counter}`;
  }

  pid(suffix) {
    return `${this.opts.idPrefix}-${suffix}`;
  }

  api(path) {
    return `${this.base}${path}`;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Skeleton

  mount() {
    const p = this.opts.idPrefix;
    const compact = this.opts.compact;
    const openFilters = !compact && window.matchMedia("(min-width: 641px)").matches;
    this.root.innerHTML = `
      <div class="sr-shell ${compact ? "sr-compact" : "sr-full"}">
        ${compact ? "" : `<a class="sr-skip" href="#${p}-q">Direkt zur Frage</a>`}
        <header class="sr-header">
          <div class="sr-brand">
            ${icons.logo}
            <div>
              <h1 class="sr-title">${esc(this.opts.title)}</h1>
              <p class="sr-tagline">Antworten mit Quellen aus Artikeln, WebTalks und Kursmaterial der Akademie</p>
            </div>
          </div>
          <div class="sr-header-actions">
            <button type="button" class="sr-btn sr-btn-secondary" data-action="new">${icons.plus}<span class="sr-label-full">Neues Gespräch</span><span class="sr-label-short" aria-hidden="true">Neu</span></button>
          </div>
        </header>
        <details class="sr-filters" ${openFilters ? "open" : ""}>
          <summary><span class="sr-summary-label">${icons.filter}<span>Filter</span></span> <span class="sr-filter-summary" data-role="filter-summary"></span></summary>
          <div class="sr-filter-groups">
            ${this.chipGroup("phase", "EKT-Phase", PHASE_OPTIONS)}
            ${this.chipGroup("type", "Quellentyp", TYPE_OPTIONS)}
            <p class="sr-filter-hint">Die Filter gelten ab der nächsten Frage.</p>
          </div>
        </details>
        <main class="sr-main" data-role="main" tabindex="-1" aria-label="Gesprächsverlauf">
          <div class="sr-log" data-role="log"></div>
        </main>
        <form class="sr-composer" data-role="composer" novalidate>
          <label class="sr-composer-label" for="${p}-q">Ihre Frage</label>
          <div class="sr-composer-row">
            <textarea id="${p}-q" class="sr-input" data-role="input" rows="2" maxlength="${MAX_QUESTION}"
              autocomplete="off" aria-describedby="${p}-hint ${p}-qerr"
              placeholder="z. B. Wie finanziere ich ein Innenstadt-WLAN?"></textarea>
            <button type="submit" class="sr-btn sr-btn-primary sr-send" data-role="send">${icons.send}<span>Fragen</span></button>
          </div>
          <p class="sr-field-error" id="${p}-qerr" data-role="input-error" aria-live="assertive"></p>
          <p class="sr-hint" id="${p}-hint">Enter sendet · Umschalt+Enter für eine neue Zeile</p>
        </form>
        <div class="sr-visually-hidden" role="status" aria-live="polite" data-role="status"></div>
      </div>`;
    const $ = (role) => this.root.querySelector(`[data-role="${role}"]`);
    this.shell = this.root.querySelector(".sr-shell");
    this.main = $("main");
    this.log = $("log");
    this.input = $("input");
    this.sendButton = $("send");
    this.statusEl = $("status");
    this.inputError = $("input-error");
    this.filterSummary = $("filter-summary");
    if (this.opts.headerExtra) this.root.querySelector(".sr-header-actions").append(this.opts.headerExtra);

    for (const input of this.root.querySelectorAll(".sr-filters input[type=radio]")) {
      input.checked = (this.state.filters[input.dataset.group] || "") === input.value;
      input.addEventListener("change", () => {
        this.state.filters[input.dataset.group] = input.value;
        this.save();
        this.updateFilterSummary();
      });
    }
    this.updateFilterSummary();

    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(this.input.value);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        this.send(this.input.value);
      }
    });
    this.input.addEventListener("input", () => {
      this.clearInputError();
      this.autoGrow();
    });
    this.root.addEventListener("click", (event) => this.onClick(event));
    this.root.addEventListener("submit", (event) => {
      const form = event.target.closest?.(".sr-feedback");
      if (form) {
        event.preventDefault();
        this.sendFeedback(form.dataset.id, form.querySelector("textarea").value);
      }
    });
    const skip = this.root.querySelector(".sr-skip");
    if (skip) {
      skip.addEventListener("click", (event) => {
        event.preventDefault();
        this.input.focus();
      });
    }
    this.renderLog();
    if (this.state.messages.length) this.scrollToEnd(true);
  }

  chipGroup(group, legend, options) {
    const name = this.pid(group);
    const chips = options
      .map(([value, label]) => {
        const id = `${name}-${value || "alle"}`;
        let visual = esc(label);
        if (group === "phase" && value) visual = `<span class="sr-phase-letter" aria-hidden="true">${value}</span>${esc(label)}`;
        if (group === "type") visual = `${value ? typeIcon(value) : icons.all}${esc(label)}`;
        const cls = group === "phase" && value ? ` sr-chip-${value}` : "";
        return `<label class="sr-chip${cls}" for="${id}"><input type="radio" class="sr-chip-input" id="${id}" name="${name}" value="${value}" data-group="${group}"><span class="sr-chip-face">${visual}</span></label>`;
      })
      .join("");
    return `<fieldset class="sr-chipgroup" data-group="${group}"><legend>${legend}</legend><div class="sr-chips">${chips}</div></fieldset>`;
  }

  filterText(filters) {
    const parts = [];
    if (filters.phase) parts.push(`Phase ${filters.phase} ${phaseLabel(filters.phase)}`);
    if (filters.type) parts.push(TYPE_LABELS[filters.type]);
    return parts.join(" · ");
  }

  updateFilterSummary() {
    const text = this.filterText(this.state.filters);
    this.filterSummary.textContent = text ? `(${text})` : "(alle Phasen, alle Quellentypen)";
  }

  // ---------------------------------------------------------------------------------------------------------
  // Rendering

  renderLog() {
    if (!this.state.messages.length) {
      this.log.innerHTML = this.emptyHTML();
      return;
    }
    this.log.innerHTML = "";
    for (const msg of this.state.messages) this.appendMessage(msg);
  }

  emptyHTML() {
    const examples = EXAMPLES.map(
      (q) => `<li><button type="button" class="sr-example" data-action="example">${esc(q)}</button></li>`,
    ).join("");
    return `
      <section class="sr-empty" aria-labelledby="${this.pid("empty-h")}">
        <h2 id="${this.pid("empty-h")}">Was möchten Sie wissen?</h2>
        <p>Der Wissens-Chat beantwortet Fragen aus Artikeln, WebTalks und Kursmaterial der Stadtretter-Akademie –
        mit Quellenangaben zum Nachlesen und der passenden Phase der EKT-Methode
        (<span class="sr-nowrap">Evaluation, Konzeption, Transformation</span>).</p>
        <h3 class="sr-examples-title">Beispielfragen</h3>
        <ul class="sr-examples">${examples}</ul>
      </section>`;
  }

  appendMessage(msg) {
    const empty = this.log.querySelector(".sr-empty");
    if (empty) empty.remove();
    const node = document.createElement(msg.role === "user" ? "div" : "article");
    node.dataset.id = msg.id;
    this.log.append(node);
    if (msg.role === "user") this.renderUser(node, msg);
    else this.renderAssistant(node, msg);
    return node;
  }

  nodeFor(msg) {
    return this.log.querySelector(`[data-id="${msg.id}"]`);
  }

  renderUser(node, msg) {
    node.className = "sr-msg sr-msg-user";
    const filters = msg.filters && this.filterText(msg.filters);
    node.innerHTML = `
      <h2 class="sr-visually-hidden">Ihre Frage</h2>
      <p class="sr-question">${esc(msg.content).replace(/\n/g, "<br>")}</p>
      ${filters ? `<p class="sr-msg-filters">${icons.filter}<span>Gefiltert: ${esc(filters)}</span></p>` : ""}`;
  }

  renderAssistant(node, msg) {
    node.className = "sr-msg sr-msg-assistant";
    node.setAttribute("aria-labelledby", this.pid(`${msg.id}-h`));
    node.innerHTML = `
      <h2 class="sr-visually-hidden" id="${this.pid(`${msg.id}-h`)}">Antwort</h2>
      <div class="sr-slot-phase"></div>
      <div class="sr-answer-text" aria-live="polite"></div>
      <div class="sr-slot-notice"></div>
      <div class="sr-slot-sources"></div>
      <div class="sr-slot-actions"></div>
      <div class="sr-slot-feedback"></div>`;
    this.updateAssistant(msg, node);
  }

  updateAssistant(msg, node = this.nodeFor(msg)) {
    if (!node) return;
    node.dataset.state = msg.status;
    node.dataset.tokenCount = String(msg.tokenCount || 0);
    node.classList.toggle("sr-abstained", Boolean(msg.abstained));
    this.updatePhase(msg, node);
    this.updateText(msg, node);
    this.updateNotice(msg, node);
    this.updateSources(msg, node);
    this.updateActions(msg, node);
    this.updateFeedback(msg, node);
  }

  markerHTML(msg) {
    const byN = new Map((msg.citations || []).map((c) => [c.n, c]));
    return (n) => {
      const c = byN.get(n);
      const label = c ? `Quelle ${n}: ${c.title}` : `Quelle ${n}`;
      return `<a class="sr-marker" href="#${this.pid(`${msg.id}-cite-${n}`)}" data-action="cite" data-id="${msg.id}" data-n="${n}" aria-label="${esc(label)}">[${n}]</a>`;
    };
  }

  updateText(msg, node = this.nodeFor(msg)) {
    if (!node) return;
    const text = node.querySelector(".sr-answer-text");
    const streaming = msg.status === "streaming";
    text.setAttribute("aria-busy", streaming ? "true" : "false");
    if (streaming && !msg.content) {
      text.innerHTML = `<p class="sr-typing"><span class="sr-dots" aria-hidden="true"><span></span><span></span><span></span></span>Antwort wird erstellt …</p>`;
    } else {
      text.innerHTML = renderAnswerHTML(msg.content, this.markerHTML(msg)) + (streaming ? `<span class="sr-caret" aria-hidden="true"></span>` : "");
    }
    if (msg.status === "error") {
      text.innerHTML += `
        <div class="sr-error" role="alert">
          ${icons.alert}
          <div><p>${esc(msg.error || MESSAGES.server)}</p>
          <button type="button" class="sr-btn sr-btn-secondary sr-btn-small" data-action="retry" data-id="${msg.id}">${icons.retry}<span>Erneut versuchen</span></button></div>
        </div>`;
    }
  }

  updatePhase(msg, node) {
    const slot = node.querySelector(".sr-slot-phase");
    const phase = msg.phase;
    if (!phase || !phase.phase || msg.abstained) {
      slot.innerHTML = "";
      return;
    }
    slot.innerHTML = `
      <div class="sr-answer-phase">
        ${this.phaseBadge(phase.phase, phase.label)}
        ${phase.explanation ? `<span class="sr-phase-expl">${esc(phase.explanation)}</span>` : ""}
      </div>`;
  }

  phaseBadge(phase, label) {
    if (!phase) return "";
    const key = phaseKey(phase);
    const name = label || phaseLabel(phase);
    const letter = key === "X" ? "" : `<span class="sr-phase-letter" aria-hidden="true">${esc(phase)}</span>`;
    return `<span class="sr-phase sr-phase-${key}">${letter}<span class="sr-visually-hidden">EKT-Phase: </span>${esc(name)}</span>`;
  }

  updateNotice(msg, node) {
    const slot = node.querySelector(".sr-slot-notice");
    slot.innerHTML = msg.notice ? `<p class="sr-notice">${icons.info}<span>${esc(msg.notice)}</span></p>` : "";
  }

  updateSources(msg, node) {
    const slot = node.querySelector(".sr-slot-sources");
    const citations = msg.citations || [];
    if (!citations.length) {
      slot.innerHTML = "";
      return;
    }
    const title = msg.abstained ? "Nächstliegende Quellen" : "Quellen";
    const headingId = this.pid(`${msg.id}-src`);
    slot.innerHTML = `
      <section class="sr-sources" aria-labelledby="${headingId}">
        <h3 class="sr-sources-title" id="${headingId}">${title} <span class="sr-count">(${citations.length})</span></h3>
        <ol class="sr-cards">${citations.map((c) => this.cardHTML(msg, c)).join("")}</ol>
      </section>`;
  }

  cardHTML(msg, c) {
    const type = TYPE_LABELS[c.type] || c.type || "Quelle";
    const date = c.date ? `<time datetime="${esc(c.date)}">${esc(formatDate(c.date))}</time>` : "";
    const links = citationLinks(c, this.base)
      .map(
        (link) =>
          `<a class="sr-card-link sr-card-link-${link.kind}" href="${esc(link.href)}" target="_blank" rel="noopener">` +
          `${icons[link.icon] || ""}<span>${esc(link.label)}</span><span class="sr-visually-hidden"> – ${esc(c.title)} (öffnet in neuem Tab)</span></a>`,
      )
      .join("");
    const meta = [`<span class="sr-type sr-type-${esc(c.type)}">${typeIcon(c.type)}<span>${esc(type)}</span></span>`];
    if (date) meta.push(date);
    return `
      <li class="sr-card" id="${this.pid(`${msg.id}-cite-${c.n}`)}" tabindex="-1" data-n="${c.n}" data-type="${esc(c.type)}" data-source-id="${esc(c.source_id)}">
        <div class="sr-card-head">
          <span class="sr-card-n" aria-hidden="true">${c.n}</span>
          <h4 class="sr-card-title"><span class="sr-visually-hidden">Quelle ${c.n}: </span>${esc(c.title)}</h4>
        </div>
        <p class="sr-card-meta">${meta.join('<span class="sr-sep" aria-hidden="true">·</span>')}${c.phase ? this.phaseBadge(c.phase) : ""}</p>
        ${c.locator ? `<p class="sr-card-locator">${esc(c.locator)}</p>` : ""}
        ${c.snippet ? `<blockquote class="sr-snippet"><p>${esc(c.snippet)}</p></blockquote>` : ""}
        <p class="sr-card-links">${links}</p>
      </li>`;
  }

  updateActions(msg, node) {
    const slot = node.querySelector(".sr-slot-actions");
    if (msg.status !== "done") {
      slot.innerHTML = "";
      return;
    }
    const rating = msg.feedback?.rating;
    const sent = msg.feedback?.sent;
    const rateButton = (value, label, icon) =>
      `<button type="button" class="sr-btn sr-btn-icon" data-action="rate" data-id="${msg.id}" data-rating="${value}"
        aria-pressed="${rating === value}" ${sent ? "disabled" : ""} title="${label}">${icon}<span class="sr-visually-hidden">${label}</span></button>`;
    slot.innerHTML = `
      <div class="sr-actions">
        <button type="button" class="sr-btn sr-btn-ghost" data-action="copy" data-id="${msg.id}">${icons.copy}<span data-role="copy-label">Antwort kopieren</span></button>
        <div class="sr-rate" role="group" aria-label="War diese Antwort hilfreich?">
          <span class="sr-rate-label" aria-hidden="true">Hilfreich?</span>
          ${rateButton("up", "Ja, hilfreich", icons.thumbUp)}
          ${rateButton("down", "Nein, nicht hilfreich", icons.thumbDown)}
        </div>
      </div>`;
  }

  updateFeedback(msg, node) {
    const slot = node.querySelector(".sr-slot-feedback");
    const fb = msg.feedback;
    if (!fb || msg.status !== "done") {
      slot.innerHTML = "";
      return;
    }
    if (fb.sent) {
      slot.innerHTML = `<p class="sr-feedback-done" role="status">${icons.check}<span>Danke für Ihr Feedback!</span></p>`;
      return;
    }
    const id = this.pid(`${msg.id}-fb`);
    slot.innerHTML = `
      <form class="sr-feedback" data-id="${msg.id}">
        <label for="${id}">${fb.rating === "up" ? "Schön, dass es geholfen hat!" : "Danke – was hat gefehlt oder war falsch?"} Ihr Kommentar (optional):</label>
        <textarea id="${id}" rows="2" maxlength="2000"></textarea>
        ${fb.error ? `<p class="sr-field-error" role="alert">${esc(fb.error)}</p>` : ""}
        <div class="sr-feedback-buttons">
          <button type="submit" class="sr-btn sr-btn-primary sr-btn-small">Feedback senden</button>
          <button type="button" class="sr-btn sr-btn-ghost sr-btn-small" data-action="feedback-cancel" data-id="${msg.id}">Abbrechen</button>
        </div>
      </form>`;
    slot.querySelector("textarea").value = fb.comment || "";
  }

  announce(text) {
    this.statusEl.textContent = "";
    window.setTimeout(() => {
      this.statusEl.textContent = text;
    }, 50);
  }

  setBusy(busy) {
    this.busy = busy;
    this.sendButton.disabled = busy;
    this.shell.classList.toggle("sr-busy", busy);
  }

  autoGrow() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 200)}px`;
  }

  showInputError(text) {
    this.inputError.textContent = text;
    this.input.setAttribute("aria-invalid", "true");
  }

  clearInputError() {
    if (!this.inputError.textContent) return;
    this.inputError.textContent = "";
    this.input.removeAttribute("aria-invalid");
  }

  scroller() {
    return this.opts.compact ? this.main : document.scrollingElement || document.documentElement;
  }

  nearEnd() {
    const el = this.scroller();
    return el.scrollHeight - el.scrollTop - el.clientHeight < 160;
  }

  scrollToEnd(force = false) {
    if (!force && !this.nearEnd()) return;
    const el = this.scroller();
    el.scrollTop = el.scrollHeight;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Events

  onClick(event) {
    const target = event.target.closest("[data-action]");
    if (!target || !this.root.contains(target)) return;
    const action = target.dataset.action;
    const msg = target.dataset.id && this.state.messages.find((m) => m.id === target.dataset.id);
    if (action === "new") this.newConversation();
    else if (action === "example") {
      this.input.value = target.textContent.trim();
      this.send(this.input.value);
    } else if (action === "cite" && msg) {
      event.preventDefault();
      this.focusCitation(msg, Number(target.dataset.n));
    } else if (action === "retry" && msg) this.retry(msg);
    else if (action === "copy" && msg) this.copy(msg, target);
    else if (action === "rate" && msg) this.rate(msg, target.dataset.rating);
    else if (action === "feedback-cancel" && msg) {
      msg.feedback = null;
      this.save();
      this.updateAssistant(msg);
      this.nodeFor(msg)?.querySelector(`[data-action="rate"]`)?.focus();
    }
  }

  focusCitation(msg, n) {
    const card = this.root.querySelector(`#${CSS.escape(this.pid(`${msg.id}-cite-${n}`))}`);
    if (!card) return;
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    card.focus({ preventScroll: true });
    card.classList.remove("sr-flash");
    void card.offsetWidth; // restart the highlight animation
    card.classList.add("sr-flash");
  }

  newConversation() {
    if (this.controller) this.controller.abort();
    this.setBusy(false);
    this.state = { ...this.blankState(), filters: this.state.filters };
    this.save();
    this.renderLog();
    this.input.value = "";
    this.autoGrow();
    this.clearInputError();
    this.announce("Neues Gespräch begonnen.");
    this.input.focus();
  }

  history(beforeIndex = this.state.messages.length) {
    const history = [];
    for (const msg of this.state.messages.slice(0, beforeIndex)) {
      if (msg.role !== "assistant" || msg.status !== "done" || !msg.content) continue;
      history.push({ role: "user", content: msg.question.slice(0, 8000) });
      history.push({ role: "assistant", content: msg.content.slice(0, 8000) });
    }
    return history.slice(-MAX_HISTORY);
  }

  async send(raw) {
    const question = String(raw || "").trim();
    if (this.busy) return this.announce(MESSAGES.busy);
    if (!question) {
      this.showInputError(MESSAGES.empty);
      this.input.focus();
      return;
    }
    if (question.length > MAX_QUESTION) return this.showInputError(MESSAGES.tooLong);
    this.clearInputError();
    const filters = { ...this.state.filters };
    const history = this.history();
    const user = { id: this.newId(), role: "user", content: question, filters };
    const answer = {
      id: this.newId(),
      role: "assistant",
      question,
      filters,
      content: "",
      citations: [],
      phase: null,
      abstained: false,
      notice: null,
      status: "streaming",
      tokenCount: 0,
      feedback: null,
    };
    this.state.messages.push(user, answer);
    this.appendMessage(user);
    this.appendMessage(answer);
    this.input.value = "";
    this.autoGrow();
    this.save();
    this.scrollToEnd(true);
    await this.ask(answer, history);
  }

  retry(msg) {
    if (this.busy) return this.announce(MESSAGES.busy);
    const index = this.state.messages.indexOf(msg);
    Object.assign(msg, { content: "", citations: [], phase: null, abstained: false, notice: null, error: null, status: "streaming", tokenCount: 0 });
    this.updateAssistant(msg);
    this.ask(msg, this.history(index));
  }

  requestBody(msg, history) {
    const filters = {};
    if (msg.filters?.phase) filters.phase = [msg.filters.phase];
    if (msg.filters?.type) filters.type = [msg.filters.type];
    const body = { question: msg.question, history, stream: true };
    if (Object.keys(filters).length) body.filters = filters;
    if (this.state.conversationId) body.conversation_id = this.state.conversationId;
    return body;
  }

  async ask(msg, history) {
    this.setBusy(true);
    this.announce("Antwort wird erstellt …");
    const controller = new AbortController();
    this.controller = controller;
    let finished = false;
    let pending = false;
    const renderSoon = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        const stick = this.nearEnd();
        this.updateText(msg);
        const node = this.nodeFor(msg);
        if (node) node.dataset.tokenCount = String(msg.tokenCount);
        if (stick) this.scrollToEnd(true);
      });
    };
    const finish = (data) => {
      finished = true;
      if (typeof data.answer === "string") msg.content = data.answer;
      if (Array.isArray(data.citations)) msg.citations = data.citations;
      if (data.phase !== undefined && data.phase !== null) msg.phase = data.phase;
      msg.abstained = Boolean(data.abstained);
      msg.notice = data.notice || null;
      if (data.conversation_id) this.state.conversationId = data.conversation_id;
      msg.status = "done";
    };
    try {
      let response;
      try {
        response = await fetch(this.api("/v1/ask"), {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream, application/json" },
          body: JSON.stringify(this.requestBody(msg, history)),
          signal: controller.signal,
        });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        throw new HttpError(this.base ? MESSAGES.networkWidget : MESSAGES.network, 0);
      }
      if (!response.ok) throw await this.httpError(response);
      const contentType = response.headers.get("content-type") || "";
      if (contentType.includes("text/event-stream")) {
        await readEventStream(response, (event, data) => {
          if (controller.signal.aborted) return;
          if (event === "meta") {
            if (data.conversation_id) this.state.conversationId = data.conversation_id;
          } else if (event === "token") {
            msg.content += data.text ?? "";
            msg.tokenCount += 1;
            renderSoon();
          } else if (event === "citations") {
            msg.citations = data.citations || [];
            this.updateSources(msg, this.nodeFor(msg));
          } else if (event === "phase") {
            msg.phase = data;
            this.updatePhase(msg, this.nodeFor(msg));
          } else if (event === "done") {
            finish(data);
          } else if (event === "error") {
            throw new HttpError(data.message || data.detail || MESSAGES.server, 500);
          }
        });
        if (!finished) throw new HttpError(MESSAGES.interrupted, 0);
      } else {
        finish(await response.json());
      }
      this.updateAssistant(msg);
      const count = msg.citations.length;
      this.announce(
        msg.abstained
          ? `Keine belastbare Antwort gefunden. ${count} nächstliegende Quellen.`
          : `Antwort fertig, ${count} ${count === 1 ? "Quelle" : "Quellen"}.`,
      );
    } catch (error) {
      if (error.name === "AbortError") return;
      msg.status = "error";
      msg.error = error instanceof HttpError ? error.message : MESSAGES.server;
      this.updateAssistant(msg);
      this.announce(msg.error);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.setBusy(false);
      }
      this.save();
      this.scrollToEnd();
    }
  }

  async httpError(response) {
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

  // ---------------------------------------------------------------------------------------------------------
  // Copy and feedback

  async copy(msg, button) {
    const pageUrl = this.base ? `${this.base}/` : window.location.href;
    const markdown = answerMarkdown({ ...msg, base: this.base }, pageUrl);
    let ok = false;
    try {
      await navigator.clipboard.writeText(markdown);
      ok = true;
    } catch {
      const area = document.createElement("textarea");
      area.value = markdown;
      area.setAttribute("readonly", "");
      area.className = "sr-offscreen";
      this.shell.append(area);
      area.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
      button.focus();
    }
    const label = button.querySelector('[data-role="copy-label"]');
    if (ok) {
      label.textContent = "Kopiert!";
      this.announce("Antwort mit Quellen als Markdown kopiert.");
      window.setTimeout(() => {
        label.textContent = "Antwort kopieren";
      }, 2000);
    } else {
      this.announce(MESSAGES.copyFailed);
    }
  }

  rate(msg, rating) {
    if (msg.feedback?.sent) return;
    msg.feedback = { rating, sent: false };
    this.save();
    this.updateAssistant(msg);
    this.nodeFor(msg)?.querySelector(".sr-feedback textarea")?.focus();
  }

  async sendFeedback(id, comment) {
    const msg = this.state.messages.find((m) => m.id === id);
    if (!msg || !msg.feedback) return;
    const body = {
      question: msg.question,
      answer: msg.content,
      citations: (msg.citations || []).map(({ n, source_id, title, type, locator, chunk_id, url, snippet }) => ({
        n, source_id, title, type, locator, chunk_id, url, snippet,
      })),
      rating: msg.feedback.rating,
      comment: comment.trim() || null,
      conversation_id: this.state.conversationId,
    };
    try {
      const response = await fetch(this.api("/v1/feedback"), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw await this.httpError(response);
      msg.feedback = { rating: msg.feedback.rating, sent: true };
      this.announce("Danke für Ihr Feedback!");
    } catch (error) {
      msg.feedback.comment = comment;
      msg.feedback.error = error instanceof HttpError && error.status ? error.message : MESSAGES.feedbackFailed;
    }
    this.save();
    this.updateAssistant(msg);
    const node = this.nodeFor(msg);
    const next = msg.feedback.sent ? node?.querySelector(".sr-feedback-done") : node?.querySelector(".sr-feedback textarea");
    if (next) {
      if (!next.matches("textarea")) next.setAttribute("tabindex", "-1");
      next.focus();
    }
  }
}
