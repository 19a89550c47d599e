"""Topic queries: the shared case table on the embedded engine, DSL shape, config validation."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from topic_cases import ARTICLES, CASES, ELECTIONS, FOOT, GREVE, INDIA  # noqa: E402

from crawler.topics import (  # noqa: E402
    QuerySyntaxError,
    Topic,
    TopicMatcher,
    TopicsFile,
    analyze,
    compile_query,
    search_index_body,
    to_search_query,
)


def test_table_is_big_enough():
    assert len(CASES) >= 40
    assert {e for _, _, e in CASES} == {True, False}


@pytest.mark.parametrize("query,article,expected", CASES, ids=[f"{q} @{a['id']}" for q, a, _ in CASES])
def test_case_table_embedded(query, article, expected):
    assert compile_query(query)(article) is expected


@pytest.mark.parametrize("query", sorted({q for q, _, _ in CASES}))
def test_every_case_has_a_search_query(query):
    dsl = to_search_query(query)
    json.dumps(dsl)  # plain JSON
    assert set(dsl) <= {"bool", "query_string", "range", "exists"}


def test_analysis_french():
    assert [s for _, s in analyze("Élections")] == [s for _, s in analyze("election")]
    assert [s for _, s in analyze("l'élection")] == [s for _, s in analyze("élection")]
    assert [s for _, s in analyze("L’ÉLECTION")] == [s for _, s in analyze("élection")]
    assert [s for _, s in analyze("journaux")] == [s for _, s in analyze("journal")]
    assert [f for f, _ in analyze("aujourd'hui Saint-Denis")] == ["aujourd'hui", "saint", "denis"]


def test_dsl_structure_is_explicit_boolean():
    dsl = to_search_query("élection OR grève sondage")
    # (élection OR grève) AND sondage, whatever the backend parser's precedence rules
    must = dsl["bool"]["must"]
    assert must[0]["bool"]["minimum_should_match"] == 1
    assert [c["query_string"]["query"] for c in must[0]["bool"]["should"]] == ["élection", "grève"]
    assert must[1]["query_string"]["query"] == "sondage"
    assert must[1]["query_string"]["fields"] == ["title", "lead", "body"]
    assert must[1]["query_string"]["default_operator"] == "AND"

    neg = to_search_query("+grève -SNCF")
    assert neg["bool"]["must_not"][0]["query_string"]["query"] == "SNCF"

    wild = to_search_query("title:chemin*")
    assert wild["query_string"]["fields"] == ["title", "title.exact"]

    prox = to_search_query('"Bardella Jordan"~2')
    assert prox["query_string"]["query"] == '"Bardella Jordan"~2'

    rng = to_search_query("published:[2024-05-01 TO 2024-05-31]")
    assert rng == {"range": {"published": {"gte": "2024-05-01||/d", "lte": "2024-05-31||/d"}}}


def test_index_body_has_analyzers_and_percolator():
    body = search_index_body(percolator=True)
    props = body["mappings"]["properties"]
    assert props["query"] == {"type": "percolator"}
    assert props["title"]["analyzer"] == "veille_fr"
    assert props["title"]["fields"]["exact"]["analyzer"] == "veille_exact"
    assert "veille_fr" in body["settings"]["analysis"]["analyzer"]
    assert "query" not in search_index_body()["mappings"]["properties"]


@pytest.mark.parametrize("bad", [
    "élection AND", "((élection", '"unterminated', "titel:élection", "title:foo:bar",
    "/regex/", "title:[a TO b]", "", "   ", "AND", "published:élection",
])
def test_bad_queries_raise(bad):
    with pytest.raises(QuerySyntaxError):
        compile_query(bad)
    with pytest.raises(QuerySyntaxError):
        to_search_query(bad)


def _topic(**kw):
    base = {"id": "t", "name": "T", "query": "élection"}
    base.update(kw)
    return Topic.model_validate(base)


def test_matcher_filters_and_ids():
    topics = [
        _topic(id="elec", query="élection"),
        _topic(id="elec-figaro", query="élection", outlets=["Le Figaro"]),
        _topic(id="elec-monde", query="élection", outlets=["lemonde"]),  # source id also accepted
        _topic(id="elec-en", query="élection", languages=["en"]),
        _topic(id="greve", query="grève OR cheminots"),
        _topic(id="off", query="élection", enabled=False),
    ]
    m = TopicMatcher(topics)
    assert m.match(ELECTIONS) == ["elec", "elec-monde"]
    assert m.match(INDIA) == ["elec", "elec-en"]
    assert m.match(GREVE) == ["greve"]
    assert m.match(FOOT) == []
    assert [t.id for t in m.matching_topics(GREVE)] == ["greve"]


def test_topic_search_query_adds_filters():
    q = _topic(query="élection", outlets=["Le Monde"], languages=["FR"]).search_query()
    assert q["bool"]["must"][0] == to_search_query("élection")
    flt = q["bool"]["filter"]
    assert {"terms": {"outlet.norm": ["le monde"]}} in flt[0]["bool"]["should"]
    assert flt[1] == {"terms": {"lang.norm": ["fr"]}}


def test_topic_model_rejects_bad_query():
    with pytest.raises(Exception) as exc:
        _topic(query="élection AND (")
    assert "query" in str(exc.value)
    with pytest.raises(Exception):
        _topic(mode="digest")  # no period
    t = _topic(mode="digest", digest_period="1h")
    assert t.digest_seconds == 3600


def test_topics_file_cross_references():
    data = {
        "targets": {"log": {"type": "log"}},
        "topics": [{"id": "a", "name": "A", "query": "x", "targets": ["log"]}],
    }
    assert TopicsFile.model_validate(data).get("a").targets == ["log"]
    data["topics"][0]["targets"] = ["nope"]
    with pytest.raises(Exception, match="unknown target 'nope'"):
        TopicsFile.model_validate(data)
    data["topics"] = [{"id": "a", "name": "A", "query": "x"}, {"id": "a", "name": "B", "query": "y"}]
    with pytest.raises(Exception, match="duplicate topic id"):
        TopicsFile.model_validate(data)


config = pytest.importorskip("crawler.config")


def _write(tmp_path, text):
    p = tmp_path / "topics.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_load_yaml_names_line_of_bad_query(tmp_path):
    p = _write(tmp_path, """\
        targets:
          ops: {type: log}
        topics:
          - id: ok
            name: OK
            query: 'élection AND sondage'
          - id: broken
            name: Broken
            query: 'élection AND (grève OR'
            targets: [ops]
        """)
    with pytest.raises(config.ConfigError) as exc:
        config.load_yaml(p, TopicsFile)
    assert exc.value.line == 9
    assert exc.value.field == "topics.1.query"
    assert "topics.yaml:9" in str(exc.value)


def test_load_yaml_names_line_of_unknown_target_and_field(tmp_path):
    p = _write(tmp_path, """\
        targets:
          ops: {type: log}
        topics:
          - id: a
            name: A
            query: élection
            targets:
              - ops
              - slack-typo
        """)
    with pytest.raises(config.ConfigError) as exc:
        config.load_yaml(p, TopicsFile)
    assert exc.value.line == 9
    p = _write(tmp_path, """\
        topics:
          - id: a
            name: A
            query: 'titel:élection'
        """)
    with pytest.raises(config.ConfigError) as exc:
        config.load_yaml(p, TopicsFile)
    assert exc.value.line == 4 and "unknown field 'titel'" in str(exc.value)


def test_shipped_topics_yaml_loads():
    path = Path(__file__).resolve().parent.parent / "config" / "topics.yaml"
    topics = config.load_yaml(path, TopicsFile)
    assert topics.topics
    TopicMatcher(topics.topics).match(ELECTIONS)
    for a in ARTICLES:
        assert isinstance(TopicMatcher(topics.topics).match(a), list)


# --------------------------------------------------------------------------- same table on OpenSearch

from searchnode_fixture import search_node  # noqa: E402,F401


@pytest.mark.integration
def test_case_table_on_opensearch_percolator(search_node):  # noqa: F811
    """Both engines agree: every case percolated (and searched) on a real OpenSearch node."""
    import uuid

    opensearchpy = pytest.importorskip("opensearchpy")
    es = opensearchpy.OpenSearch(hosts=[search_node.url], timeout=60)
    perc, arts = f"topics-perc-{uuid.uuid4().hex[:8]}", f"topics-arts-{uuid.uuid4().hex[:8]}"
    for name, percolator in ((perc, True), (arts, False)):
        body = search_index_body(percolator=percolator)
        body["settings"].update(number_of_shards=1, number_of_replicas=0)
        es.indices.create(index=name, body=body)
    try:
        queries = sorted({q for q, _, _ in CASES})
        for i, q in enumerate(queries):
            es.index(index=perc, id=str(i), body={"query": to_search_query(q)})
        for a in ARTICLES:
            es.index(index=arts, id=a["id"], body=a)
        es.indices.refresh(index=f"{perc},{arts}")
        mismatches = []
        for q, a, expected in CASES:
            r = es.search(index=perc, body={"size": 500, "query": {"percolate": {"field": "query", "document": a}}})
            percolated = q in {queries[int(h["_id"])] for h in r["hits"]["hits"]}
            r = es.search(index=arts, body={"query": {"bool": {"must": [to_search_query(q)],
                                                               "filter": [{"ids": {"values": [a["id"]]}}]}}})
            searched = r["hits"]["total"]["value"] == 1
            if percolated is not expected or searched is not expected:
                mismatches.append((q, a["id"], percolated, searched, expected))
        assert mismatches == []
    finally:
        es.indices.delete(index=f"{perc},{arts}", ignore_unavailable=True)
