"""Crawl throughput: end-to-end crawl of a generated local mirror vs bare trafilatura.extract, in one run.

    .venv/bin/python bench/crawl_throughput.py [--articles 2000] [--workers 2]

1. Generates a mirror of N article pages (crawler.mirror.synthetic_articles) over the bundled
   outlets and serves it on 127.0.0.1.
2. Bare extraction: `trafilatura.extract` over the same pages in a pool using every core.
3. End to end: `veille crawl` of the mirror (real spider, robots, feeds/sitemaps/sections,
   WARC archive, extraction pool, boilerplate, dedup, SQLite store) in a fresh data dir.
Prints both pages/s and the ratio end-to-end / bare (goal: >= 0.8).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler.mirror import Mirror, synthetic_articles  # noqa: E402


def bare_extract(html: str) -> int:
    import trafilatura

    return len(trafilatura.extract(html) or "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    with Mirror(synthetic_articles(args.articles)) as mirror:
        urls = [a["url"] for a in mirror.articles]
        pages = [urllib.request.urlopen(u).read().decode("utf-8") for u in urls]
        print(f"mirror: {len(pages)} article pages on {len(mirror.outlets)} outlets, "
              f"{sum(map(len, pages)) / len(pages) / 1024:.1f} KiB average")

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.workers) as pool:
            pool.map(bare_extract, pages[:args.workers * 2])  # warm the workers (imports)
            start = time.perf_counter()
            pool.map(bare_extract, pages, chunksize=8)
            bare_s = time.perf_counter() - start
        bare_rate = len(pages) / bare_s
        print(f"bare trafilatura.extract, {args.workers} processes: {len(pages)} pages in {bare_s:.1f}s "
              f"= {bare_rate:.1f} pages/s")

        with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
            sources = Path(tmp) / "sources.yaml"
            sources.write_text(mirror.sources_yaml(), encoding="utf-8")
            env = {**os.environ, "VEILLE_DATA": str(Path(tmp) / "data"), "PYTHONPATH": str(REPO)}
            cmd = [sys.executable, "-m", "crawler.cli", "crawl", "--sources-file", str(sources), "--quiet",
                   "--log-level", "WARNING", "-s", "VEILLE_ALLOWED_HOSTS=127.0.0.1", "-s", "DOWNLOAD_DELAY=0",
                   "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
                   "-s", f"VEILLE_EXTRACT_WORKERS={args.workers}"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            wall_s = time.perf_counter() - start
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:])
                return 1
            db = sqlite3.connect(Path(tmp) / "data" / "veille.sqlite3")
            stored = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
            runs = [json.loads(r[0]) for r in db.execute("SELECT stats FROM crawl_runs")]
    fetched = sum(r.get("pages_fetched", 0) for r in runs)
    crawl_s = max(r.get("duration_s", 0) for r in runs)
    e2e_rate = fetched / crawl_s
    print(f"end to end (veille crawl): {fetched} pages fetched, {stored} articles stored in {crawl_s:.1f}s crawl time "
          f"({wall_s:.1f}s with process start-up) = {e2e_rate:.1f} pages/s ({fetched / wall_s:.1f} with start-up)")
    print(f"ratio end-to-end / bare extraction: {e2e_rate / bare_rate:.2f} (goal >= 0.80); "
          f"with start-up: {fetched / wall_s / bare_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
