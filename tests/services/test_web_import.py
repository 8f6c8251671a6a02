"""Web import against a local site: page, feeds, sitemap, re-import, and the bounded fetch (bad input)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from services.container import Services
from services.web_import import FetchError, WebImporter
from tests.helpers import HashEmbeddings
from tests.services.site import ARTICLE, Site


@pytest.fixture
def site() -> Site:
    with Site(feed_entries=10_000) as running:
        yield running


@pytest.fixture
def services(tmp_path: Path, tiny_corpus: Path) -> Services:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", corpus_dir=tiny_corpus, fetch_allow_private=True,
                        import_max_entries=3, fetch_max_mb=2, fetch_max_redirects=3, fetch_timeout_seconds=5)
    services = Services(settings, embeddings=HashEmbeddings(), phase_tagger=None)
    services.pipeline().run([tiny_corpus])
    return services


def _import(services: Services, url: str) -> tuple[str, dict | None, str | None]:
    job = services.jobs.create("import", {"url": url})
    services.job_worker().run_next()
    done = services.jobs.get(job.id)
    return done.status, done.result, done.error


def test_a_page_is_imported_with_its_url_as_citation_link_and_reimported_only_when_changed(
    services: Services, site: Site
) -> None:
    url = f"{site.url}/artikel/leerstand"
    status, result, _ = _import(services, url)
    assert status == "done" and result["files"][0]["outcome"] == "added"
    record = services.registry.get(result["files"][0]["source_id"])
    assert (record.title, record.url) == ("Leerstandsbörse in Auenstadt", url)
    hit = services.search.search("Leerstandsbörse Ladenlokale", k=1)[0]
    assert hit.metadata["url"] == url and "Menü" not in hit.text

    assert _import(services, url)[1]["files"][0]["outcome"] == "unchanged"
    site.pages["/artikel/leerstand"] = ARTICLE.format(title="Leerstandsbörse in Auenstadt",
                                                      body="Die Leerstandsbörse zählt jetzt 41 Flächen.").encode()
    changed = _import(services, url)[1]["files"][0]
    assert changed["outcome"] == "updated" and changed["source_id"] == record.source_id
    assert "41 Flächen" in services.search.search("Leerstandsbörse Flächen", k=1)[0].text


def test_feed_entries_use_etag_on_reimport(services: Services, site: Site, tmp_path: Path) -> None:
    status, result, _ = _import(services, f"{site.url}/atom.xml")
    assert status == "done" and [f["outcome"] for f in result["files"]] == ["added"]
    assert services.registry.get(result["files"][0]["source_id"]).date == "2024-03-05"
    _import(services, f"{site.url}/atom.xml")
    assert ("/artikel/leerstand", 304) in site.requests


def test_sitemap_imports_every_page(services: Services, site: Site) -> None:
    status, result, _ = _import(services, f"{site.url}/sitemap.xml")
    assert status == "done" and result["added"] == 2
    assert {r.title for r in services.content.sources()} >= {"Die Markthalle von Weidenbach"}


def test_a_feed_with_ten_thousand_entries_is_capped(services: Services, site: Site) -> None:
    status, result, _ = _import(services, f"{site.url}/feed.xml")
    assert status == "done" and result["added"] == 3
    assert "10.000 Einträge" in result["warnings"][0]["message"] and "ersten 3" in result["warnings"][0]["message"]
    assert sum(1 for path, _ in site.requests if path.startswith("/artikel/nr-")) == 3


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/loop-a", "Schleife"),
        ("/weiter/1", "mehr als 3 Weiterleitungen"),
        ("/gross.html", "größer als 2 MB"),
        ("/bild.png", "weder HTML-Seite"),
        ("/fehlt", "Status 404"),
    ],
)
def test_bad_urls_fail_with_a_german_message_and_store_nothing(
    services: Services, site: Site, path: str, words: str
) -> None:
    before = [(r.source_id, r.file_hash) for r in services.registry.all()]
    status, _, error = _import(services, f"{site.url}{path}")
    assert status == "failed" and words in error and f"{site.url}{path}" in error
    assert [(r.source_id, r.file_hash) for r in services.registry.all()] == before
    assert not services.settings.imports_path.exists() or not any(services.settings.imports_path.iterdir())
    assert "WLAN" in services.search.search("WLAN Access Point", k=1)[0].metadata["title"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/", "http://localhost/x", "http://[::1]/", "http://10.1.2.3/",
    "http://169.254.169.254/latest/meta-data", "ftp://example.org/x", "file:///etc/passwd",
])
def test_private_addresses_and_other_schemes_are_refused(tmp_path: Path, url: str) -> None:
    importer = WebImporter(Settings(_env_file=None, data_dir=tmp_path))
    with pytest.raises(FetchError) as refused:
        importer.fetch(url)
    assert url in str(refused.value)
    assert "private oder lokale Adresse" in str(refused.value) or "nur http- und https" in str(refused.value)


def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    importer = WebImporter(Settings(_env_file=None, data_dir=tmp_path), transport=httpx.MockTransport(handler))
    importer.check_address = _public_only_for("example.org", importer.check_address)
    with pytest.raises(FetchError, match="private oder lokale Adresse"):
        importer.fetch("http://example.org/seite")


def _public_only_for(host: str, check):  # noqa: ANN001, ANN202
    """No DNS on the offline test machine: treat one host name as public, check every other address for real."""
    return lambda url: None if f"//{host}/" in url else check(url)
