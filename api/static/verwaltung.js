// The Verwaltung page: upload (drag and drop, progress), web import, the job list (polled while jobs run), the
// source list (filter, delete with confirmation) and API keys. Text from the server is set as textContent only.
import { AdminError, request, upload } from "./verwaltung-api.js";
import { el } from "./dom.js";
import { Vocabulary, embeddedVocabulary } from "./vocabulary.js";

const root = document.getElementById("verwaltung");
const vocabulary = new Vocabulary(embeddedVocabulary());
const $ = (role) => root.querySelector(`[data-role="${role}"]`);

const KIND_LABELS = { upload: "Hochladen", import: "Import", reindex: "Index neu aufbauen" };
const STATUS_LABELS = { queued: "Wartet", running: "Läuft", done: "Fertig", failed: "Fehlgeschlagen" };
const OUTCOME_LABELS = { added: "neu", updated: "aktualisiert", unchanged: "unverändert", failed: "fehlgeschlagen" };
const ORIGIN_LABELS = { upload: "Hochgeladen", import: "Importiert", corpus: "Korpus-Ordner" };
const POLL_ACTIVE_MS = 1000;
const POLL_IDLE_MS = 10000;

function say(role, text, isError = false) {
  const node = $(role);
  node.textContent = text;
  node.classList.toggle("sr-status-error", isError);
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString("de-DE", { dateStyle: "short", timeStyle: "short" }) : "";
}

function formatSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

// ------------------------------------------------------------------------------------------------------------
// Upload

let selected = [];

function showSelected() {
  const list = $("file-list");
  list.replaceChildren(...selected.map((file) => el("li", {}, `${file.name} (${formatSize(file.size)})`)));
}

function setupUpload() {
  const zone = $("dropzone");
  const input = root.querySelector("#upload-files");
  input.addEventListener("change", () => {
    selected = [...input.files];
    showSelected();
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("sr-dragover");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("sr-dragover"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("sr-dragover");
    selected = [...event.dataTransfer.files];
    showSelected();
  });

  const form = $("upload-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!selected.length) {
      say("upload-status", "Bitte zuerst Dateien auswählen oder hierher ziehen.", true);
      return;
    }
    const data = new FormData();
    for (const file of selected) data.append("files", file, file.name);
    for (const name of ["type", "phase", "title", "date", "url"]) {
      const value = form.elements[name].value.trim();
      if (value) data.append(name, value);
    }
    const bar = $("upload-progress");
    const button = $("upload-submit");
    bar.hidden = false;
    bar.value = 0;
    button.disabled = true;
    say("upload-status", "Wird hochgeladen …");
    try {
      const job = await upload(data, (fraction) => (bar.value = Math.round(fraction * 100)));
      say("upload-status",
        `Hochgeladen: ${job.files.join(", ")}. Die Dateien werden jetzt eingelesen (siehe Aufträge).`);
      selected = [];
      form.reset();
      showSelected();
      pollSoon(job);
    } catch (error) {
      say("upload-status", error instanceof AdminError ? error.message : String(error), true);
    } finally {
      bar.hidden = true;
      button.disabled = false;
    }
  });
}

// ------------------------------------------------------------------------------------------------------------
// Import and reindex

function setupImport() {
  const form = $("import-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = form.elements.url.value.trim();
    if (!url) {
      say("import-status", "Bitte eine Adresse angeben.", true);
      return;
    }
    try {
      const job = await request("POST", "/v1/admin/imports", { url });
      say("import-status", `Import von ${url} gestartet (siehe Aufträge).`);
      form.reset();
      pollSoon(job);
    } catch (error) {
      say("import-status", error.message, true);
    }
  });
  root.querySelector('[data-action="reindex"]').addEventListener("click", async () => {
    try {
      const job = await request("POST", "/v1/admin/reindex");
      say("jobs-status", "Neuaufbau des Index gestartet.");
      pollSoon(job);
    } catch (error) {
      say("jobs-status", error.message, true);
    }
  });
}

// ------------------------------------------------------------------------------------------------------------
// Jobs

let pollTimer = null;
const lastStatus = new Map(); // job id → status at the previous poll

function jobSummary(job) {
  const cell = el("td");
  if (job.error) cell.append(el("p", { class: "sr-outcome-failed" }, job.error));
  const result = job.result;
  if (!result) return cell;
  cell.append(el("p", {}, `${result.added} neu, ${result.updated} aktualisiert, ${result.unchanged} unverändert, ` +
    `${result.failed.length} fehlgeschlagen`));
  const files = result.files || [];
  if (files.length) {
    cell.append(el("ul", {}, ...files.map((file) => el("li", { class: `sr-outcome-${file.outcome}` },
      file.reason || `${file.name}: ${OUTCOME_LABELS[file.outcome] || file.outcome}`))));
  }
  for (const warning of result.warnings || []) cell.append(el("p", { class: "sr-hint" }, warning.message));
  return cell;
}

function jobRow(job) {
  const progress = (job.status === "running" && job.progress.total
    ? ` (${job.progress.done} von ${job.progress.total})` : "") + (job.attempts > 1 ? `, Versuch ${job.attempts}` : "");
  return el("tr", { "data-job-id": job.id, "data-status": job.status },
    el("td", {},
      el("strong", {}, KIND_LABELS[job.kind] || job.kind),
      job.files.length ? el("div", { class: "sr-hint" }, job.files.join(", ")) : null,
      el("div", { class: "sr-hint" }, formatTime(job.created_at))),
    el("td", {}, el("span", { class: `sr-badge sr-badge-${job.status}` }, STATUS_LABELS[job.status] || job.status),
      progress),
    jobSummary(job));
}

async function refreshJobs() {
  let active = false;
  try {
    const { jobs } = await request("GET", "/v1/admin/jobs?limit=20");
    $("jobs").replaceChildren(...(jobs.length ? jobs.map(jobRow)
      : [el("tr", {}, el("td", { colspan: 3 }, "Noch keine Aufträge."))]));
    active = jobs.some((job) => job.status === "queued" || job.status === "running");
    // A job that ended since the last poll changed the sources: show them anew.
    const ended = jobs.some((job) => ["queued", "running"].includes(lastStatus.get(job.id)) &&
      (job.status === "done" || job.status === "failed"));
    for (const job of jobs) lastStatus.set(job.id, job.status);
    if (ended) refreshSources();
  } catch (error) {
    say("jobs-status", error.message, true);
  }
  pollTimer = setTimeout(refreshJobs, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
}

function pollSoon(job) {
  if (job) lastStatus.set(job.id, job.status);
  clearTimeout(pollTimer);
  pollTimer = setTimeout(refreshJobs, 300);
}

// ------------------------------------------------------------------------------------------------------------
// Sources

async function confirmDelete(title, origin) {
  const dialog = $("confirm");
  const corpusNote = origin === "corpus"
    ? " Die Datei im Korpus-Ordner des Servers bleibt; ein erneutes „stadtretter ingest“ liest sie wieder ein."
    : "";
  $("confirm-text").textContent =
    `„${title}“ wird aus dem Wissens-Chat entfernt: Antworten zitieren es danach nicht mehr.${corpusNote}`;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

function sourceRow(source) {
  const title = source.title || source.source_id;
  const phase = source.phase ? vocabulary.phaseLabel(source.phase) : "–";
  return el("tr", { "data-source-id": source.source_id },
    el("td", {}, source.url ? el("a", { href: source.url, rel: "noopener noreferrer" }, title) : title,
      source.date ? el("div", { class: "sr-hint" }, source.date) : null),
    el("td", {}, vocabulary.typeLabel(source.type)),
    el("td", {}, phase),
    el("td", {}, ORIGIN_LABELS[source.origin] || source.origin),
    el("td", {}, String(source.chunk_count)),
    el("td", {}, el("button", {
      type: "button", class: "sr-btn sr-btn-secondary sr-btn-small", "aria-label": `„${title}“ löschen`,
      onclick: async () => {
        if (!(await confirmDelete(title, source.origin))) return;
        try {
          await request("DELETE", `/v1/admin/documents/${encodeURIComponent(source.source_id)}`);
          say("sources-status", `„${title}“ wurde gelöscht.`);
          refreshSources();
        } catch (error) {
          say("sources-status", error.message, true);
        }
      },
    }, "Löschen")));
}

async function refreshSources() {
  const form = $("source-filter");
  const query = new URLSearchParams();
  for (const name of ["type", "phase"]) if (form.elements[name].value) query.append(name, form.elements[name].value);
  try {
    const { sources } = await request("GET", `/v1/admin/documents?${query}`);
    $("sources").replaceChildren(...(sources.length ? sources.map(sourceRow)
      : [el("tr", {}, el("td", { colspan: 6 }, "Keine Quellen für diese Auswahl."))]));
  } catch (error) {
    say("sources-status", error.message, true);
  }
}

function setupSources() {
  $("source-filter").addEventListener("change", refreshSources);
  $("source-filter").addEventListener("submit", (event) => event.preventDefault());
}

// ------------------------------------------------------------------------------------------------------------
// API keys

function keyRow(key) {
  return el("tr", { "data-key-id": key.id },
    el("td", {}, key.name),
    el("td", {}, key.scopes.join(", ")),
    el("td", {}, el("code", {}, `${key.prefix}…`)),
    el("td", {}, key.last_used_at ? formatTime(key.last_used_at) : "nie"),
    el("td", {}, el("button", {
      type: "button", class: "sr-btn sr-btn-secondary sr-btn-small",
      "aria-label": `Schlüssel „${key.name}“ widerrufen`,
      onclick: async () => {
        try {
          await request("DELETE", `/v1/admin/keys/${encodeURIComponent(key.id)}`);
          say("keys-status", `Schlüssel „${key.name}“ wurde widerrufen.`);
          refreshKeys();
        } catch (error) {
          say("keys-status", error.message, true);
        }
      },
    }, "Widerrufen")));
}

async function refreshKeys() {
  try {
    const { keys } = await request("GET", "/v1/admin/keys");
    $("keys").replaceChildren(...(keys.length ? keys.map(keyRow)
      : [el("tr", {}, el("td", { colspan: 5 }, "Noch keine Schlüssel."))]));
  } catch (error) {
    say("keys-status", error.message, true);
  }
}

function setupKeys() {
  const form = $("key-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((box) => box.value);
    if (!name) {
      say("keys-status", "Bitte einen Namen für den Schlüssel angeben.", true);
      return;
    }
    try {
      const created = await request("POST", "/v1/admin/keys", { name, scopes });
      $("new-key-value").textContent = created.key;
      $("new-key").hidden = false;
      $("new-key").focus();
      say("keys-status", `Schlüssel „${name}“ wurde erzeugt.`);
      form.elements.name.value = "";
      refreshKeys();
    } catch (error) {
      say("keys-status", error.message, true);
    }
  });
}

vocabulary.applyColours(root);
setupUpload();
setupImport();
setupSources();
setupKeys();
refreshJobs();
refreshSources();
refreshKeys();
