"""Run crawls in this process: one Scrapy crawler per source, live progress, a summary at the end."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from scrapy.utils.project import get_project_settings

from crawler.extensions import run_stats


def project_settings(overrides: dict | None = None) -> Settings:
    """Veille's Scrapy settings (crawler.settings) with overrides applied."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


@dataclass
class SourceSummary:
    source: str
    stats: dict = field(default_factory=dict)

    def count(self, key: str) -> int:
        return int(self.stats.get(key, 0))

    def by_prefix(self, prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in sorted(self.stats.items()) if k.startswith(prefix)}


def _describe(source: str, stats: dict) -> str:
    g = lambda k: stats.get(f"veille/{k}", 0)  # noqa: E731
    errors = sum(v for k, v in stats.items() if k.startswith("veille/errors/"))
    return (f"[bold]{source:<16}[/] pages {g('pages_fetched'):>4}  new {g('articles/new'):>4}  "
            f"updated {g('articles/updated'):>3}  known {g('skipped/known'):>4}  errors {errors:>3}")


def run_crawl(sources: list[str], *, overrides: dict | None = None, console: Console | None = None,
              log_level: str = "INFO", show_progress: bool = True) -> list[SourceSummary]:
    """Crawl the given sources together (one reactor run) and return a summary per source."""
    console = console or Console(stderr=True)
    settings = project_settings({"LOG_LEVEL": log_level, **(overrides or {})})
    process = CrawlerProcess(settings)  # Scrapy's own log handler, at LOG_LEVEL
    from spiders.news import NewsSpider

    crawlers = []
    for source in sources:
        crawler = process.create_crawler(NewsSpider)
        process.crawl(crawler, source=source)
        crawlers.append((source, crawler))

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console, disable=not show_progress, transient=False)
    tasks = {source: progress.add_task(source, total=None) for source, _ in crawlers}

    from twisted.internet import task

    def refresh() -> None:
        for source, crawler in crawlers:
            if crawler.stats:
                progress.update(tasks[source], description=_describe(source, crawler.stats.get_stats()))

    ticker = task.LoopingCall(refresh)
    started = time.monotonic()
    with progress:
        ticker.start(0.5, now=False)
        process.start()
        refresh()
    summaries = []
    for source, crawler in crawlers:
        stats = run_stats(crawler.stats.get_stats())
        stats.setdefault("duration_s", round(time.monotonic() - started, 2))
        summaries.append(SourceSummary(source, stats))
    return summaries


def summary_table(summaries: list[SourceSummary]) -> Table:
    """The end-of-crawl summary: pages, new/updated/unchanged, skipped and errors by reason, speed."""
    table = Table(title="Crawl summary", show_lines=False)
    for column in ("source", "pages", "new", "updated", "unchanged", "skipped (by reason)", "errors (by kind)",
                   "duration", "pages/s"):
        table.add_column(column, justify="right" if column in {"pages", "new", "updated", "unchanged", "pages/s"} else "left")
    for s in summaries:
        duration = float(s.stats.get("duration_s") or 0.0)
        pages = s.count("pages_fetched")
        skipped = {**s.by_prefix("skipped/")}
        if s.count("not_modified"):
            skipped["not_modified"] = s.count("not_modified")
        if s.count("robots_forbidden"):
            skipped["robots.txt"] = s.count("robots_forbidden")
        if s.count("offsite_filtered"):
            skipped["off-site"] = s.count("offsite_filtered")
        table.add_row(
            s.source, str(pages), str(s.count("articles/new")), str(s.count("articles/updated")),
            str(s.count("articles/unchanged")),
            ", ".join(f"{k} {v}" for k, v in skipped.items()) or "-",
            ", ".join(f"{k} {v}" for k, v in s.by_prefix("errors/").items()) or "-",
            f"{duration:.1f}s", f"{pages / duration:.1f}" if duration else "-",
        )
    return table
