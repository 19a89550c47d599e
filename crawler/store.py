"""The embedded store: SQLite (WAL) holding articles, their revisions, crawl state and run history.

Articles are searchable with FTS5 (accent-insensitive). The article part sits behind the
small `ArticleIndex` interface so a search cluster can be plugged in beside it; the crawl
state (seen URLs, HTTP validators, runs, learned boilerplate) always lives here.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Protocol

from crawler.items import body_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    outlet TEXT,
    title TEXT,
    lead TEXT,
    body TEXT NOT NULL,
    authors TEXT NOT NULL DEFAULT '[]',
    published TEXT,
    fetched TEXT NOT NULL,
    updated TEXT,
    lang TEXT,
    description TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    word_count INTEGER NOT NULL DEFAULT 0,
    body_hash TEXT NOT NULL,
    raw_ref TEXT,
    revision INTEGER NOT NULL DEFAULT 1,
    cluster_id TEXT,
    dup_of TEXT,
    similarity REAL,
    is_canonical INTEGER,
    signature BLOB,
    topics TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source, fetched);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles(cluster_id);
CREATE INDEX IF NOT EXISTS articles_fetched ON articles(fetched);

CREATE TABLE IF NOT EXISTS article_revisions (
    article_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    fetched TEXT NOT NULL,
    title TEXT,
    lead TEXT,
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    raw_ref TEXT,
    PRIMARY KEY (article_id, revision)
);

CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, lead, body, outlet, authors,
    content='articles', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS articles_ai AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, title, lead, body, outlet, authors)
    VALUES (new.rowid, new.title, new.lead, new.body, new.outlet, new.authors);
END;
CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, lead, body, outlet, authors)
    VALUES ('delete', old.rowid, old.title, old.lead, old.body, old.outlet, old.authors);
END;
CREATE TRIGGER IF NOT EXISTS articles_au AFTER UPDATE OF title, lead, body, outlet, authors ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, lead, body, outlet, authors)
    VALUES ('delete', old.rowid, old.title, old.lead, old.body, old.outlet, old.authors);
    INSERT INTO articles_fts(rowid, title, lead, body, outlet, authors)
    VALUES (new.rowid, new.title, new.lead, new.body, new.outlet, new.authors);
END;

CREATE TABLE IF NOT EXISTS seen_urls (
    url TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    status INTEGER,
    etag TEXT,
    last_modified TEXT,
    first_seen TEXT NOT NULL,
    last_fetched TEXT,
    error TEXT,
    article_id TEXT
);

CREATE TABLE IF NOT EXISTS crawl_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    stats TEXT NOT NULL DEFAULT '{}',
    log_tail TEXT
);
CREATE INDEX IF NOT EXISTS crawl_runs_source ON crawl_runs(source, started);

CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

ARTICLE_COLUMNS = (
    "id", "url", "source", "outlet", "title", "lead", "body", "authors", "published", "fetched",
    "updated", "lang", "description", "tags", "word_count", "body_hash", "raw_ref", "revision",
    "cluster_id", "dup_of", "similarity", "is_canonical", "signature", "topics",
)
_JSON_COLUMNS = ("authors", "tags", "topics")
_INSERT_NEW_ARTICLE = (f"INSERT INTO articles ({', '.join(ARTICLE_COLUMNS)}) "
                       f"VALUES ({', '.join(':' + c for c in ARTICLE_COLUMNS)}) ON CONFLICT(id) DO NOTHING")


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ArticleIndex(Protocol):
    """Where articles are written and searched: the embedded store, a search cluster, or both."""

    def index_article(self, article: dict) -> str:
        """Write an article; return 'new', 'updated' or 'unchanged'."""

    def search(self, query: str, *, source: str | None = None, since: str | None = None,
               limit: int = 20) -> list[dict]:
        """Articles matching a query-string query, best first."""

    def close(self) -> None: ...


def _row_to_article(row: sqlite3.Row) -> dict:
    article = dict(row)
    for column in _JSON_COLUMNS:
        if column in article and isinstance(article[column], str):
            article[column] = json.loads(article[column])
    if article.get("is_canonical") is not None:
        article["is_canonical"] = bool(article["is_canonical"])
    return article


class SQLiteStore:
    """The embedded store; safe to share between threads of one process (one connection, a lock)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "SQLiteStore":
        return cls(Path(data_dir) / "veille.sqlite3")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --- articles ---------------------------------------------------------------

    def index_article(self, article: dict) -> str:
        """Insert or update an article by id; a changed body becomes a new revision, the old one kept."""
        record = {column: article.get(column) for column in ARTICLE_COLUMNS}
        record["body_hash"] = record["body_hash"] or body_hash(record["body"])
        for column in _JSON_COLUMNS:
            record[column] = json.dumps(record[column] or [], ensure_ascii=False)
        if record["is_canonical"] is not None:
            record["is_canonical"] = int(record["is_canonical"])
        record["revision"] = 1
        with self._lock:  # most articles are new: one statement, no transaction round trips
            if self.db.execute(_INSERT_NEW_ARTICLE, record).rowcount == 1:
                return "new"
        with self.transaction() as db:
            old = db.execute(
                "SELECT revision, body_hash, title, lead, body, fetched, raw_ref FROM articles WHERE id = ?",
                (record["id"],),
            ).fetchone()
            if old is None:  # deleted meanwhile
                db.execute(_INSERT_NEW_ARTICLE, record)
                return "new"
            if old["body_hash"] == record["body_hash"] and old["title"] == record["title"]:
                return "unchanged"
            db.execute(
                "INSERT OR IGNORE INTO article_revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record["id"], old["revision"], old["fetched"], old["title"], old["lead"], old["body"],
                 old["body_hash"], old["raw_ref"]),
            )
            record["revision"] = old["revision"] + 1
            record["updated"] = record["fetched"]
            assignments = ", ".join(f"{c} = :{c}" for c in ARTICLE_COLUMNS if c != "id")
            db.execute(f"UPDATE articles SET {assignments} WHERE id = :id", record)
            return "updated"

    def update_article_fields(self, article_id: str, **fields: Any) -> None:
        """Set a few columns of a stored article (cluster assignment, topics, …)."""
        bad = set(fields) - set(ARTICLE_COLUMNS)
        if bad:
            raise ValueError(f"unknown article fields: {sorted(bad)}")
        for column in _JSON_COLUMNS:
            if column in fields:
                fields[column] = json.dumps(fields[column], ensure_ascii=False)
        if "is_canonical" in fields and fields["is_canonical"] is not None:
            fields["is_canonical"] = int(fields["is_canonical"])
        assignments = ", ".join(f"{c} = ?" for c in fields)
        with self._lock:
            self.db.execute(f"UPDATE articles SET {assignments} WHERE id = ?", (*fields.values(), article_id))

    def get_article(self, article_id: str) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM articles WHERE id = ? OR url = ?", (article_id, article_id)).fetchone()
        return _row_to_article(row) if row else None

    def revisions(self, article_id: str) -> list[dict]:
        with self._lock:
            rows = self.db.execute(
                "SELECT * FROM article_revisions WHERE article_id = ? ORDER BY revision", (article_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def articles(self, *, source: str | None = None, since: str | None = None,
                 cluster_id: str | None = None, limit: int | None = None,
                 order: str = "fetched DESC") -> list[dict]:
        where, params = self._filters(source=source, since=since, cluster_id=cluster_id)
        sql = f"SELECT * FROM articles {where} ORDER BY {order}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            return [_row_to_article(r) for r in self.db.execute(sql, params).fetchall()]

    @staticmethod
    def _filters(*, source=None, since=None, cluster_id=None, prefix="") -> tuple[str, list]:
        clauses, params = [], []
        if source:
            clauses.append(f"{prefix}source = ?")
            params.append(source)
        if since:
            clauses.append(f"COALESCE({prefix}published, {prefix}fetched) >= ?")
            params.append(since)
        if cluster_id:
            clauses.append(f"{prefix}cluster_id = ?")
            params.append(cluster_id)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def search(self, query: str, *, source: str | None = None, since: str | None = None,
               limit: int = 20) -> list[dict]:
        """Full-text search; `query` uses the Lucene query-string syntax, translated to FTS5."""
        from crawler.search import to_fts5  # the one query translator

        where, params = self._filters(source=source, since=since, prefix="a.")
        where = where.replace("WHERE", "AND") if where else ""
        sql = (
            "SELECT a.*, bm25(articles_fts, 10.0, 5.0, 1.0, 2.0, 2.0) AS score FROM articles_fts "
            "JOIN articles a ON a.rowid = articles_fts.rowid "
            f"WHERE articles_fts MATCH ? {where} ORDER BY score LIMIT ?"
        )
        with self._lock:
            rows = self.db.execute(sql, [to_fts5(query), *params, limit]).fetchall()
        return [_row_to_article(r) for r in rows]

    def count_articles(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    # --- story clusters ---------------------------------------------------------------

    def dedup_records(self, *, since: str | None = None, after_rowid: int = 0) -> list[tuple[int, dict, bytes, str | None]]:
        """(rowid, article fields, signature bytes, cluster_id) of signed articles, oldest first."""
        clauses, params = ["signature IS NOT NULL", "rowid > ?"], [after_rowid]
        if since:
            clauses.append("COALESCE(published, fetched) >= ?")
            params.append(since)
        sql = (f"SELECT rowid, id, outlet, published, title, lead, body, signature, cluster_id FROM articles "
               f"WHERE {' AND '.join(clauses)} ORDER BY rowid")
        with self._lock:
            rows = self.db.execute(sql, params).fetchall()
        return [(r["rowid"], dict(r), r["signature"], r["cluster_id"]) for r in rows]

    def relabel_cluster(self, absorbed: str, surviving: str) -> None:
        """Two stories turned out to be one: move every member of `absorbed` to `surviving`."""
        with self._lock:
            self.db.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?", (surviving, absorbed))

    def clusters(self, *, since: str | None = None, min_size: int = 2, limit: int = 50) -> list[dict]:
        """Stories, biggest first: cluster id, size, canonical title, member outlets, first/last seen."""
        where, params = self._filters(since=since)
        where = (where + " AND" if where else "WHERE") + " cluster_id IS NOT NULL"
        sql = (f"SELECT cluster_id, COUNT(*) AS size, MIN(COALESCE(published, fetched)) AS first, "
               f"MAX(COALESCE(published, fetched)) AS last, GROUP_CONCAT(DISTINCT outlet) AS outlets, "
               f"MAX(CASE WHEN is_canonical THEN title END) AS title, "
               f"MAX(CASE WHEN is_canonical THEN id END) AS canonical_id "
               f"FROM articles {where} GROUP BY cluster_id HAVING COUNT(*) >= ? "
               f"ORDER BY size DESC, last DESC LIMIT ?")
        with self._lock:
            rows = self.db.execute(sql, [*params, min_size, limit]).fetchall()
        return [{**dict(r), "outlets": sorted((r["outlets"] or "").split(","))} for r in rows]

    # --- crawl state --------------------------------------------------------------

    def is_known(self, url: str) -> bool:
        """True when an article was already stored from this URL."""
        with self._lock:
            return self.db.execute(
                "SELECT 1 FROM seen_urls WHERE url = ? AND article_id IS NOT NULL", (url,)
            ).fetchone() is not None

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """(ETag, Last-Modified) last seen for a URL."""
        with self._lock:
            row = self.db.execute("SELECT etag, last_modified FROM seen_urls WHERE url = ?", (url,)).fetchone()
        return (row["etag"], row["last_modified"]) if row else (None, None)

    def record_fetch(self, url: str, *, source: str, kind: str, status: int | None,
                     etag: str | None = None, last_modified: str | None = None,
                     error: str | None = None, article_id: str | None = None) -> None:
        """Remember a fetch of a URL (validators, status, error, the article it gave)."""
        now = utcnow()
        with self._lock:
            self.db.execute(
                """INSERT INTO seen_urls (url, source, kind, status, etag, last_modified, first_seen,
                                          last_fetched, error, article_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(url) DO UPDATE SET
                     status = excluded.status,
                     etag = COALESCE(excluded.etag, seen_urls.etag),
                     last_modified = COALESCE(excluded.last_modified, seen_urls.last_modified),
                     last_fetched = excluded.last_fetched,
                     error = excluded.error,
                     article_id = COALESCE(excluded.article_id, seen_urls.article_id)""",
                (url, source, kind, status, etag, last_modified, now, now, error, article_id),
            )

    # --- runs ------------------------------------------------------------------------

    def start_run(self, source: str) -> int:
        with self._lock:
            cur = self.db.execute("INSERT INTO crawl_runs (source, started) VALUES (?, ?)", (source, utcnow()))
            return cur.lastrowid

    def finish_run(self, run_id: int, *, status: str, stats: dict, log_tail: str | None = None) -> None:
        with self._lock:
            self.db.execute(
                "UPDATE crawl_runs SET finished = ?, status = ?, stats = ?, log_tail = COALESCE(?, log_tail) WHERE id = ?",
                (utcnow(), status, json.dumps(stats, default=str, ensure_ascii=False), log_tail, run_id),
            )

    def runs(self, *, source: str | None = None, last: int = 20) -> list[dict]:
        where, params = self._filters(source=source)
        with self._lock:
            rows = self.db.execute(
                f"SELECT * FROM crawl_runs {where} ORDER BY id DESC LIMIT ?", (*params, last)
            ).fetchall()
        return [{**dict(r), "stats": json.loads(r["stats"])} for r in rows]

    # --- small persisted state (learned boilerplate, …) -------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set_state(self, key: str, value: Any) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, ensure_ascii=False)),
            )

    # --- scheduled crawls: run lookups, recrawl window, health inputs -------------------------

    def get_run(self, run_id: int) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM crawl_runs WHERE id = ?", (run_id,)).fetchone()
        return {**dict(row), "stats": json.loads(row["stats"])} if row else None

    def merge_run_stats(self, run_id: int, stats: dict) -> None:
        """Add keys to a run's stats (e.g. the pid of its process) without finishing it."""
        with self.transaction() as db:
            row = db.execute("SELECT stats FROM crawl_runs WHERE id = ?", (run_id,)).fetchone()
            if row:
                merged = {**json.loads(row["stats"]), **stats}
                db.execute("UPDATE crawl_runs SET stats = ? WHERE id = ?",
                           (json.dumps(merged, default=str, ensure_ascii=False), run_id))

    def running_runs(self) -> list[dict]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM crawl_runs WHERE status = 'running' ORDER BY id").fetchall()
        return [{**dict(r), "stats": json.loads(r["stats"])} for r in rows]

    def run_sources(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self.db.execute("SELECT DISTINCT source FROM crawl_runs ORDER BY source")]

    def consecutive_failures(self, source: str) -> int:
        """Finished runs of a source that did not succeed, counted back from the latest."""
        count = 0
        with self._lock:
            rows = self.db.execute(
                "SELECT status FROM crawl_runs WHERE source = ? AND status != 'running' ORDER BY id DESC LIMIT 1000",
                (source,),
            )
            for row in rows:
                if row["status"] == "ok":
                    break
                count += 1
        return count

    def last_success(self, source: str) -> dict | None:
        with self._lock:
            row = self.db.execute(
                "SELECT * FROM crawl_runs WHERE source = ? AND status = 'ok' ORDER BY id DESC LIMIT 1", (source,)
            ).fetchone()
        return {**dict(row), "stats": json.loads(row["stats"])} if row else None

    def known_articles(self, source: str, *, since: str | None = None, last: int | None = None) -> list[dict]:
        """Stored articles of a source with the time their URL was first seen and last fetched (oldest
        first; `last`: only the N seen most recently)."""
        sql = ("SELECT s.url, s.first_seen, s.last_fetched, s.etag, a.id, a.published, a.word_count "
               "FROM seen_urls s JOIN articles a ON a.id = s.article_id AND a.url = s.url "
               "WHERE s.source = ?")
        params: list[Any] = [source]
        if since:
            sql += " AND s.first_seen >= ?"
            params.append(since)
        sql += " ORDER BY s.first_seen DESC, s.rowid DESC"
        if last:
            sql += f" LIMIT {int(last)}"
        with self._lock:
            return [dict(r) for r in reversed(self.db.execute(sql, params).fetchall())]

    def recrawl_due(self, source: str, windows: list[float], *, now: datetime | None = None,
                    limit: int = 100) -> list[str]:
        """Article URLs to fetch again: a window (seconds after first seen) has passed since the last fetch.

        An article is due at first_seen + w for each w in windows, once; past 1.5 x the last window
        it is left alone (no burst of stale recrawls after a long pause)."""
        if not windows:
            return []
        now = now or datetime.now(timezone.utc)
        windows = sorted(windows)
        horizon = now.timestamp() - 1.5 * windows[-1]
        since = datetime.fromtimestamp(horizon, timezone.utc).isoformat(timespec="seconds")
        due: list[tuple[float, str]] = []
        for row in self.known_articles(source, since=since):
            first = datetime.fromisoformat(row["first_seen"]).timestamp()
            last = datetime.fromisoformat(row["last_fetched"] or row["first_seen"]).timestamp()
            passed = [w for w in windows if first + w <= now.timestamp()]
            if passed and last < first + passed[-1]:
                due.append((first + passed[-1], row["url"]))
        return [url for _, url in sorted(due)[:limit]]


_OPEN_STORES: dict[Path, SQLiteStore] = {}


def store_from_settings(settings) -> SQLiteStore:
    """The one store of this process for the data dir in settings (VEILLE_DATA, else the environment)."""
    from crawler.config import data_dir

    root = Path(settings.get("VEILLE_DATA") or data_dir()).resolve()
    path = root / "veille.sqlite3"
    if path not in _OPEN_STORES:
        _OPEN_STORES[path] = SQLiteStore(path)
    return _OPEN_STORES[path]
