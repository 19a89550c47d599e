"""`veille demo`: serve the bundled mirror of French outlets on 127.0.0.1, crawl it, show what came out.

Runs the real spider and pipelines into a fresh store (a temporary data dir unless --keep),
then prints one row per stored article and a sample search. No network needed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Settings for crawling 127.0.0.1: the mirror is ours, so no politeness delay is needed.
LOCAL_MIRROR_SETTINGS = {
    "VEILLE_ALLOWED_HOSTS": ["127.0.0.1"],
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
}
SAMPLE_QUERY = "mines AND antipersonnel"
DEMO_TOPICS = Path(__file__).resolve().parent / "mirror" / "demo-topics.yaml"


def run_demo(*, console: Console, keep: bool = False, log_level: str = "WARNING") -> int:
    from crawler.mirror import Mirror
    from crawler.runner import run_crawl, summary_table
    from crawler.store import SQLiteStore

    data = Path("data/demo").resolve() if keep else Path(tempfile.mkdtemp(prefix="veille-demo-"))
    data.mkdir(parents=True, exist_ok=True)
    os.environ["VEILLE_DATA"] = str(data)
    with Mirror() as mirror:
        sources_file = data / "mirror-sources.yaml"
        sources_file.write_text(mirror.sources_yaml(), encoding="utf-8")
        console.print(f"[bold]Serving {len(mirror.articles)} articles from {len(mirror.outlets)} outlets[/] on 127.0.0.1 "
                      f"({', '.join(f'{oid} {srv.base_url}' for oid, srv in mirror.outlets.items())})")
        summaries = run_crawl(list(mirror.outlets), log_level=log_level,
                              overrides={**LOCAL_MIRROR_SETTINGS, "VEILLE_SOURCES": str(sources_file),
                                         "VEILLE_DATA": str(data), "VEILLE_TOPICS": str(DEMO_TOPICS)})
    console.print(summary_table(summaries))

    store = SQLiteStore.in_data_dir(data)
    articles = store.articles(order="outlet, published")
    table = Table(title=f"{len(articles)} articles stored in {store.path}")
    for column in ("outlet", "title", "words", "published", "story"):
        table.add_column(column, justify="right" if column == "words" else "left", overflow="ellipsis")
    for a in articles:
        table.add_row(a["outlet"], (a["title"] or "")[:80], str(a["word_count"]), (a["published"] or "")[:16],
                      a["cluster_id"] or "")
    console.print(table)

    hits = store.search(SAMPLE_QUERY, limit=10)
    console.print(f"\n[bold]veille search {SAMPLE_QUERY!r}[/] → {len(hits)} hit(s)")
    for hit in hits:
        console.print(f"  {hit['outlet']:<22} {hit['title']}")
    if keep:
        console.print(f"\nData kept in {data}: try  VEILLE_DATA={data} veille search 'grève'")
    return 0 if articles else 1
