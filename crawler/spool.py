"""A disk spool for documents the search cluster could not take, plus a dead-letter file.

Layout of a spool directory (default ``$VEILLE_DATA/spool``)::

    spool.ndjson            append-only; one JSON record per line; fsync'd after every append
    replay-<ns>.ndjson      the spool, rotated (renamed) by a replay before it is sent
    replay-<ns>.ndjson.ack  byte offset of the lines of that file already acknowledged by the cluster
    dead-letter.ndjson      documents the cluster rejected for good (mapping errors), with the reason

A spool record is ``{"v": 1, "kind": "article"|"run", "id": ..., "spooled": iso, "reason": ..., "doc": {...}}``.
A dead-letter record has the same keys plus ``status`` and ``at`` (the reason is the cluster's).

Writers (crawl pipelines, possibly several processes) append under an exclusive ``flock`` on
``.lock``. ``replay`` renames ``spool.ndjson`` under the same lock (so new failures go to a fresh
file while it drains), then sends the rotated files batch by batch; the ack offset is advanced
(and fsync'd) only after a batch was accepted, and a file is deleted only when fully acknowledged.
A crash mid-replay therefore re-sends at most the unacknowledged batches; documents carry their
stable ids, so a re-send overwrites instead of duplicating.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

SPOOL_FILE = "spool.ndjson"
DEAD_LETTER_FILE = "dead-letter.ndjson"
LOCK_FILE = ".lock"
REPLAY_LOCK_FILE = ".replay.lock"
FORMAT_VERSION = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines with one write, then fsync the file (and the directory if it is new)."""
    new = not path.exists()
    data = "".join(line.rstrip("\n") + "\n" for line in lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_dir(path.parent)


@dataclass
class SendResult:
    """What the cluster did with a batch: the records accepted, to retry later, rejected for good."""

    ok: list[dict] = field(default_factory=list)
    retry: list[dict] = field(default_factory=list)
    dead: list[tuple[dict, int | None, str]] = field(default_factory=list)  # (record, status, reason)
    error: str | None = None  # why the retry ones failed (cluster down, 503, ...)


@dataclass
class ReplayReport:
    sent: int = 0
    dead: int = 0
    corrupt: int = 0
    files_done: int = 0
    remaining: int = 0
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.remaining == 0


class SpoolBusy(RuntimeError):
    """Another replay holds the spool."""


class Spool:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / SPOOL_FILE
        self.dead_path = self.dir / DEAD_LETTER_FILE

    # --- locking ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _flock(self, name: str, blocking: bool = True) -> Iterator[None]:
        with open(self.dir / name, "a") as fh:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fh, flags)
            except BlockingIOError:
                raise SpoolBusy(f"another replay is draining {self.dir}") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- writing -----------------------------------------------------------------------------
    @staticmethod
    def record(kind: str, doc: dict, reason: str = "") -> dict:
        return {"v": FORMAT_VERSION, "kind": kind, "id": doc.get("id"), "spooled": _now(), "reason": reason,
                "doc": doc}

    def append(self, records: list[dict], reason: str = "") -> int:
        """Append spool records (``Spool.record(...)`` or ones read back from a spool), fsync'd."""
        if not records:
            return 0
        lines = []
        for rec in records:
            rec = {**rec, "reason": reason or rec.get("reason", "")}
            lines.append(json.dumps(rec, ensure_ascii=False, default=str, separators=(",", ":")))
        with self._flock(LOCK_FILE):
            _append_lines(self.path, lines)
        return len(records)

    def dead_letter(self, entries: list[tuple[dict, int | None, str]]) -> int:
        """Write rejected records with the cluster's status and reason; they are never dropped silently."""
        if not entries:
            return 0
        lines = [json.dumps({**rec, "status": status, "reason": reason, "at": _now()}, ensure_ascii=False,
                            default=str, separators=(",", ":")) for rec, status, reason in entries]
        with self._flock(LOCK_FILE):
            _append_lines(self.dead_path, lines)
        return len(entries)

    # --- reading -----------------------------------------------------------------------------
    def _replay_files(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("replay-*.ndjson"))

    @staticmethod
    def _ack_path(path: Path) -> Path:
        return path.with_name(path.name + ".ack")

    def _acked(self, path: Path) -> int:
        try:
            return int(self._ack_path(path).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _ack(self, path: Path, offset: int) -> None:
        ack = self._ack_path(path)
        tmp = ack.with_name(ack.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(f"{offset}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, ack)
        _fsync_dir(self.dir)

    @staticmethod
    def _count_lines(path: Path, offset: int = 0) -> int:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return sum(1 for line in fh if line.strip())
        except OSError:
            return 0

    def pending(self) -> int:
        """Records waiting in the spool (including rotated files a replay has not finished)."""
        total = self._count_lines(self.path)
        for path in self._replay_files():
            total += self._count_lines(path, self._acked(path))
        return total

    def dead_count(self) -> int:
        return self._count_lines(self.dead_path)

    def records(self) -> Iterator[dict]:
        """Every pending record (for inspection and tests), oldest first."""
        for path in [*self._replay_files(), self.path]:
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                fh.seek(self._acked(path) if path != self.path else 0)
                for line in fh:
                    if line.strip():
                        with contextlib.suppress(ValueError):
                            yield json.loads(line)

    def dead_records(self) -> list[dict]:
        if not self.dead_path.exists():
            return []
        return [json.loads(line) for line in self.dead_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def requeue_dead_letters(self) -> int:
        """Move the dead-letter file back into the spool (after the mapping or the documents were fixed)."""
        with self._flock(LOCK_FILE):
            if not self.dead_path.exists():
                return 0
            lines = [line for line in self.dead_path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if lines:
                _append_lines(self.path, lines)
            self.dead_path.unlink()
            _fsync_dir(self.dir)
            return len(lines)

    # --- replay ------------------------------------------------------------------------------
    def rotate(self) -> Path | None:
        """Rename the live spool file for a replay; new failures go to a fresh spool.ndjson."""
        with self._flock(LOCK_FILE):
            if not self.path.exists() or self.path.stat().st_size == 0:
                return None
            target = self.dir / f"replay-{time.time_ns():020d}.ndjson"
            os.rename(self.path, target)
            _fsync_dir(self.dir)
            return target

    def replay(self, send: Callable[[list[dict]], SendResult], batch_size: int = 500,
               progress: Callable[[ReplayReport], None] | None = None) -> ReplayReport:
        """Send every pending record through ``send`` in batches; stop at the first batch that fails."""
        report = ReplayReport()
        with self._flock(REPLAY_LOCK_FILE, blocking=False):
            self.rotate()
            for path in self._replay_files():
                offset = self._acked(path)
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    while True:
                        batch, corrupt, end = [], [], offset
                        while len(batch) < batch_size:
                            line = fh.readline()
                            if not line:
                                break
                            if not line.endswith(b"\n"):  # a torn last line (crash during an append)
                                corrupt.append(line)
                                end += len(line)
                                break
                            end += len(line)
                            if not line.strip():
                                continue
                            try:
                                batch.append(json.loads(line))
                            except ValueError:
                                corrupt.append(line)
                        if not batch and not corrupt:
                            break
                        result = send(batch) if batch else SendResult()
                        if result.retry:
                            report.error = result.error or f"{len(result.retry)} document(s) not accepted"
                            report.remaining = self.pending()
                            return report
                        dead = list(result.dead)
                        dead += [({"v": FORMAT_VERSION, "kind": "corrupt", "raw": raw.decode("utf-8", "replace")},
                                  None, "corrupt spool line") for raw in corrupt]
                        self.dead_letter(dead)
                        report.sent += len(result.ok)
                        report.dead += len(result.dead)
                        report.corrupt += len(corrupt)
                        offset = end
                        self._ack(path, offset)
                        if progress:
                            progress(report)
                path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    self._ack_path(path).unlink()
                _fsync_dir(self.dir)
                report.files_done += 1
        report.remaining = self.pending()
        return report
