"""DedupPipeline: put each article into its wire-copy story (MinHash LSH, see crawler.dedup).

The index is rebuilt from the store at start for a time window (VEILLE_DEDUP_WINDOW_DAYS,
14 by default) so stories continue across crawls and restarts; every few seconds the
pipeline catches up with what other crawl processes stored meanwhile. Canonical changes and
cluster merges are written back to the stored members at once.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from crawler.dedup import DocMeta, Signature, StoryIndex, agency_credited, signature, story_text
from crawler.store import SQLiteStore, store_from_settings


def doc_meta(article: dict, text: str) -> DocMeta:
    return DocMeta(id=article["id"], outlet=article.get("outlet"), published=article.get("published"),
                   title=article.get("title"), agency_credited=agency_credited(text), length=len(text))


class StoryTracker:
    """A StoryIndex kept in step with one store (shared by every crawler of a process)."""

    def __init__(self, store: SQLiteStore, window_days: int, catch_up_every: float = 2.0):
        self.store = store
        self.catch_up_every = catch_up_every
        self.caught_up = time.monotonic()
        self.since = (datetime.now(timezone.utc) - timedelta(days=window_days)).isoformat(timespec="seconds")
        records = store.dedup_records(since=self.since)
        self.last_rowid = records[-1][0] if records else 0
        self.index = StoryIndex.rebuild(
            (doc_meta(fields, story_text(fields)), blob, cid) for _, fields, blob, cid in records)

    def catch_up(self) -> None:
        """Load articles that other processes signed since we last looked (every few seconds)."""
        if time.monotonic() - self.caught_up < self.catch_up_every:
            return
        self.caught_up = time.monotonic()
        for rowid, fields, blob, cid in self.store.dedup_records(since=self.since, after_rowid=self.last_rowid):
            self.last_rowid = rowid
            if fields["id"] not in self.index:
                self.index.load(doc_meta(fields, story_text(fields)), Signature.from_bytes(blob), cid)

    def assign(self, article: dict) -> dict:
        """Cluster fields for an article; stored members touched by the assignment are updated."""
        self.catch_up()
        text = story_text(article)
        # The extraction worker signs the text already; sign here only what came another way.
        sig = Signature.from_bytes(article["signature"]) if article.get("signature") else signature(text)
        assignment = self.index.add(doc_meta(article, text), sig)
        for absorbed, surviving in self.index.merges():
            self.store.relabel_cluster(absorbed, surviving)
        for old, new in self.index.canonical_changes():
            if old != article["id"]:
                self.store.update_article_fields(old, is_canonical=False)
            if new != article["id"]:
                self.store.update_article_fields(new, is_canonical=True)
        return {"cluster_id": assignment.cluster_id, "dup_of": assignment.dup_of,
                "similarity": assignment.similarity, "is_canonical": assignment.is_canonical,
                "signature": sig.to_bytes()}


_TRACKERS: dict[str, StoryTracker] = {}


class DedupPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.store = store_from_settings(crawler.settings)
        self.window_days = crawler.settings.getint("VEILLE_DEDUP_WINDOW_DAYS", 14)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self) -> None:
        key = str(self.store.path)
        if key not in _TRACKERS:
            _TRACKERS[key] = StoryTracker(self.store, self.window_days)
        self.tracker = _TRACKERS[key]

    def process_item(self, item: dict) -> dict:
        item.update(self.tracker.assign(item))
        if item["dup_of"]:
            self.crawler.stats.inc_value("veille/articles/wire_copies")
        return item
