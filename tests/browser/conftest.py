"""Browser suite: the real app (uvicorn in a thread) on a tiny fixture corpus, driven by Debian's Chromium through
Playwright. No model download (HashEmbeddings), no browser download (executable_path=/usr/bin/chromium).

Servers started once per session:
  app          the chat on 127.0.0.1:<port>, allowed origin = the "allowed" host page below
  limited      the same services behind a second app with rate_limit_per_minute=3 (rate-limit test only)
  host pages   two plain pages that embed /widget.js, on two more ports (= two more origins): one allowed, one not
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}

# ----------------------------------------------------------------------------------------------------------------
# Fixture corpus: three short articles (one per EKT phase), one WebTalk transcript, one 2-page course PDF.

ARTICLES = {
    "wlan-finanzierung.md": """---
title: "Innenstadt-WLAN finanzieren: das Modell Lindenau"
date: 2023-04-18
author: Ralf Kemper
url: https://stadtretter.example/artikel/wlan-finanzierung
ekt: [K]
---

Lindenau betreibt seit 2022 ein kostenloses Innenstadt-WLAN in der Fußgängerzone.

## Finanzierungsmix

Das Innenstadt-WLAN wird über einen Finanzierungsmix aus Fördermitteln, Sponsoring der Stadtwerke und einem Beitrag der Werbegemeinschaft finanziert. Die Stadtwerke tragen die Glasfaser-Anbindung als Sachleistung.

## Laufende Kosten

Die laufenden Kosten des WLAN liegen bei rund 9.000 Euro im Jahr für Wartung, Lizenzen und Support. Ein Wartungsvertrag mit dem Dienstleister sichert den Betrieb.
""",
    "passantenbefragung.md": """---
title: "Passantenbefragung in Brückenheim: so gelingt die Vorbereitung"
date: 2022-09-05
author: Mira Sommer
url: https://stadtretter.example/artikel/passantenbefragung
ekt: [E]
---

Eine Passantenbefragung zeigt, wer die Innenstadt besucht und warum.

## Vorbereitung

Für die Passantenbefragung werden Fragebogen, Befragungsorte und Befragungszeiten vorab festgelegt. Ehrenamtliche Interviewer befragen an drei Tagen jeweils 150 Passanten in der Innenstadt.

## Auswertung

Die Auswertung der Befragung vergleicht Besuchsgründe, Aufenthaltsdauer und Herkunft der Passanten mit den Werten des Vorjahres.
""",
    "verfuegungsfonds.md": """---
title: "Der Verfügungsfonds in Osterbrunn"
date: 2024-02-12
author: Jana Wolf
url: https://stadtretter.example/artikel/verfuegungsfonds
ekt: [T]
---

Osterbrunn setzt Projekte der Händler mit einem Verfügungsfonds um.

## Umsetzung

Der Verfügungsfonds finanziert kleine Projekte von Händlern und Eigentümern zur Hälfte aus Mitteln der Städtebauförderung. Ein lokales Gremium entscheidet monatlich über die Anträge für den Verfügungsfonds.
""",
}

VTT = """WEBVTT

NOTE
Titel: WebTalk Generationenwechsel im Handel
Datum: 2023-11-07
URL: https://stadtretter.example/webtalks/generationenwechsel
EKT: T

00:00:01.000 --> 00:00:20.000
<v Moderation>Willkommen zum WebTalk über den Generationenwechsel im inhabergeführten Handel.

00:00:21.000 --> 00:00:50.000
<v Petra Lang>Der Generationenwechsel im Handel gelingt, wenn die Übergabe des Geschäfts fünf Jahre vorher geplant wird.

00:01:30.000 --> 00:01:58.000
<v Petra Lang>Eine Nachfolgebörse der Werbegemeinschaft bringt Inhaber und mögliche Nachfolger zusammen.

00:02:40.000 --> 00:03:10.000
<v Moderation>Vielen Dank für diesen Einblick in die Nachfolge im Einzelhandel.
"""

PDF_PAGES = [
    ("Lerneinheit Frequenzmessung",
     "Die Frequenzmessung zählt Passanten mit Lasersensoren an festen Messpunkten in der Innenstadt. "
     "Die Messpunkte liegen an den Eingängen der Fußgängerzone."),
    ("Kennzahlen der Innenstadt",
     "Die Kennzahlen der Frequenzmessung sind Passantenfrequenz pro Stunde, Verweildauer und Wiederkehrrate. "
     "Die Kennzahlen werden monatlich im Innenstadt-Dashboard veröffentlicht."),
]  # fmt: skip


def write_corpus(root: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    (root / "articles").mkdir(parents=True)
    (root / "webtalks").mkdir()
    (root / "courses").mkdir()
    for name, text in ARTICLES.items():
        paths[name] = root / "articles" / name
        paths[name].write_text(text, encoding="utf-8")
    paths["webtalk"] = root / "webtalks" / "generationenwechsel.vtt"
    paths["webtalk"].write_text(VTT, encoding="utf-8")

    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title("Lerneinheit Frequenzmessung und Kennzahlen")
    for heading, body in PDF_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 10, heading)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)
    paths["pdf"] = root / "courses" / "lerneinheit-kennzahlen.pdf"
    pdf.output(str(paths["pdf"]))
    (root / "courses" / "lerneinheit-kennzahlen.yml").write_text(
        "title: Lerneinheit Frequenzmessung und Kennzahlen\ndate: 2024-05-02\ntype: course\nekt: [E]\n", encoding="utf-8"
    )
    return paths


class EditorPhases:
    """Test double of the EKT phase tagger (services.phase_tagger): a chunk's phase is the editors' tag from the
    front matter, an answer's phase the most frequent phase of its citations. The browser suite tests the UI and
    the filter plumbing, so phases must be known in advance; the real tagger's quality is tested elsewhere."""

    LABELS = {"E": "Evaluation", "K": "Konzeption", "T": "Transformation"}
    EXPLANATIONS = {
        "E": "Es geht um Bestandsaufnahme und Analyse der Innenstadt – typisch für die Evaluation.",
        "K": "Es geht um Planung, Finanzierung und Organisation eines Vorhabens – typisch für die Konzeption.",
        "T": "Es geht um Umsetzung und Verstetigung von Maßnahmen – typisch für die Transformation.",
    }

    def run(self, doc, chunks, vectors):  # noqa: ANN001, ANN201 - ingest.pipeline.ChunkEnricher
        phase = doc.ekt[0] if doc.ekt else None
        if phase is None:
            return {}
        scores = {p: 1.0 if p == phase else 0.0 for p in "EKT"}
        for chunk in chunks:
            chunk.metadata["phase"] = phase
            chunk.metadata.update({f"phase_{p}": score for p, score in scores.items()})
        return {"phase": phase, "phase_scores": scores}

    def tag_answer(self, question, citations, vector=None):  # noqa: ANN001, ANN201
        from collections import Counter

        from retriever.models import PhaseTag

        counts = Counter(c.phase for c in citations if c.phase)
        if not counts:
            return None
        ranked = counts.most_common()
        scores = {p: round(counts.get(p, 0) / sum(counts.values()), 2) for p in "EKT"}
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return PhaseTag("übergreifend", "übergreifend", "Die Quellen verteilen sich auf mehrere Phasen.", scores)
        phase = ranked[0][0]
        return PhaseTag(phase, self.LABELS[phase], self.EXPLANATIONS[phase], scores)


# ----------------------------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UvicornThread:
    def __init__(self, app, port: int) -> None:  # noqa: ANN001
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "UvicornThread":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


HOST_PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stadtretter-Akademie – Kursseite</title>
<style>
  /* Aggressive host-page CSS: none of it may reach the widget. */
  html {{ font-size: 10px; }}
  * {{ color: #c00000 !important; font-family: "DejaVu Serif", serif !important; letter-spacing: 2px; }}
  button {{ background: hotpink !important; border: 5px dotted lime !important; }}
  textarea {{ display: none !important; }}
  body {{ margin: 0; padding: 40px; background: #fafaf5; }}
</style></head>
<body>
<h1>Akademie-Kursseite (Origin {port})</h1>
<p>Dies ist eine Beispielseite einer anderen Website, die den Wissens-Chat einbindet.</p>
<script src="{app}/widget.js" data-title="Fragen an die Akademie" defer></script>
</body></html>
"""


class HostPage:
    """A page on its own origin (port) that embeds the widget with the one-line snippet."""

    def __init__(self, app_url: str) -> None:
        self.port = free_port()
        page = HOST_PAGE.format(app=app_url, port=self.port).encode("utf-8")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "HostPage":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Live:
    url: str
    limited_url: str
    allowed_page: HostPage
    refused_page: HostPage
    services: object
    settings: object
    corpus: dict[str, Path]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Live]:

    from api.app import create_app
    from services.container import Services
    from core.settings import Settings
    from tests.conftest import own_state_database_url
    from tests.helpers import HashEmbeddings, hash_answerability

    base = tmp_path_factory.mktemp("browser")
    corpus_dir = base / "corpus"
    corpus = write_corpus(corpus_dir)

    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    allowed_page = HostPage(app_url)
    refused_page = HostPage(app_url)
    settings = Settings(
        _env_file=None,
        data_dir=base / "data",
        corpus_dir=corpus_dir,
        # Its own registry: tests/werkstatt's `trainer` ingests the same corpus (same source ids and content).
        database_url=own_state_database_url(request),
        llm_backend="none",
        allowed_origins=[allowed_page.url],
        rate_limit_per_minute=120,
        chunk_chars=400,
        transcript_chunk_seconds=60,
        # The evidence rerank compares sentences by meaning; the bag-of-words stand-in would reorder sources by
        # sentence length. The UI is under test here, not ranking (tests/retriever/test_rerank.py covers that).
        rerank_depth=0,
    )
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=EditorPhases())
    report = services.pipeline().run([corpus_dir])
    assert report.added == len(corpus) and not report.failed, report  # all new: no registry of another fixture
    hash_answerability(services.answerer)

    app = UvicornThread(create_app(settings, services), app_port).start()
    limited_settings = settings.model_copy(update={"rate_limit_per_minute": 3})
    limited = UvicornThread(create_app(limited_settings, services), free_port()).start()
    allowed_page.start()
    refused_page.start()
    try:
        yield Live(
            url=app_url,
            limited_url=f"http://127.0.0.1:{limited.port}",
            allowed_page=allowed_page,
            refused_page=refused_page,
            services=services,
            settings=settings,
            corpus=corpus,
        )
    finally:
        for server in (allowed_page, refused_page, limited, app):
            server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    assert CHROMIUM.exists(), "Chromium fehlt: 'make browser' (apt-get install -y chromium) ausführen"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport=DESKTOP, locale="de-DE")
    context.set_default_timeout(15000)
    yield context
    context.close()


@pytest.fixture
def page(context):  # noqa: ANN001, ANN201
    return context.new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

