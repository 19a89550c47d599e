"""ExtractPipeline: turn a fetched page into an article with trafilatura + Veille's cleaning.

Extraction is the CPU cost of a crawl, so it runs in a pool of worker processes (one per
core plus one by default, VEILLE_EXTRACT_WORKERS) while the reactor keeps downloading.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from scrapy.exceptions import DropItem

from crawler.dedup import signature
from crawler.extraction import ExtractionError, decode_html, extract_article
from crawler.items import article_id, body_hash

logger = logging.getLogger(__name__)


def extract_page(body: bytes, encoding: str | None, url: str, junk_patterns: list[str]) -> dict:
    """Worker-side: decode and extract one page (plain data in and out)."""
    return extract_article(decode_html(body, encoding), url, junk_patterns=junk_patterns)


def process_page(body: bytes, encoding: str | None, url: str, junk_patterns: list[str]) -> dict:
    """Worker-side: extract one page and sign its text for the story index (both CPU-bound)."""
    extracted = extract_page(body, encoding, url, junk_patterns)
    extracted["signature"] = signature("\n".join([*extracted["lead"], *extracted["paragraphs"]])).to_bytes()
    return extracted


def build_article(page: dict, extracted: dict) -> dict:
    """The stored article record from a page item and its extraction result."""
    body = "\n".join(extracted["paragraphs"])
    lead = "\n".join(extracted["lead"])
    return {
        "id": article_id(page["url"]),
        "url": page["url"],
        "requested_url": page.get("requested_url"),
        "source": page["source"],
        "outlet": page["outlet"],
        "title": extracted["title"],
        "lead": lead,
        "body": body,
        "authors": extracted["authors"],
        "published": extracted["published"],
        "fetched": page["fetched"],
        "lang": extracted["lang"] or page.get("language"),
        "description": extracted["description"],
        "tags": extracted["tags"],
        "word_count": len(f"{lead}\n{body}".split()),
        "body_hash": body_hash(body),
        "raw_ref": page.get("raw_ref"),
        "signature": extracted.get("signature"),
    }


def is_truncated(body: bytes) -> bool:
    """An HTML document cut short: no closing </html> or </body> in its tail."""
    tail = body[-2048:].lower()
    return b"</html" not in tail and b"</body" not in tail


_POOL: ProcessPoolExecutor | None = None


def _shared_pool(workers: int) -> ProcessPoolExecutor:
    """One process pool for every crawler of this process (several sources crawl together)."""
    global _POOL
    if _POOL is None:
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    return _POOL


class ExtractPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        # 0: one per core plus one, so the cores stay busy while this process (reactor, archive,
        # store) has the CPU (measured on 2 cores, 340 KB pages: 3 workers ~10 % faster than 2).
        self.workers = crawler.settings.getint("VEILLE_EXTRACT_WORKERS") or (os.cpu_count() or 1) + 1

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item: dict) -> dict:
        stats = self.crawler.stats
        if is_truncated(item["body"]):
            stats.inc_value("veille/errors/truncated_html")
            logger.warning("truncated HTML from %s: extracting what is there", item["url"])
        if self.workers > 1:
            future = _shared_pool(self.workers).submit(
                process_page, item["body"], item["encoding"], item["url"], item["junk_patterns"])
            call = asyncio.wrap_future(future)
        else:
            call = asyncio.to_thread(process_page, item["body"], item["encoding"], item["url"], item["junk_patterns"])
        try:
            extracted = await call
        except ExtractionError as exc:
            stats.inc_value("veille/skipped/no_text")
            raise DropItem(f"no article text in {item['url']}: {exc}") from None
        language = item.get("language")
        if extracted["lang"] and language and extracted["lang"][:2].lower() != language[:2].lower():
            stats.inc_value("veille/skipped/wrong_language")
            raise DropItem(f"{item['url']} is in {extracted['lang']!r}, the source expects {language!r}")
        return build_article(item, extracted)
