// HTML of the chat's messages: a question, and the parts of an answer (phase, text, notice, source cards, actions,
// feedback form), each rendered on its own so a streaming answer updates only what changed.
// `ui` = { pid(suffix) → a page-unique id, vocabulary (Vocabulary), base (the server's origin or "") }.

import { icons, typeIcon } from "./icons.js";
import { MESSAGES } from "./messages.js";
import { citationLinks, escapeHTML as esc, formatDate, renderAnswerHTML } from "./format.js";

/** "Phase E Evaluation · WebTalk": the filters of a question in words ("" when none is set). */
export function filterText(vocabulary, filters) {
  const parts = [];
  if (filters.phase) parts.push(`Phase ${filters.phase} ${vocabulary.phaseLabel(filters.phase)}`);
  if (filters.type) parts.push(vocabulary.typeLabel(filters.type));
  return parts.join(" · ");
}

export function questionHTML(ui, msg) {
  const filters = msg.filters && filterText(ui.vocabulary, msg.filters);
  return `
      <h2 class="sr-visually-hidden">Ihre Frage</h2>
      <p class="sr-question">${esc(msg.content).replace(/\n/g, "<br>")}</p>
      ${filters ? `<p class="sr-msg-filters">${icons.filter}<span>Gefiltert: ${esc(filters)}</span></p>` : ""}`;
}

/** The empty answer with one slot per part. */
export function answerHTML(ui, msg) {
  return `
      <h2 class="sr-visually-hidden" id="${ui.pid(`${msg.id}-h`)}">Antwort</h2>
      <div class="sr-slot-phase"></div>
      <div class="sr-answer-text" aria-live="polite"></div>
      <div class="sr-slot-notice"></div>
      <div class="sr-slot-sources"></div>
      <div class="sr-slot-actions"></div>
      <div class="sr-slot-feedback"></div>`;
}

function markerHTML(ui, msg) {
  const byN = new Map((msg.citations || []).map((c) => [c.n, c]));
  return (n) => {
    const c = byN.get(n);
    const label = c ? `Quelle ${n}: ${c.title}` : `Quelle ${n}`;
    return `<a class="sr-marker" href="#${ui.pid(`${msg.id}-cite-${n}`)}" data-action="cite" data-id="${msg.id}" data-n="${n}" aria-label="${esc(label)}">[${n}]</a>`;
  };
}

export function answerTextHTML(ui, msg) {
  const streaming = msg.status === "streaming";
  let html;
  if (streaming && !msg.content) {
    html = `<p class="sr-typing"><span class="sr-dots" aria-hidden="true"><span></span><span></span><span></span></span>Antwort wird erstellt …</p>`;
  } else {
    const highlights = msg.status === "done" ? msg.highlights : [];
    html = renderAnswerHTML(msg.content, markerHTML(ui, msg), highlights) +
      (streaming ? `<span class="sr-caret" aria-hidden="true"></span>` : "");
  }
  if (msg.status === "error") {
    html += `
        <div class="sr-error" role="alert">
          ${icons.alert}
          <div><p>${esc(msg.error || MESSAGES.server)}</p>
          <button type="button" class="sr-btn sr-btn-secondary sr-btn-small" data-action="retry" data-id="${msg.id}">${icons.retry}<span>Erneut versuchen</span></button></div>
        </div>`;
  }
  return html;
}

function phaseBadge(ui, phase, label) {
  if (!phase) return "";
  const key = ui.vocabulary.phaseKey(phase);
  const name = label || ui.vocabulary.phaseLabel(phase);
  const letter = key === "X" ? "" : `<span class="sr-phase-letter" aria-hidden="true">${esc(phase)}</span>`;
  return `<span class="sr-phase sr-phase-${key}">${letter}<span class="sr-visually-hidden">EKT-Phase: </span>${esc(name)}</span>`;
}

export function answerPhaseHTML(ui, msg) {
  const phase = msg.phase;
  if (!phase || !phase.phase || msg.abstained) return "";
  return `
      <div class="sr-answer-phase">
        ${phaseBadge(ui, phase.phase, phase.label)}
        ${phase.explanation ? `<span class="sr-phase-expl">${esc(phase.explanation)}</span>` : ""}
      </div>`;
}

export function noticeHTML(msg) {
  return msg.notice ? `<p class="sr-notice">${icons.info}<span>${esc(msg.notice)}</span></p>` : "";
}

function cardHTML(ui, msg, c) {
  const type = ui.vocabulary.typeLabel(c.type) || "Quelle";
  const date = c.date ? `<time datetime="${esc(c.date)}">${esc(formatDate(c.date))}</time>` : "";
  const links = citationLinks(c, ui.base)
    .map(
      (link) =>
        `<a class="sr-card-link sr-card-link-${link.kind}" href="${esc(link.href)}" target="_blank" rel="noopener">` +
        `${icons[link.icon] || ""}<span>${esc(link.label)}</span><span class="sr-visually-hidden"> – ${esc(c.title)} (öffnet in neuem Tab)</span></a>`,
    )
    .join("");
  const meta = [`<span class="sr-type sr-type-${esc(c.type)}">${typeIcon(c.type)}<span>${esc(type)}</span></span>`];
  if (date) meta.push(date);
  return `
      <li class="sr-card" id="${ui.pid(`${msg.id}-cite-${c.n}`)}" tabindex="-1" data-n="${c.n}" data-type="${esc(c.type)}" data-source-id="${esc(c.source_id)}">
        <div class="sr-card-head">
          <span class="sr-card-n" aria-hidden="true">${c.n}</span>
          <h4 class="sr-card-title"><span class="sr-visually-hidden">Quelle ${c.n}: </span>${esc(c.title)}</h4>
        </div>
        <p class="sr-card-meta">${meta.join('<span class="sr-sep" aria-hidden="true">·</span>')}${c.phase ? phaseBadge(ui, c.phase) : ""}</p>
        ${c.locator ? `<p class="sr-card-locator">${esc(c.locator)}</p>` : ""}
        ${c.snippet ? `<blockquote class="sr-snippet"><p>${esc(c.snippet)}</p></blockquote>` : ""}
        <p class="sr-card-links">${links}</p>
      </li>`;
}

export function sourcesHTML(ui, msg) {
  const citations = msg.citations || [];
  if (!citations.length) return "";
  const title = msg.abstained ? "Nächstliegende Quellen" : "Quellen";
  const headingId = ui.pid(`${msg.id}-src`);
  return `
      <section class="sr-sources" aria-labelledby="${headingId}">
        <h3 class="sr-sources-title" id="${headingId}">${title} <span class="sr-count">(${citations.length})</span></h3>
        <ol class="sr-cards">${citations.map((c) => cardHTML(ui, msg, c)).join("")}</ol>
      </section>`;
}

export function actionsHTML(msg) {
  if (msg.status !== "done") return "";
  const rating = msg.feedback?.rating;
  const sent = msg.feedback?.sent;
  const rateButton = (value, label, icon) =>
    `<button type="button" class="sr-btn sr-btn-icon" data-action="rate" data-id="${msg.id}" data-rating="${value}"
        aria-pressed="${rating === value}" ${sent ? "disabled" : ""} title="${label}">${icon}<span class="sr-visually-hidden">${label}</span></button>`;
  return `
      <div class="sr-actions">
        <button type="button" class="sr-btn sr-btn-ghost" data-action="copy" data-id="${msg.id}">${icons.copy}<span data-role="copy-label">Antwort kopieren</span></button>
        <div class="sr-rate" role="group" aria-label="War diese Antwort hilfreich?">
          <span class="sr-rate-label" aria-hidden="true">Hilfreich?</span>
          ${rateButton("up", "Ja, hilfreich", icons.thumbUp)}
          ${rateButton("down", "Nein, nicht hilfreich", icons.thumbDown)}
        </div>
      </div>`;
}

/** After a rating: the comment form, or the thanks once the feedback is sent. */
export function feedbackHTML(ui, msg) {
  const fb = msg.feedback;
  if (!fb || msg.status !== "done") return "";
  if (fb.sent) return `<p class="sr-feedback-done" role="status">${icons.check}<span>Danke für Ihr Feedback!</span></p>`;
  const id = ui.pid(`${msg.id}-fb`);
  return `
      <form class="sr-feedback" data-id="${msg.id}">
        <label for="${id}">${fb.rating === "up" ? "Schön, dass es geholfen hat!" : "Danke – was hat gefehlt oder war falsch?"} Ihr Kommentar (optional):</label>
        <textarea id="${id}" rows="2" maxlength="2000"></textarea>
        ${fb.error ? `<p class="sr-field-error" role="alert">${esc(fb.error)}</p>` : ""}
        <div class="sr-feedback-buttons">
          <button type="submit" class="sr-btn sr-btn-primary sr-btn-small">Feedback senden</button>
          <button type="button" class="sr-btn sr-btn-ghost sr-btn-small" data-action="feedback-cancel" data-id="${msg.id}">Abbrechen</button>
        </div>
      </form>`;
}
