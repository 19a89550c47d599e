"""Scrapy middlewares, one job each.

- AddressGuardMiddleware: refuse requests (also after a redirect) to loopback, private,
  link-local and cloud-metadata addresses unless the host is allowlisted.
- ConditionalGetMiddleware: send the stored ETag / Last-Modified for feeds, sitemaps, section
  pages and recrawled articles; remember the new validators; a 304 is counted, not re-parsed.
- IncrementalMiddleware: drop article requests for URLs whose article is already stored.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from crawler.store import store_from_settings
from crawler.urls import BLOCKED_HOSTNAMES, is_allowlisted, is_public_address

logger = logging.getLogger(__name__)


class AddressGuardMiddleware:
    """Keeps the crawler off the machine it runs on and off private networks (SSRF guard)."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.allowlist = tuple(crawler.settings.getlist("VEILLE_ALLOWED_HOSTS"))
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request: Request):
        if is_allowlisted(request.url, self.allowlist):
            return None
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        if host not in self._verdicts:
            self._verdicts[host] = await self._is_public(host, parts.port or 80)
        if not self._verdicts[host]:
            self.crawler.stats.inc_value("veille/skipped/private_address")
            logger.warning("refused %s: %s is not a public address (allowlist it in VEILLE_ALLOWED_HOSTS)",
                           request.url, host)
            raise IgnoreRequest(f"private address: {host}")
        return None

    @staticmethod
    async def _is_public(host: str, port: int) -> bool:
        if host in BLOCKED_HOSTNAMES or host.endswith(".localhost") or host.endswith(".internal"):
            return False
        try:
            return is_public_address(host)
        except ValueError:
            pass  # a name, not an address literal: resolve it
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return True  # unresolvable: the download fails with a DNS error, counted there
        return all(is_public_address(info[4][0]) for info in infos)


class ConditionalGetMiddleware:
    """Conditional GET for pages that are polled again and again (feeds, sitemaps, sections)."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.store = store_from_settings(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request: Request):
        if not request.meta.get("conditional"):
            return None
        etag, last_modified = self.store.validators(request.url)
        if etag:
            request.headers.setdefault("If-None-Match", etag)
        if last_modified:
            request.headers.setdefault("If-Modified-Since", last_modified)
        request.meta.setdefault("handle_httpstatus_list", [304])
        return None

    def process_response(self, request: Request, response: Response):
        if not request.meta.get("conditional"):
            return response
        source = request.meta.get("source") or getattr(self.crawler.spider, "source_id", "?")
        if response.status == 304:
            self.crawler.stats.inc_value("veille/not_modified")
            self.store.record_fetch(request.url, source=source, kind=request.meta.get("kind", "page"), status=304)
        elif 200 <= response.status < 300:
            self.store.record_fetch(
                request.url, source=source, kind=request.meta.get("kind", "page"), status=response.status,
                etag=_header(response, b"ETag"), last_modified=_header(response, b"Last-Modified"),
            )
        return response


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class IncrementalMiddleware(BaseSpiderMiddleware):
    """Never fetch again an article that is already stored."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.store = store_from_settings(crawler.settings)

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        if (request.meta.get("kind") == "article" and not request.meta.get("recrawl")
                and self.store.is_known(request.url)):
            self.crawler.stats.inc_value("veille/skipped/known")
            return None
        return request
