"""The one config-driven spider: discovers a source's articles from its feeds, news sitemaps and section pages.

`scrapy crawl news -a source=bfmtv` crawls one source of config/sources.yaml (or the file
named by `-a sources_file=…` / VEILLE_SOURCES). A new outlet is a YAML entry, not a class.
The spider only discovers and fetches; extraction, dedup and storage are item pipelines.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

import feedparser
import scrapy
from lxml.etree import XMLSyntaxError
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap
from twisted.internet.defer import CancelledError
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError

from crawler.config import Source, load_sources
from crawler.store import store_from_settings
from crawler.urls import canonical_url

HTML_TYPES = (b"text/html", b"application/xhtml+xml")
# Links a section page has that are never articles, whatever the source's allow patterns say.
NEVER_ARTICLES = [r"/(tag|tags|auteur|author|recherche|search|login|compte|abonnement)/", r"\.(pdf|jpe?g|png|gif|mp4|mp3|zip)$"]


class NewsSpider(scrapy.Spider):
    name = "news"

    def __init__(self, source: str | None = None, sources_file: str | None = None, limit: int | str = 0, **kwargs: Any):
        super().__init__(**kwargs)
        if not source:
            raise ValueError("the news spider needs a source: -a source=ID (see `veille sources`)")
        self.source_id = source
        self.sources_file = sources_file
        self.limit = int(limit or 0)

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any) -> "NewsSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        config = load_sources(spider.sources_file or crawler.settings.get("VEILLE_SOURCES"))
        spider.source = config.get(spider.source_id)
        spider.limit = spider.limit or crawler.settings.getint("VEILLE_LIMIT")
        spider.store = store_from_settings(crawler.settings)
        spider.setup(spider.source)
        return spider

    def setup(self, source: Source) -> None:
        self.source = source
        urls = source.feeds + source.sitemaps + source.sections
        self.allowed_domains = sorted({urlsplit(u).hostname for u in urls if urlsplit(u).hostname})
        self.allow = [re.compile(p) for p in source.allow]
        self.deny = [re.compile(p) for p in source.deny + NEVER_ARTICLES]
        # Off-site links are counted in article_request (allow_domains would ignore the port).
        self.links = LinkExtractor(allow=source.allow, deny=source.deny + NEVER_ARTICLES, unique=True)
        self.scheduled = 0

    # --- discovery ----------------------------------------------------------------------

    async def start(self):
        for kind, urls, callback in (("feed", self.source.feeds, self.parse_feed),
                                     ("sitemap", self.source.sitemaps, self.parse_sitemap),
                                     ("section", self.source.sections, self.parse_section)):
            for url in urls:
                yield scrapy.Request(url, callback=callback, errback=self.on_error, dont_filter=True,
                                     meta={"kind": kind, "conditional": True})
        for url in self.recrawl_urls():
            self.count("recrawl/requested")
            yield scrapy.Request(url, callback=self.parse_article, errback=self.on_error, dont_filter=True,
                                 meta={"kind": "article", "conditional": True, "recrawl": True})

    def recrawl_urls(self) -> list[str]:
        """Known articles in their hot window (Source.recrawl: 1h, 6h, 24h after first seen by default)."""
        if not self.settings.getbool("VEILLE_RECRAWL", True):
            return []
        windows = [w.total_seconds() for w in self.source.recrawl]
        return self.store.recrawl_due(self.source.id, windows, limit=self.settings.getint("VEILLE_RECRAWL_MAX", 200))

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        if response.status == 304:
            return
        parsed = feedparser.parse(response.body, response_headers={"content-type": response.headers.get("Content-Type", b"").decode("latin-1")})
        if parsed.bozo:
            self.count("errors/feed_malformed")
            self.logger.warning("malformed feed %s: %s (%d entries recovered)", response.url, parsed.bozo_exception, len(parsed.entries))
        for entry in parsed.entries:
            link = entry.get("link") or entry.get("id")
            if link:
                yield from self.article_request(response.urljoin(link))

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        if response.status == 304:
            return
        body = response.body
        if body[:2] == b"\x1f\x8b":
            body = gunzip(body, max_size=self.settings.getint("DOWNLOAD_MAXSIZE"))
        try:
            sitemap = Sitemap(body)
            entries = list(sitemap)
        except (XMLSyntaxError, StopIteration, ValueError) as exc:
            self.count("errors/sitemap_malformed")
            self.logger.warning("malformed sitemap %s: %s", response.url, exc)
            return
        if sitemap.type == "sitemapindex":
            for entry in entries:
                yield response.follow(entry["loc"], callback=self.parse_sitemap, errback=self.on_error,
                                      meta={"kind": "sitemap", "conditional": True}, dont_filter=True)
            return
        for entry in entries:
            yield from self.article_request(response.urljoin(entry["loc"]))

    def parse_section(self, response: Response) -> Iterator[scrapy.Request]:
        if response.status == 304:
            return
        if not self.is_html(response):
            self.count("skipped/not_html")
            return
        for link in self.links.extract_links(response):
            yield from self.article_request(link.url)

    def article_request(self, url: str) -> Iterator[scrapy.Request]:
        url = canonical_url(url)
        if urlsplit(url).hostname not in self.allowed_domains:
            self.count("skipped/offsite")
            return
        if not self.is_article_url(url):
            self.count("skipped/not_article_url")
            return
        if self.limit and self.scheduled >= self.limit:
            self.count("skipped/over_limit")
            return
        self.scheduled += 1
        yield scrapy.Request(url, callback=self.parse_article, errback=self.on_error,
                             meta={"kind": "article", "conditional": True})

    def is_article_url(self, url: str) -> bool:
        if any(p.search(url) for p in self.deny):
            return False
        return not self.allow or any(p.search(url) for p in self.allow)

    # --- articles -------------------------------------------------------------------------

    def parse_article(self, response: Response) -> Iterator[dict]:
        if response.status == 304:  # a recrawl of a known article that has not changed
            self.count("recrawl/not_modified")
            return
        self.count("pages_fetched")
        if not self.is_html(response):
            self.count("skipped/not_html")
            self.store.record_fetch(canonical_url(response.url), source=self.source.id, kind="article",
                                    status=response.status, error="not html")
            return
        yield {
            "url": canonical_url(response.url),
            "requested_url": response.request.url if response.request else response.url,
            "source": self.source.id,
            "outlet": self.source.name,
            "language": self.source.language,
            "junk_patterns": list(self.source.junk_patterns),
            "status": response.status,
            "headers": response.headers.to_unicode_dict(),
            "body": response.body,
            "encoding": response.encoding,
            "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    @staticmethod
    def is_html(response: Response) -> bool:
        content_type = response.headers.get("Content-Type", b"").split(b";")[0].strip().lower()
        if content_type:
            return content_type in HTML_TYPES
        return b"<html" in response.body[:2048].lower()

    # --- errors -----------------------------------------------------------------------------

    def on_error(self, failure) -> None:
        request = failure.request
        kind = request.meta.get("kind", "page")
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            return  # counted by the middleware that refused it (robots, address guard, known URL)
        if failure.check(HttpError):
            status = failure.value.response.status
            reason, error = f"errors/http_{status}", f"HTTP {status}"
        elif failure.check(DownloadCancelledError, CancelledError):
            status, reason, error = None, "skipped/too_large", "larger than DOWNLOAD_MAXSIZE"
        elif failure.check(DownloadTimeoutError, TimeoutError, TCPTimedOutError):
            status, reason, error = None, "errors/timeout", "timeout"
        elif failure.check(CannotResolveHostError, DNSLookupError):
            status, reason, error = None, "errors/dns", "DNS lookup failed"
        elif failure.check(DownloadConnectionRefusedError):
            status, reason, error = None, "errors/connection_refused", "connection refused"
        else:
            status, reason, error = None, "errors/connection", f"{failure.type.__name__}: {failure.value}"
        self.count(reason)
        self.logger.warning("%s %s: %s", kind, request.url, error)
        self.store.record_fetch(request.url, source=self.source.id, kind=kind, status=status, error=error)

    def count(self, key: str) -> None:
        self.crawler.stats.inc_value(f"veille/{key}")
