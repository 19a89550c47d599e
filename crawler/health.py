"""Source health beyond pass/fail, from the run history and the stored articles.

Rules (each gives a `Flag`; thresholds in `HealthRules`):

- failing: the last N finished runs all failed (N = max_failures).
- silent: no new article for much longer than the source's usual gap between articles
  (rate over the last `baseline_days`, at least `min_silence`, needs `min_baseline` articles).
- empty_bodies: a rising share of fetched pages with no article text (a broken extractor after a
  redesign): over the last `recent_runs` runs at least `empty_share`, and clearly above the share
  of the runs before.
- missing_dates: a rising share of new articles without a publication date (same idea, over the
  last `recent_articles` articles against the ones before).
- blocked: 403/429 answers in at least `blocked_runs` of the last `recent_runs` runs, making up
  a large share of the responses (the outlet is blocking the crawler).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from crawler.store import SQLiteStore


@dataclass
class Flag:
    source: str
    rule: str
    message: str
    severity: str = "warning"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class HealthRules:
    max_failures: int = 3
    baseline_days: int = 14
    min_baseline: int = 10
    silence_factor: float = 5.0
    min_silence: timedelta = timedelta(hours=6)
    recent_runs: int = 3
    history_runs: int = 20
    empty_share: float = 0.3
    rise: float = 0.2
    recent_articles: int = 10
    missing_date_share: float = 0.5
    blocked_runs: int = 2
    blocked_share: float = 0.25


def _ts(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _share(runs: list[dict], key: str) -> tuple[float, int]:
    pages = sum(int(r["stats"].get("pages_fetched", 0) or 0) for r in runs)
    hits = sum(int(r["stats"].get(key, 0) or 0) for r in runs)
    return (hits / pages if pages else 0.0), pages


def check_failing(store: SQLiteStore, source: str, rules: HealthRules) -> list[Flag]:
    failures = store.consecutive_failures(source)
    if failures >= rules.max_failures:
        return [Flag(source, "failing", f"{failures} failed runs in a row", "error")]
    return []


def check_silent(store: SQLiteStore, source: str, rules: HealthRules, now: datetime) -> list[Flag]:
    since = (now - timedelta(days=rules.baseline_days)).isoformat(timespec="seconds")
    seen = [_ts(a["first_seen"]) for a in store.known_articles(source, since=since)]
    if len(seen) < rules.min_baseline:
        return []
    span = (now - seen[0]).total_seconds()
    usual_gap = span / len(seen)
    silence = (now - seen[-1]).total_seconds()
    limit = max(rules.silence_factor * usual_gap, rules.min_silence.total_seconds())
    if silence > limit:
        return [Flag(source, "silent", f"no new article for {silence / 3600:.1f} h, usually one every "
                     f"{usual_gap / 3600:.1f} h ({len(seen)} in {rules.baseline_days} days)")]
    return []


def check_empty_bodies(runs: list[dict], source: str, rules: HealthRules) -> list[Flag]:
    recent, before = runs[:rules.recent_runs], runs[rules.recent_runs:]
    share, pages = _share(recent, "skipped/no_text")
    if pages < 3 or share < rules.empty_share:
        return []
    base, base_pages = _share(before, "skipped/no_text")
    if base_pages and share < base + rules.rise:
        return []
    return [Flag(source, "empty_bodies", f"{share:.0%} of the pages of the last {len(recent)} runs had no article "
                 f"text (before: {base:.0%}): extractor broken by a redesign?")]


def check_missing_dates(store: SQLiteStore, source: str, rules: HealthRules) -> list[Flag]:
    articles = store.known_articles(source, last=6 * rules.recent_articles)
    recent = articles[-rules.recent_articles:]
    before = articles[:-rules.recent_articles][-5 * rules.recent_articles:]
    if len(recent) < min(5, rules.recent_articles):
        return []
    share = sum(1 for a in recent if not a["published"]) / len(recent)
    if share < rules.missing_date_share:
        return []
    base = sum(1 for a in before if not a["published"]) / len(before) if before else 0.0
    if before and share < base + rules.rise:
        return []
    return [Flag(source, "missing_dates", f"{share:.0%} of the last {len(recent)} articles have no publication date "
                 f"(before: {base:.0%})")]


def check_blocked(runs: list[dict], source: str, rules: HealthRules) -> list[Flag]:
    recent = runs[:rules.recent_runs]
    blocked_runs, total = 0, 0
    for run in recent:
        stats = run["stats"]
        blocked = int(stats.get("errors/http_403", 0) or 0) + int(stats.get("errors/http_429", 0) or 0)
        responses = max(int(stats.get("responses", 0) or 0), blocked, 1)
        if blocked and blocked / responses >= rules.blocked_share:
            blocked_runs += 1
            total += blocked
    if blocked_runs >= rules.blocked_runs:
        return [Flag(source, "blocked", f"403/429 answers in {blocked_runs} of the last {len(recent)} runs "
                     f"({total} in all): the outlet may be blocking the crawler", "error")]
    return []


def check_source(store: SQLiteStore, source: str, *, max_failures: int | None = None,
                 rules: HealthRules | None = None, now: datetime | None = None) -> list[Flag]:
    """All health flags of one source."""
    rules = rules or HealthRules()
    if max_failures is not None:
        rules = HealthRules(**{**asdict(rules), "max_failures": max_failures})
    now = now or datetime.now(timezone.utc)
    runs = [r for r in store.runs(source=source, last=rules.recent_runs + rules.history_runs)
            if r["status"] != "running"]
    return (check_failing(store, source, rules) + check_silent(store, source, rules, now)
            + check_empty_bodies(runs, source, rules) + check_missing_dates(store, source, rules)
            + check_blocked(runs, source, rules))
