"""AlertPipeline: match new (and revised) articles against the saved topics; one alert per story.

Runs after the store (the item carries `change` and the dedup's `cluster_id`) and before the
search index, so the matched topic ids (item["topics"], also written to the stored article)
reach the index. Matches are batched per process: every copy of a wire story found in one
crawl (by any source) folds into one alert; a copy from a new outlet in a later crawl is an
"update", never a second alert. The batch is flushed and the outbox delivered every
VEILLE_ALERTS_INTERVAL seconds during the crawl and when the last spider closes.

An invalid topics file stops the crawl at start with the ConfigError (file:line).
"""
from __future__ import annotations

import logging

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer, task, threads

from crawler.alerts import AlertService, topics_path
from crawler.store import store_from_settings
from crawler.topics import load_topics

log = logging.getLogger("veille.alerts")

_SERVICES: dict[str, AlertService] = {}
_LOOPS: dict[str, task.LoopingCall] = {}


def service_for(store, settings) -> AlertService:
    """The process's AlertService for this store (created, and topics loaded, on first use)."""
    key = str(store.path)
    if key not in _SERVICES:
        topics = load_topics(topics_path(settings.get("VEILLE_TOPICS")))  # ConfigError -> the crawl stops
        _SERVICES[key] = AlertService(
            store.path, topics,
            update_window=settings.getfloat("VEILLE_ALERTS_UPDATE_WINDOW", 24 * 3600),
            retry_base=settings.getfloat("VEILLE_ALERTS_RETRY_BASE", 30.0),
            max_attempts=settings.getint("VEILLE_ALERTS_MAX_ATTEMPTS", 10))
    return _SERVICES[key]


class AlertPipeline:
    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.getbool("VEILLE_ALERTS_ENABLED", True):
            raise NotConfigured("VEILLE_ALERTS_ENABLED is off")
        self.crawler = crawler
        self.store = store_from_settings(settings)
        self.service = service_for(self.store, settings)
        self.deliver_inline = settings.getbool("VEILLE_ALERTS_DELIVER", True)
        self.interval = settings.getfloat("VEILLE_ALERTS_INTERVAL", 60.0)
        self.key = str(self.store.path)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self) -> None:
        self.service.users += 1
        if self.interval > 0 and self.key not in _LOOPS:
            loop = task.LoopingCall(self._tick)
            loop.start(self.interval, now=False).addErrback(lambda f: log.error("alert loop: %s", f.value))
            _LOOPS[self.key] = loop

    def process_item(self, item: dict) -> dict:
        change = item.get("change")
        if change not in ("new", "updated"):
            return item
        if "topics" in item:  # matched by the extraction worker and stored with the article
            topic_ids = item["topics"]
        else:
            topic_ids = item["topics"] = self.service.match(item)
            self.store.update_article_fields(item["id"], topics=topic_ids)
        if topic_ids:
            self.crawler.stats.inc_value("veille/alerts/matched")
            self.service.add(item, topic_ids)
        return item

    # -- flush + delivery -----------------------------------------------------------------
    def _flush(self) -> int:
        alerts = self.service.flush()
        if alerts:
            self.crawler.stats.inc_value("veille/alerts/issued", len(alerts))
        return len(alerts)

    def _deliver(self) -> defer.Deferred:
        if not self.deliver_inline:
            return defer.succeed(None)
        d = threads.deferToThread(self.service.deliver)

        def done(result: dict) -> None:
            for k, v in result.items():
                if v:
                    self.crawler.stats.inc_value(f"veille/alerts/deliveries_{k}", v)

        d.addCallback(done)
        d.addErrback(lambda f: log.error("alert delivery failed: %s", f.value))
        return d

    _busy = False

    def _tick(self) -> defer.Deferred | None:
        if AlertPipeline._busy:
            return None
        AlertPipeline._busy = True
        self._flush()
        d = self._deliver()
        d.addBoth(lambda _: setattr(AlertPipeline, "_busy", False))
        return d

    async def close_spider(self) -> None:
        self.service.users -= 1
        if self.service.users > 0:
            return  # other sources still crawling: their copies may join this run's stories
        loop = _LOOPS.pop(self.key, None)
        if loop is not None and loop.running:
            loop.stop()
        self._flush()
        await maybe_deferred_to_future(self._deliver())
