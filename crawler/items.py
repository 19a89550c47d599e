"""What flows through the pipelines: a fetched page, then the article built from it.

Items are plain dicts (Scrapy accepts them); this module names their keys and derives the
stable identifiers. A page item carries `url, source, outlet, language, status, headers,
body (bytes), encoding, fetched, junk_patterns`; the extraction worker (crawler.pages) turns it
into an article with the keys of `crawler.store.ARTICLE_COLUMNS`.
"""
from __future__ import annotations

import hashlib


def article_id(canonical_url: str) -> str:
    """Stable article id: the first 20 hex digits of SHA-1 of the canonical URL."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()[:20]


def body_hash(body: str) -> str:
    """Hash of the whitespace-normalised body, to tell a changed article from an unchanged one."""
    return hashlib.sha1(" ".join(body.split()).encode("utf-8")).hexdigest()
