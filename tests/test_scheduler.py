"""`veille schedule`: jobs per source, no overlap, restart, timeouts, reload, shutdown, status, recrawl.

Crawls are real `veille crawl` processes against a local site (tests/crawlsite.py) with
second-scale intervals; the daemon runs in-process (Daemon) except in the end-to-end tests,
which run `veille schedule` itself as a subprocess.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crawler import cli
from crawler.config import load_sources
from crawler.scheduler import (JOB_PREFIX, Daemon, ScheduleOptions, adapt_interval, interval_bounds,
                               next_run_times)
from crawler.store import SQLiteStore
from crawlsite import CRAWL_SETTINGS, NewsSite, processes_with_env, wait_for, write_sources

VEILLE = [sys.executable, "-m", "crawler.cli"]
FAIL_CMD = [sys.executable, "-c", "import sys; sys.exit(1)"]  # a crawl that fails at once (args ignored)


@pytest.fixture
def site():
    s = NewsSite(articles=3).start()
    yield s
    s.stop()


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return data, tmp_path / "sources.yaml"


@pytest.fixture
def make_daemon(env):
    data, sources = env
    daemons = []

    def make(**options) -> Daemon:
        opts = ScheduleOptions(data=data, sources_file=sources, crawl_settings=dict(CRAWL_SETTINGS),
                               grace=2, kill_grace=2, watch=0, **options)
        daemon = Daemon(opts).start()
        daemons.append(daemon)
        return daemon

    yield make
    for daemon in daemons:
        if not daemon.stopping.is_set():
            daemon.shutdown(grace=0)


def runs(data: Path, source: str | None = None, status: str | None = None) -> list[dict]:
    store = SQLiteStore.in_data_dir(data)
    try:
        found = store.runs(source=source, last=1000)
    finally:
        store.close()
    return [r for r in reversed(found) if status is None or r["status"] == status]


def job_times(daemon: Daemon) -> dict[str, datetime]:
    return {j.id[len(JOB_PREFIX):]: j.next_run_time for j in daemon.jobs()}


# --- unit: adaptive interval ------------------------------------------------------------------

def test_adaptive_interval_shrinks_when_mostly_new_and_grows_when_mostly_seen():
    assert adapt_interval(600, {"articles/new": 9, "skipped/known": 1}, 150, 2400) == (pytest.approx(402), "shrink")
    assert adapt_interval(600, {"articles/new": 1, "skipped/known": 9}, 150, 2400) == (900, "grow")
    assert adapt_interval(600, {"not_modified": 1}, 150, 2400) == (900, "grow")  # feed answered 304
    assert adapt_interval(600, {"articles/new": 5, "skipped/known": 5}, 150, 2400) == (600, "keep")
    assert adapt_interval(2000, {"skipped/known": 9}, 150, 2400)[0] == 2400  # bounded
    assert adapt_interval(160, {"articles/new": 9}, 150, 2400)[0] == 150


def test_source_scheduling_fields_and_bounds(tmp_path):
    path = write_sources(tmp_path / "s.yaml", [
        {"id": "a", "name": "A", "feeds": ["http://x.invalid/f"], "interval": "20m"},
        {"id": "b", "name": "B", "feeds": ["http://x.invalid/f"], "interval": "1h", "min_interval": "10m",
         "max_interval": "6h", "jitter": "30s", "recrawl": ["2h"], "cron": "*/15 * * * *"},
    ])
    a, b = load_sources(path).sources
    assert interval_bounds(a) == (300, 4800) and [r.total_seconds() for r in a.recrawl] == [3600, 21600, 86400]
    assert interval_bounds(b) == (600, 21600) and b.jitter.total_seconds() == 30
    bad = write_sources(tmp_path / "bad.yaml", [{"id": "c", "name": "C", "feeds": ["http://x.invalid/f"],
                                                  "cron": "every monday"}])
    with pytest.raises(Exception, match=r"bad\.yaml:\d+ \[sources\.0\.cron\].*bad cron"):
        load_sources(bad)


# --- daemon with real crawl processes ------------------------------------------------------------

def test_jobs_fire_per_source(site, env, make_daemon):
    data, sources = env
    other = NewsSite(articles=2).start()
    try:
        write_sources(sources, [site.source_entry("one", interval="2s", jitter="0s"),
                                other.source_entry("two", interval="2s", jitter="0s")])
        daemon = make_daemon()
        assert set(job_times(daemon)) == {"one", "two"}
        wait_for(lambda: len(runs(data, "one", "ok")) >= 2 and len(runs(data, "two", "ok")) >= 2, 40,
                 message="two ok runs of each source")
        daemon.shutdown(grace=10)
    finally:
        other.stop()
    first = runs(data, "one")[0]
    assert first["stats"]["articles/new"] == 3 and first["stats"]["pages_fetched"] == 3
    assert runs(data, "two")[0]["stats"]["articles/new"] == 2
    assert all(r["status"] == "ok" for r in runs(data))
    # Adaptive polling: the first run (all new) shrank the interval, later runs (all seen) grow it back.
    store = SQLiteStore.in_data_dir(data)
    assert store.get_state("schedule/one")["verdict"] in {"shrink", "grow"}
    assert runs(data, "one")[1]["stats"].get("articles/new", 0) == 0  # nothing fetched twice


def test_slow_source_never_runs_twice_at_once(site, env, make_daemon):
    data, sources = env
    site.feed_delay = 1.5  # each crawl takes longer than the 1 s interval
    write_sources(sources, [site.source_entry("slow", interval="1s", jitter="0s", adaptive=False)])
    make_daemon()
    wait_for(lambda: len(runs(data, "slow", "ok")) >= 3, 45, message="three runs of the slow source")
    assert site.max_active == 1
    done = [r for r in runs(data, "slow") if r["finished"]]
    for before, after in zip(done, done[1:]):
        assert after["started"] >= before["finished"]


def test_restart_keeps_schedule_and_history(site, env, make_daemon):
    data, sources = env
    write_sources(sources, [site.source_entry("s", interval="1h", jitter="0s")])
    daemon = make_daemon()
    wait_for(lambda: runs(data, "s", "ok"), 30, message="the first run")
    wait_for(lambda: not daemon.running, 10)
    planned = job_times(daemon)["s"]
    assert planned > datetime.now(timezone.utc) + timedelta(minutes=30)
    daemon.shutdown(grace=5)

    daemon = make_daemon()  # same data dir, same job store
    assert job_times(daemon)["s"] == planned  # the schedule continues
    assert next_run_times(daemon.jobstore_url)["s"] == planned
    time.sleep(2)
    assert len(runs(data, "s")) == 1  # no catch-up crawl, history kept

    # Down for longer than the interval: exactly one (coalesced) catch-up run, not a burst.
    daemon.scheduler.pause()  # (else the live scheduler would handle the missed run itself)
    daemon.scheduler.modify_job(JOB_PREFIX + "s", next_run_time=datetime.now(timezone.utc) - timedelta(hours=5))
    time.sleep(0.5)  # let the paused scheduler thread see the wakeup before it is stopped
    daemon.shutdown(grace=0)
    daemon = make_daemon()
    wait_for(lambda: len(runs(data, "s", "ok")) == 2, 30, message="the catch-up run")
    time.sleep(2)
    assert len(runs(data, "s")) == 2
    assert job_times(daemon)["s"] > datetime.now(timezone.utc) + timedelta(minutes=30)


def test_hung_crawl_is_killed_at_its_timeout_and_recorded(site, env, make_daemon):
    data, sources = env
    site.feed_delay = 60  # the outlet never answers in time
    write_sources(sources, [site.source_entry("hung", interval="1h", jitter="1h", timeout="3s")])
    daemon = make_daemon()
    started = time.monotonic()
    assert daemon.run_source("hung") == "timed_out"
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 3 + 2 + 5  # timeout, then SIGTERM -> SIGKILL within kill_grace
    (run,) = runs(data, "hung")
    assert run["status"] == "timed_out" and run["finished"]
    assert run["stats"]["timeout_s"] == 3 and run["stats"]["errors/timeout_run"] == 1
    assert "timed out after 3.0s" in run["log_tail"]
    assert not processes_with_env("VEILLE_DATA", str(data.resolve()))
    assert SQLiteStore.in_data_dir(data).consecutive_failures("hung") == 1


def test_config_reload_adds_changes_removes_jobs_and_rejects_broken_config(env, make_daemon):
    data, sources = env
    feed = "http://127.0.0.1:9/feed.xml"
    a = {"id": "a", "name": "A", "feeds": [feed], "interval": "1h", "jitter": "1h"}
    write_sources(sources, [a])
    daemon = make_daemon(crawl_cmd=FAIL_CMD)
    before = job_times(daemon)
    assert set(before) == {"a"}
    snapshot = daemon.snapshot.read_text()

    sources.write_text("sources:\n  - id: a\n    name: A\n    feeds: [" + feed + "]\n    interval: soon\n")
    assert daemon.check_config_file() is False  # rejected, with the named error
    assert re.search(r"sources\.yaml:5 \[sources\.0\.interval\]: .*not a duration", daemon.last_reload_error)
    assert job_times(daemon) == before  # the old schedule keeps running
    assert daemon.snapshot.read_text() == snapshot  # crawls still read the last valid config
    assert daemon.check_config_file() is None  # the same broken file is not reported again

    write_sources(sources, [a, {**a, "id": "b", "name": "B"}])
    assert daemon.check_config_file() is True and daemon.last_reload_error is None
    after = job_times(daemon)
    assert set(after) == {"a", "b"} and after["a"] == before["a"]  # unchanged source keeps its next run

    write_sources(sources, [{**a, "interval": "2h"}])
    assert daemon.reload()
    assert set(job_times(daemon)) == {"a"}  # b removed
    assert "2:00:00" in str(daemon.scheduler.get_job(JOB_PREFIX + "a").trigger)

    write_sources(sources, [{**a, "interval": "2h", "enabled": False},
                            {**a, "id": "c", "name": "C", "cron": "30 6 * * *", "jitter": "5m"}])
    assert daemon.reload() and set(job_times(daemon)) == {"c"}  # a disabled, c on a cron schedule
    trigger = daemon.scheduler.get_job(JOB_PREFIX + "c").trigger
    assert type(trigger).__name__ == "CronTrigger" and trigger.jitter == 300
    when = job_times(daemon)["c"].astimezone(trigger.timezone)
    assert 0 <= (when - when.replace(hour=6, minute=30, second=0, microsecond=0)).total_seconds() <= 300


def test_status_exits_nonzero_after_repeated_failures(env, make_daemon, monkeypatch, capsys):
    data, sources = env
    monkeypatch.setenv("VEILLE_DATA", str(data))
    write_sources(sources, [{"id": "bad", "name": "Bad", "feeds": ["http://127.0.0.1:9/feed.xml"],
                             "interval": "1h", "jitter": "1h"}])
    daemon = make_daemon(crawl_cmd=FAIL_CMD)
    status = lambda: cli.main(["status", "--sources-file", str(sources), "--max-failures", "3"])  # noqa: E731
    assert status() == 0
    for expected in (0, 0, 1):
        assert daemon.run_source("bad") == "failed"
        assert status() == expected
    out = capsys.readouterr().out
    assert "failing (3+ failed runs in a row): bad" in out
    (run,) = runs(data, "bad")[-1:]
    assert run["stats"]["exit_code"] == 1 and "without recording its run" in run["log_tail"]
    assert cli.main(["runs", "--source", "bad", "--last", "2", "--json"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and '"status": "failed"' in lines[0]
    assert cli.main(["status", "--sources-file", str(sources), "--max-failures", "4"]) == 0


def test_recrawl_in_hot_window_with_conditional_get(site, env):
    data, sources = env
    write_sources(sources, [site.source_entry("s", recrawl=["1h", "6h"])])
    crawl = VEILLE + ["--data", str(data), "crawl", "--source", "s", "--sources-file", str(sources), "--quiet",
                      "--log-level", "WARNING"] + [a for k, v in CRAWL_SETTINGS.items() for a in ("-s", f"{k}={v}")]
    subprocess.run(crawl, check=True, capture_output=True, timeout=60)
    store = SQLiteStore.in_data_dir(data)
    assert store.count_articles() == 3
    # Two hours later (time moved back in the store rather than waited for): the 1 h window has passed.
    earlier = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(timespec="seconds")
    store.db.execute("UPDATE seen_urls SET first_seen = ?, last_fetched = ? WHERE kind = 'article'", (earlier, earlier))
    assert len(store.recrawl_due("s", [3600, 21600])) == 3
    site.set_article(1, "Mise à jour : le budget a finalement été rejeté après une suspension de séance.")
    site.server.clear_requests()
    subprocess.run(crawl, check=True, capture_output=True, timeout=60)
    article_id = store.known_articles("s")[0]["id"]
    changed = [a for a in store.articles(source="s") if a["revision"] == 2]
    assert len(changed) == 1 and "rejeté" in changed[0]["body"]
    assert len(store.revisions(changed[0]["id"])) == 1  # the old body kept as revision 1
    assert article_id
    conditional = [r for r in site.server.requests if r.path.startswith("/a/") and r.header("If-None-Match")]
    assert len(conditional) == 3  # every recrawl was a conditional GET
    last = store.runs(source="s", last=1)[0]
    assert last["stats"]["recrawl/requested"] == 3 and last["stats"]["recrawl/not_modified"] == 2
    assert last["stats"]["articles/updated"] == 1
    assert store.recrawl_due("s", [3600, 21600]) == []  # done for this window


# --- end to end: `veille schedule` as a process -----------------------------------------------------

def _schedule(data: Path, sources: Path, *extra: str, log: Path) -> subprocess.Popen:
    cmd = VEILLE + ["--data", str(data), "schedule", "--sources-file", str(sources), "--grace", "1",
                    "--kill-grace", "2", *extra] + [a for k, v in CRAWL_SETTINGS.items() for a in ("-s", f"{k}={v}")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))


@pytest.mark.slow
def test_e2e_schedule_reload_metrics_status_and_sigterm(site, env, tmp_path):
    data, sources = env
    log = tmp_path / "schedule.log"
    other = NewsSite(articles=2).start()
    write_sources(sources, [site.source_entry("a", interval="2s", jitter="0s")])
    proc = _schedule(data, sources, "--watch", "0", "--metrics-port", "0", "--metrics-addr", "127.0.0.1", log=log)
    try:
        wait_for(lambda: runs(data, "a", "ok"), 40, message="a run of source a")
        port = int(re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text()).group(1))

        def scrape():
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return text if re.search(r'veille_runs_total\{source="a",status="ok"\} [1-9]', text) else None

        metrics = wait_for(scrape, 10, message="the run in the metrics")
        assert re.search(r'veille_articles_total\{change="new",source="a"\} 3\.0', metrics)
        assert re.search(r'veille_last_success_timestamp_seconds\{source="a"\} 1\.\d+e\+09', metrics)

        # A config change (SIGHUP) adds a source's job.
        write_sources(sources, [site.source_entry("a", interval="2s", jitter="0s"),
                                other.source_entry("b", interval="2s", jitter="0s")])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: runs(data, "b", "ok"), 40, message="a run of the added source b")

        # A broken change is rejected with the named error; both jobs keep running.
        sources.write_text(sources.read_text().replace("interval: 2s", "interval: bientôt", 1))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload rejected" in log.read_text(), 10, message="the rejection")
        assert re.search(r"sources\.yaml:\d+ \[sources\.0\.interval\]", log.read_text())
        count_a, count_b = len(runs(data, "a")), len(runs(data, "b"))
        wait_for(lambda: len(runs(data, "a", "ok")) > count_a and len(runs(data, "b", "ok")) > count_b, 40,
                 message="runs after the rejected reload")
        status = subprocess.run(VEILLE + ["--data", str(data), "status", "--sources-file", str(sources)],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr

        # SIGTERM while a crawl hangs: it is stopped after the grace period, nothing is left behind.
        site.feed_delay = 60
        wait_for(lambda: any(r["status"] == "running" and r["source"] == "a" and r["stats"].get("pid")
                             for r in runs(data, "a")), 20, message="a hung crawl")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        other.stop()
    assert not processes_with_env("VEILLE_DATA", str(data.resolve()))
    statuses = {r["status"] for r in runs(data)}
    assert "running" not in statuses and "killed" in statuses
    assert "scheduler stopped" in log.read_text()


def test_start_stops_and_records_crawls_left_by_a_dead_daemon(env, make_daemon):
    data, sources = env
    write_sources(sources, [{"id": "s", "name": "S", "feeds": ["http://127.0.0.1:9/f"], "interval": "1h",
                             "jitter": "1h"}])
    store = SQLiteStore.in_data_dir(data)
    run_id = store.start_run("s")
    manual = store.start_run("s")  # a `veille crawl` started by hand: not the scheduler's business
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"VEILLE_RUN_ID={run_id}"],
                              start_new_session=True)
    store.merge_run_stats(run_id, {"pid": orphan.pid, "trigger": "schedule"})
    wait_for(lambda: b"VEILLE_RUN_ID" in Path(f"/proc/{orphan.pid}/cmdline").read_bytes(), 5)  # exec done
    make_daemon(crawl_cmd=FAIL_CMD)
    assert orphan.wait(timeout=10) == -signal.SIGTERM
    assert store.get_run(run_id)["status"] == "killed"
    assert store.get_run(manual)["status"] == "running"


def test_daemon_delivers_waiting_alerts_between_crawls(env, make_daemon):
    from crawler.mirror.server import Route, SiteServer
    from crawler.notify import Outbox
    from crawler.topics import Target

    data, sources = env
    write_sources(sources, [{"id": "s", "name": "S", "feeds": ["http://127.0.0.1:9/f"], "interval": "1h",
                             "jitter": "1h"}])
    with SiteServer({"/hook": Route(status=200, body="ok")}) as receiver:
        store = SQLiteStore.in_data_dir(data)
        outbox = Outbox(store.path)
        alert = {"alert_id": "a1", "topic_id": "t", "topic_name": "T", "cluster_id": "S1", "kind": "new",
                 "title": "Grève", "url": "http://x/1", "outlets": ["A"], "articles": [], "created": "2026-11-26"}
        outbox.enqueue(alert, Target(type="webhook", url=receiver.url("/hook"), retries=0, name="hook"))
        assert outbox.pending() == 1
        make_daemon(alerts_interval=0.5)
        wait_for(lambda: receiver.requests_for("/hook"), 15)
        assert len(receiver.requests_for("/hook")) == 1
        wait_for(lambda: Outbox(store.path).pending() == 0, 5)
