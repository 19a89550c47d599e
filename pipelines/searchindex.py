"""SearchIndexPipeline: index articles into Elasticsearch/OpenSearch in bulk, never losing one.

Enabled when a cluster is configured (``ELASTICSEARCH_URL`` or ``OPENSEARCH_URL``, see
``crawler.searchindex.ClusterConfig``) and ``VEILLE_STORE`` is not ``sqlite``. Articles are
buffered and sent with the client's bulk helper when ``VEILLE_INDEX_BATCH_SIZE`` are waiting or
the oldest has waited ``VEILLE_INDEX_FLUSH_SECONDS``, and on spider close. Sending runs in a
worker thread, so the reactor keeps crawling while the cluster is slow.

What the cluster cannot take (down, 5xx, 429 after retries) is appended to the fsync'd spool
(``$VEILLE_DATA/spool``) for ``veille replay``; what it rejects for good (mapping errors) goes to
``spool/dead-letter.ndjson`` with the reason. At spider close a crawl-run summary is indexed
into ``veille-runs`` (same path: spooled if the cluster is down).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task, threads

from crawler.extensions import run_stats
from crawler.searchindex import ClusterConfig, Indexer, article_doc, make_backend, run_doc, spool_dir, store_mode, utcnow
from crawler.spool import Spool

logger = logging.getLogger(__name__)


def _setting_or_env(settings):
    def get(name: str):
        value = settings.get(name)
        return value if value not in (None, "") else os.environ.get(name)
    return get


def _story(doc: dict) -> tuple:
    return (doc.get("cluster_id"), doc.get("dup_of"), doc.get("similarity"), doc.get("is_canonical"))


class SearchIndexPipeline:
    def __init__(self, crawler, config: ClusterConfig):
        self.crawler = crawler
        settings = crawler.settings
        self.config = config
        self.batch_size = settings.getint("VEILLE_INDEX_BATCH_SIZE", 200)
        self.flush_seconds = settings.getfloat("VEILLE_INDEX_FLUSH_SECONDS", 5.0)
        from crawler.config import data_dir

        self.data_root = Path(settings.get("VEILLE_DATA") or data_dir()).resolve()
        directory = settings.get("VEILLE_SPOOL_DIR") or spool_dir(self.data_root)
        self.spool = Spool(directory)
        self.indexer = Indexer(make_backend(config), self.spool,
                               retry_after=settings.getfloat("VEILLE_INDEX_RETRY_AFTER", 30.0))
        self.buffer: list[dict] = []
        self.oldest: float | None = None
        self.loop: task.LoopingCall | None = None
        self.inflight: set = set()
        self.story_ids: set[str] = set()
        self.sent_story: dict[str, tuple] = {}
        self.started = utcnow()

    @classmethod
    def from_crawler(cls, crawler):
        get = _setting_or_env(crawler.settings)
        if store_mode(get) == "sqlite":
            raise NotConfigured()  # the embedded store only: nothing to say
        config = ClusterConfig.from_env(get)
        if config is None:
            raise NotConfigured()  # no cluster configured (ELASTICSEARCH_URL / OPENSEARCH_URL): the default
        pipeline = cls(crawler, config)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    # --- lifecycle ---------------------------------------------------------------------------
    def open_spider(self) -> None:
        self.started = utcnow()
        self.loop = task.LoopingCall(self._tick)
        self.loop.start(max(0.2, self.flush_seconds / 4), now=False)
        logger.info("indexing articles into %s %s (alias %s, spool %s)", self.config.backend, self.config.url,
                    self.indexer.backend.names.articles, self.spool.dir)

    async def process_item(self, item: dict) -> dict:
        doc = article_doc(item)
        self.buffer.append(Spool.record("article", doc))
        if doc.get("cluster_id"):
            self.story_ids.add(doc["id"])
            self.sent_story[doc["id"]] = _story(doc)
        if self.oldest is None:
            self.oldest = time.monotonic()
        if len(self.buffer) >= self.batch_size:
            await asyncio.to_thread(self._deliver, self._take())
        return item

    def _take(self) -> list[dict]:
        batch, self.buffer, self.oldest = self.buffer, [], None
        return batch

    def _tick(self):
        if self.buffer and self.oldest is not None and time.monotonic() - self.oldest >= self.flush_seconds:
            d = threads.deferToThread(self._deliver, self._take())
            self.inflight.add(d)
            d.addBoth(self._done, d)
            return d
        return None

    def _done(self, result, d):
        self.inflight.discard(d)
        return result

    def _deliver(self, records: list[dict]) -> None:
        stats = self.crawler.stats
        result = self.indexer.deliver(records)
        if result.sent:
            stats.inc_value("veille/index/sent", result.sent)
        if result.spooled:
            stats.inc_value("veille/index/spooled", result.spooled)
        if result.dead:
            stats.inc_value("veille/index/dead_letter", result.dead)
        for change, n in result.changes.items():
            stats.inc_value(f"veille/index/{change}", n)

    async def close_spider(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.buffer:
            await asyncio.to_thread(self._deliver, self._take())
        if self.story_ids:
            await asyncio.to_thread(self._sync_stories)

    def _sync_stories(self) -> None:
        """The dedup pipeline rewrites story fields of stored articles (a cluster merge relabels its members,
        a new canonical copy demotes the old one). Re-send the members of every story this crawl touched
        whose story fields differ from what was sent, from the store (the live document keeps its revision)."""
        from crawler.store import store_from_settings

        store = store_from_settings(self.crawler.settings)
        clusters = set()
        for aid in self.story_ids:
            row = store.get_article(aid)
            if row and row.get("cluster_id"):
                clusters.add(row["cluster_id"])
        records = []
        for cid in sorted(clusters):
            for member in store.articles(cluster_id=cid):
                doc = article_doc(member)
                if self.sent_story.get(doc["id"]) != _story(doc):
                    records.append(Spool.record("article", doc))
        for i in range(0, len(records), self.batch_size):
            self._deliver(records[i:i + self.batch_size])
        if records:
            self.crawler.stats.inc_value("veille/index/story_updates", len(records))

    async def spider_closed(self, spider, reason: str) -> None:
        stats = run_stats(self.crawler.stats.get_stats())
        stats["finish_reason"] = reason
        status = "ok" if reason == "finished" else ("killed" if reason == "shutdown" else "failed")
        errors = sum(v for k, v in stats.items() if k.startswith("errors/") and isinstance(v, (int, float)))
        if status == "ok" and errors and not stats.get("pages_fetched") and not stats.get("not_modified"):
            status = "failed"
        doc = run_doc(source=getattr(spider, "source_id", spider.name), stats=stats, started=self.started,
                      finished=utcnow(), status=status, reason=reason, run_id=getattr(spider, "run_id", None),
                      data_dir=str(self.data_root))

        def deliver_run():
            self._deliver([Spool.record("run", doc)])
            try:
                if time.monotonic() >= self.indexer.down_until:
                    self.indexer.backend.refresh()
            except Exception:  # noqa: BLE001 - a refresh is a courtesy
                pass
            pending = self.spool.pending()
            if pending:
                logger.warning("%d document(s) wait in the spool %s: run `veille replay` when the cluster is back",
                               pending, self.spool.dir)

        # after any time-based flush still running, so the run summary is the last write
        if self.inflight:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(d.asFuture(loop) for d in list(self.inflight)), return_exceptions=True)
        await asyncio.to_thread(deliver_run)
