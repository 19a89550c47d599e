"""The local search node really works: engine, French analysis, percolator, bulk, crash + restart."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from searchnode_fixture import private_search_node, search_node  # noqa: F401  (lead: move to conftest)

from crawler import searchnode

pytestmark = pytest.mark.integration

opensearchpy = pytest.importorskip("opensearchpy")
from opensearchpy import OpenSearch, helpers  # noqa: E402

FRENCH_SETTINGS = {
    "number_of_shards": 1,
    "number_of_replicas": 0,
    "analysis": {
        "filter": {
            "fr_elision": {
                "type": "elision",
                "articles_case": True,
                "articles": ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"],
            },
            "fr_stop": {"type": "stop", "stopwords": "_french_"},
            "fr_stemmer": {"type": "stemmer", "language": "light_french"},
        },
        "analyzer": {
            "veille_fr": {
                "tokenizer": "standard",
                "filter": ["fr_elision", "lowercase", "asciifolding", "fr_stop", "fr_stemmer"],
            }
        },
    },
}


def client(node) -> OpenSearch:
    return OpenSearch(hosts=[node.url], timeout=30, max_retries=2, retry_on_timeout=True)


def new_index(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tokens(es, index, text, analyzer="veille_fr"):
    res = es.indices.analyze(index=index, body={"analyzer": analyzer, "text": text})
    return [t["token"] for t in res["tokens"]]


def test_root_reports_engine_and_version(search_node):  # noqa: F811
    info = client(search_node).info()
    assert info["version"]["distribution"] == searchnode.ENGINE
    if not search_node.external:
        assert info["version"]["number"] == searchnode.ENGINE_VERSION
    assert client(search_node).cluster.health()["status"] in ("green", "yellow")


def test_french_analyzer_and_query_string(search_node):  # noqa: F811
    es = client(search_node)
    index = new_index("veille-fr")
    es.indices.create(
        index=index,
        body={"settings": FRENCH_SETTINGS, "mappings": {"properties": {"body": {"type": "text", "analyzer": "veille_fr"}}}},
    )
    try:
        assert tokens(es, index, "Élections") == tokens(es, index, "election") == ["election"]
        # elision + stop words + accents
        assert tokens(es, index, "L'élection des Présidents") == ["election", "president"]
        # the built-in french analyzer of analysis-common agrees on the accent-insensitive stem
        assert tokens(es, index, "élections", analyzer="french") == ["election"]

        es.index(index=index, id="1", body={"body": "Le résultat de l'election est tombé"}, refresh=True)
        es.index(index=index, id="2", body={"body": "Météo: beau temps sur Paris"}, refresh=True)
        hits = es.search(index=index, body={"query": {"query_string": {"query": "élections", "default_field": "body"}}})
        assert [h["_id"] for h in hits["hits"]["hits"]] == ["1"]
    finally:
        es.indices.delete(index=index)


def test_percolator(search_node):  # noqa: F811
    es = client(search_node)
    index = new_index("veille-alerts")
    es.indices.create(
        index=index,
        body={
            "settings": FRENCH_SETTINGS,
            "mappings": {
                "properties": {
                    "query": {"type": "percolator"},
                    "body": {"type": "text", "analyzer": "veille_fr"},
                }
            },
        },
    )
    try:
        es.index(index=index, id="alerte-elections",
                 body={"query": {"match": {"body": "élections municipales"}}}, refresh=True)
        es.index(index=index, id="alerte-meteo", body={"query": {"match": {"body": "tempête"}}}, refresh=True)
        res = es.search(
            index=index,
            body={"query": {"percolate": {"field": "query", "document": {"body": "Les Elections Municipales à Lyon"}}}},
        )
        assert [h["_id"] for h in res["hits"]["hits"]] == ["alerte-elections"]
    finally:
        es.indices.delete(index=index)


def test_bulk(search_node):  # noqa: F811
    es = client(search_node)
    index = new_index("veille-bulk")
    es.indices.create(index=index, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    try:
        actions = ({"_index": index, "_id": str(i), "_source": {"n": i, "title": f"article {i}"}} for i in range(500))
        ok, errors = helpers.bulk(es, actions, refresh=True)
        assert ok == 500 and not errors
        assert es.count(index=index)["count"] == 500
        # raw _bulk with a failing item is reported per item
        raw = es.bulk(body=[{"index": {"_index": index, "_id": "x"}}, {"n": "not-a-number"}])
        assert raw["errors"] is True
    finally:
        es.indices.delete(index=index)


def test_kill_and_restart_keep_data(private_search_node):  # noqa: F811
    node = private_search_node
    port, pid = node.port, node.pid
    es = client(node)
    es.indices.create(index="articles", body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    es.index(index="articles", id="a1", body={"title": "avant le crash"}, refresh=True)
    es.index(index="articles", id="a2", body={"title": "sans refresh"})  # only in the translog

    node.kill()
    assert not node.running
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
    with pytest.raises(Exception):
        client(node).info(request_timeout=2)

    url = node.restart(timeout=180)
    assert node.port == port and url == f"http://127.0.0.1:{port}"
    es = client(node)
    # NB opensearch-py: a `timeout="60s"` kwarg is taken as the HTTP timeout; server-side wait is 30s by default
    assert es.cluster.health(index="articles", wait_for_status="green", request_timeout=60)["status"] == "green"
    assert es.get(index="articles", id="a1")["_source"]["title"] == "avant le crash"
    assert es.get(index="articles", id="a2")["_source"]["title"] == "sans refresh"

    node.stop()
    assert not node.running
    assert node.pid is not None and node._proc.returncode is not None  # reaped, no orphan JVM


def test_start_failure_reports_log_tail(search_node, tmp_path):  # noqa: F811
    if searchnode.missing_tools():
        pytest.skip("needs java and mvn")
    # the port is taken by another listener: the node must fail fast with its log in the error
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        busy = sock.getsockname()[1]
        node = searchnode.SearchNode(data_dir=tmp_path / "busy", port=busy)
        with pytest.raises(searchnode.SearchNodeError) as err:
            node.start(timeout=120)
    msg = str(err.value)
    assert "last lines" in msg and "BindHttpException" in msg and "Address already in use" in msg
    assert not node.running
