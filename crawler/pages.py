"""Per-page CPU work of a crawl, run in the extraction worker processes (no Scrapy here).

`process_page` archives the raw response in the worker's WARC file first (so nothing fetched is
lost, even when extraction fails), then extracts the article (trafilatura + Veille's cleaning),
signs its text for the story index and matches it against the saved topics. Plain data in and out.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from crawler.archive import WarcArchive
from crawler.dedup import signature, story_text
from crawler.extraction import decode_html, extract_article
from crawler.items import article_id, body_hash
from crawler.topics import TopicMatcher, load_topics


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs besides the page: where to archive, which topics to match (None: none)."""

    data_dir: str
    topics_file: str | None = None


def extract_page(body: bytes, encoding: str | None, url: str, junk_patterns: list[str]) -> dict:
    """Decode and extract one page (plain data in and out)."""
    return extract_article(decode_html(body, encoding), url, junk_patterns=junk_patterns)


@lru_cache(maxsize=4)
def _archive(data_dir: str) -> WarcArchive:
    return WarcArchive(data_dir)


@lru_cache(maxsize=4)
def _matcher(topics_file: str) -> TopicMatcher:
    return TopicMatcher(load_topics(topics_file).topics)


def process_page(page: dict, body: bytes, config: WorkerConfig) -> dict:
    """Worker-side: archive the raw page, extract the article, sign its text, match the topics."""
    page = {**page, "raw_ref": _archive(config.data_dir).write(page["url"], page["status"], page["headers"],
                                                               body, page["fetched"])}
    article = build_article(page, extract_page(body, page["encoding"], page["url"], page["junk_patterns"]))
    article["signature"] = signature(story_text(article)).to_bytes()
    if config.topics_file:
        article["topics"] = _matcher(config.topics_file).match(article)
    return article


def build_article(page: dict, extracted: dict) -> dict:
    """The stored article record from a page item and its extraction result."""
    article = {
        "id": article_id(page["url"]),
        "url": page["url"],
        "requested_url": page.get("requested_url"),
        "source": page["source"],
        "outlet": page["outlet"],
        "title": extracted["title"],
        "lead": "\n".join(extracted["lead"]),
        "authors": extracted["authors"],
        "published": extracted["published"],
        "fetched": page["fetched"],
        "lang": extracted["lang"] or page.get("language"),
        "extracted_lang": extracted["lang"],
        "description": extracted["description"],
        "tags": extracted["tags"],
        "raw_ref": page.get("raw_ref"),
    }
    set_body(article, "\n".join(extracted["paragraphs"]))
    return article


def set_body(article: dict, body: str) -> None:
    """Give an article a (new) body: its word count and hash follow; the signature and the matched
    topics, computed from the old text, are dropped so later steps compute them again."""
    article["body"] = body
    article["word_count"] = len(f"{article.get('lead') or ''}\n{body}".split())
    article["body_hash"] = body_hash(body)
    article.pop("signature", None)
    article.pop("topics", None)
