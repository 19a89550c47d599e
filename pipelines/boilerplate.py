"""BoilerplatePipeline: learn lines that recur across an outlet's articles and drop them.

Counts are persisted in the store (one state key per source) so learning continues across crawls.
"""
from __future__ import annotations

from crawler.cleaning import SiteBoilerplate
from crawler.store import store_from_settings


class BoilerplatePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.store = store_from_settings(crawler.settings)
        self.min_docs = crawler.settings.getint("VEILLE_BOILERPLATE_MIN_DOCS")
        self.model: SiteBoilerplate | None = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def key(self) -> str:
        return f"boilerplate/{self.crawler.spider.source_id}"

    def open_spider(self) -> None:
        self.model = SiteBoilerplate.from_dict(self.store.get_state(self.key, {}))
        self.model.min_docs = self.min_docs

    def process_item(self, item: dict) -> dict:
        outlet = item["source"]
        lines = [line for line in item["body"].split("\n") if line]
        self.model.observe(outlet, [item["lead"], *lines] if item["lead"] else lines)
        kept, removed = self.model.strip(outlet, lines)
        if removed:
            self.crawler.stats.inc_value("veille/boilerplate_lines_removed", len(removed))
            item["body"] = "\n".join(kept)
        return item

    def close_spider(self) -> None:
        self.store.set_state(self.key, self.model.to_dict())
