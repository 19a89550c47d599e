"""The `veille` command: one verb per job, each with --help."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from crawler.config import ConfigError, data_dir, load_sources, sources_path

console = Console() if sys.stdout.isatty() else Console(width=160)


def fail(message: str) -> None:
    """An error for the user: plain text on stderr, never wrapped or markup-parsed."""
    print(f"veille: {message}", file=sys.stderr)


def _store():
    from crawler.store import SQLiteStore

    return SQLiteStore.in_data_dir(data_dir())


def _article_index():
    """Where `veille search` reads: the search cluster when one is configured (VEILLE_STORE), else SQLite."""
    from crawler.searchindex import ClusterUnavailable, article_index_for_cli

    try:
        return article_index_for_cli(_store, warn=fail)
    except (ClusterUnavailable, ValueError) as exc:
        fail(str(exc))
        raise SystemExit(1) from None


def _short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- verbs ---------------------------------------------------------------------------------

def cmd_sources(args) -> int:
    config = load_sources(args.file)
    table = Table(title=f"{len(config.sources)} sources in {args.file or sources_path()}")
    for column in ("id", "name", "lang", "feeds", "sitemaps", "sections", "interval", "enabled"):
        table.add_column(column)
    for s in config.sources:
        table.add_row(s.id, s.name, s.language, str(len(s.feeds)), str(len(s.sitemaps)), str(len(s.sections)),
                      s.cron or str(s.interval), "yes" if s.enabled else "no")
    console.print(table)
    return 0


def cmd_crawl(args) -> int:
    from crawler.runner import run_crawl, summary_table

    config = load_sources(args.sources_file)
    wanted = args.source or [s.id for s in config.sources if s.enabled]
    for source_id in wanted:
        config.get(source_id)  # unknown ids fail before anything starts
    overrides = {"VEILLE_LIMIT": args.limit or 0}
    if args.sources_file:
        overrides["VEILLE_SOURCES"] = str(args.sources_file)
    for item in args.set or []:
        name, _, value = item.partition("=")
        overrides[name] = value
    if str(overrides.get("VEILLE_ALERTS_ENABLED", "1")).lower() not in ("0", "false", "no", "off"):
        from crawler.alerts import topics_path
        from crawler.topics import load_topics

        load_topics(topics_path(overrides.get("VEILLE_TOPICS")))  # an invalid topics file stops here (file:line)
    summaries = run_crawl(wanted, overrides=overrides, log_level=args.log_level, show_progress=not args.quiet)
    console.print(summary_table(summaries))
    failed = [s.source for s in summaries if s.stats.get("finish_reason") != "finished"]
    return 1 if failed else 0


def cmd_search(args) -> int:
    from crawler.search import QueryError

    store = _article_index()
    try:
        hits = store.search(args.query, source=args.source, since=args.since, limit=args.limit)
    except QueryError as exc:
        fail(f"{exc}")
        return 2
    if args.json:
        for hit in hits:
            print(json.dumps({k: hit.get(k) for k in ("id", "url", "outlet", "title", "published", "cluster_id")},
                             ensure_ascii=False))
        return 0
    table = Table(title=f"{len(hits)} result(s) for {args.query!r}")
    for column in ("id", "outlet", "published", "title", "story"):
        table.add_column(column)
    for hit in hits:
        others = _cluster_outlets(store, hit)
        table.add_row(hit["id"], hit["outlet"] or "", (hit["published"] or "")[:10], _short(hit["title"], 70),
                      _short(", ".join(others), 40) if others else "")
    console.print(table)
    return 0


def _cluster_outlets(store, article: dict) -> list[str]:
    """Other outlets carrying the same story."""
    if not article.get("cluster_id"):
        return []
    members = store.articles(cluster_id=article["cluster_id"])
    return sorted({m["outlet"] for m in members if m["id"] != article["id"] and m["outlet"]})


def cmd_show(args) -> int:
    store = _store()
    article = store.get_article(args.id)
    if not article:
        fail(f"no article {args.id!r}")
        return 1
    if args.json:
        article.pop("signature", None)
        print(json.dumps(article, ensure_ascii=False, indent=2))
        return 0
    console.print(f"[bold]{article['title']}[/]")
    console.print(f"{article['outlet']} · {article['published'] or 'no date'} · {', '.join(article['authors']) or 'no author'}"
                  f" · {article['word_count']} words · revision {article['revision']}")
    console.print(article["url"])
    others = _cluster_outlets(store, article)
    if others:
        console.print(f"Story {article['cluster_id']}: also carried by {', '.join(others)}")
    if article["lead"]:
        console.print(f"\n[italic]{article['lead']}[/]")
    console.print("\n" + article["body"])
    return 0


def cmd_extract(args) -> int:
    from crawler.extraction import ExtractionError, article_text, extract_article

    try:
        result = extract_article(Path(args.file).read_bytes(), args.url)
    except OSError as exc:
        fail(f"cannot read {args.file}: {exc.strerror}")
        return 2
    except ExtractionError as exc:
        fail(f"{args.file}: {exc}")
        return 1
    if args.format == "json":
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(article_text(result))
    return 0


def cmd_reprocess(args) -> int:
    from w3lib.encoding import http_content_type_encoding

    from crawler.archive import WarcArchive
    from crawler.cleaning import SiteBoilerplate
    from crawler.dedup import signature, story_text
    from crawler.extraction import ExtractionError
    from crawler.pages import build_article, extract_page
    from pipelines.boilerplate import boilerplate_key, strip_learned

    store = _store()
    archive = WarcArchive(store.path.parent)
    sources = {s.id: s for s in load_sources(args.sources_file).sources}
    models: dict[str, SiteBoilerplate] = {}
    counts = {"updated": 0, "unchanged": 0, "failed": 0}
    for article in store.articles(source=args.source):
        if not article["raw_ref"]:
            continue
        source = article["source"]
        if source not in models:
            models[source] = SiteBoilerplate.from_dict(store.get_state(boilerplate_key(source), {}))
        junk = sources[source].junk_patterns if source in sources else []
        try:
            _, headers, body = archive.read(article["raw_ref"])
            encoding = http_content_type_encoding(headers.get("Content-Type"))
            fresh = build_article(article, extract_page(body, encoding, article["url"], junk))
        except (OSError, ExtractionError, ValueError) as exc:
            counts["failed"] += 1
            fail(f"{article['id']}: {exc}")
            continue
        strip_learned(models[source], fresh)
        fresh["signature"] = signature(story_text(fresh)).to_bytes()
        fresh.update({k: article[k] for k in ("cluster_id", "dup_of", "similarity", "is_canonical", "topics")})
        counts["updated" if store.index_article(fresh) == "updated" else "unchanged"] += 1
    console.print(f"reprocessed: {counts['updated']} updated, {counts['unchanged']} unchanged, {counts['failed']} failed")
    return 0 if not counts["failed"] else 1


def cmd_stats(args) -> int:
    store = _store()
    table = Table(title=f"Store {store.path}")
    for column in ("source", "articles", "words", "latest fetch", "last run", "status"):
        table.add_column(column)
    rows = store.db.execute(
        "SELECT source, COUNT(*) n, SUM(word_count) w, MAX(fetched) f FROM articles GROUP BY source ORDER BY source"
    ).fetchall()
    for row in rows:
        runs = store.runs(source=row["source"], last=1)
        table.add_row(row["source"], str(row["n"]), str(row["w"] or 0), row["f"] or "",
                      runs[0]["started"] if runs else "", runs[0]["status"] if runs else "")
    console.print(table)
    console.print(f"{store.count_articles()} articles in all")
    return 0


def cmd_dedup(args) -> int:
    from crawler.dedup import cluster_jsonl

    with (sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")) as lines:
        for row in cluster_jsonl(lines):
            print(json.dumps(row, ensure_ascii=False))
    return 0


def cmd_clusters(args) -> int:
    store = _store()
    stories = store.clusters(since=args.since, min_size=args.min_size, limit=args.limit)
    table = Table(title=f"{len(stories)} stories with at least {args.min_size} articles")
    for column in ("story", "size", "canonical title", "outlets", "first seen"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for story in stories:
        table.add_row(story["cluster_id"], str(story["size"]), _short(story["title"], 70),
                      _short(", ".join(story["outlets"]), 60), (story["first"] or "")[:16])
    console.print(table)
    return 0


def cmd_schedule(args) -> int:
    from crawler.scheduler import cli_schedule

    return cli_schedule(args)


def cmd_status(args) -> int:
    from crawler.scheduler import cli_status

    return cli_status(args, console)


def cmd_runs(args) -> int:
    from crawler.scheduler import cli_runs

    return cli_runs(args, console)


def cmd_topics(args) -> int:
    from crawler.alerts import topics_path
    from crawler.notify import missing_env
    from crawler.topics import QuerySyntaxError, Topic, TopicMatcher, check_query, load_topics

    path = topics_path(args.file)
    if args.action == "test":
        if not args.query:
            fail("topics test needs a QUERY (Lucene syntax) or a topic id")
            return 2
        topics = load_topics(path) if path.exists() else None
        topic = next((t for t in topics.topics if t.id == args.query), None) if topics else None
        if topic is None:
            try:
                topic = Topic(id="test", name="test", query=check_query(args.query))
            except (QuerySyntaxError, ValueError) as exc:
                fail(f"invalid query: {exc}")
                return 2
        matcher = TopicMatcher([topic.model_copy(update={"enabled": True})])
        stories: dict[str, list[dict]] = {}
        for article in _store().articles(since=args.since, order="COALESCE(published, fetched) DESC"):
            if matcher.match(article):
                stories.setdefault(article["cluster_id"] or article["id"], []).append(article)
        if args.json:
            for story, members in stories.items():
                print(json.dumps({"story": story, "articles": [{k: m.get(k) for k in ("id", "url", "outlet", "title",
                                  "published")} for m in members]}, ensure_ascii=False))
            return 0
        table = Table(title=f"{sum(map(len, stories.values()))} article(s) in {len(stories)} stor"
                            f"{'ies' if len(stories) != 1 else 'y'} match {topic.query!r}")
        for column in ("story", "articles", "title", "outlets", "published"):
            table.add_column(column)
        for story, members in list(stories.items())[: args.limit]:
            lead = next((m for m in members if m.get("is_canonical")), members[-1])
            table.add_row(story, str(len(members)), _short(lead["title"], 70),
                          _short(", ".join(sorted({m["outlet"] or m["source"] for m in members})), 50),
                          (lead["published"] or lead["fetched"] or "")[:16])
        console.print(table)
        return 0
    topics = load_topics(path)  # ConfigError -> exit 2, naming file:line
    table = Table(title=f"{len(topics.topics)} topics in {path}")
    for column in ("id", "name", "query", "mode", "targets", "enabled"):
        table.add_column(column)
    warnings = []
    for t in topics.topics:
        mode = t.mode if t.mode == "instant" else f"digest {t.digest_period}"
        table.add_row(t.id, t.name, _short(t.query, 60), mode, ", ".join(t.targets) or "-", "yes" if t.enabled else "no")
        for target in topics.targets_for(t):
            missing = missing_env(target)
            if missing:
                warnings.append(f"target {target.name} (topic {t.id}) needs {', '.join(missing)}: not set")
    console.print(table)
    for line in dict.fromkeys(warnings):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_alerts(args) -> int:
    from datetime import datetime, timezone

    from crawler.alerts import alert_history, alert_status, deliver_pending

    where = data_dir()
    if args.action == "deliver":
        result = deliver_pending(where, topics=args.topics_file, retry_failed=args.retry_failed)
        print(f"sent {result['sent']}, retry later {result['retry']}, failed {result['failed']}, "
              f"pending {result['pending']}")
        return 0 if not (result["retry"] or result["failed"]) else 1
    alerts = alert_history(where, topic=args.topic, since=args.since, limit=args.limit)
    if args.json:
        for alert in alerts:
            print(json.dumps(alert, ensure_ascii=False, default=str))
        return 0

    def when(ts):
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else ""

    table = Table(title=f"{len(alerts)} alert(s)")
    for column in ("created", "topic", "kind", "title", "outlets", "deliveries"):
        table.add_column(column)
    for alert in alerts:
        deliveries = "; ".join(
            f"{d['target']}: {d['status']}" + (f" ({d['attempts']} tries)" if d["attempts"] > 1 else "")
            + (f" next {when(d['next_attempt'])}" if d["status"] == "pending" else "")
            + (f" - {_short(d['error'], 60)}" if d["error"] and d["status"] != "sent" else "")
            for d in alert["deliveries"]) or "-"
        table.add_row((alert.get("created") or "")[:19], alert["topic_id"], alert["kind"], _short(alert.get("title"), 50),
                      _short(", ".join(alert.get("new_outlets") or alert.get("outlets") or []), 40), deliveries)
    console.print(table)
    st = alert_status(where)
    console.print(f"deliveries: {st['sent']} sent, {st['pending']} pending ({st['retrying']} retrying), "
                  f"{st['failed']} failed")
    return 0


def cmd_demo(args) -> int:
    from crawler.demo import run_demo

    return run_demo(console=console, keep=args.keep, log_level=args.log_level)


# --- parser ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veille", description="Veille: crawl French news outlets, "
                                     "extract and deduplicate articles, search them, alert on topics.")
    parser.add_argument("--data", help="data directory (default: $VEILLE_DATA or ./data)")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = verb("crawl", cmd_crawl, "Crawl sources now (all enabled sources by default).")
    p.add_argument("--source", action="append", metavar="ID", help="source id (repeatable)")
    p.add_argument("--limit", type=int, default=0, help="at most N article pages per source")
    p.add_argument("--sources-file", type=Path, help="sources YAML (default: $VEILLE_SOURCES or config/sources.yaml)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.add_argument("-s", "--set", action="append", metavar="NAME=VALUE", help="override a Scrapy setting")

    p = verb("search", cmd_search, "Search stored articles (Lucene query-string syntax, as in Kibana).")
    p.add_argument("query")
    p.add_argument("--source", help="only this source id")
    p.add_argument("--since", help="only articles published since this ISO date")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = verb("show", cmd_show, "Show one stored article by id or URL.")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")

    p = verb("sources", cmd_sources, "List and validate the configured sources.")
    p.add_argument("--file", type=Path, help="sources YAML (default: $VEILLE_SOURCES or config/sources.yaml)")

    p = verb("extract", cmd_extract, "Run extraction + cleaning on one saved HTML page.")
    p.add_argument("file")
    p.add_argument("--url", help="the page's URL (helps metadata)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: lead and body, one paragraph per line; json: all fields")

    p = verb("reprocess", cmd_reprocess, "Rerun extraction on archived raw pages (after a cleaner improves).")
    p.add_argument("--source", help="only this source id")
    p.add_argument("--sources-file", type=Path)

    verb("stats", cmd_stats, "Articles per source and the last run of each.")

    p = verb("dedup", cmd_dedup, "Cluster JSON lines {id, text, title?, outlet?, published?} into stories "
             "(same code as the crawl pipeline, throwaway index); prints {id, cluster} per input line.")
    p.add_argument("file", help="JSON lines file, or - for standard input")

    p = verb("clusters", cmd_clusters, "Stories carried by several outlets, biggest first.")
    p.add_argument("--since", help="only articles published since this ISO date")
    p.add_argument("--min-size", type=int, default=2, help="at least N articles (default 2)")
    p.add_argument("--limit", type=int, default=50)

    p = verb("schedule", cmd_schedule, "Run the crawl scheduler in the foreground: one job per enabled source "
             "(interval or cron, jitter), each run its own `veille crawl` process. SIGHUP or a changed file "
             "reloads the sources; SIGTERM/SIGINT stops after running crawls finish (or --grace).")
    p.add_argument("--sources-file", type=Path, help="sources YAML (default: $VEILLE_SOURCES or config/sources.yaml)")
    p.add_argument("--jobstore", help="SQLAlchemy URL of the job store (default: sqlite:///DATA/scheduler.sqlite3)")
    p.add_argument("--max-concurrent", type=int, default=4, help="crawls running at once (default 4)")
    p.add_argument("--misfire-grace", type=float, default=600, help="a run late by more than S seconds is skipped")
    p.add_argument("--grace", type=float, default=30, help="on SIGTERM: seconds running crawls may finish (default 30)")
    p.add_argument("--kill-grace", type=float, default=10, help="SIGTERM -> SIGKILL delay for a crawl being stopped")
    p.add_argument("--watch", type=float, default=5, help="check the sources file for changes every S s (0: SIGHUP only)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument("--metrics-addr", default="0.0.0.0", help="address of the metrics endpoint (default 0.0.0.0)")
    p.add_argument("--max-failures", type=int, default=3, help="failed runs in a row that flag a source")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--crawl-log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("-s", "--set", action="append", metavar="NAME=VALUE", help="Scrapy setting for every crawl")

    p = verb("status", cmd_status, "Per source: last run, result, new articles, next run, failures in a row, "
             "health flags. Exits 1 when a source failed --max-failures times in a row (a health check).")
    p.add_argument("--sources-file", type=Path)
    p.add_argument("--jobstore", help="SQLAlchemy URL of the job store")
    p.add_argument("--max-failures", type=int, default=3)
    p.add_argument("--json", action="store_true")

    p = verb("runs", cmd_runs, "Crawl run history, latest first.")
    p.add_argument("--source", help="only this source id")
    p.add_argument("--last", type=int, default=20, help="the last N runs (default 20)")
    p.add_argument("--log", action="store_true", help="also print the log tail of each run")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = verb("topics", cmd_topics, "List and validate the saved topics (exit 2 naming file:line when invalid); "
             "`topics test QUERY` shows which stored articles a query (or a topic id) matches, by story.")
    p.add_argument("action", nargs="?", choices=["list", "test"], default="list")
    p.add_argument("query", nargs="?", help="for test: a Lucene query-string query, or a topic id")
    p.add_argument("--file", type=Path, help="topics YAML (default: $VEILLE_TOPICS or config/topics.yaml)")
    p.add_argument("--since", help="test: only articles published since this ISO date")
    p.add_argument("--limit", type=int, default=50, help="test: at most N stories shown")
    p.add_argument("--json", action="store_true", help="test: one JSON object per story")

    p = verb("alerts", cmd_alerts, "Alerts sent, to whom, and their delivery state; `alerts deliver` sends "
             "what is due from the outbox now (retries included).")
    p.add_argument("action", nargs="?", choices=["list", "deliver"], default="list")
    p.add_argument("--topic", help="only this topic id")
    p.add_argument("--since", help="only alerts issued since this ISO date/time")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="one JSON object per alert (with its deliveries)")
    p.add_argument("--retry-failed", action="store_true", help="deliver: requeue deliveries given up on")
    p.add_argument("--topics-file", type=Path, help="deliver: topics YAML giving the current targets")

    from crawler.searchindex import add_cli_verbs

    add_cli_verbs(verb)  # es-setup, kibana-setup, replay

    p = verb("demo", cmd_demo, "Serve the bundled mirror of French outlets on 127.0.0.1, crawl it, show what came out.")
    p.add_argument("--keep", action="store_true", help="keep the demo data directory")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data:
        os.environ["VEILLE_DATA"] = args.data
    try:
        return args.func(args)
    except ConfigError as exc:
        fail(f"config error: {exc}")
        return 2
    except KeyError as exc:
        fail(f"{exc.args[0]}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
