"""A tiny threaded HTTP server on 127.0.0.1 serving a dict of routes.

Used by the bundled mirror (``crawler.mirror.Mirror``) and directly by tests:

    with SiteServer({"/robots.txt": Route(body="User-agent: *\\n")}) as srv:
        fetch(srv.base_url + "/robots.txt")
        assert srv.requests[0].path == "/robots.txt"

A route is either a :class:`Route` or a callable ``f(request: RequestRecord)
-> Route`` for dynamic answers.  Routes carrying ``etag`` / ``last_modified``
answer ``304 Not Modified`` to a matching conditional GET.
"""
from __future__ import annotations

import email.utils
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union

__all__ = ["Route", "RequestRecord", "SiteServer", "http_date"]


def http_date(value: float | str | None) -> str | None:
    """An HTTP-date for an epoch timestamp (strings are passed through)."""
    if value is None or isinstance(value, str):
        return value
    return email.utils.formatdate(value, usegmt=True)


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt.timestamp()


@dataclass
class Route:
    """A canned answer.

    ``body`` may be ``str`` (encoded as UTF-8) or ``bytes``.  ``headers`` are
    extra response headers (e.g. ``{"Location": "/new"}`` with status 301).
    ``etag`` (a quoted or bare tag) and ``last_modified`` (epoch seconds or an
    HTTP-date) enable 304 answers.  ``delay`` sleeps before answering.
    """

    status: int = 200
    body: Union[bytes, str] = b""
    headers: dict = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    etag: str | None = None
    last_modified: Union[float, str, None] = None

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return bytes(self.body)

    def etag_header(self) -> str | None:
        if not self.etag:
            return None
        tag = self.etag
        if not (tag.startswith('"') or tag.startswith('W/"')):
            tag = f'"{tag}"'
        return tag


RouteLike = Union[Route, Callable[["RequestRecord"], Route]]


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # as requested, including any query string
    headers: dict  # header name (as sent) -> value

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for k, v in self.headers.items():
            if k.lower() == lname:
                return v
        return default


def _etag_matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    for cand in if_none_match.split(","):
        cand = cand.strip()
        if cand.startswith("W/"):
            cand = cand[2:]
        if cand == bare or cand.strip('"') == bare.strip('"'):
            return True
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VeilleMirror/1.0"
    site: "SiteServer"  # set on the subclass

    def log_message(self, format, *args):  # noqa: A002 - silence stderr
        pass

    def do_GET(self):
        self._answer(head=False)

    def do_HEAD(self):
        self._answer(head=True)

    def do_POST(self):
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        record = RequestRecord(self.command, self.path, dict(self.headers.items()))
        self.site._log(record)
        route = self.site._lookup(self.path)
        if callable(route) and not isinstance(route, Route):
            route = route(record)
        if route is None:
            route = Route(status=404, body="<!doctype html><html><head><meta charset=\"utf-8\">"
                          "<title>Page introuvable</title></head><body><h1>Page introuvable</h1>"
                          "<p>La page demandée n'existe pas ou a été déplacée.</p></body></html>")
        if route.delay:
            time.sleep(route.delay)
        status = route.status
        body = route.body_bytes()
        etag = route.etag_header()
        last_mod = http_date(route.last_modified)
        if status == 200 and self.command in ("GET", "HEAD"):
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = False
            if inm is not None and etag:
                not_modified = _etag_matches(inm, etag)
            elif ims is not None and last_mod:
                t_ims, t_lm = _parse_http_date(ims), _parse_http_date(last_mod)
                not_modified = t_ims is not None and t_lm is not None and int(t_lm) <= int(t_ims)
            if not_modified:
                status, body = 304, b""
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        if last_mod:
            self.send_header("Last-Modified", last_mod)
        for k, v in route.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (a crawler timing out, say) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SiteServer:
    """One threaded HTTP server on 127.0.0.1 (ephemeral port) serving routes."""

    def __init__(self, routes: dict[str, RouteLike] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.routes: dict[str, RouteLike] = dict(routes or {})
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url: str = ""

    # -- routes -------------------------------------------------------------
    def add(self, path: str, route: RouteLike) -> None:
        with self._lock:
            self.routes[path] = route

    def remove(self, path: str) -> None:
        with self._lock:
            self.routes.pop(path, None)

    def _lookup(self, raw_path: str) -> RouteLike | None:
        with self._lock:
            if raw_path in self.routes:
                return self.routes[raw_path]
            path = raw_path.split("#", 1)[0].split("?", 1)[0]
            return self.routes.get(path)

    # -- request log --------------------------------------------------------
    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path or r.path.split("?", 1)[0] == path]

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "SiteServer":
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"site": self})
        httpd = _Server((self._host, self._port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=httpd.serve_forever, name=f"SiteServer:{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else 0

    def __enter__(self) -> "SiteServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
