"""A small local news site for crawl and scheduler tests: a feed listing a few articles.

    site = NewsSite(articles=3).start()
    site.source_entry("s1", interval="2s")   # a sources.yaml entry pointing at it
    site.set_article(1, "New text")           # a changed body (new ETag)
    site.feed_delay = 5                       # a slow (or hung) outlet
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import yaml

from crawler.mirror.server import RequestRecord, Route, SiteServer

# What a crawl of 127.0.0.1 needs (the address guard, politeness delays), plus a light footprint.
CRAWL_SETTINGS = {
    "VEILLE_ALLOWED_HOSTS": "127.0.0.1",
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "VEILLE_EXTRACT_WORKERS": "1",
    "RETRY_TIMES": "0",
}

_PARAGRAPH = ("Le conseil municipal a adopté mardi soir le budget de l'année prochaine après un long débat "
              "sur les investissements, la rénovation des écoles et l'entretien des routes communales.")


def article_html(n: int, text: str | None = None, dated: bool = True) -> str:
    meta = f'<meta property="article:published_time" content="2025-03-{n % 28 + 1:02d}T10:00:00+01:00">' if dated else ""
    body = text or f"Article numéro {n}. {_PARAGRAPH}"
    paragraphs = "".join(f"<p>{body} Paragraphe {i} de l'article {n}, avec des détails.</p>" for i in range(6))
    return (f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Article {n}</title>{meta}</head>'
            f"<body><article><h1>Titre de l'article {n}</h1>{paragraphs}</article></body></html>")


class NewsSite:
    def __init__(self, articles: int = 3):
        self.server = SiteServer()
        self.count = 0
        self.feed_delay = 0.0
        self.feed_status = 200
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self.server.add("/robots.txt", Route(body="User-agent: *\nAllow: /\n", content_type="text/plain"))
        self.server.add("/feed.xml", self._feed)
        for _ in range(articles):
            self.add_article()

    def start(self) -> "NewsSite":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def add_article(self, text: str | None = None) -> int:
        self.count += 1
        self.set_article(self.count, text)
        return self.count

    def set_article(self, n: int, text: str | None = None) -> None:
        html = article_html(n, text)
        self.server.add(f"/a/{n}.html", Route(body=html, etag=f"a{n}-{abs(hash(html)) % 10**8}"))

    def _feed(self, request: RequestRecord) -> Route:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.feed_delay:
                time.sleep(self.feed_delay)
            items = "".join(f"<item><title>Article {n}</title><link>{self.base_url}/a/{n}.html</link></item>"
                            for n in range(1, self.count + 1))
            body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Site</title>'
                    f"<link>{self.base_url}/</link>{items}</channel></rss>")
            return Route(status=self.feed_status, body=body, content_type="application/rss+xml")
        finally:
            with self._lock:
                self.active -= 1

    def source_entry(self, source_id: str, **fields) -> dict:
        return {"id": source_id, "name": f"Site {source_id}", "feeds": [self.base_url + "/feed.xml"],
                "allow": [r"/a/\d+\.html$"], **fields}


def write_sources(path: Path, entries: list[dict]) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"sources": entries}, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a watcher never reads half a file
    return path


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment has NAME=VALUE (children of a test, found through /proc)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
