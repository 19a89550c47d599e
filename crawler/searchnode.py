"""A real, local OpenSearch node for Veille's integration tests.

The node is an embedded OpenSearch 2.19 server assembled from Maven Central
artifacts (server + netty4, analysis-common, percolator, mapper-extras, reindex,
painless modules) and started by a tiny Java launcher in ``tests/searchnode``.
No distribution tarball, no Docker.

Library use::

    node = SearchNode(data_dir="/tmp/x")      # port=0 -> ephemeral port
    url = node.start(timeout=120)             # "http://127.0.0.1:PORT"
    node.kill()                               # SIGKILL (simulate a crash)
    node.restart()                            # same port, same data dir
    node.stop()                               # SIGTERM, then SIGKILL

Command line (for ``.ci/run``)::

    python -m crawler.searchnode fetch                       # mvn resolve + compile once
    URL=$(python -m crawler.searchnode start --port 9250 --data /tmp/veille-node)
    python -m crawler.searchnode status --data /tmp/veille-node
    python -m crawler.searchnode stop --data /tmp/veille-node

Environment knobs: ``VEILLE_SEARCHNODE_HEAP`` (default ``512m``),
``VEILLE_SEARCHNODE_PROJECT`` (Maven project dir, default ``tests/searchnode``),
``JAVA`` / ``MVN`` (executables).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "ENGINE",
    "ENGINE_VERSION",
    "SearchNode",
    "SearchNodeError",
    "fetch",
    "java_and_maven_available",
    "missing_tools",
    "shared_node",
]

ENGINE = "opensearch"
ENGINE_VERSION = "2.19.6"
LAUNCHER_CLASS = "veille.searchnode.Launcher"
READY_MARKER = "VEILLE_SEARCHNODE_READY"
FAILED_MARKER = "VEILLE_SEARCHNODE_FAILED"

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR = Path(os.environ.get("VEILLE_SEARCHNODE_PROJECT", REPO_ROOT / "tests" / "searchnode"))

PID_FILE = "searchnode.pid"
URL_FILE = "searchnode.url"
LOG_FILE = "searchnode.log"

JVM_OPTS = [
    "-XX:+UseSerialGC",
    "-Xss1m",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Djna.nosys=true",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Djava.locale.providers=SPI,COMPAT",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:HeapDumpPath=/dev/null",
]


class SearchNodeError(RuntimeError):
    """The node could not be built, started or stopped."""


def _log(msg: str) -> None:
    print(f"[searchnode] {msg}", file=sys.stderr, flush=True)


def _java() -> str | None:
    return os.environ.get("JAVA") or shutil.which("java")


def _mvn() -> str | None:
    return os.environ.get("MVN") or shutil.which("mvn")


def missing_tools() -> list[str]:
    """Names of the tools (java, mvn) that are not on PATH."""
    out = []
    if not _java():
        out.append("java")
    if not _mvn():
        out.append("mvn")
    return out


def java_and_maven_available() -> bool:
    return not missing_tools()


# --------------------------------------------------------------------------- build


def _classpath_file() -> Path:
    return PROJECT_DIR / "target" / "classpath.txt"


def _launcher_class_file() -> Path:
    return PROJECT_DIR / "target" / "classes" / "veille" / "searchnode" / "Launcher.class"


def _stamp_file() -> Path:
    return PROJECT_DIR / "target" / ".fetch.stamp"


def _build_is_fresh() -> bool:
    cp, cls, stamp = _classpath_file(), _launcher_class_file(), _stamp_file()
    if not (cp.exists() and cls.exists() and stamp.exists()):
        return False
    newest_src = max(
        [(PROJECT_DIR / "pom.xml").stat().st_mtime]
        + [p.stat().st_mtime for p in (PROJECT_DIR / "src").rglob("*") if p.is_file()]
    )
    if newest_src > stamp.stat().st_mtime:
        return False
    jars = [j for j in cp.read_text().strip().split(os.pathsep) if j]
    return bool(jars) and all(os.path.exists(j) for j in jars)


def fetch(force: bool = False, quiet: bool = True) -> str:
    """Resolve the Maven artifacts into ~/.m2, compile the launcher, return the classpath.

    Tries Maven offline first (fast when ~/.m2 is warm) and falls back to online.
    A no-op when the build is already up to date.
    """
    if missing_tools():
        raise SearchNodeError(f"cannot build the search node: missing {', '.join(missing_tools())}")
    lock_path = PROJECT_DIR / "target" / ".fetch.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        if force or not _build_is_fresh():
            goals = [
                "compile",
                "dependency:build-classpath",
                f"-Dmdep.outputFile={_classpath_file()}",
            ]
            base = [_mvn(), "-B"] + (["-q"] if quiet else [])
            t0 = time.monotonic()
            res = subprocess.run(base + ["-o"] + goals, cwd=PROJECT_DIR, capture_output=True, text=True)
            if res.returncode != 0:
                _log("offline Maven build failed; resolving artifacts online (first run)")
                res = subprocess.run(base + goals, cwd=PROJECT_DIR, capture_output=True, text=True)
            if res.returncode != 0:
                tail = "\n".join((res.stdout + res.stderr).splitlines()[-40:])
                raise SearchNodeError(f"Maven build of {PROJECT_DIR} failed:\n{tail}")
            _stamp_file().write_text(f"{time.time()}\n")
            _log(f"built launcher + classpath in {time.monotonic() - t0:.1f}s")
    return _classpath_file().read_text().strip()


# --------------------------------------------------------------------------- HTTP


def _http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read().decode("utf-8"))


def health(url: str, timeout: float = 5.0) -> dict | None:
    """``_cluster/health`` of the node at ``url``, or None if it does not answer."""
    try:
        return _http_json(url.rstrip("/") + "/_cluster/health", timeout=timeout)
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _pid_is_launcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return LAUNCHER_CLASS.encode() in fh.read()
    except OSError:
        return False


def _set_pdeathsig() -> None:  # runs in the child before exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover
        pass


# --------------------------------------------------------------------------- node


_RUNNING: set["SearchNode"] = set()


@atexit.register
def _stop_all() -> None:
    for node in list(_RUNNING):
        with contextlib.suppress(Exception):
            node.stop()


class SearchNode:
    """One local OpenSearch node process.

    ``port=0`` picks a free port at first start; :meth:`restart` then reuses it.
    ``data_dir`` holds the index data, the log (``searchnode.log``), the pid and
    url files; a temporary directory is created when it is not given.
    ``die_with_parent`` kills the JVM if the Python process dies (Linux), so a
    crashed test run leaves no orphan JVM; the CLI turns it off.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        port: int = 0,
        heap: str | None = None,
        log_path: str | os.PathLike | None = None,
        cluster_name: str = "veille-test",
        die_with_parent: bool = True,
    ):
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="veille-searchnode-")
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.heap = heap or os.environ.get("VEILLE_SEARCHNODE_HEAP", "512m")
        self.log_path = Path(log_path) if log_path else self.data_dir / LOG_FILE
        self.cluster_name = cluster_name
        self.die_with_parent = die_with_parent
        self.url: str | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self.external = False

    # -- an already running node (e.g. provided by .ci/run) -------------------
    @classmethod
    def external_node(cls, url: str) -> "SearchNode":
        """A handle on a node this process did not start: start/stop/kill are refused."""
        node = cls.__new__(cls)
        node.data_dir = None
        node.port = int(url.rstrip("/").rsplit(":", 1)[1]) if url.count(":") >= 2 else 0
        node.heap = None
        node.log_path = None
        node.cluster_name = None
        node.die_with_parent = False
        node.url = url.rstrip("/")
        node.startup_seconds = None
        node._proc = None
        node.external = True
        return node

    def __repr__(self) -> str:
        return f"SearchNode(url={self.url!r}, data_dir={str(self.data_dir)!r}, pid={self.pid})"

    def __str__(self) -> str:
        return self.url or ""

    def __enter__(self) -> "SearchNode":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        if self.external:
            return health(self.url) is not None
        return self._proc is not None and self._proc.poll() is None

    def _refuse_external(self, what: str) -> None:
        if self.external:
            raise SearchNodeError(f"cannot {what} the external node at {self.url}")

    def command(self, classpath: str) -> list[str]:
        cp = os.pathsep.join([str(PROJECT_DIR / "target" / "classes"), classpath])
        return [
            _java(),
            f"-Xms{min_heap(self.heap)}",
            f"-Xmx{self.heap}",
            *JVM_OPTS,
            f"-Djava.io.tmpdir={self.data_dir / 'tmp'}",
            "-cp",
            cp,
            LAUNCHER_CLASS,
            "--data",
            str(self.data_dir),
            "--http-port",
            str(self.port),
            "--transport-port",
            "0",
            "--cluster-name",
            self.cluster_name,
            "--port-file",
            str(self.data_dir / URL_FILE),
        ]

    def start(self, timeout: float = 120.0) -> str:
        """Start the node and wait until it serves HTTP with a yellow/green cluster."""
        self._refuse_external("start")
        if self.running:
            return self.url
        classpath = fetch()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "tmp").mkdir(exist_ok=True)
        url_file = self.data_dir / URL_FILE
        with contextlib.suppress(FileNotFoundError):
            url_file.unlink()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n==== searchnode start {time.strftime('%Y-%m-%dT%H:%M:%S')} port={self.port}\n".encode())
        log.flush()
        t0 = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command(classpath),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if self.die_with_parent else None,
            )
        finally:
            log.close()
        _RUNNING.add(self)
        (self.data_dir / PID_FILE).write_text(f"{self._proc.pid}\n")

        deadline = t0 + timeout
        url = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"search node exited with code {self._proc.returncode} during start-up")
            if url is None and url_file.exists():
                text = url_file.read_text().strip()
                url = text or None
            if url is not None:
                h = health(url, timeout=2.0)
                if h and h.get("status") in ("yellow", "green"):
                    self.url = url
                    self.port = int(url.rsplit(":", 1)[1])
                    self.startup_seconds = time.monotonic() - t0
                    return url
            time.sleep(0.2)
        self._hard_kill()
        self._fail(f"search node did not become healthy within {timeout:.0f}s")
        raise AssertionError("unreachable")

    def _fail(self, msg: str) -> None:
        _RUNNING.discard(self)
        tail = _tail(self.log_path, lines=400).splitlines()
        cause = [line for line in tail if line.startswith(FAILED_MARKER) or line.startswith("Caused by:")]
        summary = ("\n" + "\n".join(cause[-3:])) if cause else ""
        raise SearchNodeError(
            f"{msg}{summary}\nlog {self.log_path}, last lines:\n" + "\n".join(tail[-30:])
        )

    def _hard_kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait(timeout=30)

    def _cleanup_files(self) -> None:
        for name in (PID_FILE, URL_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / name).unlink()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (clean close of the node), then SIGKILL after ``timeout`` seconds."""
        if self.external:
            return  # not ours to stop
        if self._proc is not None:
            if self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _log(f"node pid {self._proc.pid} ignored SIGTERM for {timeout}s: SIGKILL")
                    self._hard_kill()
            self._cleanup_files()
        _RUNNING.discard(self)

    def kill(self) -> None:
        """SIGKILL the JVM at once (the 'search node dies mid-crawl' case)."""
        self._refuse_external("kill")
        self._hard_kill()
        self._cleanup_files()
        _RUNNING.discard(self)

    def restart(self, timeout: float = 120.0) -> str:
        """Stop (if running) and start again on the same port and data dir."""
        self._refuse_external("restart")
        self.stop()
        # port is now fixed to the one picked at first start
        return self.start(timeout=timeout)

    def cleanup(self) -> None:
        """Stop and delete the data dir."""
        self.stop()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def min_heap(heap: str) -> str:
    """-Xms: half of -Xmx (at least 128m) so a small node starts fast."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    try:
        mb = float(heap[:-1]) * units[heap[-1].lower()]
    except (KeyError, ValueError):
        return heap
    return f"{max(128, int(mb // 2))}m"


_SHARED: SearchNode | None = None


def shared_node(data_dir: str | os.PathLike | None = None, timeout: float = 180.0) -> SearchNode:
    """One node per Python process (a pytest session): started on first call.

    If ``VEILLE_TEST_SEARCH_URL`` is set, returns an external handle on that node.
    """
    global _SHARED
    url = os.environ.get("VEILLE_TEST_SEARCH_URL")
    if url:
        return SearchNode.external_node(url)
    if _SHARED is None or not _SHARED.running:
        node = _SHARED or SearchNode(data_dir=data_dir)
        node.start(timeout=timeout)
        _SHARED = node
    return _SHARED


# --------------------------------------------------------------------------- CLI


def _read_pid(data_dir: Path, pid_file: Path | None) -> int | None:
    path = pid_file or data_dir / PID_FILE
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cli_start(args) -> int:
    data_dir = Path(args.data).resolve()
    old = _read_pid(data_dir, args.pid_file)
    if old and _pid_alive(old) and _pid_is_launcher(old):
        url_file = data_dir / URL_FILE
        url = url_file.read_text().strip() if url_file.exists() else None
        if url and health(url):
            print(url)
            return 0
        raise SearchNodeError(f"a search node (pid {old}) already runs on {data_dir} but is not healthy")
    node = SearchNode(data_dir=data_dir, port=args.port, heap=args.heap, die_with_parent=False,
                      log_path=args.log)
    url = node.start(timeout=args.timeout)
    if args.pid_file:
        Path(args.pid_file).write_text(f"{node.pid}\n")
    _RUNNING.discard(node)  # keep it running after this process exits
    node._proc = None
    _log(f"{ENGINE} {ENGINE_VERSION} up at {url} (pid {_read_pid(data_dir, args.pid_file)}, "
         f"{node.startup_seconds:.1f}s, log {node.log_path})")
    print(url)
    return 0


def _cli_stop(args) -> int:
    data_dir = Path(args.data).resolve()
    pid = _read_pid(data_dir, args.pid_file)
    if not pid or not _pid_alive(pid):
        _log("no running search node")
    elif not _pid_is_launcher(pid):
        _log(f"pid {pid} is not a search node launcher; not touching it")
        return 1
    else:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            _log(f"pid {pid} ignored SIGTERM: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _log(f"stopped search node pid {pid}")
    for name in (PID_FILE, URL_FILE):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()
    if args.pid_file:
        with contextlib.suppress(FileNotFoundError):
            Path(args.pid_file).unlink()
    return 0


def _cli_status(args) -> int:
    url = None
    if args.port:
        url = f"http://127.0.0.1:{args.port}"
    elif args.data and (Path(args.data) / URL_FILE).exists():
        url = (Path(args.data) / URL_FILE).read_text().strip()
    if not url:
        print("down")
        return 1
    h = health(url)
    if not h:
        print(f"down {url}")
        return 1
    print(f"{h.get('status')} {url}")
    return 0


def _cli_fetch(args) -> int:
    t0 = time.monotonic()
    cp = fetch(force=args.force, quiet=not args.verbose)
    _log(f"{ENGINE} {ENGINE_VERSION}: {len(cp.split(os.pathsep))} jars, ready in {time.monotonic() - t0:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m crawler.searchnode", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fetch", help="resolve Maven artifacts and compile the launcher")
    f.add_argument("--force", action="store_true")
    f.add_argument("--verbose", action="store_true")

    s = sub.add_parser("start", help="start a detached node, print its URL")
    s.add_argument("--port", type=int, default=0, help="HTTP port (0 = any free port)")
    s.add_argument("--data", required=True, help="data dir (also holds pid, url, log files)")
    s.add_argument("--heap", default=None)
    s.add_argument("--timeout", type=float, default=180.0)
    s.add_argument("--pid-file", type=Path, default=None)
    s.add_argument("--log", default=None, help=f"log file (default DATA/{LOG_FILE})")

    t = sub.add_parser("stop", help="stop the node started with --data DIR")
    t.add_argument("--data", required=True)
    t.add_argument("--pid-file", type=Path, default=None)
    t.add_argument("--port", type=int, default=0, help="ignored; accepted for symmetry")
    t.add_argument("--timeout", type=float, default=30.0)

    st = sub.add_parser("status", help="print health and URL; exit 1 if down")
    st.add_argument("--data", default=None)
    st.add_argument("--port", type=int, default=0)

    args = p.parse_args(argv)
    try:
        return {"fetch": _cli_fetch, "start": _cli_start, "stop": _cli_stop, "status": _cli_status}[args.cmd](args)
    except SearchNodeError as e:
        print(f"searchnode: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
