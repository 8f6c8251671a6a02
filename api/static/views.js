// The chat's DOM: the shell (header, filters, log, composer, live region) and the messages in the log. Renders
// state, never changes it; app.js wires events to state and server.

import { icons, typeIcon } from "./icons.js";
import { MAX_QUESTION } from "./messages.js";
import { escapeHTML as esc } from "./format.js";
import {
  actionsHTML,
  answerHTML,
  answerPhaseHTML,
  answerTextHTML,
  feedbackHTML,
  filterText,
  noticeHTML,
  questionHTML,
  sourcesHTML,
} from "./message-views.js";

const EXAMPLES = [
  "Wie lässt sich ein kostenloses Innenstadt-WLAN dauerhaft finanzieren?",
  "Wie bereite ich eine Passantenbefragung in der Innenstadt vor?",
  "Was ist ein Verfügungsfonds und wofür kann er eingesetzt werden?",
  "Wie gelingt der Generationenwechsel im inhabergeführten Handel?",
];

export class ChatView {
  /** opts: idPrefix, compact, title, headerExtra (an element for the header), vocabulary, base. */
  constructor(root, opts) {
    this.root = root;
    this.opts = opts;
    this.ui = { pid: (suffix) => `${opts.idPrefix}-${suffix}`, vocabulary: opts.vocabulary, base: opts.base };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Shell

  mount(filters) {
    const p = this.opts.idPrefix;
    const compact = this.opts.compact;
    const openFilters = !compact && window.matchMedia("(min-width: 641px)").matches;
    const all = ["", "Alle"];
    const phaseOptions = [all, ...this.opts.vocabulary.filterPhases().map((phase) => [phase.key, phase.label])];
    const typeOptions = [all, ...this.opts.vocabulary.types.map((type) => [type.key, type.label])];
    this.opts.vocabulary.applyColours(this.root);
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
            ${this.chipGroup("phase", "EKT-Phase", phaseOptions)}
            ${this.chipGroup("type", "Quellentyp", typeOptions)}
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
    this.composer = $("composer");
    this.input = $("input");
    this.sendButton = $("send");
    this.statusEl = $("status");
    this.inputError = $("input-error");
    this.filterSummary = $("filter-summary");
    this.skipLink = this.root.querySelector(".sr-skip");
    this.filterInputs = [...this.root.querySelectorAll(".sr-filters input[type=radio]")];
    if (this.opts.headerExtra) this.root.querySelector(".sr-header-actions").append(this.opts.headerExtra);
    for (const input of this.filterInputs) input.checked = (filters[input.dataset.group] || "") === input.value;
    this.updateFilterSummary(filters);
  }

  chipGroup(group, legend, options) {
    const name = this.ui.pid(group);
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

  updateFilterSummary(filters) {
    const text = filterText(this.opts.vocabulary, filters);
    this.filterSummary.textContent = text ? `(${text})` : "(alle Phasen, alle Quellentypen)";
  }

  announce(text) {
    this.statusEl.textContent = "";
    window.setTimeout(() => {
      this.statusEl.textContent = text;
    }, 50);
  }

  setBusy(busy) {
    this.sendButton.disabled = busy;
    this.shell.classList.toggle("sr-busy", busy);
  }

  autoGrow() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 200)}px`;
  }

  clearInput() {
    this.input.value = "";
    this.autoGrow();
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
  // Messages

  renderLog(messages) {
    if (!messages.length) {
      this.log.innerHTML = this.emptyHTML();
      return;
    }
    this.log.innerHTML = "";
    for (const msg of messages) this.appendMessage(msg);
  }

  emptyHTML() {
    const heading = this.ui.pid("empty-h");
    const phases = this.opts.vocabulary.filterPhases().map((phase) => phase.label).join(", ");
    const examples = EXAMPLES.map(
      (q) => `<li><button type="button" class="sr-example" data-action="example">${esc(q)}</button></li>`,
    ).join("");
    return `
      <section class="sr-empty" aria-labelledby="${heading}">
        <h2 id="${heading}">Was möchten Sie wissen?</h2>
        <p>Der Wissens-Chat beantwortet Fragen aus Artikeln, WebTalks und Kursmaterial der Stadtretter-Akademie –
        mit Quellenangaben zum Nachlesen und der passenden Phase der EKT-Methode
        (<span class="sr-nowrap">${esc(phases)}</span>).</p>
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
    if (msg.role === "user") {
      node.className = "sr-msg sr-msg-user";
      node.innerHTML = questionHTML(this.ui, msg);
    } else {
      node.className = "sr-msg sr-msg-assistant";
      node.setAttribute("aria-labelledby", this.ui.pid(`${msg.id}-h`));
      node.innerHTML = answerHTML(this.ui, msg);
      this.updateAnswer(msg, node);
    }
    return node;
  }

  nodeFor(msg) {
    return this.log.querySelector(`[data-id="${msg.id}"]`);
  }

  updateAnswer(msg, node = this.nodeFor(msg)) {
    if (!node) return;
    node.dataset.state = msg.status;
    node.dataset.tokenCount = String(msg.tokenCount || 0);
    node.classList.toggle("sr-abstained", Boolean(msg.abstained));
    this.updatePhase(msg, node);
    this.updateText(msg, node);
    this.slot(node, "notice").innerHTML = noticeHTML(msg);
    this.updateSources(msg, node);
    this.slot(node, "actions").innerHTML = actionsHTML(msg);
    const feedback = this.slot(node, "feedback");
    feedback.innerHTML = feedbackHTML(this.ui, msg);
    const comment = feedback.querySelector("textarea");
    if (comment) comment.value = msg.feedback.comment || "";
  }

  slot(node, name) {
    return node.querySelector(`.sr-slot-${name}`);
  }

  updateText(msg, node = this.nodeFor(msg)) {
    if (!node) return;
    const text = node.querySelector(".sr-answer-text");
    text.setAttribute("aria-busy", msg.status === "streaming" ? "true" : "false");
    text.innerHTML = answerTextHTML(this.ui, msg);
    node.dataset.tokenCount = String(msg.tokenCount || 0);
  }

  updatePhase(msg, node = this.nodeFor(msg)) {
    if (node) this.slot(node, "phase").innerHTML = answerPhaseHTML(this.ui, msg);
  }

  updateSources(msg, node = this.nodeFor(msg)) {
    if (node) this.slot(node, "sources").innerHTML = sourcesHTML(this.ui, msg);
  }

  focusCitation(msg, n) {
    const card = this.root.querySelector(`#${CSS.escape(this.ui.pid(`${msg.id}-cite-${n}`))}`);
    if (!card) return;
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    card.focus({ preventScroll: true });
    card.classList.remove("sr-flash");
    void card.offsetWidth; // restart the highlight animation
    card.classList.add("sr-flash");
  }

  /** Move focus to the first element matching `selector` inside the message (e.g. after re-rendering it). */
  focusIn(msg, selector) {
    this.nodeFor(msg)?.querySelector(selector)?.focus();
  }
}
