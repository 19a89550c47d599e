"""Crawl throughput: end-to-end crawl of a generated local mirror vs bare trafilatura.extract, in one run.

    .venv/bin/python bench/crawl_throughput.py [--articles 2000] [--pages heavy,light] [--repeat 3]

For each page weight (``heavy``: 180-500 KB pages, the weight of real French news pages -- those
of the extraction dev set weigh 225-490 KB; ``light``: the ~10 KB pages of the test mirror, where
the crawl's per-page cost, not extraction, dominates):

1. Generates a mirror of N article pages (crawler.mirror.synthetic_articles rendered with
   ``Mirror(chrome=...)``) and serves it on 127.0.0.1 from a separate process.
2. Bare extraction: `trafilatura.extract` over the same pages (fetched once from the mirror) in a
   pool of one process per core (--workers).
3. End to end: `veille crawl` of the mirror (real spider, robots, feeds/sitemaps/sections, WARC
   archive, extraction pool, boilerplate, dedup, SQLite store) in a fresh data dir.
Steps 2 and 3 alternate --repeat times; medians are reported, and the ratio is the median of the
per-repetition ratios (each bare/e2e pair measured back to back under the same machine load).

The mirror server is part of the test environment, not of Veille: in production the sites are
remote.  It still runs on the same cores during the crawl, so the end-to-end figure pays for it;
its CPU time is printed so its share is visible (it is not subtracted).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bare_extract(html: str) -> int:
    import trafilatura

    return len(trafilatura.extract(html) or "")


def serve_mirror(n: int, chrome: str, conn) -> None:
    """Child process: build and serve the mirror, answer 'cpu' with its CPU seconds, stop on 'stop'."""
    from crawler.mirror import Mirror, synthetic_articles

    with Mirror(synthetic_articles(n), chrome=chrome) as mirror:
        conn.send((mirror.sources_yaml(), [a["url"] for a in mirror.articles], len(mirror.outlets)))
        while True:
            msg = conn.recv()
            if msg == "cpu":
                conn.send(time.process_time())
            else:
                break


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [float(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def crawl(sources_yaml: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        sources = Path(tmp) / "sources.yaml"
        sources.write_text(sources_yaml, encoding="utf-8")
        env = {**os.environ, "VEILLE_DATA": str(Path(tmp) / "data"), "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "--sources-file", str(sources), "--quiet",
               "--log-level", "WARNING", "-s", "VEILLE_ALLOWED_HOSTS=127.0.0.1", "-s", "DOWNLOAD_DELAY=0",
               "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
               "-s", f"VEILLE_EXTRACT_WORKERS={workers}"]
        start, busy0 = time.perf_counter(), cpu_times()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall_s = time.perf_counter() - start
        busy1 = cpu_times()
        machine_busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
        # Busy CPU time of the whole machine during the crawl (the crawl's processes, its
        # extraction workers, the mirror server and whatever else runs), in seconds.
        busy_cpu_s = (busy1[0] - busy0[0]) / os.sysconf("SC_CLK_TCK")
        if proc.returncode != 0:
            raise RuntimeError(f"veille crawl failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        db = sqlite3.connect(Path(tmp) / "data" / "veille.sqlite3")
        stored = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        runs = [json.loads(r[0]) for r in db.execute("SELECT stats FROM crawl_runs")]
        db.close()
    fetched = sum(r.get("pages_fetched", 0) for r in runs)
    crawl_s = max(r.get("duration_s", 0) for r in runs)
    return {"fetched": fetched, "stored": stored, "crawl_s": crawl_s, "wall_s": wall_s,
            "cpu_ms_per_page": 1000 * busy_cpu_s / max(fetched, 1), "machine_busy": machine_busy}


def bench(kind: str, args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve_mirror, args=(args.articles, kind, child), daemon=True)
    server.start()
    try:
        sources_yaml, urls, n_outlets = parent.recv()
        raw = [urllib.request.urlopen(u).read() for u in urls]
        pages = [b.decode("utf-8") for b in raw]
        kib = sorted(len(b) / 1024 for b in raw)
        print(f"[{kind}] mirror: {len(pages)} article pages on {n_outlets} outlets, KiB min {kib[0]:.0f} / "
              f"median {statistics.median(kib):.0f} / mean {statistics.mean(kib):.0f} / max {kib[-1]:.0f}")
        del raw
        bare, e2e, ratios = [], [], []
        with ctx.Pool(args.workers) as pool:
            pool.map(bare_extract, pages[:args.workers * 2])  # warm the workers (imports)
            for rep in range(args.repeat):
                start, busy0 = time.perf_counter(), cpu_times()
                pool.map(bare_extract, pages, chunksize=8)
                bare_rate = len(pages) / (time.perf_counter() - start)
                busy1 = cpu_times()
                bare_busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
                parent.send("cpu")
                cpu0 = parent.recv()
                res = crawl(sources_yaml, args.extract_workers)
                parent.send("cpu")
                res["server_cpu_s"] = parent.recv() - cpu0
                res["rate"] = res["fetched"] / res["crawl_s"]
                if res["fetched"] < len(pages) or res["stored"] < len(pages):
                    print(f"[{kind}] warning: {res['fetched']} pages fetched, {res['stored']} stored of {len(pages)}")
                bare.append(bare_rate)
                e2e.append(res)
                ratios.append(res["rate"] / bare_rate)
                print(f"[{kind}] run {rep + 1}: bare {bare_rate:.1f} pages/s (cores {100 * bare_busy:.0f}% busy) | end to end {res['rate']:.1f} pages/s "
                      f"({res['fetched']} fetched, {res['stored']} stored, {res['crawl_s']:.1f}s crawl, "
                      f"{res['wall_s']:.1f}s with start-up; {res['cpu_ms_per_page']:.1f} busy CPU-ms/page on the machine, "
                      f"cores {100 * res['machine_busy']:.0f}% busy; mirror server {res['server_cpu_s']:.1f} CPU-s) "
                      f"| ratio {ratios[-1]:.2f}")
    finally:
        parent.send("stop")
        server.join(timeout=10)
    out = {"bare": statistics.median(bare), "e2e": statistics.median(r["rate"] for r in e2e),
           "ratio": statistics.median(ratios),
           "ratio_startup": statistics.median(r["fetched"] / r["wall_s"] / b for r, b in zip(e2e, bare)),
           "server_cpu_share": statistics.median(r["server_cpu_s"] / ((os.cpu_count() or 2) * r["crawl_s"]) for r in e2e)}
    print(f"[{kind}] median: bare trafilatura.extract ({args.workers} processes) {out['bare']:.1f} pages/s, "
          f"end to end (veille crawl) {out['e2e']:.1f} pages/s, ratio {out['ratio']:.2f} (goal >= 0.80); "
          f"with process start-up {out['ratio_startup']:.2f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="bare extraction processes (default: one per core)")
    parser.add_argument("--extract-workers", type=int, default=0,
                        help="VEILLE_EXTRACT_WORKERS for the crawl (default 0: the crawler's own default)")
    parser.add_argument("--pages", default="heavy,light", help="page weights to run: heavy, light or both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    results = {kind: bench(kind, args) for kind in args.pages.split(",")}
    print("summary:")
    for kind, r in results.items():
        print(f"  {kind:5}: end to end {r['e2e']:.1f} pages/s vs bare extraction {r['bare']:.1f} pages/s "
              f"= {r['ratio']:.2f} (with start-up {r['ratio_startup']:.2f}); mirror server used "
              f"{100 * r['server_cpu_share']:.0f}% of the cores during the crawl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
