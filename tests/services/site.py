"""A small local website for import tests: articles (with ETag), an RSS feed, an Atom feed, a sitemap, a redirect
loop, an endless redirect chain, an oversized page and an image. Pages can be changed while it runs."""

from __future__ import annotations

import hashlib
import http.server
import socketserver
import threading

from tests.conftest import free_port

ARTICLE = """<!doctype html><html lang="de"><head><meta charset="utf-8"><title>{title} – Stadtretter</title></head>
<body><nav>Menü Startseite Artikel Kontakt</nav><main><article><h1>{title}</h1>
<p>{body}</p></article></main><footer>Impressum</footer></body></html>"""

ARTICLES = {
    "leerstand": ("Leerstandsbörse in Auenstadt",
                  "Auenstadt vermittelt leere Ladenlokale über eine Leerstandsbörse mit 37 gemeldeten Flächen."),
    "markthalle": ("Die Markthalle von Weidenbach",
                   "Die Markthalle von Weidenbach öffnet samstags mit 24 regionalen Erzeugern und einem Café."),
}


class Site:
    def __init__(self, feed_entries: int = 2) -> None:
        self.pages: dict[str, bytes] = {f"/artikel/{slug}": ARTICLE.format(title=t, body=b).encode()
                                        for slug, (t, b) in ARTICLES.items()}
        self.requests: list[tuple[str, int]] = []
        self.feed_entries = feed_entries
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, headers, body = site.answer(self.path, self.headers.get("If-None-Match"))
                site.requests.append((self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Site":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str, etag: str | None) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path in self.pages:
            tag = '"' + hashlib.sha1(self.pages[path]).hexdigest() + '"'
            if etag == tag:
                return 304, {"ETag": tag}, b""
            return 200, {**html, "ETag": tag}, self.pages[path]
        if path.startswith("/artikel/nr-"):
            number = path.rsplit("-", 1)[1]
            return 200, html, ARTICLE.format(title=f"Meldung {number}", body=f"Kurzmeldung Nummer {number} "
                                             "über die Innenstadt von Auenstadt und ihre Händler.").encode()
        if path == "/feed.xml":
            items = "".join(f"<item><title>Meldung {n}</title><link>{self.url}/artikel/nr-{n}</link>"
                            f"<pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate></item>"
                            for n in range(self.feed_entries))
            body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>{items}</channel></rss>'
            return 200, {"Content-Type": "application/rss+xml"}, body.encode()
        if path == "/atom.xml":
            body = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
                    '<entry><title>Leerstand</title><link href="/artikel/leerstand"/>'
                    '<updated>2024-03-05T08:00:00Z</updated></entry></feed>')
            return 200, {"Content-Type": "application/atom+xml"}, body.encode()
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{self.url}/artikel/{slug}</loc></url>" for slug in ARTICLES)
            body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            return 200, {"Content-Type": "application/xml"}, body.encode()
        if path in ("/loop-a", "/loop-b"):
            return 302, {"Location": "/loop-b" if path == "/loop-a" else "/loop-a"}, b""
        if path.startswith("/weiter/"):
            return 302, {"Location": f"/weiter/{int(path.rsplit('/', 1)[1]) + 1}"}, b""
        if path == "/gross.html":
            return 200, html, ARTICLE.format(title="Groß", body="Text " * 600_000).encode()
        if path == "/bild.png":
            return 200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + bytes(100)
        return 404, html, b"<html><body>Nicht gefunden</body></html>"
