// "Antwort kopieren": the answer with its sources as Markdown on the clipboard.

import { answerMarkdown } from "./format.js";
import { MESSAGES } from "./messages.js";

/** Put text on the clipboard; the fallback selects a hidden text area in `container`, then focuses `button` again. */
async function writeClipboard(text, container, button) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (e.g. an embedding page): the old way via a selected, hidden text area.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-offscreen";
    container.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    button.focus();
    return ok;
  }
}

/** Copy an answer; `button` shows "Kopiert!" for two seconds, the view announces the outcome. */
export async function copyAnswer(msg, button, view, base) {
  const pageUrl = base ? `${base}/` : window.location.href;
  const markdown = answerMarkdown({ ...msg, base }, pageUrl, view.opts.vocabulary);
  const ok = await writeClipboard(markdown, view.shell, button);
  const label = button.querySelector('[data-role="copy-label"]');
  if (ok) {
    label.textContent = "Kopiert!";
    view.announce("Antwort mit Quellen als Markdown kopiert.");
    window.setTimeout(() => {
      label.textContent = "Antwort kopieren";
    }, 2000);
  } else {
    view.announce(MESSAGES.copyFailed);
  }
}
