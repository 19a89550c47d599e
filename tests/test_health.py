"""Source health rules on a synthetic history (runs and articles written straight into the store)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crawler.health import HealthRules, check_source
from crawler.store import SQLiteStore

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "veille.sqlite3")
    yield s
    s.close()


def add_run(store, source, status="ok", **stats):
    run_id = store.start_run(source)
    store.finish_run(run_id, status=status, stats={"pages_fetched": 10, "responses": 12, **stats})


def add_article(store, source, n, first_seen, published="2025-03-01T10:00:00+01:00"):
    url = f"http://site.invalid/{source}/{n}"
    store.index_article({"id": f"{source}-{n}", "url": url, "source": source, "body": f"texte {n}",
                         "fetched": first_seen.isoformat(), "published": published, "word_count": 2})
    store.record_fetch(url, source=source, kind="article", status=200, article_id=f"{source}-{n}")
    stamp = first_seen.isoformat(timespec="seconds")
    store.db.execute("UPDATE seen_urls SET first_seen = ?, last_fetched = ? WHERE url = ?", (stamp, stamp, url))


def rules_of(store, source, now=NOW, **kw):
    return {f.rule for f in check_source(store, source, now=now, rules=HealthRules(**kw))}


def test_healthy_source_has_no_flags(store):
    for n in range(30):
        add_article(store, "ok", n, NOW - timedelta(hours=30 - n))
    for _ in range(6):
        add_run(store, "ok", **{"articles/new": 5, "skipped/no_text": 0})
    assert rules_of(store, "ok") == set()


def test_failing_after_n_failures_in_a_row(store):
    add_run(store, "s", "ok")
    add_run(store, "s", "failed")
    add_run(store, "s", "timed_out")
    assert rules_of(store, "s") == set()
    add_run(store, "s", "failed")
    assert rules_of(store, "s") == {"failing"}
    assert store.consecutive_failures("s") == 3
    add_run(store, "s", "ok")
    assert store.consecutive_failures("s") == 0 and rules_of(store, "s") == set()


def test_silent_compared_with_usual_rate(store):
    for n in range(24):  # one article an hour for a day
        add_article(store, "s", n, NOW - timedelta(hours=48 - n))
    # Last article 25 h ago while one an hour is usual: silent.
    flags = check_source(store, "s", now=NOW)
    assert [f.rule for f in flags] == ["silent"] and "usually one every" in flags[0].message
    # Right after the last article: fine. Too few articles to judge: no verdict.
    assert rules_of(store, "s", now=NOW - timedelta(hours=24)) == set()
    assert rules_of(store, "s", min_baseline=100) == set()
    # A slow outlet (one article a day) is not silent after 25 hours.
    for n in range(12):
        add_article(store, "slow", n, NOW - timedelta(days=13 - n))
    assert rules_of(store, "slow", now=NOW) == set()


def test_rising_share_of_empty_bodies(store):
    for _ in range(6):
        add_run(store, "s", **{"skipped/no_text": 1})
    assert rules_of(store, "s") == set()
    for _ in range(3):  # after a redesign the extractor finds no text in most pages
        add_run(store, "s", **{"skipped/no_text": 7})
    flags = check_source(store, "s", now=NOW)
    assert [f.rule for f in flags] == ["empty_bodies"] and "70%" in flags[0].message
    # Always this bad (a source that was never extractable well) is not a *rising* share.
    for _ in range(10):
        add_run(store, "t", **{"skipped/no_text": 7})
    assert rules_of(store, "t") == set()


def test_rising_share_of_missing_dates(store):
    for n in range(30):
        add_article(store, "s", n, NOW - timedelta(hours=60 - n))
    assert rules_of(store, "s", now=NOW - timedelta(hours=30)) == set()
    for n in range(30, 40):
        add_article(store, "s", n, NOW - timedelta(hours=60 - n), published=None)
    flags = check_source(store, "s", now=NOW - timedelta(hours=20))
    assert [f.rule for f in flags] == ["missing_dates"] and "100%" in flags[0].message


def test_repeated_403_or_429_is_blocking(store):
    add_run(store, "s", **{"errors/http_403": 1, "responses": 40})  # one refusal among many: not blocking
    add_run(store, "s")
    assert rules_of(store, "s") == set()
    add_run(store, "s", "failed", **{"errors/http_429": 4, "responses": 12, "pages_fetched": 0})
    add_run(store, "s", "failed", **{"errors/http_403": 6, "responses": 6, "pages_fetched": 0})
    flags = check_source(store, "s", now=NOW)
    assert {f.rule for f in flags} == {"blocked"}
    assert next(f for f in flags if f.rule == "blocked").severity == "error"
