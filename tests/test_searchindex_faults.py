"""Fault handling of the search-cluster path, against a small local fake of the cluster's HTTP API.

What this proves: given the answers a real cluster gives (whole-request 429/503, per-item
429/503/400 mapping errors, connection refused), Veille's code retries, spools, dead-letters and
replays exactly as specified, and after `veille replay` every document is in the cluster once.
What it does not prove: that a real Elasticsearch answers exactly like the fake (the fake mimics
the documented bulk/_mget/_alias response shapes; the live tests run the same code on OpenSearch).

Both clients are exercised: elasticsearch-py 8 (the fake sends X-Elastic-Product) and opensearch-py.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import crawl_args
from crawler.searchindex import ClusterConfig, Indexer, article_doc, make_backend, replay, revision_id
from crawler.spool import Spool

REPO = Path(__file__).resolve().parent.parent
VEILLE = str(REPO / ".venv" / "bin" / "veille") if (REPO / ".venv" / "bin" / "veille").exists() else "veille"


# --------------------------------------------------------------------------- the fake cluster

def _check_value(ftype: str, value) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_check_value(ftype, v) for v in value)
    if ftype in ("keyword", "text"):
        return isinstance(value, (str, int, float, bool))
    if ftype == "date":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if not isinstance(value, str):
            return False
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True
        except ValueError:
            try:
                date.fromisoformat(value)
                return True
            except ValueError:
                return False
    if ftype in ("integer", "long"):
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())
    if ftype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ftype == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    return True  # object (enabled: false), percolator, ...


class FakeCluster:
    """Answers the subset of the Elasticsearch REST API Veille uses, with scriptable faults.

    * ``bulk_script``: list of whole-request answers for the next _bulk calls ("429", "503", "ok").
    * ``item_faults``: {doc id: [status, ...]} per-item failures, consumed one per attempt.
    * documents are validated against the installed index template (types of mapped fields), so a
      bad date is a per-item 400 document_parsing_exception as on Elasticsearch 8.
    * ``stop()`` / ``start()`` on the same port: connection refused in between.
    """

    def __init__(self, port: int = 0):
        self.lock = threading.RLock()
        self.templates: dict[str, dict] = {}
        self.indices: dict[str, dict] = {}        # name -> {"docs": {id: source}, "mapping": props}
        self.aliases: dict[str, list[str]] = {}   # alias -> indices (first = write index)
        self.bulk_script: list[str] = []
        self.item_faults: dict[str, list[int]] = {}
        self.bulk_delay = 0.0
        self.bulk_calls = 0
        self.bulk_items: list[dict] = []          # every action line received (with its source)
        self.index_ops: dict[str, int] = {}       # doc id -> successful index operations
        self.requests: list[tuple[str, str]] = []
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle
    def start(self) -> "FakeCluster":
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status, obj=None):
                data = b"" if obj is None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _dispatch(self):
                url = urlsplit(self.path)
                body = self._body()
                with cluster.lock:
                    cluster.requests.append((self.command, url.path))
                status, obj = cluster.handle(self.command, url.path, parse_qs(url.query), body)
                self._send(status, obj)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- state helpers
    def docs(self, alias: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for ix in self.aliases.get(alias, [alias] if alias in self.indices else []):
            for _id, src in self.indices[ix]["docs"].items():
                assert _id not in out, f"{_id} is in two indices behind {alias}"
                out[_id] = src
        return out

    def _template_for(self, index: str) -> dict | None:
        best = None
        for tpl in self.templates.values():
            for pat in tpl.get("index_patterns", []):
                if re.fullmatch(pat.replace("*", ".*"), index):
                    if best is None or tpl.get("priority", 0) > best.get("priority", 0):
                        best = tpl
        return best

    def _create_index(self, name: str, body: dict | None = None) -> None:
        tpl = self._template_for(name)
        props = {}
        if tpl:
            props = tpl["template"].get("mappings", {}).get("properties", {})
        if body and body.get("mappings"):
            props = body["mappings"].get("properties", props)
        self.indices[name] = {"docs": {}, "mapping": props}
        for alias, spec in ((body or {}).get("aliases") or {}).items():
            lst = self.aliases.setdefault(alias, [])
            if spec.get("is_write_index"):
                lst.insert(0, name)
            else:
                lst.append(name)

    def _validate(self, index: str, _id: str, src: dict) -> dict | None:
        props = self.indices[index]["mapping"]
        for name, value in src.items():
            spec = props.get(name)
            if spec is None:
                continue  # dynamic: false -> kept in _source, not indexed
            if not _check_value(spec.get("type", "object"), value):
                return {"type": "document_parsing_exception",
                        "reason": f"[1:1] failed to parse field [{name}] of type [{spec.get('type')}] in document with id '{_id}'. Preview of field's value: '{value}'",
                        "caused_by": {"type": "illegal_argument_exception", "reason": f"failed to parse [{value}]"}}
        return None

    # -- API
    def handle(self, method: str, path: str, query: dict, raw: bytes):  # noqa: C901
        parts = [p for p in path.split("/") if p]
        if method == "GET" and not parts:
            return 200, {"name": "fake", "cluster_name": "fake", "version": {"number": "8.15.0", "build_flavor": "default"},
                         "tagline": "You Know, for Search"}
        if parts[:1] == ["_bulk"]:
            return self._bulk(raw)
        body = json.loads(raw) if raw else None
        with self.lock:
            if parts[:1] == ["_index_template"] and method == "PUT":
                self.templates[parts[1]] = body
                return 200, {"acknowledged": True}
            if parts[:2] == ["_ilm", "policy"]:
                return 200, {"acknowledged": True}
            if parts[:1] == ["_plugins"]:
                return 400, {"error": f"no handler found for uri [{path}] and method [{method}]"}
            if parts[:1] == ["_alias"]:
                alias = parts[1]
                if alias not in self.aliases:
                    return 404, {"error": f"alias [{alias}] missing", "status": 404}
                return 200, {ix: {"aliases": {alias: {}}} for ix in self.aliases[alias]}
            if parts[:1] == ["_aliases"]:
                for act in body["actions"]:
                    add = act["add"]
                    self.aliases.setdefault(add["alias"], []).insert(0, add["index"])
                return 200, {"acknowledged": True}
            if parts[:1] == ["_mget"]:
                out = []
                for d in body["docs"]:
                    ix = d["_index"]
                    src = self.indices.get(ix, {}).get("docs", {}).get(d["_id"])
                    out.append({"_index": ix, "_id": d["_id"], "found": src is not None,
                                **({"_source": json.loads(json.dumps(src))} if src is not None else {})})
                return 200, {"docs": out}
            name = parts[0]
            if len(parts) == 1:
                if method == "HEAD":
                    return (200 if name in self.indices or name in self.aliases else 404), None
                if method == "PUT":
                    if name in self.indices:
                        return 400, {"error": {"type": "resource_already_exists_exception", "reason": name}}
                    self._create_index(name, body)
                    return 200, {"acknowledged": True, "index": name}
            if parts[1:] == ["_refresh"]:
                return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
            if parts[1:] == ["_count"]:
                return 200, {"count": len(self.docs(name))}
            if parts[1:] == ["_search"]:
                return 200, {"hits": {"hits": [{"_id": k, "_source": v, "_score": 1.0}
                                               for k, v in self.docs(name).items()]}}
        return 404, {"error": f"fake cluster: no handler for {method} {path}"}

    def _bulk(self, raw: bytes):
        with self.lock:
            self.bulk_calls += 1
            action = self.bulk_script.pop(0) if self.bulk_script else "ok"
        if self.bulk_delay:
            time.sleep(self.bulk_delay)
        if action == "429":
            return 429, {"error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}, "status": 429}
        if action == "503":
            return 503, {"error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}, "status": 503}
        lines = [json.loads(x) for x in raw.decode("utf-8").splitlines() if x.strip()]
        items, errors = [], False
        with self.lock:
            for head, src in zip(lines[0::2], lines[1::2]):
                op, meta = next(iter(head.items()))
                _id, target = meta["_id"], meta["_index"]
                self.bulk_items.append({"op": op, "_index": target, "_id": _id, "source": src})
                faults = self.item_faults.get(_id)
                if faults:
                    status = faults.pop(0)
                    errors = True
                    etype = {429: "es_rejected_execution_exception", 503: "unavailable_shards_exception"}.get(status, "x")
                    items.append({op: {"_index": target, "_id": _id, "status": status,
                                       "error": {"type": etype, "reason": f"injected {status}"}}})
                    continue
                index = target
                if target in self.aliases:
                    index = self.aliases[target][0]
                elif target not in self.indices:
                    self._create_index(target)
                err = self._validate(index, _id, src)
                if err:
                    errors = True
                    items.append({op: {"_index": index, "_id": _id, "status": 400, "error": err}})
                    continue
                created = _id not in self.indices[index]["docs"]
                self.indices[index]["docs"][_id] = src
                self.index_ops[_id] = self.index_ops.get(_id, 0) + 1
                items.append({op: {"_index": index, "_id": _id, "_version": 1, "result": "created" if created else "updated",
                                   "status": 201 if created else 200}})
        return 200, {"took": 1, "errors": errors, "items": items}


@pytest.fixture
def cluster():
    c = FakeCluster().start()
    yield c
    c.stop()


BACKENDS = ["elasticsearch", "opensearch"]


def backend_for(cluster, kind, **over):
    cfg = ClusterConfig.from_env({"ELASTICSEARCH_URL": cluster.url, "VEILLE_SEARCH_BACKEND": kind,
                                  "VEILLE_INDEX_RETRIES": "2", "VEILLE_INDEX_BACKOFF": "0.01",
                                  "VEILLE_INDEX_TIMEOUT": "5"})
    for k, v in over.items():
        setattr(cfg, k, v)
    be = make_backend(cfg)
    be.setup()
    return be


def art(i: int, body: str | None = None, fetched: str = "2024-11-20T10:00:00+00:00", **extra) -> dict:
    a = {"id": f"art{i:03d}", "url": f"http://127.0.0.1/a/{i}", "source": "lemonde", "outlet": "Le Monde",
         "title": f"Titre {i}", "lead": "Chapeau", "body": body or f"Corps de l'article numéro {i}.",
         "authors": ["Claire Dubois"], "published": "2024-11-20T09:00:00+01:00", "fetched": fetched,
         "lang": "fr", "tags": ["politique"], "word_count": 6, "cluster_id": None, "topics": []}
    a.update(extra)
    return a


def records(arts):
    return [Spool.record("article", article_doc(a)) for a in arts]


def assert_once(cluster, ids, alias="veille-articles"):
    docs = cluster.docs(alias)
    assert sorted(docs) == sorted(ids)


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("kind", BACKENDS)
def test_429_then_success(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    cluster.bulk_script = ["429", "429"]
    indexer = Indexer(be, Spool(tmp_path / "spool"))
    out = indexer.deliver(records(art(i) for i in range(5)))
    assert (out.sent, out.spooled, out.dead) == (5, 0, 0)
    assert cluster.bulk_calls == 3  # two rejections, then accepted
    assert_once(cluster, [f"art{i:03d}" for i in range(5)])
    assert Spool(tmp_path / "spool").pending() == 0


@pytest.mark.parametrize("kind", BACKENDS)
def test_item_level_429_and_503_retried_with_backoff(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    cluster.item_faults = {"art001": [429], "art003": [503, 503]}
    out = Indexer(be, Spool(tmp_path / "spool")).deliver(records(art(i) for i in range(5)))
    assert (out.sent, out.spooled, out.dead) == (5, 0, 0)
    assert_once(cluster, [f"art{i:03d}" for i in range(5)])
    assert all(n == 1 for n in cluster.index_ops.values())


@pytest.mark.parametrize("kind", BACKENDS)
def test_persistent_503_spools_then_replay(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    spool = Spool(tmp_path / "spool")
    cluster.bulk_script = ["503"] * 50
    out = Indexer(be, spool, retry_after=0).deliver(records(art(i) for i in range(7)))
    assert (out.sent, out.spooled, out.dead) == (0, 7, 0)
    assert spool.pending() == 7 and cluster.docs("veille-articles") == {}
    assert {r["reason"] for r in spool.records()} and "503" in next(spool.records())["reason"]
    cluster.bulk_script = []
    report = replay(be, spool, batch_size=3)
    assert report.complete and report.sent == 7
    assert_once(cluster, [f"art{i:03d}" for i in range(7)])
    assert spool.pending() == 0 and not list(spool.dir.glob("replay-*"))


@pytest.mark.parametrize("kind", BACKENDS)
def test_connection_refused_spools_and_circuit_opens(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    spool = Spool(tmp_path / "spool")
    indexer = Indexer(be, spool, retry_after=60)
    cluster.stop()
    t0 = time.monotonic()
    first = indexer.deliver(records(art(i) for i in range(4)))
    second = indexer.deliver(records(art(i) for i in range(4, 6)))  # circuit open: straight to the spool
    assert (first.spooled, second.spooled) == (4, 2)
    assert time.monotonic() - t0 < 20
    assert [r["reason"] for r in spool.records()][-1] == "cluster down (circuit open)"
    cluster.start()  # same port
    report = replay(be, spool)
    assert report.complete and report.sent == 6
    assert_once(cluster, [f"art{i:03d}" for i in range(6)])


@pytest.mark.parametrize("kind", BACKENDS)
def test_partial_errors_and_mapping_error_to_dead_letter(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    spool = Spool(tmp_path / "spool")
    batch = [art(0), art(1, published="hier soir"), art(2), art(3, word_count="beaucoup")]
    cluster.item_faults = {"art002": [503]}
    out = Indexer(be, spool).deliver(records(batch))
    assert (out.sent, out.spooled, out.dead) == (2, 0, 2)
    assert_once(cluster, ["art000", "art002"])
    dead = spool.dead_records()
    assert sorted(d["id"] for d in dead) == ["art001", "art003"]
    reasons = {d["id"]: d["reason"] for d in dead}
    assert "published" in reasons["art001"] and "document_parsing_exception" in reasons["art001"]
    assert "word_count" in reasons["art003"]
    assert all(d["status"] == 400 and d["doc"]["id"] == d["id"] for d in dead)
    assert spool.pending() == 0  # never retried forever, never silently dropped
    # after fixing the documents (here: the file), a requeue + replay indexes them
    fixed = [{**d, "doc": {**d["doc"], "published": "2024-11-20", "word_count": 3}} for d in dead]
    spool.dead_path.write_text("".join(json.dumps(d) + "\n" for d in fixed))
    assert spool.requeue_dead_letters() == 2
    assert replay(be, spool).complete
    assert_once(cluster, ["art000", "art001", "art002", "art003"])


@pytest.mark.parametrize("kind", BACKENDS)
def test_revisions_and_idempotent_replay_of_versions(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    spool = Spool(tmp_path / "spool")
    v1 = art(1, fetched="2024-11-20T10:00:00+00:00")
    v2 = art(1, body="Corps corrigé après publication.", fetched="2024-11-20T12:00:00+00:00")
    spool.append(records([v1, art(2), v2]), reason="test")
    assert replay(be, spool).complete
    live = cluster.docs("veille-articles")["art001"]
    assert (live["body"], live["revision"], live["revision_count"]) == (v2["body"], 2, 1)
    revs = cluster.docs("veille-revisions")
    assert list(revs) == [revision_id("art001", 1)] and revs["art001~1"]["body"] == v1["body"]
    # the same spool sent again (crash before the ack): nothing changes, nothing duplicates
    spool.append(records([v1, art(2), v2]), reason="test again")
    assert replay(be, spool).complete
    assert cluster.docs("veille-articles")["art001"]["revision"] == 2
    assert list(cluster.docs("veille-revisions")) == ["art001~1"]
    assert_once(cluster, ["art001", "art002"])


@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_write_failure_keeps_live_version(cluster, kind, tmp_path):
    be = backend_for(cluster, kind)
    spool = Spool(tmp_path / "spool")
    Indexer(be, spool).deliver(records([art(1)]))
    cluster.item_faults = {"art001~1": [503] * 10}
    out = Indexer(be, spool).deliver(records([art(1, body="Nouveau corps", fetched="2024-11-21T00:00:00+00:00")]))
    assert out.spooled == 1
    assert cluster.docs("veille-articles")["art001"]["revision"] == 1  # not replaced without its predecessor saved
    cluster.item_faults = {}
    assert replay(be, spool).complete
    assert cluster.docs("veille-articles")["art001"]["revision"] == 2
    assert "art001~1" in cluster.docs("veille-revisions")


def test_rollover_update_stays_in_its_index(cluster, tmp_path):
    """After a rollover the alias has two indices: an update replaces the document where it lives."""
    be = backend_for(cluster, "elasticsearch")
    spool = Spool(tmp_path / "spool")
    Indexer(be, spool).deliver(records([art(1)]))
    with cluster.lock:  # what ILM rollover does: a new write index behind the alias
        cluster._create_index("veille-articles-000002")
        cluster.aliases["veille-articles"].insert(0, "veille-articles-000002")
    Indexer(be, spool).deliver(records([art(1, body="Mise à jour", fetched="2024-11-22T00:00:00+00:00"), art(2)]))
    assert set(cluster.indices["veille-articles-000001"]["docs"]) == {"art001"}
    assert set(cluster.indices["veille-articles-000002"]["docs"]) == {"art002"}
    assert cluster.docs("veille-articles")["art001"]["revision"] == 2


def _env(cluster, tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTICSEARCH_", "OPENSEARCH_", "VEILLE_"))}
    env.update(ELASTICSEARCH_URL=cluster.url, VEILLE_SEARCH_BACKEND="elasticsearch", VEILLE_DATA=str(tmp_path / "data"),
               VEILLE_INDEX_BACKOFF="0.01", VEILLE_INDEX_RETRIES="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def test_crash_mid_replay_then_replay_again(cluster, tmp_path):
    """`veille replay` killed with SIGKILL after some batches were sent: the rerun completes, no duplicates."""
    env = _env(cluster, tmp_path)
    spool = Spool(tmp_path / "data" / "spool")
    ids = [f"art{i:03d}" for i in range(60)]
    spool.append(records(art(i) for i in range(60)), reason="cluster down")
    backend_for(cluster, "elasticsearch")  # set-up done, as es-setup would
    cluster.bulk_delay = 0.4
    proc = subprocess.Popen([VEILLE, "replay", "--batch-size", "10"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while cluster.bulk_calls < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    sent_before = len(cluster.docs("veille-articles"))
    assert 10 <= sent_before < 60, sent_before
    assert list(spool.dir.glob("replay-*.ndjson"))  # the rotated file is kept until fully acknowledged
    cluster.bulk_delay = 0
    res = subprocess.run([VEILLE, "replay"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_once(cluster, ids)
    assert spool.pending() == 0 and not list(spool.dir.glob("replay-*"))
    # re-sent at most the batches not acknowledged before the kill
    assert sum(cluster.index_ops.values()) <= 60 + 20


def test_replay_refuses_when_cluster_still_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTICSEARCH_", "OPENSEARCH_", "VEILLE_"))}
    env.update(ELASTICSEARCH_URL="http://127.0.0.1:9", VEILLE_DATA=str(tmp_path / "data"), VEILLE_INDEX_RETRIES="0")
    spool = Spool(tmp_path / "data" / "spool")
    spool.append(records([art(1), art(2)]), reason="down")
    res = subprocess.run([VEILLE, "replay"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert spool.pending() == 2  # kept


def test_torn_spool_line_goes_to_dead_letter(cluster, tmp_path):
    be = backend_for(cluster, "elasticsearch")
    spool = Spool(tmp_path / "spool")
    spool.append(records([art(1)]), reason="x")
    with open(spool.path, "ab") as fh:
        fh.write(b'{"v":1,"kind":"article","id":"art0')  # the process died mid-append
    report = replay(be, spool)
    assert report.complete and report.sent == 1 and report.corrupt == 1
    assert spool.dead_records()[0]["reason"] == "corrupt spool line"


def test_crawl_with_cluster_down_then_replay(cluster, tmp_path):
    """A real crawl of the local mirror while the cluster refuses connections: the crawl succeeds,
    SQLite has every article, the spool has every article + run summaries; replay puts them in once."""
    from crawler.mirror import Mirror
    from crawler.store import SQLiteStore

    backend_for(cluster, "elasticsearch")
    cluster.stop()
    with Mirror() as mirror:
        sources = tmp_path / "sources.yaml"
        sources.write_text(mirror.sources_yaml())
        env = _env(cluster, tmp_path, VEILLE_INDEX_FLUSH_SECONDS="0.5", VEILLE_INDEX_BATCH_SIZE="20")
        res = subprocess.run([VEILLE, *crawl_args(sources, "--log-level", "WARNING", "-s", "VEILLE_ALERTS_ENABLED=False")],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    store = SQLiteStore.in_data_dir(tmp_path / "data")
    stored = {a["id"] for a in store.articles()}
    assert len(stored) >= 50
    spool = Spool(tmp_path / "data" / "spool")
    spooled = list(spool.records())
    assert {r["id"] for r in spooled if r["kind"] == "article"} == stored
    assert len([r for r in spooled if r["kind"] == "run"]) == len(mirror.outlets)
    cluster.start()
    res = subprocess.run([VEILLE, "replay"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_once(cluster, stored)
    assert len(cluster.docs("veille-runs")) == len(mirror.outlets)
    assert spool.pending() == 0
