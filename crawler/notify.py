"""Alerts: notifiers (log, webhook, Slack, email), a persisted outbox and the story-aware AlertBook.

An Alert is plain data::

    {"alert_id", "topic_id", "topic_name", "cluster_id", "kind": "new"|"update"|"digest",
     "title", "url", "outlets": [...], "articles": [...], "created"}

(updates also carry "new_outlets"; digests carry "items": [alerts]).

* `make_notifier(target)` -> object with ``send(alert)``; raises `NotifyError` on failure.
* `Outbox(conn_or_path)`: ``enqueue(alert, target)`` persists a delivery; ``deliver_due(now)``
  sends what is due and reschedules failures with exponential backoff; rows are never deleted.
* `AlertBook(conn_or_path)`: ``record_match(topic, article, cluster_id, now)`` -> a "new" alert
  the first time a topic matches a story cluster, an "update" when another outlet carries it
  within ``update_window``, None when already told (also across restarts).
  ``notify_match(...)`` does that and enqueues to the topic's targets in one transaction.

Only the standard library is used (urllib, smtplib, email, sqlite3, hmac).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import smtplib
import sqlite3
import ssl
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

log = logging.getLogger("veille.notify")

SIGNATURE_HEADER = "X-Veille-Signature"
USER_AGENT = "Veille/1.0 (+alerts)"


class NotifyError(Exception):
    """A delivery that did not go through. `permanent` errors are not retried within one send."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Notifier(Protocol):
    def send(self, alert: dict) -> None: ...


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _env(name: str | None, env: Mapping[str, str], what: str) -> str | None:
    if not name:
        return None
    value = env.get(name)
    if value is None or value == "":
        raise NotifyError(f"environment variable {name} ({what}) is not set", permanent=True)
    return value


def missing_env(target: Any, env: Mapping[str, str] | None = None) -> list[str]:
    """Environment variables a target names but that are not set (check at start)."""
    env = os.environ if env is None else env
    names = [_get(target, k) for k in ("secret_env", "url_env", "username_env", "password_env")]
    return [n for n in names if n and not env.get(n)]


# --------------------------------------------------------------------------- rendering


def _outlets_text(alert: dict) -> str:
    return ", ".join(alert.get("outlets") or []) or "?"


def subject(alert: dict) -> str:
    topic = alert.get("topic_name") or alert.get("topic_id") or "Veille"
    kind = alert.get("kind")
    if kind == "digest":
        n = len(alert.get("items") or [])
        return f"[Veille] {topic} : {n} alerte{'s' if n > 1 else ''}"
    if kind == "update":
        new = ", ".join(alert.get("new_outlets") or []) or _outlets_text(alert)
        return f"[Veille] {topic} (mise à jour) : {alert.get('title', '')} — aussi repris par {new}"
    return f"[Veille] {topic} : {alert.get('title', '')}"


def render_text(alert: dict) -> str:
    """A plain-text rendering (log line body, email body)."""
    if alert.get("kind") == "digest":
        parts = [subject(alert), ""]
        for item in alert.get("items") or []:
            parts.append(_one_text(item))
            parts.append("")
        return "\n".join(parts).rstrip() + "\n"
    return _one_text(alert) + "\n"


def _one_text(alert: dict) -> str:
    lines = []
    if alert.get("kind") == "update":
        lines.append(f"Mise à jour — aussi repris par : {', '.join(alert.get('new_outlets') or [])}")
    lines.append(alert.get("title") or "")
    if alert.get("url"):
        lines.append(alert["url"])
    lines.append(f"Médias : {_outlets_text(alert)}")
    for art in alert.get("articles") or []:
        bits = [b for b in (art.get("outlet"), art.get("title"), art.get("url")) if b]
        if bits:
            lines.append("  - " + " — ".join(bits))
    return "\n".join(lines)


def _mrkdwn(text: str) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: dict) -> dict:
    """Slack incoming-webhook payload: fallback text + blocks (header, linked title, outlets)."""
    topic = alert.get("topic_name") or alert.get("topic_id") or "Veille"
    items = alert.get("items") if alert.get("kind") == "digest" else [alert]
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": topic[:150], "emoji": True}}]
    for item in items or []:
        title = _mrkdwn(item.get("title") or "")
        link = f"*<{item['url']}|{title}>*" if item.get("url") else f"*{title}*"
        if item.get("kind") == "update":
            link = f"Mise à jour — aussi repris par {_mrkdwn(', '.join(item.get('new_outlets') or []))}\n" + link
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link[:3000]}})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": ("Médias : " + _mrkdwn(_outlets_text(item)))[:3000]}]})
    return {"text": subject(alert)[:3000], "blocks": blocks[:50]}


# --------------------------------------------------------------------------- notifiers


class LogNotifier:
    def __init__(self, target: Any = None, stream: Any = None):
        self.kind = _get(target, "stream", "stdout") if target is not None else "stdout"
        self.stream = stream

    def send(self, alert: dict) -> None:
        line = f"ALERT {subject(alert)} | {alert.get('url') or ''} | {_outlets_text(alert)}"
        if self.kind == "log" and self.stream is None:
            log.warning("%s", line)
            return
        out = self.stream or (sys.stderr if self.kind == "stderr" else sys.stdout)
        print(line, file=out, flush=True)


def _post_json(url: str, body: bytes, headers: dict, timeout: float, retries: int, backoff: float,
               sleep: Callable[[float], None]) -> bytes:
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * (2 ** (attempt - 1)))
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": USER_AGENT, **headers})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            last = exc
            if 400 <= exc.code < 500 and exc.code not in (408, 425, 429):
                raise NotifyError(f"POST {url}: HTTP {exc.code}", permanent=True) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last = exc
    if isinstance(last, urllib.error.HTTPError):
        raise NotifyError(f"POST {url}: HTTP {last.code} after {retries + 1} tries")
    raise NotifyError(f"POST {url}: {getattr(last, 'reason', last)} after {retries + 1} tries")


def sign(body: bytes, secret: str) -> str:
    """The X-Veille-Signature value: 'sha256=' + HMAC-SHA256(secret, raw body) in hex."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """JSON POST of the alert; signed with HMAC-SHA256 when the target names secret_env."""

    def __init__(self, target: Any, env: Mapping[str, str] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.target, self.env, self.sleep = target, (os.environ if env is None else env), sleep

    def body(self, alert: dict) -> bytes:
        return json.dumps(alert, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")

    def send(self, alert: dict) -> None:
        t = self.target
        url = _get(t, "url") or _env(_get(t, "url_env"), self.env, "webhook url")
        body = self.body(alert)
        headers = {"X-Veille-Alert-Id": str(alert.get("alert_id", ""))}
        secret = _env(_get(t, "secret_env"), self.env, "webhook secret")
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, secret)
        _post_json(url, body, headers, float(_get(t, "timeout", 10)), int(_get(t, "retries", 2)),
                   float(_get(t, "backoff", 0.5)), self.sleep)


class SlackNotifier:
    def __init__(self, target: Any, env: Mapping[str, str] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.target, self.env, self.sleep = target, (os.environ if env is None else env), sleep

    def send(self, alert: dict) -> None:
        t = self.target
        url = _get(t, "url") or _env(_get(t, "url_env"), self.env, "slack webhook url")
        body = json.dumps(slack_payload(alert), ensure_ascii=False).encode("utf-8")
        _post_json(url, body, {}, float(_get(t, "timeout", 10)), int(_get(t, "retries", 2)),
                   float(_get(t, "backoff", 0.5)), self.sleep)


class EmailNotifier:
    """SMTP; STARTTLS when configured (starttls: true) or, when unset, whenever the server offers it."""

    def __init__(self, target: Any, env: Mapping[str, str] | None = None, ssl_context: ssl.SSLContext | None = None):
        self.target, self.env = target, (os.environ if env is None else env)
        self.ssl_context = ssl_context

    def message(self, alert: dict) -> EmailMessage:
        t = self.target
        # No folding of long headers: Python 3.11's folder drops the space between two encoded
        # words ("SNCF : un" arrived as "SNCF :un"); RFC 5322 allows lines up to 998 characters.
        msg = EmailMessage(policy=_default_policy.clone(max_line_length=998))
        msg["Subject"] = subject(alert).replace("\n", " ")
        msg["From"] = _get(t, "sender", "veille@localhost")
        msg["To"] = ", ".join(_get(t, "to") or [])
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="veille")
        msg["X-Veille-Alert-Id"] = str(alert.get("alert_id", ""))
        msg.set_content(render_text(alert))
        return msg

    def send(self, alert: dict) -> None:
        t = self.target
        host, port = _get(t, "smtp_host"), int(_get(t, "smtp_port", 587))
        user = _env(_get(t, "username_env"), self.env, "SMTP user")
        password = _env(_get(t, "password_env"), self.env, "SMTP password")
        starttls = _get(t, "starttls")
        timeout = float(_get(t, "timeout", 10))
        ctx = self.ssl_context or ssl.create_default_context()
        msg = self.message(alert)
        try:
            if _get(t, "ssl", False):
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ctx)
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if not _get(t, "ssl", False):
                    offered = smtp.has_extn("starttls")
                    if starttls and not offered:
                        raise NotifyError(f"SMTP {host}:{port} does not offer STARTTLS", permanent=True)
                    if starttls or (starttls is None and offered):
                        smtp.starttls(context=ctx)
                        smtp.ehlo()
                if user is not None:
                    smtp.login(user, password or "")
                smtp.send_message(msg)
        except NotifyError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(f"SMTP {host}:{port}: authentication failed: {exc}", permanent=True) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise NotifyError(f"SMTP {host}:{port}: {exc}") from None


def make_notifier(target: Any, env: Mapping[str, str] | None = None) -> Notifier:
    kind = _get(target, "type")
    if kind == "log":
        return LogNotifier(target)
    if kind == "webhook":
        return WebhookNotifier(target, env)
    if kind == "slack":
        return SlackNotifier(target, env)
    if kind == "email":
        return EmailNotifier(target, env)
    raise NotifyError(f"unknown target type {kind!r}", permanent=True)


def send(alert: dict, target: Any, env: Mapping[str, str] | None = None) -> None:
    """Send one alert to one target right now (no outbox)."""
    make_notifier(target, env).send(alert)


# --------------------------------------------------------------------------- helpers


def _ts(now: Any = None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.timestamp()
    return float(now)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _connect(conn_or_path: sqlite3.Connection | str | Path) -> sqlite3.Connection:
    if isinstance(conn_or_path, sqlite3.Connection):
        return conn_or_path
    conn = sqlite3.connect(str(conn_or_path), timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _target_dump(target: Any) -> dict:
    if hasattr(target, "model_dump"):
        return target.model_dump(mode="json")
    return dict(target)


def _target_name(target: Any) -> str:
    name = _get(target, "name")
    if name:
        return str(name)
    dump = json.dumps(_target_dump(target), sort_keys=True)
    return f"{_get(target, 'type')}-{hashlib.sha1(dump.encode()).hexdigest()[:10]}"


# --------------------------------------------------------------------------- outbox

_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    target_name TEXT NOT NULL,
    target_json TEXT NOT NULL,
    alert_json TEXT NOT NULL,
    digest_key TEXT,
    status TEXT NOT NULL DEFAULT 'pending',      -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    created REAL NOT NULL,
    sent_at REAL,
    last_error TEXT,
    UNIQUE (alert_id, target_name)
);
CREATE INDEX IF NOT EXISTS outbox_deliveries_due ON outbox_deliveries (status, next_attempt);
"""


class Outbox:
    """Persisted deliveries: nothing is dropped; failures are retried with exponential backoff.

    After `max_attempts` failed tries a delivery becomes 'failed' (kept; `retry_failed()` requeues).
    Delivery is at-least-once: receivers can dedupe on alert_id (X-Veille-Alert-Id header).
    """

    def __init__(self, conn: sqlite3.Connection | str | Path, *, targets: Mapping[str, Any] | None = None,
                 notifier_factory: Callable[[Any], Notifier] | None = None, env: Mapping[str, str] | None = None,
                 base_delay: float = 30.0, max_delay: float = 3600.0, max_attempts: int = 10):
        self.conn = _connect(conn)
        self.targets = dict(targets or {})
        self.env = env
        self.notifier_factory = notifier_factory or (lambda t: make_notifier(t, self.env))
        self.base_delay, self.max_delay, self.max_attempts = base_delay, max_delay, max_attempts
        with self.conn:
            self.conn.executescript(_OUTBOX_SCHEMA)

    # -- writing
    def _enqueue(self, alert: dict, target: Any, now: float, digest_period: float | None) -> int:
        if isinstance(target, str):
            name, target = target, self.targets[target]
        else:
            name = _target_name(target)
        due, key = now, None
        if digest_period:
            window_end = (math.floor(now / digest_period) + 1) * digest_period
            due, key = window_end, f"{alert.get('topic_id')}@{int(window_end)}"
        self.conn.execute(
            "INSERT OR IGNORE INTO outbox_deliveries (alert_id, target_name, target_json, alert_json, digest_key,"
            " next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(alert["alert_id"]), name, json.dumps(_target_dump(target), ensure_ascii=False),
             json.dumps(alert, ensure_ascii=False, default=str), key, due, now))
        row = self.conn.execute("SELECT id FROM outbox_deliveries WHERE alert_id = ? AND target_name = ?",
                                (str(alert["alert_id"]), name)).fetchone()
        return int(row[0])

    def enqueue(self, alert: dict, target: Any, *, now: Any = None, digest_period: float | None = None) -> int:
        """Persist one delivery (idempotent per (alert_id, target)); returns its row id.

        `target`: a Target (its `name` identifies it), a dict, or a name from `targets`.
        With `digest_period` (seconds) the alert waits for the end of its period window and is
        sent together with the other alerts of the same topic and window.
        """
        with self.conn:
            return self._enqueue(alert, target, _ts(now), digest_period)

    # -- sending
    def _target_for(self, name: str, stored: str) -> Any:
        return self.targets.get(name) or json.loads(stored)

    def _backoff(self, attempts: int) -> float:
        return min(self.base_delay * (2 ** max(attempts - 1, 0)), self.max_delay)

    def deliver_due(self, now: Any = None, limit: int = 500) -> dict:
        """Send every due delivery; returns {"sent": n, "retry": n, "failed": n}."""
        ts = _ts(now)
        rows = self.conn.execute(
            "SELECT id, alert_id, target_name, target_json, alert_json, digest_key, attempts FROM outbox_deliveries"
            " WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?", (ts, limit)).fetchall()
        groups: dict[tuple, list] = {}
        for row in rows:
            key = (row[5], row[2]) if row[5] else (f"#{row[0]}", row[2])
            groups.setdefault(key, []).append(row)
        result = {"sent": 0, "retry": 0, "failed": 0}
        for (digest_key, _), batch in groups.items():
            alerts = [json.loads(r[4]) for r in batch]
            alert = alerts[0] if len(batch) == 1 and not batch[0][5] else _digest(digest_key, alerts, ts)
            ids = [r[0] for r in batch]
            marks = ",".join("?" * len(ids))
            try:
                self.notifier_factory(self._target_for(batch[0][2], batch[0][3])).send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, nothing is lost
                attempts = max(r[6] for r in batch) + 1
                dead = attempts >= self.max_attempts
                with self.conn:
                    self.conn.execute(
                        f"UPDATE outbox_deliveries SET attempts = ?, last_error = ?, status = ?, next_attempt = ?"
                        f" WHERE id IN ({marks})",
                        (attempts, f"{type(exc).__name__}: {exc}"[:2000], "failed" if dead else "pending",
                         ts + self._backoff(attempts), *ids))
                result["failed" if dead else "retry"] += len(ids)
                log.warning("delivery of %s to %s failed (attempt %d%s): %s", alert.get("alert_id"), batch[0][2],
                            attempts, ", giving up" if dead else "", exc)
                continue
            with self.conn:
                self.conn.execute(
                    f"UPDATE outbox_deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                    f" last_error = NULL WHERE id IN ({marks})", (ts, *ids))
            result["sent"] += len(ids)
        return result

    def next_due(self) -> float | None:
        row = self.conn.execute("SELECT MIN(next_attempt) FROM outbox_deliveries WHERE status = 'pending'").fetchone()
        return row[0]

    def retry_failed(self, now: Any = None) -> int:
        with self.conn:
            cur = self.conn.execute("UPDATE outbox_deliveries SET status = 'pending', attempts = 0, next_attempt = ?"
                                    " WHERE status = 'failed'", (_ts(now),))
        return cur.rowcount

    # -- status
    def _count(self, status: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM outbox_deliveries WHERE status = ?", (status,)).fetchone()[0]

    def pending(self) -> int:
        """Deliveries not sent yet (waiting, retrying or waiting for their digest)."""
        return self._count("pending")

    def failed(self) -> int:
        """Deliveries given up after max_attempts (kept; see retry_failed)."""
        return self._count("failed")

    def sent(self) -> int:
        return self._count("sent")

    def stats(self) -> dict:
        row = self.conn.execute(
            "SELECT SUM(status = 'pending'), SUM(status = 'pending' AND attempts > 0), SUM(status = 'sent'),"
            " SUM(status = 'failed') FROM outbox_deliveries").fetchone()
        return {"pending": row[0] or 0, "retrying": row[1] or 0, "sent": row[2] or 0, "failed": row[3] or 0}


def _digest(digest_key: str, alerts: list[dict], ts: float) -> dict:
    first = alerts[0]
    outlets: list[str] = []
    articles: list[dict] = []
    for a in alerts:
        outlets += [o for o in a.get("outlets") or [] if o not in outlets]
        articles += a.get("articles") or []
    return {
        "alert_id": f"digest:{digest_key}:{first.get('alert_id')}",
        "topic_id": first.get("topic_id"),
        "topic_name": first.get("topic_name"),
        "cluster_id": None,
        "kind": "digest",
        "title": f"{len(alerts)} alerte{'s' if len(alerts) > 1 else ''} : {first.get('topic_name')}",
        "url": first.get("url"),
        "outlets": outlets,
        "articles": articles,
        "items": alerts,
        "created": _iso(ts),
    }


# --------------------------------------------------------------------------- alert book

_ALERTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_stories (
    topic_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    seq INTEGER NOT NULL,             -- alerts issued for this story so far
    updates INTEGER NOT NULL,         -- updates since the last "new"
    window_start REAL NOT NULL,       -- when the last "new" alert was issued
    last_alert REAL NOT NULL,
    outlets TEXT NOT NULL,            -- JSON list, outlets already told
    article_ids TEXT NOT NULL,        -- JSON list, articles already seen
    title TEXT,
    url TEXT,
    PRIMARY KEY (topic_id, cluster_id)
);
CREATE TABLE IF NOT EXISTS alerts_log (
    alert_id TEXT PRIMARY KEY,
    topic_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    alert_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_log_created ON alerts_log (created);
"""


def _article_summary(article: dict) -> dict:
    url = article.get("url") or (article.get("id") if str(article.get("id", "")).startswith("http") else None)
    return {k: v for k, v in {"id": article.get("id"), "title": article.get("title"), "url": url,
                              "outlet": article.get("outlet") or article.get("source"),
                              "published": article.get("published")}.items() if v is not None}


class AlertBook:
    """One alert per (topic, story cluster); later copies become updates; restarts never repeat.

    * first match of a cluster -> kind "new";
    * a new article from an outlet not told yet, within `update_window` seconds of the "new"
      alert -> kind "update" (at most `max_updates` per story; beyond, silently recorded);
    * an article already seen, or another article of an outlet already told -> None;
    * after the window, a further article starts a fresh "new" alert for the story.
    """

    def __init__(self, conn: sqlite3.Connection | str | Path, *, update_window: float = 24 * 3600,
                 max_updates: int = 10):
        self.conn = _connect(conn)
        self.update_window, self.max_updates = float(update_window), max_updates
        with self.conn:
            self.conn.executescript(_ALERTS_SCHEMA)

    def _record(self, topic: Any, article: dict, cluster_id: str, ts: float) -> dict | None:
        topic_id, topic_name = str(_get(topic, "id")), _get(topic, "name") or _get(topic, "id")
        cluster_id = str(cluster_id)
        art = _article_summary(article)
        art_id = str(article.get("id") or art.get("url") or "")
        outlet = art.get("outlet") or "?"
        row = self.conn.execute(
            "SELECT seq, updates, window_start, outlets, article_ids, title, url FROM alerts_stories"
            " WHERE topic_id = ? AND cluster_id = ?", (topic_id, cluster_id)).fetchone()
        base = {"topic_id": topic_id, "topic_name": topic_name, "cluster_id": cluster_id, "created": _iso(ts)}
        if row is None or ts - row[2] > self.update_window:
            seq = 1 if row is None else row[0] + 1
            seen = [art_id] if row is None else json.loads(row[4]) + [art_id]
            if row is not None and art_id in json.loads(row[4]):
                return None
            alert = {**base, "alert_id": f"{topic_id}:{cluster_id}:{seq}", "kind": "new",
                     "title": art.get("title") or "", "url": art.get("url"), "outlets": [outlet], "articles": [art]}
            self.conn.execute(
                "INSERT OR REPLACE INTO alerts_stories (topic_id, cluster_id, seq, updates, window_start, last_alert,"
                " outlets, article_ids, title, url) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                (topic_id, cluster_id, seq, ts, ts, json.dumps([outlet]), json.dumps(seen), alert["title"], alert["url"]))
        else:
            seq, updates, _, outlets_json, seen_json, title, url = row
            outlets, seen = json.loads(outlets_json), json.loads(seen_json)
            if art_id in seen:
                return None
            seen.append(art_id)
            if outlet in outlets or updates >= self.max_updates:
                if outlet not in outlets:
                    outlets.append(outlet)
                self.conn.execute("UPDATE alerts_stories SET article_ids = ?, outlets = ? WHERE topic_id = ?"
                                  " AND cluster_id = ?", (json.dumps(seen), json.dumps(outlets), topic_id, cluster_id))
                return None
            outlets.append(outlet)
            seq += 1
            alert = {**base, "alert_id": f"{topic_id}:{cluster_id}:{seq}", "kind": "update",
                     "title": title or art.get("title") or "", "url": url or art.get("url"), "outlets": outlets,
                     "new_outlets": [outlet], "articles": [art]}
            self.conn.execute(
                "UPDATE alerts_stories SET seq = ?, updates = updates + 1, last_alert = ?, outlets = ?,"
                " article_ids = ? WHERE topic_id = ? AND cluster_id = ?",
                (seq, ts, json.dumps(outlets), json.dumps(seen), topic_id, cluster_id))
        self.conn.execute("INSERT INTO alerts_log (alert_id, topic_id, cluster_id, kind, created, alert_json)"
                          " VALUES (?, ?, ?, ?, ?, ?)",
                          (alert["alert_id"], topic_id, cluster_id, alert["kind"], ts,
                           json.dumps(alert, ensure_ascii=False, default=str)))
        return alert

    def record_match(self, topic: Any, article: dict, cluster_id: str, now: Any = None) -> dict | None:
        """Record that `article` (in story `cluster_id`) matched `topic`; the alert to send, or None."""
        with self.conn:
            return self._record(topic, article, cluster_id, _ts(now))

    def notify_match(self, topic: Any, article: dict, cluster_id: str, now: Any, outbox: Outbox,
                     targets: list[Any]) -> dict | None:
        """record_match + enqueue to each target in one transaction (outbox on the same connection).

        Digest topics (mode: digest) are enqueued with their digest period.
        """
        ts = _ts(now)
        period = None
        if _get(topic, "mode") == "digest":
            period = _get(topic, "digest_seconds") or None
        shared = outbox.conn is self.conn
        with self.conn:
            alert = self._record(topic, article, cluster_id, ts)
            if alert is not None and shared:
                for target in targets:
                    outbox._enqueue(alert, target, ts, period)
        if alert is not None and not shared:  # not atomic: prefer one connection for both
            for target in targets:
                outbox.enqueue(alert, target, now=ts, digest_period=period)
        return alert

    def _fold(self, alert: dict, article: dict, ts: float) -> bool:
        """Add another article of the same story (same batch) to `alert` instead of a second alert."""
        topic_id, cluster_id = alert["topic_id"], alert["cluster_id"]
        art = _article_summary(article)
        art_id = str(article.get("id") or art.get("url") or "")
        outlet = art.get("outlet") or "?"
        outlets_json, seen_json = self.conn.execute(
            "SELECT outlets, article_ids FROM alerts_stories WHERE topic_id = ? AND cluster_id = ?",
            (topic_id, cluster_id)).fetchone()
        outlets, seen = json.loads(outlets_json), json.loads(seen_json)
        if art_id in seen:
            return False
        seen.append(art_id)
        if outlet not in outlets:
            outlets.append(outlet)
            if alert["kind"] == "update":
                alert.setdefault("new_outlets", []).append(outlet)
        alert["outlets"] = outlets
        alert["articles"].append(art)
        self.conn.execute("UPDATE alerts_stories SET outlets = ?, article_ids = ? WHERE topic_id = ? AND cluster_id = ?",
                          (json.dumps(outlets), json.dumps(seen), topic_id, cluster_id))
        self.conn.execute("UPDATE alerts_log SET alert_json = ? WHERE alert_id = ?",
                          (json.dumps(alert, ensure_ascii=False, default=str), alert["alert_id"]))
        return True

    def notify_story(self, topic: Any, articles: list[dict], cluster_id: str, now: Any, outbox: Outbox,
                     targets: list[Any]) -> dict | None:
        """Several articles of one story matched `topic` in one batch (e.g. one crawl): at most one alert.

        The first article that makes news (a "new" story, or an outlet not told yet) leads the alert;
        the batch's other articles are folded into it (their outlets added), never a second alert.
        """
        ts = _ts(now)
        period = _get(topic, "digest_seconds") or None if _get(topic, "mode") == "digest" else None
        shared = outbox.conn is self.conn
        alert = None
        with self.conn:
            for article in articles:
                if alert is None:
                    alert = self._record(topic, article, cluster_id, ts)
                else:
                    self._fold(alert, article, ts)
            if alert is not None and shared:
                for target in targets:
                    outbox._enqueue(alert, target, ts, period)
        if alert is not None and not shared:
            for target in targets:
                outbox.enqueue(alert, target, now=ts, digest_period=period)
        return alert

    def alerts_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM alerts_log").fetchone()[0]

    def recent(self, limit: int = 20) -> list[dict]:
        rows = self.conn.execute("SELECT alert_json FROM alerts_log ORDER BY created DESC LIMIT ?", (limit,))
        return [json.loads(r[0]) for r in rows]
