"""Topic alerts wired to the store: match crawled articles, one alert per story, deliver from the outbox.

The matching and bookkeeping live in `crawler.topics` (TopicMatcher) and `crawler.notify`
(AlertBook, Outbox); this module ties them to the SQLite file of the store:

* `AlertService`: one per store and process (every crawler of a `veille crawl` shares it, so
  copies of one wire story found by several sources in one run become *one* alert);
  `match()` an article, `add()` it to the current batch, `flush()` the batch into alerts
  (AlertBook.notify_story: record + enqueue in one transaction), `deliver()` what is due.
* `deliver_pending(where)`: send the due deliveries of a data dir / store (the scheduler calls it
  between runs; `veille alerts deliver` too).
* `alert_status(where)`: counts for `veille status`; `alert_history(where)`: what was sent, to whom.

The alert tables (alerts_stories, alerts_log, outbox_deliveries) live in the store's SQLite file,
written through their own connections (WAL; short transactions; busy timeout 30 s).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

from crawler.config import CONFIG_DIR, ConfigError
from crawler.notify import AlertBook, Outbox, missing_env
from crawler.topics import TopicMatcher, TopicsFile, load_topics

log = logging.getLogger("veille.alerts")

DB_NAME = "veille.sqlite3"
DEFAULT_RETRY_BASE = 30.0
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_UPDATE_WINDOW = 24 * 3600.0


def topics_path(value: Any = None) -> Path:
    """The topics file in use: the given path, else $VEILLE_TOPICS, else config/topics.yaml."""
    return Path(value or os.environ.get("VEILLE_TOPICS") or CONFIG_DIR / "topics.yaml")


def db_path(where: Any) -> Path:
    """The SQLite file of a store, a data dir or the file itself."""
    if hasattr(where, "path"):  # a SQLiteStore
        return Path(where.path)
    where = Path(where)
    return where if where.suffix in (".sqlite3", ".db", ".sqlite") else where / DB_NAME


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _connect(path: Path, *, threads: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=not threads)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class AlertService:
    """Topics + AlertBook + Outbox on one SQLite file; one per store and process."""

    def __init__(self, path: Path | str, topics: TopicsFile, *, update_window: float = DEFAULT_UPDATE_WINDOW,
                 retry_base: float = DEFAULT_RETRY_BASE, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 env: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.topics = topics
        self.matcher = TopicMatcher(topics.topics)
        self.env = env
        self.retry_base, self.max_attempts = retry_base, max_attempts
        self.conn = _connect(self.path)  # matching/recording: the reactor thread only
        self.book = AlertBook(self.conn, update_window=update_window)
        self.outbox = Outbox(self.conn, targets=topics.targets, env=env, base_delay=retry_base,
                             max_attempts=max_attempts)
        self._deliver_conn: sqlite3.Connection | None = None
        self._deliver_lock = threading.Lock()
        self.batch: dict[tuple[str, str], list[dict]] = {}
        self.users = 0  # open spiders sharing this service
        for topic in self.matcher.topics:
            for target in topics.targets_for(topic):
                missing = missing_env(target, env)
                if missing:
                    log.warning("topic %s: target %s needs %s (not set); its alerts will wait in the outbox",
                                topic.id, target.name, ", ".join(missing))

    # -- matching -------------------------------------------------------------------------
    def match(self, article: dict) -> list[str]:
        return self.matcher.match(article)

    def add(self, article: dict, topic_ids: list[str]) -> None:
        """Queue a matched article; `flush()` turns the batch into alerts (one per topic and story)."""
        story = str(article.get("cluster_id") or article.get("id"))
        for topic_id in topic_ids:
            self.batch.setdefault((topic_id, story), []).append(dict(article))

    def flush(self, now: Any = None) -> list[dict]:
        """Record the batch: one alert per (topic, story) at most, enqueued to the topic's targets."""
        batch, self.batch = self.batch, {}
        # The dedup may have merged stories or moved the canonical copy since the articles came in.
        ids = list({a["id"] for articles in batch.values() for a in articles if a.get("id")})
        current: dict[str, tuple] = {}
        if "articles" not in _tables(self.conn):
            ids = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            current.update((r[0], (r[1], r[2])) for r in self.conn.execute(
                f"SELECT id, cluster_id, is_canonical FROM articles WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        regrouped: dict[tuple[str, str], list[dict]] = {}
        for (topic_id, story), articles in batch.items():
            for article in articles:
                key = story
                if article.get("id") in current:
                    cluster_id, canonical = current[article["id"]]
                    article["cluster_id"], article["is_canonical"] = cluster_id, bool(canonical)
                    key = str(cluster_id or article["id"])
                regrouped.setdefault((topic_id, key), []).append(article)
        alerts = []
        for (topic_id, story), articles in regrouped.items():
            topic = self.topics.get(topic_id)
            # The story's canonical copy (the fullest, the agency's own) leads the alert.
            articles.sort(key=lambda a: (not a.get("is_canonical"), a.get("published") or "", a.get("id") or ""))
            alert = self.book.notify_story(topic, articles, story, now, self.outbox, self.topics.targets_for(topic))
            if alert is not None:
                alerts.append(alert)
                log.info("alert %s (%s) %s: %s [%s]", alert["alert_id"], alert["kind"], topic_id,
                         alert.get("title"), ", ".join(alert.get("outlets") or []))
        return alerts

    # -- delivery -------------------------------------------------------------------------
    def deliver(self, now: Any = None) -> dict:
        """Send what is due (callable from a worker thread; one delivery at a time per process)."""
        with self._deliver_lock:
            if self._deliver_conn is None:
                self._deliver_conn = _connect(self.path, threads=True)
            outbox = Outbox(self._deliver_conn, targets=self.topics.targets, env=self.env,
                            base_delay=self.retry_base, max_attempts=self.max_attempts)
            return outbox.deliver_due(now)

    def close(self) -> None:
        with self._deliver_lock:
            if self._deliver_conn is not None:
                self._deliver_conn.close()
                self._deliver_conn = None
        self.conn.close()


# --------------------------------------------------------------------------- between runs


def deliver_pending(where: Any, *, topics: TopicsFile | str | Path | None = None, now: Any = None,
                    retry_base: float | None = None, max_attempts: int | None = None,
                    retry_failed: bool = False, env: Mapping[str, str] | None = None) -> dict:
    """Send the due deliveries of a store / data dir; {"sent", "retry", "failed", "pending", "requeued"}.

    Targets come from the topics file when it loads (so a fixed URL applies to waiting alerts),
    else from what was stored with each delivery.
    """
    path = db_path(where)
    if not path.exists():
        return {"sent": 0, "retry": 0, "failed": 0, "pending": 0, "requeued": 0}
    targets: dict = {}
    if not isinstance(topics, TopicsFile):
        try:
            topics = load_topics(topics_path(topics))
        except ConfigError as exc:
            log.warning("topics file not usable (%s); delivering with the stored targets", exc)
            topics = None
    if topics is not None:
        targets = topics.targets
    conn = _connect(path)
    try:
        outbox = Outbox(conn, targets=targets, env=env,
                        base_delay=retry_base if retry_base is not None else _env_float("VEILLE_ALERTS_RETRY_BASE", DEFAULT_RETRY_BASE),
                        max_attempts=max_attempts or int(_env_float("VEILLE_ALERTS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))
        requeued = outbox.retry_failed(now) if retry_failed else 0
        result = outbox.deliver_due(now)
        result["pending"] = outbox.pending()
        result["requeued"] = requeued
        return result
    finally:
        conn.close()


def alert_status(where: Any) -> dict:
    """Alerts issued and deliveries by state, the next retry and the last error (for `veille status`)."""
    path = db_path(where)
    out = {"alerts": 0, "pending": 0, "retrying": 0, "sent": 0, "failed": 0, "next_due": None,
           "last_error": None, "last_alert": None}
    if not path.exists():
        return out
    conn = _connect(path)
    try:
        tables = _tables(conn)
        if "alerts_log" in tables:
            out["alerts"], out["last_alert"] = conn.execute("SELECT COUNT(*), MAX(created) FROM alerts_log").fetchone()
        if "outbox_deliveries" in tables:
            row = conn.execute(
                "SELECT SUM(status = 'pending'), SUM(status = 'pending' AND attempts > 0), SUM(status = 'sent'),"
                " SUM(status = 'failed'), MIN(CASE WHEN status = 'pending' THEN next_attempt END)"
                " FROM outbox_deliveries").fetchone()
            out.update(pending=row[0] or 0, retrying=row[1] or 0, sent=row[2] or 0, failed=row[3] or 0,
                       next_due=row[4])
            err = conn.execute("SELECT target_name, last_error FROM outbox_deliveries WHERE last_error IS NOT NULL"
                               " AND status != 'sent' ORDER BY id DESC LIMIT 1").fetchone()
            if err:
                out["last_error"] = f"{err[0]}: {err[1]}"
    finally:
        conn.close()
    return out


def alert_history(where: Any, *, topic: str | None = None, since: str | None = None,
                  limit: int = 50) -> list[dict]:
    """Alerts issued, newest first, each with its deliveries (target, status, attempts, error, sent)."""
    import json
    from datetime import datetime, timezone

    path = db_path(where)
    if not path.exists():
        return []
    conn = _connect(path)
    try:
        if "alerts_log" not in _tables(conn):
            return []
        clauses, params = [], []
        if topic:
            clauses.append("topic_id = ?")
            params.append(topic)
        if since:
            ts = datetime.fromisoformat(since)
            ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
            clauses.append("created >= ?")
            params.append(ts.timestamp())
        where_sql = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = conn.execute(f"SELECT alert_json FROM alerts_log {where_sql} ORDER BY created DESC, rowid DESC LIMIT ?",
                            (*params, limit)).fetchall()
        has_outbox = "outbox_deliveries" in _tables(conn)
        out = []
        for (alert_json,) in rows:
            alert = json.loads(alert_json)
            deliveries = []
            if has_outbox:
                for name, status, attempts, err, sent_at, next_attempt in conn.execute(
                        "SELECT target_name, status, attempts, last_error, sent_at, next_attempt FROM outbox_deliveries"
                        " WHERE alert_id = ? ORDER BY id", (alert["alert_id"],)):
                    deliveries.append({"target": name, "status": status, "attempts": attempts, "error": err,
                                       "sent_at": sent_at, "next_attempt": next_attempt})
            alert["deliveries"] = deliveries
            out.append(alert)
        return out
    finally:
        conn.close()
