"""BoilerplatePipeline: learn lines that recur across an outlet's articles and drop them.

Counts are persisted in the store (one state key per source) so learning continues across crawls.
"""
from __future__ import annotations

from crawler.cleaning import SiteBoilerplate
from crawler.pages import set_body
from crawler.store import store_from_settings


def strip_learned(model: SiteBoilerplate, article: dict) -> int:
    """Drop the body lines learned as the outlet's boilerplate; return how many were dropped."""
    kept, removed = model.strip(article["source"], [line for line in article["body"].split("\n") if line])
    if removed:
        set_body(article, "\n".join(kept))  # later pipelines sign and match the new text again
    return len(removed)


def boilerplate_key(source: str) -> str:
    """Store state key of one source's learned boilerplate."""
    return f"boilerplate/{source}"


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
        return boilerplate_key(self.crawler.spider.source_id)

    def open_spider(self) -> None:
        self.model = SiteBoilerplate.from_dict(self.store.get_state(self.key, {}))
        self.model.min_docs = self.min_docs

    def process_item(self, item: dict) -> dict:
        lines = [line for line in item["body"].split("\n") if line]
        self.model.observe(item["source"], [item["lead"], *lines] if item["lead"] else lines)
        removed = strip_learned(self.model, item)
        if removed:
            self.crawler.stats.inc_value("veille/boilerplate_lines_removed", removed)
        return item

    def close_spider(self) -> None:
        self.store.set_state(self.key, self.model.to_dict())
