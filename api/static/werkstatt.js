// The trainer workspace (/werkstatt): dossier form with live result and downloads, coverage heatmap, question log.
// Talks only to the trainer routes of the API (POST /v1/dossiers, GET /v1/coverage, GET /v1/questions/…) through
// auth.js, which adds the CSRF token to writes and sends the browser to /anmelden on a 401.

import { authFetch, errorMessage } from "./auth.js";
import { formatDate, safeUrl } from "./format.js";
import { el } from "./dom.js";
import { Vocabulary, embeddedVocabulary } from "./vocabulary.js";

const vocabulary = new Vocabulary(embeddedVocabulary());
const $ = (selector) => document.querySelector(selector);

function link(href, text) {
  const safe = href && href.startsWith("/") ? href : safeUrl(href);
  return safe ? el("a", { href: safe, target: "_blank", rel: "noopener" }, text) : text;
}

function phaseBadge(phase) {
  return el("span", { class: `sr-phase sr-phase-${vocabulary.phaseKey(phase)}` }, vocabulary.phaseLabel(phase));
}

// --- Materialmappe ----------------------------------------------------------------------------------------------

let lastRequest = null;

function dossierRequest(form) {
  const data = new FormData(form);
  const body = {
    topic: String(data.get("topic") || "").trim(),
    phases: data.getAll("phases"),
    types: data.getAll("types"),
    size: Number(data.get("size") || 5),
  };
  if (data.get("date_from")) body.date_from = data.get("date_from");
  if (data.get("date_to")) body.date_to = data.get("date_to");
  return body;
}

function renderDossier(dossier) {
  const parts = [
    el("p", { class: "sr-ws-muted" },
      `Stand des Archivs: ${dossier.archive_date ? formatDate(dossier.archive_date) : "unbekannt"}`),
    el("p", { class: "sr-notice" }, dossier.notice),
  ];
  for (const section of dossier.phases) {
    const block = el("section", { class: "sr-ws-phase", "aria-label": `Phase ${section.label}` },
      el("h3", {}, phaseBadge(section.phase), ` ${section.label}`));
    if (section.note) block.append(el("p", { class: "sr-ws-note" }, section.note));
    if (section.briefing) {
      block.append(el("h4", {}, "Kurzbriefing"), el("p", {}, section.briefing.text));
      if (section.briefing.questions.length) {
        block.append(el("h4", {}, "Fragen für die Diskussion"),
          el("ul", {}, section.briefing.questions.map((q) => el("li", {}, q))));
      }
    }
    for (const source of section.sources) {
      block.append(el("article", { class: "sr-card sr-ws-source" },
        el("h4", { class: "sr-card-title" }, `[${source.n}] `, link(source.link, source.title)),
        el("p", { class: "sr-card-meta" },
          `${vocabulary.typeLabel(source.type)}${source.date ? ` · ${formatDate(source.date)}` : ""}`),
        el("ul", { class: "sr-ws-excerpts" }, source.excerpts.map((excerpt) => el("li", {},
          el("blockquote", { class: "sr-snippet" }, `„${excerpt.text}“`),
          el("span", { class: "sr-card-locator" }, link(excerpt.link, excerpt.locator)))))));
    }
    if (section.moments.length) {
      block.append(el("h4", {}, "WebTalk-Momente"), el("ul", {}, section.moments.map((m) =>
        el("li", {}, link(m.link, `${m.title}, ${m.time}`), m.speaker ? ` ${m.speaker}: ` : " ", m.text))));
    }
    if (section.related_terms.length) {
      block.append(el("p", { class: "sr-ws-terms" }, el("strong", {}, "Verwandte Begriffe: "),
        section.related_terms.join(", ")));
    }
    parts.push(block);
  }
  return parts;
}

async function buildDossier(event) {
  event?.preventDefault();
  const form = $("#mappe-form");
  const error = $("#mappe-fehler");
  const result = $("#mappe-ergebnis");
  const topic = $("#mappe-thema");
  const body = dossierRequest(form);
  error.textContent = "";
  topic.removeAttribute("aria-invalid");
  if (body.topic.length < 2) {
    error.textContent = "Bitte ein Thema mit mindestens zwei Zeichen eingeben.";
    topic.setAttribute("aria-invalid", "true");
    topic.focus();
    return;
  }
  if (!body.phases.length) {
    error.textContent = "Bitte mindestens eine Phase wählen.";
    return;
  }
  result.setAttribute("aria-busy", "true");
  result.replaceChildren(el("p", { class: "sr-ws-muted" }, "Mappe wird erstellt …"));
  const response = await authFetch("/v1/dossiers", { method: "POST", json: body });
  result.setAttribute("aria-busy", "false");
  if (!response.ok) {
    result.replaceChildren();
    error.textContent = await errorMessage(response);
    return;
  }
  lastRequest = body;
  result.replaceChildren(...renderDossier(await response.json()));
  $("#mappe-downloads").hidden = false;
}

async function download(format) {
  if (!lastRequest) return;
  const response = await authFetch(`/v1/dossiers?format=${format}`, { method: "POST", json: lastRequest });
  if (!response.ok) {
    $("#mappe-fehler").textContent = await errorMessage(response);
    return;
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || `mappe.${format}`;
  const url = URL.createObjectURL(await response.blob());
  const anchor = el("a", { href: url, download: name, hidden: true });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function startDossier(topic, phase) {
  const form = $("#mappe-form");
  form.elements.topic.value = topic;
  for (const box of form.querySelectorAll('input[name="phases"]')) box.checked = box.value === phase;
  $("#mappe").scrollIntoView({ behavior: "smooth" });
  buildDossier();
}

// --- Themenlandkarte --------------------------------------------------------------------------------------------

const HEAT_PHASES = ["E", "K", "T"];

function sourcesText(count) {
  return count === 1 ? "1 Quelle" : `${count} Quellen`;
}

let coverageMap = null;

/** The documents of a topic in a phase, of the source type chosen above the map (or of all types). */
function cellSources(topic, phase) {
  const type = $("#karte-typ").value;
  const ids = new Set();
  for (const [key, cell] of Object.entries(topic.cells[phase] || {})) {
    if (!type || key === type) cell.sources.forEach((id) => ids.add(id));
  }
  return [...ids];
}

function showCell(map, topic, phase) {
  const panel = $("#karte-zelle");
  const ids = cellSources(topic, phase);
  const topicWords = topic.terms.slice(0, 2).join(" ") || topic.label;
  panel.replaceChildren(
    el("h3", {}, `${topic.label} · ${vocabulary.phaseLabel(phase)}`),
    ids.length
      ? el("ul", { class: "sr-ws-list" }, ids.map((id) => {
          const source = map.sources[id] || {};
          return el("li", {}, link(`/quellen/${encodeURIComponent(id)}`, source.title || id),
            ` (${vocabulary.typeLabel(source.type)})`);
        }))
      : el("p", {}, `Zu diesem Thema gibt es in der Phase ${vocabulary.phaseLabel(phase)} keine Quelle.`),
    el("button", { class: "sr-btn sr-btn-primary", type: "button", onclick: () => startDossier(topicWords, phase) },
      `Mappe „${topicWords}“ erstellen`),
  );
  panel.hidden = false;
  panel.focus();
}

function renderHeatmap(map) {
  const max = Math.max(1, ...map.topics.flatMap((t) => HEAT_PHASES.map((p) => cellSources(t, p).length)));
  const rows = map.topics.map((topic) => el("tr", {},
    el("th", { scope: "row" }, topic.label, el("span", { class: "sr-ws-muted" }, ` · ${sourcesText(topic.sources)}`)),
    HEAT_PHASES.map((phase) => {
      const count = cellSources(topic, phase).length;
      const button = el("button", {
        type: "button", class: `sr-ws-heat sr-ws-heat-${phase}${count ? "" : " sr-ws-heat-empty"}`,
        "aria-label": `${topic.label}, ${vocabulary.phaseLabel(phase)}: ${sourcesText(count)}`,
        onclick: () => showCell(map, topic, phase),
      }, String(count));
      button.style.setProperty("--sr-heat", String(count / max));
      return el("td", {}, button);
    })));
  const table = el("table", { class: "sr-ws-table sr-ws-heatmap" },
    el("caption", { class: "sr-offscreen" }, "Themen des Archivs und Zahl ihrer Quellen je EKT-Phase"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Thema"),
      HEAT_PHASES.map((p) => el("th", { scope: "col" }, vocabulary.phaseLabel(p))))),
    el("tbody", {}, rows));
  // Focusable, so keyboard users can scroll a wide map (WCAG: scrollable region must have keyboard access).
  const scroll = { class: "sr-ws-scroll", tabindex: "0", role: "region", "aria-label": "Themenlandkarte (scrollbar)" };
  $("#karte-inhalt").replaceChildren(el("div", scroll, table));
  $("#karte-luecken").replaceChildren(...map.gaps.map((gap) => el("li", {}, gap.message)));
}

async function loadCoverage() {
  const response = await authFetch("/v1/coverage");
  if (!response.ok) {
    $("#karte-inhalt").replaceChildren(el("p", { class: "sr-ws-error" }, await errorMessage(response)));
    return;
  }
  coverageMap = await response.json();
  if (!coverageMap.topics.length) {
    $("#karte-inhalt").replaceChildren(el("p", {}, "Das Archiv ist leer."));
    return;
  }
  renderHeatmap(coverageMap);
}

// --- Fragenprotokoll --------------------------------------------------------------------------------------------

function questionParams() {
  const data = new FormData($("#fragen-filter"));
  const params = new URLSearchParams();
  for (const name of ["since", "until", "phase", "q"]) if (data.get(name)) params.set(name, data.get(name));
  // One choice, not two checkboxes: "unanswered" and "with a caution" exclude each other (ticking both listed nothing).
  const answer = data.get("answer");
  if (answer === "refused") params.set("abstained", "true");
  if (answer === "uncertain") params.set("uncertain", "true");
  if (answer === "plain") { params.set("abstained", "false"); params.set("uncertain", "false"); }
  return params;
}

function dateTime(iso) {
  return new Date(iso).toLocaleString("de-DE", { dateStyle: "medium", timeStyle: "short" });
}

async function getJSON(url) {
  const response = await authFetch(url);
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

function listOr(items, render, empty) {
  return items.length ? items.map(render) : [el("li", { class: "sr-ws-muted sr-ws-none" }, empty)];
}

function groupItem(group) {
  const when = `${group.count}× gefragt · zuerst ${dateTime(group.first_asked)}`
    + ` · zuletzt ${dateTime(group.last_asked)}`;
  const wordings = group.questions.length > 1
    ? el("details", {}, el("summary", {}, "Andere Formulierungen"),
      el("ul", {}, group.questions.map((q) => el("li", {}, q))))
    : null;
  return el("li", { class: "sr-ws-group" }, el("p", {}, el("strong", {}, group.example)),
    el("p", { class: "sr-ws-muted" }, when), wordings);
}

function downvotedItem(item) {
  return el("li", {}, el("strong", {}, item.question), el("br"),
    el("span", { class: "sr-ws-muted" }, dateTime(item.created_at)),
    item.comment ? el("p", {}, `Kommentar: ${item.comment}`) : null);
}

function monthBlock(cell) {
  const phase = cell.phase === "ohne" ? "ohne Phase" : phaseBadge(cell.phase);
  return el("div", { class: "sr-ws-month" },
    el("h4", {}, `${cell.month} · `, phase, ` · ${cell.questions} ${cell.questions === 1 ? "Frage" : "Fragen"}`),
    el("ol", {}, cell.topics.map((t) => el("li", {}, `${t.example} (${t.count}×)`))));
}

const RATING_LABELS = { up: "hilfreich", down: "nicht hilfreich" };

// "mit Vorbehalt": answered with the notice to check the cited passage (the sources may not say exactly that).
function answeredLabel(q) {
  if (q.abstained) return "nein";
  return q.uncertain ? "mit Vorbehalt" : "ja";
}

function logRow(q) {
  const rating = RATING_LABELS[q.rating] || "";
  return el("tr", {}, el("td", {}, dateTime(q.asked_at)), el("td", {}, q.question),
    el("td", {}, q.phase ? vocabulary.phaseLabel(q.phase) : "–"), el("td", {}, answeredLabel(q)),
    el("td", {}, rating), el("td", {}, q.comment || ""));
}

async function loadQuestions(event) {
  event?.preventDefault();
  const params = questionParams();
  const range = new URLSearchParams([...params].filter(([name]) => name === "since" || name === "until"));
  $("#fragen-csv").href = `/v1/questions/export.csv?${params}`;
  try {
    const [log, groups, cautioned, down, topics] = await Promise.all([
      getJSON(`/v1/questions?${params}`), getJSON(`/v1/questions/unanswered?${range}`),
      getJSON(`/v1/questions/uncertain?${range}`),
      getJSON("/v1/questions/downvoted"), getJSON(`/v1/questions/topics?${range}`),
    ]);
    $("#fragen-gruppen").replaceChildren(...listOr(groups.groups, groupItem, "Keine unbeantworteten Fragen."));
    $("#fragen-vorbehalt").replaceChildren(...listOr(cautioned.groups, groupItem, "Keine."));
    $("#fragen-daumen").replaceChildren(...listOr(down.feedback, downvotedItem, "Keine."));
    $("#fragen-themen").replaceChildren(...(topics.months.length ? topics.months.map(monthBlock)
      : [el("p", { class: "sr-ws-muted" }, "Noch keine Fragen.")]));
    $("#fragen-tabelle tbody").replaceChildren(...log.questions.map(logRow));
  } catch (error) {
    $("#fragen-gruppen").replaceChildren(el("li", { class: "sr-ws-error" }, error.message));
  }
}

// --- wiring -----------------------------------------------------------------------------------------------------

vocabulary.applyColours(document.documentElement);
$("#mappe-form").addEventListener("submit", buildDossier);
for (const button of document.querySelectorAll("#mappe-downloads button")) {
  button.addEventListener("click", () => download(button.dataset.format));
}
$("#fragen-filter").addEventListener("submit", loadQuestions);
$("#karte-typ").addEventListener("change", () => {
  if (coverageMap) renderHeatmap(coverageMap);
  $("#karte-zelle").hidden = true;
});
loadCoverage();
loadQuestions();
