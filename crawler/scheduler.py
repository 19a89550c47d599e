"""Scheduled crawls: `veille schedule`, a foreground APScheduler (3.x) daemon.

Design
------
- One APScheduler job per enabled source (id ``crawl:<source>``), interval or cron trigger with
  jitter, ``max_instances=1`` (a slow crawl never overlaps itself), ``coalesce`` (missed runs
  collapse into one) and a misfire grace time.
- Jobs live in a persistent SQLAlchemy job store (``sqlite:///<data>/scheduler.sqlite3`` by
  default, any SQLAlchemy URL allowed): after a restart a job keeps its next run time; a job that
  became overdue while the daemon was down runs once, at a random point within its jitter.
- Every run is its own process, ``python -m crawler.cli crawl --source ID`` in a new session
  (the Twisted reactor cannot be restarted in one process). The scheduler creates the run row
  first and passes its id (``-s VEILLE_RUN_ID=…``), so a crawl that hangs, crashes or is killed
  is still recorded. At the source's timeout the process group gets SIGTERM, then SIGKILL after
  ``kill_grace``; the run is recorded as ``timed_out``.
- The crawls read a snapshot of the last *valid* sources file, so a broken edit never reaches them.
- Reload on SIGHUP or when the file changes: jobs are added, removed or replaced (only when their
  scheduling fields change, so the next run time of an unchanged source is kept). An invalid file
  is rejected with the ConfigError message and the old schedule keeps running.
- Adaptive polling (as Media Cloud does): after a successful run, when most discovered article
  URLs were new the interval shrinks (x0.67), when most were already known (or the feeds answered
  304) it grows (x1.5), within [min_interval, max_interval]. The interval lives in the store.
- Recrawl: each crawl also fetches known articles whose hot window (Source.recrawl, default 1h,
  6h, 24h after first seen) has passed, with conditional GET; a changed body is a new revision.
- Health (crawler.health): failing, silent, empty_bodies, missing_dates, blocked; checked after
  each run (logged, exported as metrics) and shown by `veille status`.
- The output of the last crawl of each source is in <data>/scheduler/logs/<source>.log; its tail
  is kept with the run (`veille runs --log`).
- SIGTERM/SIGINT: no new runs; running crawls may finish for ``grace`` seconds, then they are
  stopped (SIGTERM, SIGKILL) and recorded as ``killed``; no process is left behind.
- Prometheus metrics (``--metrics-port``): runs by status, pages, articles, errors, last success.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from crawler.alerts import alert_status, deliver_pending
from crawler.config import ConfigError, Source, SourcesFile, load_sources, sources_path
from crawler.store import SQLiteStore, utcnow

log = logging.getLogger("veille.scheduler")

JOB_PREFIX = "crawl:"
STATUSES = ("ok", "failed", "timed_out", "killed")
SHRINK, GROW = 0.67, 1.5
LOG_TAIL_LINES = 40


# --- scheduling arithmetic -----------------------------------------------------------------

def interval_bounds(source: Source) -> tuple[float, float]:
    base = source.interval.total_seconds()
    lo = source.min_interval.total_seconds() if source.min_interval else base / 4
    hi = source.max_interval.total_seconds() if source.max_interval else base * 4
    return lo, hi


def jitter_seconds(source: Source) -> float:
    if source.jitter is not None:
        return source.jitter.total_seconds()
    return min(source.interval.total_seconds() * 0.1, 120.0)


def fingerprint(source: Source) -> str:
    """What a job depends on: changing any of these fields replaces the job."""
    fields = {k: str(getattr(source, k)) for k in ("interval", "cron", "jitter", "min_interval", "max_interval",
                                                   "adaptive")}
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def adapt_interval(current: float, stats: dict, lo: float, hi: float) -> tuple[float, str]:
    """The next polling interval from a run's figures: (seconds, 'shrink' | 'grow' | 'keep')."""
    new = int(stats.get("articles/new", 0))  # discovered and stored (recrawled updates do not count)
    known = int(stats.get("skipped/known", 0))
    polled = new + known
    if polled == 0:  # nothing listed (feeds answered 304, or empty): poll less often
        verdict = "grow"
    elif new / polled > 0.5:
        verdict = "shrink"
    elif new / polled < 0.5:
        verdict = "grow"
    else:
        verdict = "keep"
    factor = {"shrink": SHRINK, "grow": GROW, "keep": 1.0}[verdict]
    return max(lo, min(hi, current * factor)), verdict


def default_jobstore_url(data: Path) -> str:
    return os.environ.get("VEILLE_JOBSTORE") or f"sqlite:///{Path(data).resolve() / 'scheduler.sqlite3'}"


def next_run_times(jobstore_url: str) -> dict[str, datetime]:
    """Next run time of each source's job, read from the job store without starting a scheduler."""
    if jobstore_url.startswith("sqlite:///") and not Path(jobstore_url[len("sqlite:///"):]).exists():
        return {}
    import sqlalchemy as sa

    engine = sa.create_engine(jobstore_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, next_run_time FROM apscheduler_jobs")).fetchall()
    except sa.exc.SQLAlchemyError:
        return {}
    finally:
        engine.dispose()
    return {row[0][len(JOB_PREFIX):]: datetime.fromtimestamp(row[1], timezone.utc)
            for row in rows if row[0].startswith(JOB_PREFIX) and row[1] is not None}


def interval_state(store: SQLiteStore, source_id: str) -> dict:
    return store.get_state(f"schedule/{source_id}", {}) or {}


# --- metrics ----------------------------------------------------------------------------------

class Metrics:
    """Prometheus metrics of the daemon (own registry; served by `serve`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = r = CollectorRegistry()
        self.runs = Counter("veille_runs", "Crawl runs by result", ["source", "status"], registry=r)
        self.pages = Counter("veille_pages_fetched", "Article pages fetched", ["source"], registry=r)
        self.articles = Counter("veille_articles", "Articles stored, by change", ["source", "change"], registry=r)
        self.errors = Counter("veille_errors", "Crawl errors by kind", ["source", "kind"], registry=r)
        self.last_success = Gauge("veille_last_success_timestamp_seconds", "End of the last successful run",
                                  ["source"], registry=r)
        self.last_duration = Gauge("veille_last_run_duration_seconds", "Duration of the last run", ["source"],
                                   registry=r)
        self.interval = Gauge("veille_poll_interval_seconds", "Current polling interval", ["source"], registry=r)
        self.failures = Gauge("veille_consecutive_failures", "Failed runs in a row", ["source"], registry=r)
        self.health = Gauge("veille_source_health_flag", "1 when a health rule flags the source",
                            ["source", "rule"], registry=r)
        self.running = Gauge("veille_running_crawls", "Crawl processes running now", registry=r)
        self.config_ok = Gauge("veille_config_valid", "0 when the last config reload was rejected", registry=r)
        self.config_ok.set(1)
        self._server = None

    def observe_run(self, source: str, status: str, stats: dict, duration: float) -> None:
        self.runs.labels(source, status).inc()
        self.pages.labels(source).inc(int(stats.get("pages_fetched", 0) or 0))
        for change in ("new", "updated", "unchanged"):
            value = int(stats.get(f"articles/{change}", 0) or 0)
            if value:
                self.articles.labels(source, change).inc(value)
        for key, value in stats.items():
            if key.startswith("errors/") and isinstance(value, (int, float)):
                self.errors.labels(source, key[len("errors/"):]).inc(value)
        self.last_duration.labels(source).set(duration)
        if status == "ok":
            self.last_success.labels(source).set(time.time())

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        from prometheus_client import start_http_server

        result = start_http_server(port, addr=addr, registry=self.registry)
        self._server = result[0] if isinstance(result, tuple) else None
        return self._server.server_address[1] if self._server else port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- the daemon ------------------------------------------------------------------------------

@dataclass
class ScheduleOptions:
    data: Path
    sources_file: Path | None = None
    jobstore_url: str | None = None
    crawl_settings: dict[str, str] = field(default_factory=dict)  # forwarded as `-s NAME=VALUE`
    max_concurrent: int = 4
    misfire_grace: float = 600.0
    grace: float = 30.0          # on SIGTERM: running crawls may finish for this long
    kill_grace: float = 10.0     # SIGTERM -> SIGKILL of a crawl being stopped
    watch: float = 5.0           # check the sources file for changes every N s (0: SIGHUP only)
    metrics_port: int | None = None
    metrics_addr: str = "0.0.0.0"
    crawl_log_level: str = "INFO"
    max_failures: int = 3
    alerts_interval: float = 60.0  # send due alert deliveries (retries) every N s
    crawl_cmd: list[str] | None = None  # default: [python, -m, crawler.cli]


@dataclass
class _Running:
    source: str
    run_id: int
    proc: subprocess.Popen
    started: float
    outcome: str | None = None


_DAEMON: "Daemon | None" = None


def run_scheduled(source_id: str, fp: str | None = None) -> None:
    """The job function (referenced by name from the persistent job store)."""
    daemon = _DAEMON
    if daemon is None:
        log.error("job for %s fired with no daemon running", source_id)
        return
    daemon.run_source(source_id)


class DaemonError(Exception):
    pass


class Daemon:
    def __init__(self, options: ScheduleOptions):
        self.opts = options
        self.data = Path(options.data).resolve()
        self.data.mkdir(parents=True, exist_ok=True)
        self.sources_file = Path(options.sources_file or sources_path()).resolve()
        self.jobstore_url = options.jobstore_url or default_jobstore_url(self.data)
        self.state_dir = self.data / "scheduler"
        self.snapshot = self.state_dir / "sources.active.yaml"
        self.logs = self.state_dir / "logs"
        self.store: SQLiteStore | None = None
        self.scheduler = None
        self.config: SourcesFile | None = None
        self.metrics = Metrics()
        self.metrics_port: int | None = None
        self.running: dict[str, _Running] = {}
        self._running_lock = threading.Lock()
        self.stopping = threading.Event()
        self.kill_now = threading.Event()
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.last_reload_error: str | None = None
        self._config_hash: str | None = None
        self._lock_file = None
        self._flags: dict[str, set[str]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Daemon":
        global _DAEMON
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self.config = load_sources(self.sources_file)  # a broken file at start is fatal (ConfigError)
        except ConfigError:
            self._lock_file.close()
            self._lock_file = None
            raise
        self._write_snapshot()
        self.store = SQLiteStore.in_data_dir(self.data)
        self._clean_stale_runs()
        _DAEMON = self
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.jobstore_url), "daemon": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=max(1, self.opts.max_concurrent)),
                       "daemon": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(self.opts.misfire_grace)},
        )  # time zone: the machine's (TZ), for cron sources
        self.scheduler.start(paused=True)
        self.sync_jobs(initial=True)
        # Alerts whose delivery failed are retried from the outbox between crawls too.
        self.scheduler.add_job(self.deliver_alerts, "interval", seconds=self.opts.alerts_interval, id="deliver-alerts",
                               jobstore="daemon", executor="daemon", replace_existing=True)
        for source in self.config.sources:
            self._init_metrics(source.id)
        if self.opts.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.opts.metrics_port, self.opts.metrics_addr)
            log.info("metrics on http://%s:%d/metrics", self.opts.metrics_addr, self.metrics_port)
        self.scheduler.resume()
        self._heartbeat()
        log.info("scheduler started: %d job(s), job store %s", len(self.jobs()), self.jobstore_url)
        return self

    def deliver_alerts(self) -> None:
        counts = deliver_pending(self.store)
        if counts["sent"] or counts["failed"]:
            log.info("alerts: %d delivered, %d failed for good, %d waiting", counts["sent"], counts["failed"],
                     counts["pending"])

    def _take_lock(self) -> None:
        import fcntl

        self._lock_file = open(self.state_dir / "daemon.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise DaemonError(f"another `veille schedule` is running on {self.data}") from None
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _clean_stale_runs(self) -> None:
        """Runs left 'running' by a daemon that died: stop their processes if still there, record them."""
        for run in self.store.running_runs():
            if run["stats"].get("trigger") != "schedule":
                continue  # a manual `veille crawl`, maybe running now
            pid = run["stats"].get("pid")
            if pid and _is_our_crawl(pid, run["id"]):
                log.warning("stopping crawl process %d left by a previous daemon (run %d)", pid, run["id"])
                _stop_group(pid, self.opts.kill_grace)
            self.store.finish_run(run["id"], status="killed",
                                  stats={**run["stats"], "error": "scheduler stopped during the run"})

    def jobs(self) -> list:
        return [j for j in self.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX)]

    def run_forever(self) -> int:
        """Foreground loop: signals, reloads, heartbeat; returns when stopped."""
        def on_stop(signum, frame):
            if self.stop_requested.is_set():
                log.warning("second %s: stopping running crawls now", signal.Signals(signum).name)
                self.kill_now.set()
            log.info("%s: stopping", signal.Signals(signum).name)
            self.stop_requested.set()

        def on_hup(signum, frame):
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        last_watch = last_beat = time.monotonic()
        while not self.stop_requested.wait(0.2):
            now = time.monotonic()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            elif self.opts.watch and now - last_watch >= self.opts.watch:
                last_watch = now
                self.check_config_file()
            if now - last_beat >= 10:
                last_beat = now
                self._heartbeat()
        self.shutdown()
        return 0

    def shutdown(self, grace: float | None = None) -> None:
        global _DAEMON
        grace = self.opts.grace if grace is None else grace
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        deadline = time.monotonic() + grace
        while self.running and time.monotonic() < deadline and not self.kill_now.is_set():
            time.sleep(0.1)
        if self.running:
            log.warning("grace period over: stopping %d running crawl(s)", len(self.running))
        self.kill_now.set()
        deadline = time.monotonic() + self.opts.kill_grace + 10
        while self.running and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.scheduler is not None and self.scheduler.running:
            # APScheduler 3 processes due jobs once more after shutdown() wakes its thread, which
            # would advance (lose) a run that is due now: the stopped scheduler must not look at jobs.
            self.scheduler._process_jobs = lambda: None
            self.scheduler.shutdown(wait=True)
        self.metrics.close()
        if self.store is not None:
            self.store.set_state("scheduler/heartbeat", {"pid": os.getpid(), "at": utcnow(), "stopped": True})
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if _DAEMON is self:
            _DAEMON = None
        log.info("scheduler stopped")

    def _heartbeat(self) -> None:
        self.store.set_state("scheduler/heartbeat", {"pid": os.getpid(), "at": utcnow(), "stopped": False,
                                                     "jobstore": self.jobstore_url,
                                                     "config_error": self.last_reload_error})

    # --- config and jobs -----------------------------------------------------------------------

    def _file_hash(self) -> str | None:
        try:
            return hashlib.sha1(self.sources_file.read_bytes()).hexdigest()
        except OSError:
            return None

    def _write_snapshot(self) -> None:
        tmp = self.snapshot.with_suffix(".tmp")
        shutil.copyfile(self.sources_file, tmp)
        os.replace(tmp, self.snapshot)
        self._config_hash = self._file_hash()

    def check_config_file(self) -> bool | None:
        """Reload when the sources file changed since the last attempt; None when unchanged."""
        if self._file_hash() == self._config_hash:
            return None
        return self.reload()

    def reload(self) -> bool:
        """Read the sources file again; on success update the jobs, else keep the old schedule."""
        attempted = self._file_hash()
        try:
            config = load_sources(self.sources_file)
        except ConfigError as exc:
            self._config_hash = attempted  # do not report the same broken file every few seconds
            self.last_reload_error = str(exc)
            self.metrics.config_ok.set(0)
            log.error("config reload rejected, keeping the current schedule: %s", exc)
            self._heartbeat()
            return False
        self.config = config
        self._write_snapshot()
        self.last_reload_error = None
        self.metrics.config_ok.set(1)
        self.sync_jobs()
        for source in config.sources:
            self._init_metrics(source.id)
        log.info("config reloaded from %s: %d job(s)", self.sources_file, len(self.jobs()))
        self._heartbeat()
        return True

    def _trigger(self, source: Source):
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        jitter = jitter_seconds(source) or None
        if source.cron:  # in the scheduler's time zone (the machine's, or TZ)
            trigger = CronTrigger.from_crontab(source.cron, timezone=self.scheduler.timezone)
            trigger.jitter = int(max(1, jitter)) if jitter else None
            return trigger, jitter
        seconds = self.current_interval(source)
        return IntervalTrigger(seconds=seconds, jitter=jitter and int(max(1, jitter)), timezone=timezone.utc), jitter

    def current_interval(self, source: Source) -> float:
        state = interval_state(self.store, source.id)
        if source.adaptive and state.get("fp") == fingerprint(source) and state.get("interval"):
            lo, hi = interval_bounds(source)
            return max(lo, min(hi, float(state["interval"])))
        return source.interval.total_seconds()

    def sync_jobs(self, initial: bool = False) -> None:
        now = datetime.now(timezone.utc)
        wanted = {s.id: s for s in self.config.sources if s.enabled}
        for job in self.jobs():
            if job.id[len(JOB_PREFIX):] not in wanted:
                log.info("source %s removed or disabled: job removed", job.name)
                self.scheduler.remove_job(job.id)
        existing = {j.id: j for j in self.jobs()}
        for sid, source in wanted.items():
            fp = fingerprint(source)
            job = existing.get(JOB_PREFIX + sid)
            if job is not None and job.kwargs.get("fp") == fp:
                if initial and job.next_run_time and job.next_run_time < now:
                    # Overdue after a restart: one (coalesced) run, spread within the jitter.
                    when = now + timedelta(seconds=random.uniform(0, jitter_seconds(source)))
                    log.info("source %s overdue since %s: one run at %s", sid, job.next_run_time, when)
                    job.modify(next_run_time=when)
                continue
            if job is not None and interval_state(self.store, sid).get("fp") != fp:
                self.store.set_state(f"schedule/{sid}", {})  # scheduling changed: adaptive state reset
            trigger, jitter = self._trigger(source)
            kwargs: dict[str, Any] = dict(trigger=trigger, args=[sid], kwargs={"fp": fp}, id=JOB_PREFIX + sid,
                                          name=sid, replace_existing=True)
            if job is None and not source.cron:  # a new source: first run soon, within its jitter
                kwargs["next_run_time"] = now + timedelta(seconds=random.uniform(0, jitter or 0))
            self.scheduler.add_job(run_scheduled, **kwargs)
            log.info("source %s: job %s (%s)", sid, "added" if job is None else "updated",
                     source.cron or f"every {self.current_interval(source):.0f}s")

    def _init_metrics(self, source_id: str) -> None:
        last = self.store.last_success(source_id)
        if last and last["finished"]:
            self.metrics.last_success.labels(source_id).set(datetime.fromisoformat(last["finished"]).timestamp())
        self.metrics.failures.labels(source_id).set(self.store.consecutive_failures(source_id))
        try:
            source = self.config.get(source_id)
            if not source.cron:
                self.metrics.interval.labels(source_id).set(self.current_interval(source))
        except KeyError:
            pass

    # --- one run ---------------------------------------------------------------------------------

    def crawl_command(self, source_id: str, run_id: int) -> list[str]:
        cmd = list(self.opts.crawl_cmd or [sys.executable, "-m", "crawler.cli"])
        cmd += ["crawl", "--source", source_id, "--sources-file", str(self.snapshot), "--quiet",
                "--log-level", self.opts.crawl_log_level, "-s", f"VEILLE_RUN_ID={run_id}",
                "-s", f"VEILLE_DATA={self.data}"]
        for name, value in self.opts.crawl_settings.items():
            cmd += ["-s", f"{name}={value}"]
        return cmd

    def run_source(self, source_id: str) -> str | None:
        """Run one crawl of a source in its own process and record it; returns the run's status."""
        if self.stopping.is_set():
            return None
        try:
            source = self.config.get(source_id)
        except KeyError:
            log.warning("job for unknown source %s: skipped", source_id)
            return None
        with self._running_lock:
            if source_id in self.running:  # belt and braces: max_instances=1 already prevents it
                log.warning("source %s is still running: skipped", source_id)
                return None
            run_id = self.store.start_run(source_id)
            logfile = self.logs / f"{source_id}.log"
            env = {**os.environ, "VEILLE_DATA": str(self.data), "PYTHONUNBUFFERED": "1"}
            try:
                with open(logfile, "wb") as out:
                    proc = subprocess.Popen(self.crawl_command(source_id, run_id), stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, env=env)
            except OSError as exc:
                log.error("run %d (%s): cannot start the crawl: %s", run_id, source_id, exc)
                self.store.finish_run(run_id, status="failed", stats={"errors/start": 1, "trigger": "schedule"},
                                      log_tail=f"veille schedule: cannot start the crawl: {exc}")
                self.metrics.runs.labels(source_id, "failed").inc()
                return "failed"
            running = _Running(source_id, run_id, proc, time.monotonic())
            self.running[source_id] = running
            self.metrics.running.set(len(self.running))
        timeout = source.timeout.total_seconds()
        self.store.merge_run_stats(run_id, {"pid": proc.pid, "trigger": "schedule", "timeout_s": timeout})
        log.info("run %d: crawling %s (pid %d, timeout %ss)", run_id, source_id, proc.pid, timeout)
        try:
            self._supervise(running, timeout)
            status = self._finalize(running, source, logfile)
        finally:
            with self._running_lock:
                self.running.pop(source_id, None)
                self.metrics.running.set(len(self.running))
        return status

    def _supervise(self, running: _Running, timeout: float) -> None:
        proc = running.proc
        deadline = running.started + timeout
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                running.outcome = "timed_out"
                log.warning("run %d (%s) timed out after %ss: stopping it", running.run_id, running.source, timeout)
            elif self.kill_now.is_set():
                running.outcome = "killed"
                log.warning("run %d (%s): stopping it (scheduler shutdown)", running.run_id, running.source)
            else:
                continue
            _stop_group(proc.pid, self.opts.kill_grace, proc)
            break
        _kill_leftovers(proc.pid)

    def _finalize(self, running: _Running, source: Source, logfile: Path) -> str:
        run = self.store.get_run(running.run_id) or {"status": "running", "stats": {}}
        rc = running.proc.returncode
        stats = dict(run["stats"])
        stats["exit_code"] = rc
        duration = time.monotonic() - running.started
        stats.setdefault("duration_s", round(duration, 2))
        note = None
        if running.outcome == "timed_out":
            status = "timed_out"
            stats["errors/timeout_run"] = 1
            note = f"veille schedule: timed out after {stats.get('timeout_s')}s (SIGTERM, then SIGKILL)"
        elif running.outcome == "killed":
            status = "killed"
            note = "veille schedule: stopped at scheduler shutdown"
        elif run["status"] != "running":
            status = run["status"]  # recorded by the crawl itself (RunRecorder)
        else:
            status = "failed"
            stats["errors/crashed"] = 1
            note = f"veille schedule: crawl process exited with code {rc} without recording its run"
        tail = _tail(logfile, LOG_TAIL_LINES)
        if note:
            tail = f"{tail}\n{note}" if tail else note
        self.store.finish_run(running.run_id, status=status, stats=stats, log_tail=tail or run.get("log_tail"))
        failures = self.store.consecutive_failures(source.id)
        self.metrics.observe_run(source.id, status, stats, duration)
        self.metrics.failures.labels(source.id).set(failures)
        log.info("run %d (%s): %s, %s new, %s updated, %.1fs", running.run_id, source.id, status,
                 stats.get("articles/new", 0), stats.get("articles/updated", 0), duration)
        if failures >= self.opts.max_failures:
            log.error("source %s has failed %d times in a row", source.id, failures)
        if status == "ok" and source.adaptive and not source.cron and not self.stopping.is_set():
            self._adapt(source, stats)
        self._check_health(source.id)
        return status

    def _adapt(self, source: Source, stats: dict) -> None:
        current = self.current_interval(source)
        lo, hi = interval_bounds(source)
        new, verdict = adapt_interval(current, stats, lo, hi)
        self.store.set_state(f"schedule/{source.id}", {"fp": fingerprint(source), "interval": new,
                                                        "verdict": verdict, "at": utcnow()})
        self.metrics.interval.labels(source.id).set(new)
        if abs(new - current) < 0.5:
            return
        from apscheduler.triggers.interval import IntervalTrigger

        jitter = jitter_seconds(source)
        try:
            self.scheduler.reschedule_job(JOB_PREFIX + source.id,
                                          trigger=IntervalTrigger(seconds=new, jitter=jitter and int(max(1, jitter)),
                                                                  timezone=timezone.utc))
            log.info("source %s: interval %.0fs -> %.0fs (%s)", source.id, current, new, verdict)
        except Exception as exc:  # job removed meanwhile, scheduler stopping
            log.debug("could not reschedule %s: %s", source.id, exc)

    def _check_health(self, source_id: str) -> None:
        from crawler.health import check_source

        try:
            flags = check_source(self.store, source_id, max_failures=self.opts.max_failures)
        except Exception:  # health must never break the scheduler
            log.exception("health check of %s failed", source_id)
            return
        rules = {f.rule for f in flags}
        for flag in flags:
            if flag.rule not in self._flags.get(source_id, set()):
                log.warning("source %s: %s: %s", source_id, flag.rule, flag.message)
        for rule in self._flags.get(source_id, set()) | rules:
            self.metrics.health.labels(source_id, rule).set(1 if rule in rules else 0)
        self._flags[source_id] = rules


# --- process control -----------------------------------------------------------------------------

def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stop_group(pgid: int, kill_grace: float, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group of a crawl, SIGKILL it after kill_grace seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + kill_grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None and not _group_alive(pgid):
                return
        elif not _group_alive(pgid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.wait()


def _kill_leftovers(pgid: int) -> None:
    """Whatever the crawl left in its process group (extraction workers…) once it exited."""
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_our_crawl(pid: int, run_id: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"VEILLE_RUN_ID={run_id}".encode() in cmdline


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- status and history (for `veille status` / `veille runs`) --------------------------------------

def source_status(store: SQLiteStore, config: SourcesFile | None, jobstore_url: str,
                  max_failures: int = 3) -> list[dict]:
    """One row per source (configured or seen in the history): last run, result, next run, failures, flags."""
    from crawler.health import check_source

    configured = {s.id: s for s in (config.sources if config else [])}
    ids = list(configured) + [s for s in store.run_sources() if s not in configured]
    nexts = next_run_times(jobstore_url)
    rows = []
    for sid in ids:
        runs = store.runs(source=sid, last=1)
        last = runs[0] if runs else None
        source = configured.get(sid)
        interval = None
        if source is not None and not source.cron:
            state = interval_state(store, sid)
            interval = state.get("interval") if state.get("fp") == fingerprint(source) else None
            interval = interval or source.interval.total_seconds()
        rows.append({
            "source": sid,
            "enabled": bool(source and source.enabled),
            "configured": source is not None,
            "schedule": (source.cron if source and source.cron else interval),
            "last_run": last["started"] if last else None,
            "last_status": last["status"] if last else None,
            "last_new": (last["stats"].get("articles/new", 0) if last else None),
            "last_updated": (last["stats"].get("articles/updated", 0) if last else None),
            "next_run": nexts[sid].isoformat(timespec="seconds") if sid in nexts else None,
            "consecutive_failures": store.consecutive_failures(sid),
            "flags": [f.as_dict() for f in check_source(store, sid, max_failures=max_failures)],
        })
    return rows


def daemon_heartbeat(store: SQLiteStore) -> dict | None:
    return store.get_state("scheduler/heartbeat")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


# --- CLI verbs (wired in crawler.cli) ---------------------------------------------------------------

def _settings_from(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("-s", None, None, f"expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def cli_schedule(args) -> int:
    from crawler.config import data_dir

    configure_logging(args.log_level)
    opts = ScheduleOptions(
        data=data_dir(), sources_file=args.sources_file, jobstore_url=args.jobstore,
        crawl_settings=_settings_from(args.set), max_concurrent=args.max_concurrent,
        misfire_grace=args.misfire_grace, grace=args.grace, kill_grace=args.kill_grace, watch=args.watch,
        metrics_port=args.metrics_port, metrics_addr=args.metrics_addr, crawl_log_level=args.crawl_log_level,
        max_failures=args.max_failures,
    )
    daemon = Daemon(opts)
    try:
        daemon.start()
    except DaemonError as exc:
        print(f"veille: {exc}", file=sys.stderr)
        return 1
    return daemon.run_forever()


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


def _every(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return f"cron {value}"
    seconds = float(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.0f}s"


def cli_status(args, console) -> int:
    from rich.table import Table

    from crawler.config import data_dir

    data = data_dir()
    store = SQLiteStore.in_data_dir(data)
    try:
        config = load_sources(args.sources_file)
        config_error = None
    except ConfigError as exc:
        config, config_error = None, str(exc)
    rows = source_status(store, config, args.jobstore or default_jobstore_url(data), args.max_failures)
    beat = daemon_heartbeat(store)
    alerts = alert_status(store)
    failing = [r["source"] for r in rows if r["consecutive_failures"] >= args.max_failures]
    if args.json:
        print(json.dumps({"sources": rows, "scheduler": beat, "config_error": config_error,
                          "failing": failing, "alerts": alerts}, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"Sources ({data})")
        for column in ("source", "every", "last run", "result", "new", "updated", "next run", "failures", "health"):
            table.add_column(column)
        for r in rows:
            result = r["last_status"] or "-"
            style = {"ok": "green", "failed": "red", "timed_out": "red", "killed": "yellow"}.get(result, "")
            table.add_row(r["source"] + ("" if r["enabled"] else " (off)"), _every(r["schedule"]),
                          _when(r["last_run"]), f"[{style}]{result}[/]" if style else result,
                          str(r["last_new"] if r["last_new"] is not None else ""),
                          str(r["last_updated"] if r["last_updated"] is not None else ""),
                          _when(r["next_run"]), str(r["consecutive_failures"]),
                          "; ".join(f"{f['rule']}: {f['message']}" for f in r["flags"]) or "ok")
        console.print(table)
        if beat:
            state = "stopped" if beat.get("stopped") else f"pid {beat.get('pid')}"
            console.print(f"scheduler: {state}, last seen {_when(beat.get('at'))} UTC")
        if config_error:
            console.print(f"config error: {config_error}", markup=False)
        console.print(_alerts_line(alerts), markup=False)
        if failing:
            console.print(f"failing ({args.max_failures}+ failed runs in a row): {', '.join(failing)}")
    return 1 if failing else 0


def _alerts_line(st: dict) -> str:
    line = (f"alerts: {st['alerts']} issued; deliveries {st['sent']} sent, {st['pending']} pending"
            f" ({st['retrying']} retrying), {st['failed']} failed")
    if st["next_due"]:
        line += f"; next try {datetime.fromtimestamp(st['next_due'], timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    if st["last_error"] and (st["pending"] or st["failed"]):
        line += f"; last error {st['last_error'][:100]}"
    return line


def cli_runs(args, console) -> int:
    from rich.table import Table

    from crawler.config import data_dir

    store = SQLiteStore.in_data_dir(data_dir())
    runs = store.runs(source=args.source, last=args.last)
    if args.json:
        for run in runs:
            print(json.dumps(run if args.log else {k: v for k, v in run.items() if k != "log_tail"},
                             ensure_ascii=False, default=str))
        return 0
    table = Table(title=f"{len(runs)} run(s)")
    for column in ("id", "source", "started", "finished", "status", "pages", "new", "updated", "errors"):
        table.add_column(column)
    for run in runs:
        st = run["stats"]
        errors = ", ".join(f"{k[7:]} {v}" for k, v in sorted(st.items()) if k.startswith("errors/"))
        table.add_row(str(run["id"]), run["source"], _when(run["started"]), _when(run["finished"]), run["status"],
                      str(st.get("pages_fetched", 0)), str(st.get("articles/new", 0)),
                      str(st.get("articles/updated", 0)), errors or "-")
    console.print(table)
    if args.log:
        for run in runs:
            console.rule(f"run {run['id']} ({run['source']}, {run['status']})")
            console.print(run["log_tail"] or "(no log)", markup=False, highlight=False)
    return 0
