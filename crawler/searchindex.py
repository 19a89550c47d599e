"""Articles in a search cluster: Elasticsearch 8 (elasticsearch-py) or OpenSearch 2 (opensearch-py).

One interface, :class:`SearchBackend`, two implementations that differ only in the client they
build and the retention API they install (ILM on Elasticsearch, ISM on OpenSearch). Everything
else -- the index templates in ``config/elasticsearch/``, bulk indexing through the client's
``helpers.streaming_bulk``, revision handling, search, percolation -- is shared.

Names (``VEILLE_INDEX_PREFIX``, default ``veille``):

* ``veille-articles``  write alias -> ``veille-articles-000001`` ... (rollover by ILM/ISM). One
  live document per article, ``_id`` = the stable article id. An update replaces the live
  document *in the concrete index that holds it* (so a rollover never duplicates an article).
* ``veille-revisions`` alias: the versions an update replaced, ``_id`` = ``<article id>~<revision>``
  (with ``article_id``, ``revision``, ``superseded``). The live document has ``revision`` (1 for
  the first version) and ``revision_count`` (versions kept in veille-revisions).
* ``veille-runs``      alias: one document per crawl run of a source (Kibana's crawl-errors panel).
* ``veille-topics``    percolator index: one query per topic of config/topics.yaml.

Revisions are decided by the cluster, not the caller: before a batch is written the current
versions are read (real-time ``_mget`` on the indices behind the alias); a document whose body
or title changed first gets its predecessor written to veille-revisions, and only once that
succeeded is the live document replaced. A version older (``fetched``) than the live one is
acknowledged without a write, so replaying a spool twice or out of order changes nothing.

Configuration comes from the environment (or Scrapy settings of the same names), see
:meth:`ClusterConfig.from_env`.
"""
from __future__ import annotations

import base64

import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from crawler.spool import SendResult, Spool

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ES_CONFIG_DIR = CONFIG_DIR / "elasticsearch"
KIBANA_DIR = CONFIG_DIR / "kibana"

BACKENDS = ("elasticsearch", "opensearch")
STORE_MODES = ("sqlite", "elasticsearch", "both")

# Fields of a live article document (the template maps every one of them; tests check it).
ARTICLE_DOC_FIELDS = (
    "id", "url", "source", "outlet", "title", "lead", "body", "description", "authors", "tags", "lang",
    "published", "fetched", "updated", "first_fetched", "indexed", "word_count", "body_hash", "raw_ref",
    "revision", "revision_count", "cluster_id", "dup_of", "similarity", "is_canonical", "topics",
)
REVISION_DOC_FIELDS = ("article_id", "revision", "url", "source", "outlet", "title", "lead", "body", "body_hash",
                       "published", "fetched", "superseded", "raw_ref", "word_count")
RUN_DOC_FIELDS = ("run_id", "source", "host", "status", "finish_reason", "started", "finished", "duration_s",
                  "pages_fetched", "articles_new", "articles_updated", "articles_unchanged", "items_dropped",
                  "retries", "errors_total", "error_kinds", "index_spooled", "index_dead_letter", "log_tail", "stats")
_LIST_FIELDS = ("authors", "tags", "topics")
# Per-item errors that will fail again however often they are sent: dead-letter them.
PERMANENT_ERRORS = {
    "mapper_parsing_exception", "document_parsing_exception", "strict_dynamic_mapping_exception",
    "illegal_argument_exception", "parse_exception", "json_parse_exception", "x_content_parse_exception",
    "mapper_exception", "date_time_parse_exception", "number_format_exception",
}
SEARCH_FIELDS = ["title^3", "lead^2", "body"]


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be reached or does not answer usefully."""


class SetupError(RuntimeError):
    """The cluster refused part of the set-up (template, policy, alias)."""


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- configuration

def _truthy(value: Any, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    return str(value).strip().lower() not in ("0", "false", "no", "off")


@dataclass
class ClusterConfig:
    backend: str
    url: str
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    prefix: str = "veille"
    request_timeout: float = 30.0
    retries: int = 3            # our rounds for 5xx / connection errors (after the helper's 429 retries)
    backoff: float = 0.5        # first wait, doubled each round, capped at max_backoff
    max_backoff: float = 10.0
    chunk_size: int = 500

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | Callable[[str], Any] | None = None) -> "ClusterConfig | None":
        """The cluster named by the environment, or None when none is configured.

        ``ELASTICSEARCH_URL`` or ``OPENSEARCH_URL``; ``VEILLE_SEARCH_BACKEND`` = elasticsearch|opensearch
        (default: opensearch when OPENSEARCH_URL is the one set, else elasticsearch);
        ``ELASTICSEARCH_API_KEY`` or ``ELASTICSEARCH_USERNAME``/``ELASTICSEARCH_PASSWORD`` (OPENSEARCH_*
        accepted too); ``ELASTICSEARCH_CA_CERTS`` (a CA bundle path), ``ELASTICSEARCH_VERIFY_CERTS``
        (default true); ``VEILLE_INDEX_PREFIX`` (default veille); ``VEILLE_INDEX_RETRIES``,
        ``VEILLE_INDEX_BACKOFF``, ``VEILLE_INDEX_TIMEOUT``.
        """
        if env is None:
            env = os.environ
        get = env if callable(env) else env.get

        def pick(*names: str) -> str | None:
            for name in names:
                value = get(name)
                if value not in (None, ""):
                    return str(value)
            return None

        es_url, os_url = pick("ELASTICSEARCH_URL"), pick("OPENSEARCH_URL")
        url = es_url or os_url
        if not url:
            return None
        backend = (pick("VEILLE_SEARCH_BACKEND") or ("opensearch" if os_url and not es_url else "elasticsearch")).lower()
        if backend not in BACKENDS:
            raise ValueError(f"VEILLE_SEARCH_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
        return cls(
            backend=backend,
            url=url.rstrip("/"),
            api_key=pick("ELASTICSEARCH_API_KEY", "OPENSEARCH_API_KEY"),
            username=pick("ELASTICSEARCH_USERNAME", "OPENSEARCH_USERNAME"),
            password=pick("ELASTICSEARCH_PASSWORD", "OPENSEARCH_PASSWORD"),
            ca_certs=pick("ELASTICSEARCH_CA_CERTS", "OPENSEARCH_CA_CERTS"),
            verify_certs=_truthy(pick("ELASTICSEARCH_VERIFY_CERTS", "OPENSEARCH_VERIFY_CERTS"), True),
            prefix=pick("VEILLE_INDEX_PREFIX") or "veille",
            request_timeout=float(pick("VEILLE_INDEX_TIMEOUT") or 30),
            retries=int(pick("VEILLE_INDEX_RETRIES") or 3),
            backoff=float(pick("VEILLE_INDEX_BACKOFF") or 0.5),
        )


def store_mode(env: Mapping[str, Any] | Callable[[str], Any] | None = None) -> str:
    """``VEILLE_STORE``: sqlite | elasticsearch | both; default both when a cluster is configured."""
    if env is None:
        env = os.environ
    get = env if callable(env) else env.get
    mode = (get("VEILLE_STORE") or "").strip().lower()
    if not mode:
        return "both" if ClusterConfig.from_env(env) else "sqlite"
    if mode not in STORE_MODES:
        raise ValueError(f"VEILLE_STORE must be one of {', '.join(STORE_MODES)}, not {mode!r}")
    return mode


@dataclass(frozen=True)
class IndexNames:
    prefix: str = "veille"

    @property
    def articles(self) -> str:
        return f"{self.prefix}-articles"

    @property
    def revisions(self) -> str:
        return f"{self.prefix}-revisions"

    @property
    def runs(self) -> str:
        return f"{self.prefix}-runs"

    @property
    def topics(self) -> str:
        return f"{self.prefix}-topics"

    def aliases(self) -> dict[str, str]:
        """kind -> write alias."""
        return {"articles": self.articles, "revisions": self.revisions, "runs": self.runs}


def load_json(name: str) -> dict:
    return json.loads((ES_CONFIG_DIR / name).read_text(encoding="utf-8"))


TEMPLATE_FILES = {"articles": "articles-template.json", "revisions": "revisions-template.json",
                  "runs": "runs-template.json"}
ILM_FILES = {"articles": "ilm-articles.json", "revisions": "ilm-articles.json", "runs": "ilm-runs.json"}
ISM_FILES = {"articles": "ism-articles.json", "revisions": "ism-articles.json", "runs": "ism-runs.json"}


def template_body(kind: str, names: IndexNames) -> dict:
    body = load_json(TEMPLATE_FILES[kind])
    body["index_patterns"] = [f"{names.aliases()[kind]}-*"]
    return body


def mapping_fields(properties: dict, prefix: str = "") -> set[str]:
    """Every field path a mapping defines (sub-fields included: title.keyword, outlet.text, ...)."""
    out: set[str] = set()
    for name, spec in properties.items():
        path = prefix + name
        out.add(path)
        for sub in (spec.get("fields") or {}):
            out.add(f"{path}.{sub}")
        if "properties" in spec:
            out |= mapping_fields(spec["properties"], path + ".")
    return out


# --------------------------------------------------------------------------- documents

def _as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return parsed if isinstance(parsed, list) else [parsed]
    return list(value)


def article_doc(article: Mapping[str, Any]) -> dict:
    """The live document for an article record (store row or pipeline item): mapped fields only."""
    doc: dict[str, Any] = {}
    for name in ARTICLE_DOC_FIELDS:
        value = article.get(name)
        if name in _LIST_FIELDS:
            value = [str(v) for v in _as_list(value)]
        elif value == "":
            value = None if name in ("published", "updated", "fetched", "lang", "cluster_id", "dup_of") else value
        try:  # best effort: a value that does not convert is left for the cluster to judge (dead letter)
            if name == "is_canonical" and value is not None:
                value = bool(value)
            if name == "similarity" and value is not None:
                value = float(value)
            if name in ("word_count", "revision") and value is not None:
                value = int(value)
        except (TypeError, ValueError):
            pass
        doc[name] = value
    if not doc.get("body_hash") and doc.get("body") is not None:
        from crawler.items import body_hash

        doc["body_hash"] = body_hash(doc["body"])
    return doc


def revision_doc(live: Mapping[str, Any], superseded: str | None) -> dict:
    doc = {name: live.get(name) for name in REVISION_DOC_FIELDS if name in live}
    doc["article_id"] = live["id"]
    doc["revision"] = int(live.get("revision") or 1)
    doc["superseded"] = superseded
    return doc


def revision_id(article_id: str, revision: int) -> str:
    return f"{article_id}~{revision}"


def run_doc(*, source: str, stats: Mapping[str, Any], started: str | None, finished: str | None,
            status: str, reason: str, run_id: Any = None, log_tail: str | None = None,
            data_dir: str | None = None) -> dict:
    """A crawl-run summary (RunRecorder's figures) for the runs index; id stable per run."""
    host = socket.gethostname()
    key = f"{host}|{data_dir}|{run_id}|{source}|{started}"
    errors = {k[len("errors/"):]: v for k, v in stats.items() if k.startswith("errors/") and isinstance(v, (int, float))}
    doc = {
        "id": "run-" + hashlib.sha1(key.encode()).hexdigest()[:20],
        "run_id": str(run_id) if run_id is not None else None,
        "source": source, "host": host, "status": status, "finish_reason": reason,
        "started": started, "finished": finished, "duration_s": stats.get("duration_s"),
        "pages_fetched": int(stats.get("pages_fetched", 0) or 0),
        "articles_new": int(stats.get("articles/new", 0) or 0),
        "articles_updated": int(stats.get("articles/updated", 0) or 0),
        "articles_unchanged": int(stats.get("articles/unchanged", 0) or 0),
        "items_dropped": int(stats.get("items_dropped", 0) or 0),
        "retries": int(stats.get("retries", 0) or 0),
        "errors_total": int(sum(errors.values())),
        "error_kinds": sorted(errors),
        "index_spooled": int(stats.get("index/spooled", 0) or 0),
        "index_dead_letter": int(stats.get("index/dead_letter", 0) or 0),
        "log_tail": log_tail,
        "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None},
    }
    return doc


def _same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("body_hash") == b.get("body_hash") and (a.get("title") or "") == (b.get("title") or "")


def _error_reason(error: Any) -> tuple[str | None, str]:
    """(error type, readable reason) of a bulk item error."""
    if isinstance(error, dict):
        etype = error.get("type")
        reason = error.get("reason") or ""
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return etype, f"{etype}: {reason}"
    return None, str(error)


def is_permanent(status: Any, error: Any) -> bool:
    """A per-item rejection that re-sending cannot fix (dead-letter) vs a transient one (retry/spool)."""
    if not isinstance(error, dict):  # whole-request failures (connection, 5xx, 429): never permanent
        return False
    etype = error.get("type")
    if etype in PERMANENT_ERRORS:
        return True
    return isinstance(status, int) and status == 400


# --------------------------------------------------------------------------- backends

_SETUP_LOCK = threading.Lock()
_READY: set[tuple[str, str]] = set()


def _already_exists(status: int, body: Any) -> bool:
    return status == 400 and "resource_already_exists_exception" in json.dumps(body)


class SearchBackend:
    """What Veille needs from a search cluster; subclasses only build the client and lifecycle."""

    name = "base"

    def __init__(self, config: ClusterConfig):
        self.config = config
        self.names = IndexNames(config.prefix)
        self.client = self._make_client()
        self._ready = False

    # -- engine-specific ---------------------------------------------------------------------
    def _make_client(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def helpers(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw(self, method: str, path: str, body: Any, params: dict | None) -> tuple[int, Any]:  # pragma: no cover
        raise NotImplementedError

    def install_lifecycle(self, kind: str) -> str | None:
        """Install the retention policy for an index kind; return the template settings to add."""
        raise NotImplementedError  # pragma: no cover

    def lifecycle_settings(self, kind: str) -> dict:
        raise NotImplementedError  # pragma: no cover

    # -- plumbing ----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, params: dict | None = None) -> tuple[int, Any]:
        """(status, decoded body); HTTP errors are returned, transport failures raise ClusterUnavailable."""
        return self._raw(method, path, body, params)

    def ping(self) -> bool:
        try:
            status, _ = self.request("GET", "/")
        except ClusterUnavailable:
            return False
        return status == 200

    def info(self) -> dict:
        status, body = self.request("GET", "/")
        if status != 200:
            raise ClusterUnavailable(f"GET / answered {status}: {body}")
        return body

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pragma: no cover
            pass

    def _check(self, what: str, status: int, body: Any, ok: Iterable[int] = (200, 201)) -> Any:
        if status not in ok:
            raise SetupError(f"{what}: HTTP {status}: {json.dumps(body, ensure_ascii=False)[:500]}")
        return body

    # -- set-up -------------------------------------------------------------------------------
    def alias_indices(self, alias: str) -> list[str]:
        status, body = self.request("GET", f"/_alias/{alias}")
        if status == 404:
            return []
        if status != 200:
            raise ClusterUnavailable(f"GET /_alias/{alias} answered {status}")
        return sorted(body or {})

    def setup(self, topics: list | None = None, log: Callable[[str], None] = lambda _m: None) -> list[str]:
        """Install policies, templates, write aliases (and topics); idempotent. Returns report lines."""
        report: list[str] = []
        for kind, alias in self.names.aliases().items():
            lifecycle = self.install_lifecycle(kind)
            report.append(lifecycle)
            log(lifecycle)
            body = template_body(kind, self.names)
            body["template"]["settings"].setdefault("index", {}).update(self.lifecycle_settings(kind))
            name = f"{alias}"
            status, res = self.request("PUT", f"/_index_template/{name}", body)
            self._check(f"index template {name}", status, res)
            report.append(f"index template {name} -> {alias}-*")
            log(report[-1])
            report.append(self._bootstrap_alias(alias))
            log(report[-1])
        report.append(self._ensure_topics_index())
        if topics is not None:
            report.append(self.register_topics(topics))
        self._ready = True
        return report

    def _bootstrap_alias(self, alias: str) -> str:
        indices = self.alias_indices(alias)
        if indices:
            return f"alias {alias} -> {', '.join(indices)} (kept)"
        status, _ = self.request("HEAD", f"/{alias}")
        if status == 200:
            raise SetupError(f"{alias} exists as a concrete index (auto-created before set-up?): "
                             f"reindex it into {alias}-000001 and delete it, then rerun es-setup")
        first = f"{alias}-000001"
        status, res = self.request("PUT", f"/{first}", {"aliases": {alias: {"is_write_index": True}}})
        if _already_exists(status, res):  # another process is bootstrapping too, or a half-done earlier set-up
            if self.alias_indices(alias):
                return f"alias {alias} -> {first} (kept)"
            status, res = self.request("POST", "/_aliases",
                                       {"actions": [{"add": {"index": first, "alias": alias, "is_write_index": True}}]})
        self._check(f"bootstrap index {first}", status, res)
        return f"alias {alias} -> {first} (created)"

    def ensure_ready(self) -> None:
        """Run the set-up once if the write alias is missing (a fresh cluster); raises ClusterUnavailable.

        Several crawlers of one process share the check (one lock, one cache per cluster and prefix)."""
        if self._ready:
            return
        key = (self.config.url, self.config.prefix)
        with _SETUP_LOCK:
            if key not in _READY:
                if not self.alias_indices(self.names.articles) or not self.alias_indices(self.names.runs):
                    self.setup()
                _READY.add(key)
        self._ready = True

    # -- topics (percolator) ------------------------------------------------------------------
    def _ensure_topics_index(self) -> str:
        from crawler.topics import search_index_body

        index = self.names.topics
        status, _ = self.request("HEAD", f"/{index}")
        if status == 200:
            return f"percolator index {index} (kept)"
        body = search_index_body(percolator=True)
        body["settings"]["index"] = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
        status, res = self.request("PUT", f"/{index}", body)
        if _already_exists(status, res):
            return f"percolator index {index} (kept)"
        self._check(f"percolator index {index}", status, res)
        return f"percolator index {index} (created)"

    def register_topics(self, topics: list) -> str:
        """Index each enabled topic's query (Topic.search_query()) into the percolator index, id = topic id."""
        actions = [{"_op_type": "index", "_index": self.names.topics, "_id": t.id,
                    "_source": {"query": t.search_query(), "name": t.name}} for t in topics if t.enabled]
        outcome = self._bulk(actions)
        bad = {k: v for k, v in outcome.items() if v[0] != "ok"}
        if bad:
            raise SetupError(f"topics not registered: {bad}")
        self.request("POST", f"/{self.names.topics}/_refresh")
        return f"{len(actions)} topic(s) registered in {self.names.topics}"

    def percolate(self, article: Mapping[str, Any]) -> list[str]:
        """Ids of the registered topics whose query matches the article."""
        doc = {k: article.get(k) for k in ("title", "lead", "body", "outlet", "source", "authors", "lang", "published")
               if article.get(k) not in (None, "", [])}
        status, res = self.request("POST", f"/{self.names.topics}/_search",
                                   {"size": 1000, "_source": False,
                                    "query": {"percolate": {"field": "query", "document": doc}}})
        if status != 200:
            raise ClusterUnavailable(f"percolate answered {status}: {res}")
        return sorted(h["_id"] for h in res["hits"]["hits"])

    # -- bulk --------------------------------------------------------------------------------
    def _bulk(self, actions: list[dict]) -> dict[str, tuple]:
        """Send actions (each with a unique ``_id``) with retries; per-id outcome:
        ("ok",) | ("retry", reason) | ("dead", status, reason)."""
        outcome: dict[str, tuple] = {}
        pending = list(actions)
        delay = self.config.backoff
        reason = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff)
            retry_ids: set[str] = set()
            try:
                for ok, info in self.helpers.streaming_bulk(
                        self.client, pending, chunk_size=self.config.chunk_size, max_retries=self.config.retries,
                        initial_backoff=self.config.backoff, max_backoff=self.config.max_backoff,
                        raise_on_error=False, raise_on_exception=False, yield_ok=True):
                    item = next(iter(info.values()))
                    _id = item.get("_id")
                    if ok:
                        outcome[_id] = ("ok",)
                        continue
                    status, error = item.get("status"), item.get("error")
                    if is_permanent(status, error):
                        outcome[_id] = ("dead", status, _error_reason(error)[1])
                    else:
                        retry_ids.add(_id)
                        reason = f"HTTP {status}: {_error_reason(error)[1]}"[:500]
            except Exception as exc:  # connection refused, timeouts, a whole-request 429 after retries
                reason = f"{type(exc).__name__}: {exc}"[:500]
                retry_ids |= {a["_id"] for a in pending if a["_id"] not in outcome or outcome[a["_id"]][0] == "retry"}
            pending = [a for a in pending if a["_id"] in retry_ids]
            for a in pending:
                outcome[a["_id"]] = ("retry", reason)
            if not pending:
                break
            logger.warning("bulk: %d action(s) not accepted (%s); attempt %d/%d", len(pending), reason,
                           attempt + 1, self.config.retries + 1)
        return outcome

    def _current_versions(self, ids: list[str]) -> dict[str, tuple[str, dict]]:
        """id -> (concrete index, live source), read in real time from every index behind the alias."""
        if not ids:
            return {}
        indices = self.alias_indices(self.names.articles)
        if not indices:
            return {}
        docs = [{"_index": ix, "_id": i} for ix in indices for i in ids]
        status, res = self.request("POST", "/_mget", {"docs": docs})
        if status != 200:
            raise ClusterUnavailable(f"_mget answered {status}: {str(res)[:300]}")
        found: dict[str, tuple[str, dict]] = {}
        for d in res.get("docs", []):
            if d.get("found"):
                found[d["_id"]] = (d["_index"], d["_source"])
            elif d.get("error"):
                raise ClusterUnavailable(f"_mget: {d['error']}")
        return found

    def send(self, records: list[dict]) -> SendResult:
        """Index spool-format records ({"kind": "article"|"run", "doc": {...}}): accepted / retry / dead."""
        result = SendResult()
        by_kind: dict[str, list[dict]] = {"article": [], "run": []}
        for rec in records:
            if rec.get("kind") in by_kind and isinstance(rec.get("doc"), dict) and rec["doc"].get("id"):
                by_kind[rec["kind"]].append(rec)
            else:
                result.dead.append((rec, None, f"not an article or run record: kind={rec.get('kind')!r}"))
        articles, runs = by_kind["article"], by_kind["run"]
        try:
            current = self._current_versions(sorted({r["doc"]["id"] for r in articles}))
        except ClusterUnavailable as exc:
            result.retry, result.error = [*articles, *runs], str(exc)
            return result
        except Exception as exc:  # transport errors raised by the client
            result.retry, result.error = [*articles, *runs], f"{type(exc).__name__}: {exc}"
            return result

        # plan: per article id, apply its versions in order against the live one
        now = utcnow()
        groups: dict[str, list[dict]] = {}
        for rec in articles:
            groups.setdefault(rec["doc"]["id"], []).append(rec)
        rev_actions: list[dict] = []
        live_actions: dict[str, dict] = {}
        owners: dict[str, list[dict]] = {}
        self.last_changes: dict[str, str] = {}
        for aid, recs in groups.items():
            index, live = current.get(aid, (None, None))
            change = None
            for rec in recs:
                doc = article_doc(rec["doc"])
                if live is not None and (doc.get("fetched") or "") < (live.get("fetched") or ""):
                    change = change or "stale"
                    continue
                if live is None:
                    doc.update(revision=1, revision_count=0, first_fetched=doc.get("fetched"))
                    change = "new"
                elif _same_content(doc, live):
                    doc.update(revision=live.get("revision") or 1, revision_count=live.get("revision_count") or 0,
                               first_fetched=live.get("first_fetched") or live.get("fetched"),
                               updated=live.get("updated"))
                    change = change if change in ("new", "updated") else "unchanged"
                else:
                    prev = revision_doc(live, doc.get("fetched"))
                    rev_actions.append({"_op_type": "index", "_index": self.names.revisions,
                                        "_id": revision_id(aid, prev["revision"]), "_source": prev, "_owner": aid})
                    rev = int(live.get("revision") or 1) + 1
                    doc.update(revision=rev, revision_count=rev - 1, updated=doc.get("fetched"),
                               first_fetched=live.get("first_fetched") or live.get("fetched"))
                    change = "updated" if change != "new" else "new"
                doc["indexed"] = now
                live = doc
            owners[aid] = recs
            self.last_changes[aid] = change or "stale"
            if change == "stale" and aid in current and live is current[aid][1]:
                result.ok.extend(recs)  # every version older than the live one: nothing to write
                continue
            live_actions[aid] = {"_op_type": "index", "_index": index or self.names.articles, "_id": aid,
                                 "_source": live}

        # phase 1: the replaced versions; an article whose predecessor was not saved is not replaced
        failed: dict[str, tuple] = {}
        if rev_actions:
            outcome = self._bulk([{k: v for k, v in a.items() if k != "_owner"} for a in rev_actions])
            for a in rev_actions:
                res = outcome.get(a["_id"], ("retry", "no answer"))
                if res[0] != "ok":
                    failed[a["_owner"]] = res
        # phase 2: live documents and runs
        actions = [a for aid, a in live_actions.items() if aid not in failed]
        actions += [{"_op_type": "index", "_index": self.names.runs, "_id": r["doc"]["id"],
                     "_source": {k: r["doc"].get(k) for k in RUN_DOC_FIELDS}} for r in runs]
        outcome = self._bulk(actions) if actions else {}
        for aid, res in failed.items():
            outcome[aid] = res
        for aid, recs in owners.items():
            if aid not in live_actions:
                continue
            self._settle(result, recs, outcome.get(aid, ("retry", "no answer")))
        for r in runs:
            self._settle(result, [r], outcome.get(r["doc"]["id"], ("retry", "no answer")))
        return result

    @staticmethod
    def _settle(result: SendResult, recs: list[dict], res: tuple) -> None:
        if res[0] == "ok":
            result.ok.extend(recs)
        elif res[0] == "dead":
            result.dead.extend((r, res[1], res[2]) for r in recs)
        else:
            result.retry.extend(recs)
            result.error = res[1]

    def refresh(self) -> None:
        for alias in self.names.aliases().values():
            self.request("POST", f"/{alias}/_refresh")

    # -- reading -----------------------------------------------------------------------------
    def search(self, query: str, *, source: str | None = None, since: str | None = None, limit: int = 20,
               filters: list[dict] | None = None) -> list[dict]:
        """query_string on title/lead/body (default operator AND), as Kibana's Lucene bar."""
        from crawler.search import QueryError, parse_query

        parse_query(query)  # the same syntax errors as the embedded store
        flt: list[dict] = list(filters or [])
        if source:
            flt.append({"term": {"source": source}})
        if since:
            flt.append({"bool": {"should": [
                {"range": {"published": {"gte": since}}},
                {"bool": {"must_not": [{"exists": {"field": "published"}}],
                          "filter": [{"range": {"fetched": {"gte": since}}}]}}], "minimum_should_match": 1}})
        body = {"size": limit, "track_total_hits": False,
                "query": {"bool": {"must": [{"query_string": {"query": query, "fields": SEARCH_FIELDS,
                                                              "default_operator": "AND"}}], "filter": flt}}}
        status, res = self.request("POST", f"/{self.names.articles}/_search", body)
        if status == 400:
            raise QueryError(f"the cluster rejected {query!r}: {_error_reason(res.get('error'))[1]}")
        if status != 200:
            raise ClusterUnavailable(f"search answered {status}: {str(res)[:300]}")
        return [{**h["_source"], "score": h.get("_score")} for h in res["hits"]["hits"]]

    def get(self, article_id: str) -> dict | None:
        status, res = self.request("POST", f"/{self.names.articles}/_search",
                                   {"size": 1, "query": {"bool": {"should": [{"ids": {"values": [article_id]}},
                                                                             {"term": {"url": article_id}}]}}})
        if status != 200:
            raise ClusterUnavailable(f"get answered {status}")
        hits = res["hits"]["hits"]
        return hits[0]["_source"] if hits else None

    def articles(self, *, cluster_id: str | None = None, source: str | None = None, limit: int = 1000) -> list[dict]:
        flt = [{"term": {k: v}} for k, v in (("cluster_id", cluster_id), ("source", source)) if v]
        status, res = self.request("POST", f"/{self.names.articles}/_search",
                                   {"size": limit, "query": {"bool": {"filter": flt}},
                                    "_source": {"excludes": ["body"]}})
        if status != 200:
            raise ClusterUnavailable(f"search answered {status}")
        return [h["_source"] for h in res["hits"]["hits"]]

    def revisions(self, article_id: str) -> list[dict]:
        status, res = self.request("POST", f"/{self.names.revisions}/_search",
                                   {"size": 1000, "query": {"term": {"article_id": article_id}},
                                    "sort": [{"revision": "asc"}]})
        if status == 404:
            return []
        if status != 200:
            raise ClusterUnavailable(f"search answered {status}")
        return [h["_source"] for h in res["hits"]["hits"]]

    def count(self, kind: str = "articles") -> int:
        status, res = self.request("GET", f"/{self.names.aliases()[kind]}/_count")
        if status != 200:
            raise ClusterUnavailable(f"_count answered {status}: {res}")
        return int(res["count"])


class ElasticsearchBackend(SearchBackend):
    """Elasticsearch 8 through elasticsearch-py 8; retention by ILM."""

    name = "elasticsearch"

    def _make_client(self):
        from elasticsearch import Elasticsearch

        c = self.config
        kwargs: dict[str, Any] = {"request_timeout": c.request_timeout, "max_retries": 1, "retry_on_timeout": True,
                                  "verify_certs": c.verify_certs}
        if c.api_key:
            kwargs["api_key"] = c.api_key
        elif c.username:
            kwargs["basic_auth"] = (c.username, c.password or "")
        if c.ca_certs:
            kwargs["ca_certs"] = c.ca_certs
        if not c.verify_certs:
            kwargs["ssl_show_warn"] = False
        return Elasticsearch(c.url, **kwargs)

    @property
    def helpers(self):
        from elasticsearch import helpers

        return helpers

    def _raw(self, method, path, body, params):
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            resp = self.client.perform_request(method, path, params=params, headers=headers, body=body)
            return resp.meta.status, resp.body
        except ApiError as exc:
            return exc.meta.status, exc.body
        except TransportError as exc:
            raise ClusterUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def install_lifecycle(self, kind: str) -> str:
        name = self.names.aliases()[kind]
        status, res = self.request("PUT", f"/_ilm/policy/{name}", load_json(ILM_FILES[kind]))
        self._check(f"ILM policy {name}", status, res)
        return f"ILM policy {name}"

    def lifecycle_settings(self, kind: str) -> dict:
        alias = self.names.aliases()[kind]
        return {"lifecycle": {"name": alias, "rollover_alias": alias}}


class OpenSearchBackend(SearchBackend):
    """OpenSearch 2 through opensearch-py; retention by ISM when the plugin is installed."""

    name = "opensearch"

    def __init__(self, config: ClusterConfig):
        super().__init__(config)
        self.ism_available: bool | None = None

    def _make_client(self):
        from opensearchpy import OpenSearch

        c = self.config
        kwargs: dict[str, Any] = {"timeout": c.request_timeout, "max_retries": 1, "retry_on_timeout": True,
                                  "verify_certs": c.verify_certs}
        if c.api_key:
            key = c.api_key if ":" not in c.api_key else base64.b64encode(c.api_key.encode()).decode()
            kwargs["headers"] = {"Authorization": f"ApiKey {key}"}
        elif c.username:
            kwargs["http_auth"] = (c.username, c.password or "")
        if c.ca_certs:
            kwargs["ca_certs"] = c.ca_certs
        if not c.verify_certs:
            kwargs["ssl_show_warn"] = False
        return OpenSearch(hosts=[c.url], **kwargs)

    @property
    def helpers(self):
        from opensearchpy import helpers

        return helpers

    def _raw(self, method, path, body, params):
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        try:
            res = self.client.transport.perform_request(method, path, params=params, body=body)
            return 200, (True if method == "HEAD" and res is True else res)
        except OSConnectionError as exc:
            raise ClusterUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except TransportError as exc:
            if not isinstance(exc.status_code, int):
                raise ClusterUnavailable(f"{type(exc).__name__}: {exc}") from exc
            return exc.status_code, exc.info
        finally:
            pass

    def request(self, method, path, body=None, params=None):
        status, res = self._raw(method, path, body, params)
        if method == "HEAD" and res is False:  # opensearch-py answers HEAD with True/False
            return 404, None
        return status, res

    def _ism_policy(self, kind: str) -> dict:
        body = load_json(ISM_FILES[kind])
        alias = self.names.aliases()[kind]
        body["policy"]["ism_template"] = [{"index_patterns": [f"{alias}-*"], "priority": 100}]
        return body

    def install_lifecycle(self, kind: str) -> str:
        name = self.names.aliases()[kind]
        status, res = self.request("GET", f"/_plugins/_ism/policies/{name}")
        text = json.dumps(res) if not isinstance(res, str) else res
        if status in (400, 404, 405) and "no handler found" in text.lower():
            self.ism_available = False
            return f"ISM policy {name}: skipped, the index-management plugin is not installed on this cluster"
        self.ism_available = True
        policy = self._ism_policy(kind)
        if status == 200:
            current = res.get("policy", {})
            if all(current.get(k) == v for k, v in policy["policy"].items() if k != "ism_template") and \
                    [t.get("index_patterns") for t in current.get("ism_template") or []] == [["%s-*" % name]]:
                return f"ISM policy {name} (unchanged)"
            status, res = self.request("PUT", f"/_plugins/_ism/policies/{name}", policy,
                                       params={"if_seq_no": res["_seq_no"], "if_primary_term": res["_primary_term"]})
        else:
            status, res = self.request("PUT", f"/_plugins/_ism/policies/{name}", policy)
        self._check(f"ISM policy {name}", status, res)
        return f"ISM policy {name}"

    def lifecycle_settings(self, kind: str) -> dict:
        if not self.ism_available:
            return {}
        return {"plugins.index_state_management.rollover_alias": self.names.aliases()[kind]}


def make_backend(config: ClusterConfig) -> SearchBackend:
    # the clients log every failed request with a traceback; Veille logs one line per batch instead
    for name in ("opensearch", "elastic_transport.transport", "elastic_transport.node_pool", "elasticsearch"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.ERROR)
    return {"elasticsearch": ElasticsearchBackend, "opensearch": OpenSearchBackend}[config.backend](config)


def backend_from_env(env: Mapping[str, Any] | None = None) -> SearchBackend | None:
    config = ClusterConfig.from_env(env)
    return make_backend(config) if config else None


# --------------------------------------------------------------------------- delivery with spool

def spool_dir(data_root: Path | str | None = None) -> Path:
    from crawler.config import data_dir

    return Path(os.environ.get("VEILLE_SPOOL_DIR") or Path(data_root or data_dir()) / "spool")


@dataclass
class DeliveryStats:
    sent: int = 0
    spooled: int = 0
    dead: int = 0
    changes: dict = field(default_factory=dict)


class Indexer:
    """Sends batches to the cluster; what it cannot take goes to the spool, what it rejects for good
    to the dead-letter file. Thread-safe (one batch at a time). While the cluster is down (after a
    batch failed), batches go straight to the spool for ``retry_after`` seconds: the crawl goes on."""

    def __init__(self, backend: SearchBackend, spool: Spool, retry_after: float = 30.0):
        self.backend = backend
        self.spool = spool
        self.retry_after = retry_after
        self.down_until = 0.0
        self.stats = DeliveryStats()
        self._lock = threading.Lock()

    def deliver(self, records: list[dict]) -> DeliveryStats:
        batch = DeliveryStats()
        if not records:
            return batch
        with self._lock:
            if time.monotonic() < self.down_until:
                batch.spooled = self.spool.append(records, reason="cluster down (circuit open)")
            else:
                try:
                    self.backend.ensure_ready()
                    result = self.backend.send(records)
                except Exception as exc:  # ClusterUnavailable, SetupError, transport errors
                    result = SendResult(retry=list(records), error=f"{type(exc).__name__}: {exc}")
                batch.sent = len(result.ok)
                batch.dead = self.spool.dead_letter(result.dead)
                if result.retry:
                    batch.spooled = self.spool.append(result.retry, reason=result.error or "not accepted")
                    self.down_until = time.monotonic() + self.retry_after
                    logger.warning("search cluster: %d document(s) spooled to %s (%s)", len(result.retry),
                                   self.spool.path, result.error)
                for rec, status, reason in result.dead:
                    logger.error("search cluster rejected %s %s (HTTP %s): %s; written to %s", rec.get("kind"),
                                 rec.get("id"), status, reason, self.spool.dead_path)
                for aid, change in getattr(self.backend, "last_changes", {}).items():
                    batch.changes[change] = batch.changes.get(change, 0) + 1
            self.stats.sent += batch.sent
            self.stats.spooled += batch.spooled
            self.stats.dead += batch.dead
            return batch


def replay(backend: SearchBackend, spool: Spool, batch_size: int = 500, setup: bool = True,
           progress: Callable | None = None):
    """Drain the spool into the cluster (``veille replay``)."""
    if setup:
        backend.ensure_ready()
    return spool.replay(backend.send, batch_size=batch_size, progress=progress)


# --------------------------------------------------------------------------- ArticleIndex for the CLI

class ClusterArticleIndex:
    """The ArticleIndex protocol on a cluster (``veille search``/``show`` when one is configured)."""

    def __init__(self, backend: SearchBackend):
        self.backend = backend

    def index_article(self, article: dict) -> str:
        self.backend.ensure_ready()
        result = self.backend.send([Spool.record("article", article_doc(article))])
        if result.retry:
            raise ClusterUnavailable(result.error or "not accepted")
        if result.dead:
            raise SetupError(result.dead[0][2])
        change = self.backend.last_changes.get(article["id"], "unchanged")
        return "unchanged" if change == "stale" else change

    def search(self, query: str, *, source: str | None = None, since: str | None = None, limit: int = 20) -> list[dict]:
        return self.backend.search(query, source=source, since=since, limit=limit)

    def articles(self, *, cluster_id: str | None = None, source: str | None = None, **_kw) -> list[dict]:
        return self.backend.articles(cluster_id=cluster_id, source=source)

    def get_article(self, article_id: str) -> dict | None:
        return self.backend.get(article_id)

    def revisions(self, article_id: str) -> list[dict]:
        return self.backend.revisions(article_id)

    def close(self) -> None:
        self.backend.close()


def article_index_for_cli(sqlite_factory: Callable[[], Any], warn: Callable[[str], None] = lambda _m: None):
    """The ArticleIndex `veille search` should read: the cluster (VEILLE_STORE=elasticsearch|both when
    configured), falling back to SQLite in `both` mode when the cluster does not answer."""
    mode = store_mode()
    if mode == "sqlite":
        return sqlite_factory()
    backend = backend_from_env()
    if backend is None:
        if mode == "elasticsearch":
            raise ClusterUnavailable("VEILLE_STORE=elasticsearch but neither ELASTICSEARCH_URL nor OPENSEARCH_URL is set")
        return sqlite_factory()
    if backend.ping():
        return ClusterArticleIndex(backend)
    if mode == "both":
        warn(f"search cluster {backend.config.url} does not answer: searching the embedded store")
        return sqlite_factory()
    raise ClusterUnavailable(f"search cluster {backend.config.url} does not answer")


# --------------------------------------------------------------------------- Kibana

def kibana_objects(prefix: str = "veille", directory: Path = KIBANA_DIR) -> bytes:
    """The saved objects NDJSON (all files of config/kibana), with index names for the prefix."""
    parts = []
    for path in sorted(directory.glob("*.ndjson")):
        text = path.read_text(encoding="utf-8")
        if prefix != "veille":
            text = text.replace("veille-articles", f"{prefix}-articles").replace("veille-runs", f"{prefix}-runs")
        parts.append(text.strip())
    return ("\n".join(parts) + "\n").encode("utf-8")


def kibana_import(url: str, *, username: str | None = None, password: str | None = None,
                  api_key: str | None = None, prefix: str = "veille", ca_certs: str | None = None,
                  timeout: float = 60.0) -> dict:
    """POST the saved objects to Kibana's import API with overwrite=true (idempotent)."""
    import ssl

    boundary = "veille-" + uuid.uuid4().hex
    payload = kibana_objects(prefix)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"veille.ndjson\"\r\n"
            f"Content-Type: application/ndjson\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url.rstrip("/") + "/api/saved_objects/_import?overwrite=true", data=body,
                                 method="POST")
    req.add_header("kbn-xsrf", "veille")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    if api_key:
        req.add_header("Authorization", f"ApiKey {api_key}")
    elif username:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=ca_certs) if ca_certs else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310
            result = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise SetupError(f"Kibana import answered {exc.code}: {exc.read().decode('utf-8', 'replace')[:500]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ClusterUnavailable(f"Kibana at {url} does not answer: {exc}") from None
    if not result.get("success"):
        raise SetupError(f"Kibana import failed: {json.dumps(result.get('errors'), ensure_ascii=False)[:1000]}")
    return result




# --------------------------------------------------------------------------- CLI verbs (wired in crawler.cli)

def _cli_backend(err) -> SearchBackend | None:
    try:
        backend = backend_from_env()
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        return None
    if backend is None:
        err.print("[red]no search cluster configured: set ELASTICSEARCH_URL (or OPENSEARCH_URL)[/]")
    return backend


def cmd_es_setup(args, console, err) -> int:
    backend = _cli_backend(err)
    if backend is None:
        return 2
    topics = None
    if not args.no_topics:
        from crawler.config import ConfigError
        from crawler.topics import load_topics

        try:
            topics = load_topics(args.topics).topics
        except (ConfigError, OSError) as exc:
            if args.topics:
                raise
            err.print(f"[yellow]topics not registered: {exc}[/]")
    try:
        info = backend.info()
        version = info.get("version", {})
        console.print(f"{backend.name} client -> {version.get('distribution', 'elasticsearch')} "
                      f"{version.get('number')} at {backend.config.url}")
        for line in backend.setup(topics=topics):
            console.print(f"  {line}")
    except (ClusterUnavailable, SetupError) as exc:
        err.print(f"[red]es-setup failed: {exc}[/]")
        return 1
    return 0


def cmd_kibana_setup(args, console, err) -> int:
    url = args.url or os.environ.get("KIBANA_URL")
    if not url:
        err.print("[red]set KIBANA_URL (or --url)[/]")
        return 2
    user = os.environ.get("KIBANA_USERNAME") or os.environ.get("ELASTICSEARCH_USERNAME")
    password = os.environ.get("KIBANA_PASSWORD") or os.environ.get("ELASTICSEARCH_PASSWORD")
    api_key = os.environ.get("KIBANA_API_KEY") or os.environ.get("ELASTICSEARCH_API_KEY")
    deadline = time.monotonic() + args.wait
    while True:
        try:
            result = kibana_import(url, username=user, password=password, api_key=api_key,
                                   prefix=os.environ.get("VEILLE_INDEX_PREFIX") or "veille",
                                   ca_certs=os.environ.get("KIBANA_CA_CERTS") or os.environ.get("ELASTICSEARCH_CA_CERTS"))
            break
        except ClusterUnavailable as exc:
            if time.monotonic() >= deadline:
                err.print(f"[red]{exc}[/]")
                return 1
            time.sleep(5)
        except SetupError as exc:
            if "503" in str(exc) and time.monotonic() < deadline:  # Kibana starting up
                time.sleep(5)
                continue
            err.print(f"[red]{exc}[/]")
            return 1
    console.print(f"Kibana {url}: {result.get('successCount')} saved object(s) imported (overwrite=true)")
    console.print(f"  dashboard: {url.rstrip('/')}/app/dashboards#/view/veille-overview")
    return 0


def cmd_replay(args, console, err) -> int:
    from crawler.spool import SpoolBusy

    backend = _cli_backend(err)
    if backend is None:
        return 2
    spool = Spool(spool_dir())
    if args.requeue_dead_letters:
        console.print(f"{spool.requeue_dead_letters()} dead-letter record(s) moved back to the spool")
    if args.from_store:
        from crawler.store import SQLiteStore
        from crawler.config import data_dir

        store = SQLiteStore.in_data_dir(data_dir())
        records = [Spool.record("article", article_doc(a)) for a in store.articles(source=args.source)]
        for i in range(0, len(records), 1000):
            spool.append(records[i:i + 1000], reason="veille replay --from-store")
        console.print(f"{len(records)} stored article(s) queued from {store.path}")
    pending = spool.pending()
    if not pending:
        console.print(f"spool {spool.dir} is empty; {spool.dead_count()} record(s) in the dead-letter file")
        return 0
    console.print(f"replaying {pending} record(s) from {spool.dir} into {backend.config.url}")
    try:
        report = replay(backend, spool, batch_size=args.batch_size)
    except SpoolBusy as exc:
        err.print(f"[red]{exc}[/]")
        return 1
    except (ClusterUnavailable, SetupError) as exc:
        err.print(f"[red]cluster not ready: {exc}; the spool is kept ({spool.pending()} record(s))[/]")
        return 1
    try:
        backend.refresh()
    except Exception:  # noqa: BLE001
        pass
    console.print(f"sent {report.sent}, dead-lettered {report.dead} (+{report.corrupt} corrupt line(s)), "
                  f"{report.remaining} left")
    if report.dead or report.corrupt:
        console.print(f"  see {spool.dead_path}")
    if not report.complete:
        err.print(f"[red]replay stopped: {report.error}; run it again when the cluster is healthy[/]")
        return 1
    return 0


def add_cli_verbs(verb) -> None:
    """Register es-setup, kibana-setup and replay on the `veille` parser (``verb(name, func, help)``)."""
    from rich.console import Console

    def bind(func):
        import sys

        def run(args):
            console = Console() if sys.stdout.isatty() else Console(width=160)
            return func(args, console, Console(stderr=True))
        return run

    p = verb("es-setup", bind(cmd_es_setup),
             "Install the index templates, ILM (Elasticsearch) or ISM (OpenSearch) policies, write aliases "
             "and topic percolator queries on the search cluster; idempotent.")
    p.add_argument("--topics", type=Path, help="topics YAML (default: $VEILLE_TOPICS or config/topics.yaml)")
    p.add_argument("--no-topics", action="store_true", help="do not register topics as percolator queries")

    p = verb("kibana-setup", bind(cmd_kibana_setup),
             "Import the Kibana data views, saved searches and dashboard (config/kibana) with overwrite=true.")
    p.add_argument("--url", help="Kibana URL (default: $KIBANA_URL)")
    p.add_argument("--wait", type=float, default=0, help="keep trying this many seconds while Kibana starts")

    p = verb("replay", bind(cmd_replay),
             "Send the documents spooled while the search cluster was down; safe to rerun or interrupt.")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--requeue-dead-letters", action="store_true",
                   help="first move the dead-letter file back into the spool (after fixing the mapping)")
    p.add_argument("--from-store", action="store_true",
                   help="first queue every article of the embedded store (backfill a new cluster)")
    p.add_argument("--source", help="with --from-store: only this source id")
