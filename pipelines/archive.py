"""ArchivePipeline: append each fetched article page to the WARC archive, so nothing fetched is lost."""
from __future__ import annotations

from pathlib import Path

from crawler.archive import WarcArchive
from crawler.store import store_from_settings


class ArchivePipeline:
    def __init__(self, crawler):
        self.archive = WarcArchive(Path(store_from_settings(crawler.settings).path).parent)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item: dict) -> dict:
        item["raw_ref"] = self.archive.write(item["url"], item["status"], item["headers"], item["body"], item["fetched"])
        return item

    def close_spider(self) -> None:
        self.archive.sync()
