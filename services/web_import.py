"""Import from the web: a page, a sitemap or an RSS/Atom feed, fetched with httpx and stored for the loaders.

Every fetch is bounded: http/https only, private and loopback addresses refused (unless
STADTRETTER_FETCH_ALLOW_PRIVATE), each redirect target checked again, a redirect limit, a timeout, a size cap.
A page is stored as `<data_dir>/imports/<url hash>/<slug>.html` with a sidecar naming its URL (the citation link);
the HTML loader extracts its main text as for HTML files. Fetching again sends the page's ETag/Last-Modified and
keeps the stored file when the server answers 304 or the content hash is unchanged.

Known limit: the address check resolves the host once and httpx resolves it again (DNS rebinding is not covered).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import yaml

from core import __version__
from core.settings import Settings
from ingest.loaders.common import normalize_date, slugify
from services.uploads import ContentError

USER_AGENT = f"Stadtretter-Wissens-Chat/{__version__} (Import)"
REDIRECTS = {301, 302, 303, 307, 308}
STATE_FILE = "http.json"


class FetchError(ContentError):
    """A URL cannot be fetched or used (German message naming the URL)."""


@dataclass
class ImportedPage:
    url: str
    path: Path  # the stored HTML file (kept as it was when the server answered 304 or the content is unchanged)


@dataclass
class ImportPlan:
    """What a fetch round produced: pages to hand to the pipeline, pages that failed, notes for the admin."""

    pages: list[ImportedPage] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, German reason)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Response:
    url: str
    status: int
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None


@dataclass
class _Entry:
    url: str
    date: str | None = None


class WebImporter:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.root = settings.imports_path
        self.max_bytes = int(settings.fetch_max_mb * 1024 * 1024)
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.fetch_timeout_seconds), follow_redirects=False,
            headers={"User-Agent": USER_AGENT}, transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, url: str, progress: Callable[[int, int], None] | None = None) -> ImportPlan:
        """Fetch a page, sitemap or feed; raise FetchError when the URL itself cannot be used."""
        url = url.strip()
        response = self._get(url, conditional=False)
        kind = _sniff(response)
        plan = ImportPlan()
        if kind == "html":
            plan.pages.append(self._store(url, response, None))
            return plan
        entries, nested = _entries(response, kind)
        for sitemap_url in nested:  # a sitemap index: the sitemaps it lists, one level deep
            if len(entries) > self.settings.import_max_entries:
                break
            try:
                entries.extend(_entries(self._get(sitemap_url, conditional=False), "sitemap")[0])
            except (FetchError, ElementTree.ParseError) as exc:
                plan.failed.append((sitemap_url, str(exc)))
        if not entries:
            raise FetchError(f"URL „{url}“: der {_KIND_LABEL[kind]} enthält keine Seiten-Links")
        cap = self.settings.import_max_entries
        if len(entries) > cap:
            label = _KIND_LABEL[kind].capitalize()
            plan.warnings.append(f"{label} „{url}“ enthält {_count(len(entries))} Einträge; nur die ersten "
                                 f"{_count(cap)} werden eingelesen (STADTRETTER_IMPORT_MAX_ENTRIES)")
            entries = entries[:cap]
        for done, entry in enumerate(entries, 1):
            try:
                plan.pages.append(self._store(entry.url, self._get(entry.url, conditional=True), entry.date))
            except FetchError as exc:
                plan.failed.append((entry.url, str(exc)))
            if progress is not None:
                progress(done, len(entries))
        return plan

    # --- storage -------------------------------------------------------------------------------------------
    def folder_for(self, url: str) -> Path:
        return self.root / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]

    def _state(self, url: str) -> dict[str, str]:
        path = self.folder_for(url) / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _store(self, url: str, response: _Response, date: str | None) -> ImportedPage:
        folder = self.folder_for(url)
        state = self._state(url)
        if response.status == 304 and state.get("file"):
            return ImportedPage(url, folder / state["file"])
        if _sniff(response) != "html":
            kind = response.content_type or "unbekannt"
            raise FetchError(f"URL „{url}“ ist keine HTML-Seite (Inhaltstyp {kind})")
        digest = hashlib.sha256(response.body).hexdigest()
        name = state.get("file") or f"{slugify(_last_segment(url), 50)}.html"
        path = folder / name
        sidecar = {"url": url, **({"date": date} if date else {})}
        sidecar_text = yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=True)
        changed = state.get("sha256") != digest or not path.exists() or _read(path.with_suffix(".yml")) != sidecar_text
        folder.mkdir(parents=True, exist_ok=True)
        if changed:
            _write_atomically(path, response.body)
            _write_atomically(path.with_suffix(".yml"), sidecar_text.encode("utf-8"))
        new_state = {"url": url, "file": name, "sha256": digest, "etag": response.etag or "",
                     "last_modified": response.last_modified or ""}
        _write_atomically(folder / STATE_FILE, json.dumps(new_state).encode("utf-8"))
        return ImportedPage(url, path)

    # --- fetching ------------------------------------------------------------------------------------------
    def _get(self, url: str, conditional: bool) -> _Response:
        headers: dict[str, str] = {}
        if conditional:
            state = self._state(url)
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        current = url
        seen = {url}
        for _hop in range(self.settings.fetch_max_redirects + 1):
            self.check_address(current)
            try:
                with self.client.stream("GET", current, headers=headers) as response:
                    if response.status_code in REDIRECTS and response.headers.get("location"):
                        target = urljoin(current, response.headers["location"])
                        if target in seen:
                            raise FetchError(f"URL „{url}“: die Weiterleitungen bilden eine Schleife")
                        seen.add(target)
                        current = target
                        continue
                    if response.status_code == 304:
                        return _Response(current, 304, b"", "", None, None)
                    if response.status_code >= 400:
                        raise FetchError(f"URL „{url}“: der Server antwortet mit Status {response.status_code}")
                    body = self._read_capped(url, response)
                    return _Response(
                        current, response.status_code, body, response.headers.get("content-type", ""),
                        response.headers.get("etag"), response.headers.get("last-modified"),
                    )
            except httpx.TimeoutException:
                raise FetchError(f"URL „{url}“: keine Antwort innerhalb von "
                                 f"{self.settings.fetch_timeout_seconds:g} s") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"URL „{url}“ ist nicht erreichbar: {exc}") from None
        raise FetchError(f"URL „{url}“: mehr als {self.settings.fetch_max_redirects} Weiterleitungen")

    def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        too_big = FetchError(f"URL „{url}“: die Antwort ist größer als {self.settings.fetch_max_mb:g} MB")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        body = bytearray()
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > self.max_bytes:
                raise too_big
        return bytes(body)

    def check_address(self, url: str) -> None:
        """http/https, a host name, and (unless allowed) only public addresses; FetchError otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"URL „{url}“: nur http- und https-Adressen werden abgerufen")
        if not parts.hostname:
            raise FetchError(f"URL „{url}“ enthält keinen Rechnernamen")
        if self.settings.fetch_allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"URL „{url}“: der Rechnername „{parts.hostname}“ ist unbekannt") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if not address.is_global:
                raise FetchError(
                    f"URL „{url}“ zeigt auf eine private oder lokale Adresse ({address}); solche Adressen werden "
                    "nicht abgerufen (STADTRETTER_FETCH_ALLOW_PRIVATE)"
                )


_KIND_LABEL = {"rss": "Feed", "atom": "Feed", "sitemap": "Sitemap", "sitemapindex": "Sitemap-Index"}


def _sniff(response: _Response) -> str:
    """html, rss, atom, sitemap or sitemapindex: by the start of the content, the content type as a hint."""
    head = response.body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml") or "xml" in response.content_type:
        for marker, kind in ((b"<rss", "rss"), (b"<feed", "atom"), (b"<urlset", "sitemap"),
                             (b"<sitemapindex", "sitemapindex"), (b"<rdf:rdf", "rss")):
            if marker in head:
                return kind
        if b"<html" not in head:
            return "xml"
    return "html" if (b"<html" in head or b"<!doctype html" in head or "html" in response.content_type) else "other"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _entries(response: _Response, kind: str) -> tuple[list[_Entry], list[str]]:
    """Page links (with a date when the feed gives one) and, for a sitemap index, the sitemaps it lists."""
    if kind not in _KIND_LABEL:
        raise FetchError(f"URL „{response.url}“ ist weder HTML-Seite noch Sitemap noch RSS/Atom-Feed")
    try:
        root = ElementTree.fromstring(response.body)
    except ElementTree.ParseError as exc:
        raise FetchError(f"URL „{response.url}“: der {_KIND_LABEL[kind]} ist kein gültiges XML ({exc})") from None
    entries: list[_Entry] = []
    nested: list[str] = []
    for node in root.iter():
        name = _local(node.tag)
        if name in ("item", "entry"):
            link, date = None, None
            for child in node:
                child_name = _local(child.tag)
                if child_name == "link":
                    href = child.attrib.get("href")
                    if href and child.attrib.get("rel", "alternate") == "alternate":
                        link = link or href
                    elif not href and (child.text or "").strip():
                        link = link or child.text.strip()
                elif child_name in ("pubdate", "published", "updated", "date") and child.text:
                    date = date or _feed_date(child.text)
            if link:
                entries.append(_Entry(urljoin(response.url, link), date))
        elif (name, kind) in (("url", "sitemap"), ("sitemap", "sitemapindex")):
            loc = next((c.text.strip() for c in node if _local(c.tag) == "loc" and c.text), None)
            if loc and name == "url":
                entries.append(_Entry(urljoin(response.url, loc)))
            elif loc:
                nested.append(urljoin(response.url, loc))
    return entries, nested


def _feed_date(text: str) -> str | None:
    from email.utils import parsedate_to_datetime

    text = text.strip()
    try:
        return parsedate_to_datetime(text).date().isoformat()  # RSS: RFC 822
    except (TypeError, ValueError):
        return normalize_date(text)  # Atom: ISO 8601


def _count(number: int) -> str:
    return f"{number:,}".replace(",", ".")  # German thousands separator


def _last_segment(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    return os.path.splitext(segments[-1])[0] if segments else parts.hostname or "seite"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
