"""StorePipeline: write the article to the embedded store and remember its URL as known."""
from __future__ import annotations

from crawler.store import store_from_settings


class StorePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.store = store_from_settings(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item: dict) -> dict:
        item["change"] = self.store.index_article(item)
        self.crawler.stats.inc_value(f"veille/articles/{item['change']}")
        for url in {item["url"], item.get("requested_url") or item["url"]}:
            self.store.record_fetch(url, source=item["source"], kind="article", status=200, article_id=item["id"])
        return item
