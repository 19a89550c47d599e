"""Shared fixtures: local HTTP sites, crawls run as real `veille crawl` processes, the search node."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from searchnode_fixture import private_search_node, search_node  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
VEILLE = [sys.executable, "-m", "crawler.cli"]
LOCAL_SETTINGS = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False"]


def crawl_args(sources: Path, *extra: str, allow: str = "127.0.0.1") -> list[str]:
    """`veille crawl` arguments for local sites: quiet, their host allowlisted, no politeness delays."""
    allowlist = ["-s", f"VEILLE_ALLOWED_HOSTS={allow}"] if allow else []
    return ["crawl", "--sources-file", str(sources), "--quiet", *allowlist, *LOCAL_SETTINGS, *extra]


def needs_shared(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data folder sits beside the repo)")
    return path


class CrawlResult:
    def __init__(self, proc: subprocess.CompletedProcess, data: Path):
        self.proc, self.data = proc, data
        self.output = proc.stdout + proc.stderr

    @property
    def db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.data / "veille.sqlite3")
        db.row_factory = sqlite3.Row
        return db

    def stats(self, source: str) -> dict:
        row = self.db.execute("SELECT stats FROM crawl_runs WHERE source = ? ORDER BY id DESC LIMIT 1", (source,)).fetchone()
        return json.loads(row["stats"])

    def articles(self, source: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM articles", ()
        if source:
            sql, params = sql + " WHERE source = ?", (source,)
        return [dict(r) for r in self.db.execute(sql, params).fetchall()]


@pytest.fixture
def run_veille(tmp_path):
    """Run the `veille` command in a subprocess with its own data dir."""
    data = tmp_path / "data"

    def run(*args: str, env: dict | None = None, timeout: float = 120, check: bool = True) -> CrawlResult:
        full_env = {**os.environ, "VEILLE_DATA": str(data), "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run([*VEILLE, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
        result = CrawlResult(proc, data)
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"veille {' '.join(args)} exited {proc.returncode}:\n{result.output[-4000:]}")
        return result

    return run


@pytest.fixture
def crawl(run_veille, tmp_path):
    """Crawl a sources YAML text (or file) with `veille crawl`, 127.0.0.1 allowlisted unless told otherwise."""

    def do(sources_yaml: str, *extra: str, allow: str = "127.0.0.1", env: dict | None = None,
           check: bool = True) -> CrawlResult:
        path = tmp_path / "sources.yaml"
        path.write_text(sources_yaml, encoding="utf-8")
        return run_veille(*crawl_args(path, *extra, allow=allow), env=env, check=check)

    return do
