"""Content management over HTTP against a real server process: upload → job → cited → deleted, imports, reindex,
and every kind of bad input (German message naming the file or field, nothing stored, earlier content intact)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from services.container import Services
from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TRANSCRIPT
from tests.helpers import HashEmbeddings
from tests.server_process import ServerProcess
from tests.services.site import Site


ARTICLE_NEW = """---
title: Leerstandsbörse in Auenstadt
type: article
---

Auenstadt vermittelt leere Ladenlokale über eine Leerstandsbörse mit 37 gemeldeten Flächen an Gründerinnen.
"""
WEBTALK_NEW = """WEBVTT

NOTE
title: WebTalk Markthalle Weidenbach

00:00:01.000 --> 00:00:09.000
<v Lena Voss>Die Markthalle von Weidenbach öffnet samstags mit vierundzwanzig regionalen Erzeugern.
"""


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf("Geheimer Kursinhalt über Innenstadtfonds."))))
    writer.encrypt("geheim")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class Admin:
    """The running server plus what a test needs around it."""

    def __init__(self, server: ServerProcess, settings: Settings, admin_key: str, ask_key: str, site: Site) -> None:
        self.url, self.settings, self.site = server.url, settings, site
        self.http = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {admin_key}"})
        self.ask_key = ask_key

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/v1/admin/jobs/{job_id}").json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"Auftrag {job_id} nicht fertig: {job}")

    def top_title(self, query: str) -> str:
        results = self.http.post("/v1/search", json={"query": query, "k": 1}).json()["results"]
        return results[0]["source"]["title"] if results else ""

    def state(self) -> tuple[list[tuple[str, int]], list[str]]:
        """Registered sources and stored uploads: what bad input must leave as it was."""
        sources = self.http.get("/v1/admin/documents").json()["sources"]
        uploads = self.settings.uploads_path
        stored = sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*")) if uploads.exists() else []
        return sorted((s["source_id"], s["chunk_count"]) for s in sources), stored


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    base = tmp_path_factory.mktemp("admin-api")
    corpus = base / "corpus"
    (corpus / "articles").mkdir(parents=True)
    (corpus / "webtalks").mkdir()
    (corpus / "articles" / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    (corpus / "articles" / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    (corpus / "webtalks" / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
    env = {"STADTRETTER_DATA_DIR": str(base / "data"), "STADTRETTER_CORPUS_DIR": str(corpus),
           "STADTRETTER_MAX_UPLOAD_MB": "1", "STADTRETTER_FETCH_ALLOW_PRIVATE": "true",
           "STADTRETTER_IMPORT_MAX_ENTRIES": "3", "STADTRETTER_FETCH_MAX_MB": "2",
           "STADTRETTER_FETCH_MAX_REDIRECTS": "3", "STADTRETTER_LLM_BACKEND": "none"}
    settings = Settings(_env_file=None, **{k.removeprefix("STADTRETTER_").lower(): v for k, v in env.items()})
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    report = services.pipeline().run([corpus])
    assert report.added == 3 and not report.failed, report  # all new: the module's state database is its own
    admin_key = services.api_keys.create("redaktion", "admin").key
    ask_key = services.api_keys.create("website", "ask,search").key
    with Site(feed_entries=10_000) as site, ServerProcess(env, base / "server.log") as server:
        yield Admin(server, settings, admin_key, ask_key, site)


def test_admin_routes_refuse_the_unauthenticated_and_other_scopes(admin: Admin) -> None:
    anonymous = httpx.post(f"{admin.url}/v1/admin/documents", files={"files": ("a.md", b"# A\n\nText")})
    assert anonymous.status_code == 401 and "Anmeldung" in anonymous.json()["detail"]
    for method, path in (("GET", "/v1/admin/jobs"), ("GET", "/v1/admin/documents"), ("POST", "/v1/admin/reindex"),
                         ("DELETE", "/v1/admin/documents/x"), ("POST", "/v1/admin/imports")):
        refused = httpx.request(method, f"{admin.url}{path}", headers={"Authorization": f"Bearer {admin.ask_key}"})
        assert refused.status_code == 403, (method, path)
    assert not admin.state()[1]


def test_upload_answers_202_at_once_then_is_cited_listed_and_deleted(admin: Admin) -> None:
    started = time.monotonic()
    response = admin.http.post("/v1/admin/documents", data={"phase": "T"}, files=[
        ("files", ("leerstand.md", ARTICLE_NEW.encode(), "text/markdown")),
        ("files", ("markthalle.vtt", WEBTALK_NEW.encode(), "text/vtt")),
        ("files", ("kurs-fonds.pdf", _pdf("Der Innenstadtfonds von Auenstadt fördert Schaufenster."), "text/plain")),
    ])
    assert response.status_code == 202 and time.monotonic() - started < 5
    queued = response.json()
    assert queued["status"] in ("queued", "running", "done") and queued["files"] == [
        "leerstand.md", "markthalle.vtt", "kurs-fonds.pdf"]
    job = admin.wait(queued["id"])
    assert job["status"] == "done", job
    assert [f["outcome"] for f in job["result"]["files"]] == ["added"] * 3 and job["result"]["added"] == 3
    assert job["progress"] == {"done": 3, "total": 3} and job["created_by"] == "redaktion" and job["attempts"] == 1
    assert queued["id"] in [j["id"] for j in admin.http.get("/v1/admin/jobs").json()["jobs"]]

    assert admin.top_title("Leerstandsbörse Ladenlokale") == "Leerstandsbörse in Auenstadt"
    answer = httpx.post(f"{admin.url}/v1/ask", json={"question": "Wie viele Flächen hat die Leerstandsbörse?"},
                        timeout=30).json()
    assert answer["citations"][0]["title"] == "Leerstandsbörse in Auenstadt"
    webtalks = admin.http.get("/v1/admin/documents", params={"type": "webtalk"}).json()["sources"]
    new_talk = next(s for s in webtalks if s["title"] == "WebTalk Markthalle Weidenbach")
    assert new_talk["origin"] == "upload" and {s["origin"] for s in webtalks} == {"upload", "corpus"}
    pdf_id = job["result"]["files"][2]["source_id"]
    assert httpx.get(f"{admin.url}/quellen/{pdf_id}/datei").content.startswith(b"%PDF")
    bad_filter = admin.http.get("/v1/admin/documents", params={"phase": "X"})
    assert bad_filter.status_code == 422 and "„phase“" in str(bad_filter.json()["detail"])

    for entry in job["result"]["files"]:
        deleted = admin.http.delete(f"/v1/admin/documents/{entry['source_id']}")
        assert deleted.status_code == 200, deleted.text
    answer = httpx.post(f"{admin.url}/v1/ask", json={"question": "Wie viele Flächen hat die Leerstandsbörse?"},
                        timeout=30).json()
    assert all(c["title"] != "Leerstandsbörse in Auenstadt" for c in answer["citations"])
    assert admin.top_title("Leerstandsbörse Ladenlokale") != "Leerstandsbörse in Auenstadt"
    assert admin.state()[1] == []  # the stored uploads are gone too
    missing = admin.http.delete(f"/v1/admin/documents/{pdf_id}")
    assert missing.status_code == 404 and pdf_id in missing.json()["detail"]


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ([("files", ("leer.pdf", b"", "application/pdf"))], 422, "„leer.pdf“ ist leer"),
        ([("files", ("zufall.vtt", bytes(range(256)) * 8, "text/vtt"))], 415, "„zufall.vtt“"),
        ([("files", ("riesig.md", b"# Titel\n\n" + b"Text " * 250_000, "text/markdown"))], 413, "größer als"),
        ([("files", ("../../x.md", b"# X\n\nText", "text/markdown"))], 422, "Pfadangaben"),
        ([("files", ("bild.pdf", b"\x89PNG\r\n\x1a\n" + bytes(500), "application/pdf"))], 415, "keine PDF-Datei"),
        ([], 422, "Feld „files“"),
        ([("files", ("gut.md", b"# Gut\n\nInhalt", "text/markdown")),
          ("files", ("schlecht.exe", b"MZ\x90\x00", "application/octet-stream"))], 415, "„schlecht.exe“"),
    ],
    ids=["leeres-pdf", "zufall-vtt", "zu-gross", "pfad", "png-als-pdf", "leer", "eine-von-zwei"],
)
def test_bad_uploads_are_refused_in_the_request(admin: Admin, files: list, status: int, words: str) -> None:
    before = admin.state()
    if files:
        response = admin.http.post("/v1/admin/documents", files=files)
    else:  # an empty multipart request: only a metadata field
        response = admin.http.post("/v1/admin/documents", data={"type": "article"}, files={})
    assert response.status_code == status, response.text
    assert words in str(response.json()["detail"])  # a message, or the field list of a 422
    assert admin.state() == before
    assert admin.top_title("Access Point Betriebskosten WLAN") == "WLAN für die Innenstadt von Lindenfeld"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("kaputt.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF garbage", "kaputt.pdf: PDF ist beschädigt"),
        ("geheim.pdf", None, "geheim.pdf: PDF ist verschlüsselt"),
    ],
)
def test_pdfs_the_loaders_refuse_fail_in_the_job_and_leave_nothing(
    admin: Admin, name: str, data: bytes | None, reason: str
) -> None:
    before = admin.state()
    response = admin.http.post("/v1/admin/documents", files={"files": (name, data or _encrypted_pdf())})
    assert response.status_code == 202
    job = admin.wait(response.json()["id"])
    entry = job["result"]["files"][0]
    assert entry["outcome"] == "failed" and entry["reason"].startswith(reason)
    assert job["result"]["failed"][0]["path"] == name
    assert admin.state() == before
    assert admin.top_title("Access Point Betriebskosten WLAN") == "WLAN für die Innenstadt von Lindenfeld"


def test_bad_metadata_names_the_field(admin: Admin) -> None:
    before = admin.state()
    for field, value in (("type", "video"), ("phase", "Q"), ("date", "irgendwann"), ("url", "javascript:alert(1)")):
        response = admin.http.post("/v1/admin/documents", data={field: value},
                                   files={"files": ("a.md", b"# A\n\nText")})
        assert response.status_code == 422 and f"Feld „{field}“" in response.json()["detail"]
    assert admin.state() == before


def test_imports_run_as_jobs_with_a_capped_feed(admin: Admin) -> None:
    response = admin.http.post("/v1/admin/imports", json={"url": f"{admin.site.url}/feed.xml"})
    assert response.status_code == 202
    job = admin.wait(response.json()["id"])
    assert job["status"] == "done" and job["result"]["added"] == 3
    assert "10.000 Einträge" in job["result"]["warnings"][0]["message"]
    assert admin.top_title("Kurzmeldung Nummer 1 Auenstadt").startswith("Meldung")
    sources = admin.http.get("/v1/admin/documents").json()["sources"]
    imported = [s for s in sources if s["origin"] == "import"]
    assert len(imported) == 3 and all(s["url"].startswith(admin.site.url) for s in imported)
    for source in imported:
        assert admin.http.delete(f"/v1/admin/documents/{source['source_id']}").status_code == 200
    assert not any(admin.settings.imports_path.iterdir())


@pytest.mark.parametrize(("path", "words"), [("/loop-a", "Schleife"), ("/gross.html", "größer als 2 MB")])
def test_bad_imports_fail_with_a_german_message_and_store_nothing(admin: Admin, path: str, words: str) -> None:
    before = admin.state()
    response = admin.http.post("/v1/admin/imports", json={"url": f"{admin.site.url}{path}"})
    job = admin.wait(response.json()["id"])
    assert job["status"] == "failed" and words in job["error"] and path in job["error"]
    assert admin.state() == before
    assert admin.top_title("Access Point Betriebskosten WLAN") == "WLAN für die Innenstadt von Lindenfeld"


def test_import_refuses_a_missing_or_non_http_url_in_the_request(admin: Admin) -> None:
    cases = (({"url": ""}, "Feld „url“"), ({"url": "file:///etc/passwd"}, "nur http"), ({}, "Feld „url“"))
    for body, words in cases:
        response = admin.http.post("/v1/admin/imports", json=body)
        assert response.status_code == 422 and words in str(response.json()["detail"])


def test_reindex_runs_as_a_job(admin: Admin) -> None:
    response = admin.http.post("/v1/admin/reindex")
    assert response.status_code == 202 and response.json()["kind"] == "reindex"
    job = admin.wait(response.json()["id"])
    assert job["status"] == "done" and job["result"]["added"] == 3
    assert admin.top_title("Access Point Betriebskosten WLAN") == "WLAN für die Innenstadt von Lindenfeld"


def test_a_private_address_is_refused_in_the_request(tmp_path: Path) -> None:
    from tests.auth_support import auth_client, key_headers

    client = auth_client(tmp_path)  # STADTRETTER_FETCH_ALLOW_PRIVATE off, as in production
    headers = key_headers(client, "admin")
    for url in ("http://127.0.0.1:8000/", "http://localhost/admin", "http://192.168.1.1/"):
        response = client.post("/v1/admin/imports", json={"url": url}, headers=headers)
        assert response.status_code == 422 and "private oder lokale Adresse" in response.json()["detail"]
    assert client.get("/v1/admin/jobs", headers=headers).json()["jobs"] == []


def test_questions_are_answered_while_another_writer_holds_the_lock(admin: Admin) -> None:
    from services.writer_lock import writer_lock

    with writer_lock(admin.settings.data_dir, 0):  # e.g. a long `stadtretter ingest` on the same data
        response = admin.http.post("/v1/admin/documents", files={"files": ("leerstand.md", ARTICLE_NEW.encode())})
        assert response.status_code == 202
        time.sleep(1.0)
        assert admin.http.get(f"/v1/admin/jobs/{response.json()['id']}").json()["status"] == "running"
        answer = httpx.post(f"{admin.url}/v1/ask", json={"question": "Was kostet ein Access Point im Jahr?"},
                            timeout=30)
        assert answer.status_code == 200 and answer.json()["citations"][0]["title"].startswith("WLAN")
    job = admin.wait(response.json()["id"])
    assert job["status"] == "done" and job["result"]["added"] == 1
    assert admin.http.delete(f"/v1/admin/documents/{job['result']['files'][0]['source_id']}").status_code == 200


def test_a_browser_session_needs_the_csrf_token_and_the_admin_role(tmp_path: Path) -> None:
    from tests.auth_support import auth_client, login

    with auth_client(tmp_path) as client:
        login(client, "trainer")
        trainer = client.post("/v1/admin/documents", files={"files": ("a.md", b"# A\n\nText")})
        assert trainer.status_code == 403
        token = login(client, "admin")
        forged = client.post("/v1/admin/documents", files={"files": ("a.md", b"# A\n\nText")})
        assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
        accepted = client.post("/v1/admin/documents", files={"files": ("a.md", b"# A\n\nText")},
                               headers={"X-CSRF-Token": token})
        assert accepted.status_code == 202
        page = client.get("/verwaltung")
        assert page.status_code == 200 and f'<meta name="csrf-token" content="{token}">' in page.text
