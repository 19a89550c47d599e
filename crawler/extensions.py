"""Scrapy extensions: RunRecorder keeps each crawl of a source in the store's run history."""
from __future__ import annotations

import collections
import logging

from scrapy import signals

from crawler.store import store_from_settings

VEILLE_STATS_PREFIX = "veille/"


class _TailHandler(logging.Handler):
    """Keeps the last lines of the log of one crawl."""

    def __init__(self, size: int = 40):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def run_stats(stats: dict) -> dict:
    """The figures a run is judged by, from a crawler's stats."""
    out = {key[len(VEILLE_STATS_PREFIX):]: value for key, value in stats.items()
           if key.startswith(VEILLE_STATS_PREFIX)}
    out["responses"] = stats.get("response_received_count", 0)
    out["robots_forbidden"] = stats.get("robotstxt/forbidden", 0)
    out["offsite_filtered"] = stats.get("offsite/filtered", 0)
    out["retries"] = stats.get("retry/count", 0)
    out["items_dropped"] = stats.get("item_dropped_count", 0)
    out["finish_reason"] = stats.get("finish_reason")
    start, finish = stats.get("start_time"), stats.get("finish_time")
    if start and finish:
        out["duration_s"] = round((finish - start).total_seconds(), 2)
    return out


class RunRecorder:
    def __init__(self, crawler):
        self.crawler = crawler
        self.store = store_from_settings(crawler.settings)
        self.tail = _TailHandler()
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler):
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider) -> None:
        logging.getLogger().addHandler(self.tail)
        # `veille schedule` creates the run before starting the process and passes its id.
        self.run_id = self.crawler.settings.getint("VEILLE_RUN_ID") or self.store.start_run(spider.source_id)
        spider.run_id = self.run_id

    def spider_closed(self, spider, reason: str) -> None:
        logging.getLogger().removeHandler(self.tail)
        stats = {**run_stats(self.crawler.stats.get_stats()), "finish_reason": reason}
        status = "ok" if reason == "finished" else ("killed" if reason == "shutdown" else "failed")
        errors = sum(v for k, v in stats.items() if k.startswith("errors/"))
        if status == "ok" and errors and not stats.get("pages_fetched") and not stats.get("not_modified"):
            status = "failed"
        self.store.finish_run(self.run_id, status=status, stats=stats, log_tail="\n".join(self.tail.lines))
