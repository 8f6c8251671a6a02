// Pure formatting helpers of the chat: escaping, answer rendering with [n] markers, source links, Markdown export.

export function escapeHTML(value) {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export function formatDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
  return m ? `${m[3]}.${m[2]}.${m[1]}` : iso || "";
}

export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

/** Only http(s) links from the corpus are rendered as links (no javascript: or data: URLs). */
export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * Where a citation leads: the exact place first (PDF page, transcript time, article URL), plus the source view
 * with the cited chunk highlighted. `base` is the app's origin ("" on the app's own page).
 */
export function citationLinks(citation, base = "") {
  const id = encodeURIComponent(citation.source_id || "");
  const view = citation.chunk_id ? `${base}/quellen/${id}?chunk=${encodeURIComponent(citation.chunk_id)}` : null;
  let primary = null;
  if (citation.page != null) {
    primary = { href: `${base}/quellen/${id}/datei#page=${citation.page}`, label: `PDF öffnen, Seite ${citation.page}`, icon: "page", kind: "pdf" };
  } else if (citation.start != null) {
    primary = { href: `${base}/quellen/${id}?t=${Math.floor(citation.start)}`, label: `Transkript bei ${formatTime(citation.start)}`, icon: "clock", kind: "time" };
  } else if (safeUrl(citation.url)) {
    primary = { href: safeUrl(citation.url), label: citation.type === "article" ? "Artikel öffnen" : "Original öffnen", icon: "external", kind: "url" };
  }
  const links = [];
  if (primary) links.push(primary);
  if (view && (!primary || primary.kind !== "time")) {
    links.push({ href: view, label: "Im Dokument ansehen", icon: "textView", kind: "view" });
  }
  if (!links.length && citation.source_id) {
    links.push({ href: `${base}/quellen/${id}`, label: "Im Dokument ansehen", icon: "textView", kind: "view" });
  }
  return links;
}

const MARKER_RE = /\[(\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\]/g;

function inline(text, markerHTML) {
  let out = escapeHTML(text);
  out = out.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
  out = out.replace(MARKER_RE, (_, numbers) =>
    numbers
      .split(/\s*[,;]\s*/)
      .map((n) => markerHTML(Number(n)))
      .join(""),
  );
  out = out.replace(/\u0001/g, '<mark class="sr-highlight">').replace(/\u0002/g, "</mark>");
  return out.replace(/\n/g, "<br>");
}

/** The text with control characters around the highlight spans ([start, end) character offsets from the server:
 * numbers, dates, amounts or names that answer the question); `inline` turns them into <mark> after escaping. */
function withHighlights(text, highlights) {
  const spans = (Array.isArray(highlights) ? highlights : [])
    .filter((span) => Array.isArray(span) && span[0] >= 0 && span[0] < span[1] && span[1] <= text.length)
    .sort((a, b) => b[0] - a[0]);
  let out = text.replace(/[\u0001\u0002]/g, "");
  if (out.length !== text.length) return out;
  for (const [start, end] of spans) {
    out = `${out.slice(0, start)}\u0001${out.slice(start, end)}\u0002${out.slice(end)}`;
  }
  return out;
}

/**
 * Answer text → safe HTML: paragraphs, simple lists, **bold**, and [n] markers as links to the citation cards.
 * markerHTML(n) returns the HTML of one marker link.
 */
export function renderAnswerHTML(text, markerHTML, highlights = []) {
  const blocks = withHighlights(String(text || ""), highlights).replace(/\r\n/g, "\n").trim().split(/\n{2,}/);
  return blocks
    .filter((block) => block.trim())
    .map((block) => {
      const lines = block.split("\n");
      if (lines.length && lines.every((line) => /^\s*([-*•]|\d+\.)\s+/.test(line))) {
        const ordered = /^\s*\d+\./.test(lines[0]);
        const items = lines.map((line) => `<li>${inline(line.replace(/^\s*([-*•]|\d+\.)\s+/, ""), markerHTML)}</li>`);
        return ordered ? `<ol>${items.join("")}</ol>` : `<ul>${items.join("")}</ul>`;
      }
      return `<p>${inline(block, markerHTML)}</p>`;
    })
    .join("");
}

/** The answer with its sources as Markdown (for "Antwort kopieren"). Links are absolute. */
export function answerMarkdown(message, pageUrl, vocabulary) {
  const absolute = (href) => {
    try {
      return new URL(href, pageUrl).href;
    } catch {
      return href;
    }
  };
  const lines = [];
  if (message.question) lines.push(`**Frage:** ${message.question}`, "");
  lines.push((message.content || "").trim(), "");
  if (message.phase && message.phase.label) {
    lines.push(`_EKT-Phase: ${message.phase.label}${message.phase.explanation ? ` – ${message.phase.explanation}` : ""}_`, "");
  }
  const citations = message.citations || [];
  if (citations.length) {
    lines.push(message.abstained ? "**Nächstliegende Quellen:**" : "**Quellen:**", "");
    for (const c of citations) {
      const link = citationLinks(c, message.base || "")[0];
      const title = link ? `[${c.title}](${absolute(link.href)})` : c.title;
      const details = [vocabulary.typeLabel(c.type), c.locator, formatDate(c.date)].filter(Boolean).join(", ");
      lines.push(`- [${c.n}] ${title}${details ? ` – ${details}` : ""}`);
    }
  }
  return lines.join("\n").trim() + "\n";
}
