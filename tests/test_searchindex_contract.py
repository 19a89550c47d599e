"""Contract between the code, the index templates and the Kibana saved objects (no real cluster).

What this proves: the JSON shipped in config/ is valid and says what the code relies on (French
analyzer chain, every field the code writes is mapped, every field a saved object uses is
mapped); the bulk actions the pipeline really emits during a crawl of the local mirror (captured
by the fake cluster of test_searchindex_faults) target the write alias with the stable article id
and only mapped, well-typed fields. What it does not prove: that Kibana renders the objects
(checked by import only in test_searchindex_live when KIBANA_URL is set).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from luqum import tree
from luqum.parser import parser as lucene

from crawler.items import article_id
from crawler.searchindex import (ARTICLE_DOC_FIELDS, ES_CONFIG_DIR, REVISION_DOC_FIELDS, RUN_DOC_FIELDS,
                                 IndexNames, kibana_objects, load_json, mapping_fields, template_body)
from conftest import crawl_args
from crawler.store import ARTICLE_COLUMNS
from test_searchindex_faults import VEILLE, FakeCluster, _check_value, _env  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def props(kind: str) -> dict:
    return load_json(f"{kind}-template.json")["template"]["mappings"]["properties"]


def fields(kind: str) -> set[str]:
    return mapping_fields(props(kind))


# --------------------------------------------------------------------------- templates

def test_all_config_json_is_valid():
    for path in ES_CONFIG_DIR.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for line in kibana_objects().decode().splitlines():
        json.loads(line)


def test_french_analyzer_chain():
    analysis = load_json("articles-template.json")["template"]["settings"]["analysis"]
    chain = analysis["analyzer"]["veille_fr"]["filter"]
    kinds = [analysis["filter"].get(f, {"type": f})["type"] for f in chain]
    assert kinds == ["elision", "lowercase", "stop", "asciifolding", "stemmer"]
    filters = analysis["filter"]
    assert filters["veille_stop"]["stopwords"] == "_french_"
    assert filters["veille_stemmer"]["language"] == "light_french"
    assert {"l", "d", "qu", "jusqu"} <= set(filters["veille_elision"]["articles"])
    p = props("articles")
    for f in ("title", "lead", "body"):
        assert p[f]["type"] == "text" and p[f]["analyzer"] == "veille_fr"
        assert p[f]["fields"]["exact"]["analyzer"] == "veille_exact"
    assert p["title"]["fields"]["keyword"]["type"] == "keyword"
    settings = load_json("articles-template.json")["template"]["settings"]
    assert settings["index"]["query"]["default_field"] == ["title", "lead", "body"]  # Kibana's Lucene bar


def test_code_writes_only_mapped_fields():
    assert set(ARTICLE_DOC_FIELDS) <= fields("articles")
    assert set(REVISION_DOC_FIELDS) <= fields("revisions")
    assert set(RUN_DOC_FIELDS) <= fields("runs")
    # every store column but the MinHash blob reaches the cluster
    assert set(ARTICLE_COLUMNS) - {"signature"} <= set(ARTICLE_DOC_FIELDS)
    p = props("articles")
    for f, t in {"published": "date", "fetched": "date", "word_count": "integer", "is_canonical": "boolean",
                 "similarity": "float", "cluster_id": "keyword", "topics": "keyword", "outlet": "keyword",
                 "authors": "text", "lang": "keyword", "url": "keyword", "revision": "integer"}.items():
        assert p[f]["type"] == t, f
    assert load_json("articles-template.json")["template"]["mappings"]["dynamic"] is False


def test_templates_target_their_alias_and_policies_are_complete():
    names = IndexNames("veille")
    for kind, alias in names.aliases().items():
        assert template_body(kind, names)["index_patterns"] == [f"{alias}-*"]
    custom = IndexNames("acme")
    assert template_body("articles", custom)["index_patterns"] == ["acme-articles-*"]
    for name in ("ilm-articles.json", "ilm-runs.json"):
        phases = load_json(name)["policy"]["phases"]
        assert "rollover" in phases["hot"]["actions"] and "delete" in phases["delete"]["actions"]
    for name in ("ism-articles.json", "ism-runs.json"):
        policy = load_json(name)["policy"]
        states = {s["name"]: s for s in policy["states"]}
        assert policy["default_state"] == "hot" and "rollover" in states["hot"]["actions"][0]
        assert states["delete"]["actions"] == [{"delete": {}}]


# --------------------------------------------------------------------------- Kibana saved objects

def _objects() -> dict[str, dict]:
    return {o["id"]: o for o in map(json.loads, kibana_objects().decode().splitlines())}


def _query_fields(query: str) -> set[str]:
    if not query.strip():
        return set()
    return {n.name for n in _walk(lucene.parse(query)) if isinstance(n, tree.SearchField)}


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _data_view_fields(obj: dict, objs: dict) -> tuple[str, set[str]]:
    ref = next(r for r in obj["references"] if r["type"] == "index-pattern")
    view = objs[ref["id"]]
    kind = "runs" if view["attributes"]["title"].startswith("veille-runs") else "articles"
    return kind, fields(kind)


def test_saved_objects_reference_existing_objects_and_mapped_fields():
    objs = _objects()
    types = {o["type"] for o in objs.values()}
    assert {"index-pattern", "search", "visualization", "dashboard"} <= types
    assert objs["veille-articles"]["attributes"]["title"] == "veille-articles-*"
    assert objs["veille-articles"]["attributes"]["timeFieldName"] in fields("articles")
    assert objs["veille-runs"]["attributes"]["timeFieldName"] in fields("runs")
    checked = 0
    for obj in objs.values():
        for ref in obj.get("references", []):
            assert ref["id"] in objs and objs[ref["id"]]["type"] == ref["type"], (obj["id"], ref)
        attrs = obj["attributes"]
        if obj["type"] in ("search", "visualization"):
            kind, mapped = _data_view_fields(obj, objs)
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            used = _query_fields(source["query"]["query"])
            if obj["type"] == "search":
                used |= set(attrs["columns"]) | {s[0] for s in attrs["sort"]}
            else:
                state = json.loads(attrs["visState"])
                for agg in state["aggs"]:
                    for key in ("field", "sortField"):
                        if key in agg["params"]:
                            used.add(agg["params"][key])
            assert used <= mapped, (obj["id"], kind, used - mapped)
            checked += len(used)
        if obj["type"] == "dashboard":
            panels = json.loads(attrs["panelsJSON"])
            names = {r["name"] for r in obj["references"]}
            assert {p["panelRefName"] for p in panels} == names
    assert checked > 20
    titles = {o["attributes"]["title"] for o in objs.values()}
    for wanted in ("latest articles", "canonical wire stories", "by outlet", "over time by outlet",
                   "biggest story clusters", "topic matches", "crawl errors"):
        assert any(wanted in t for t in titles), wanted


def test_saved_objects_follow_the_index_prefix():
    text = kibana_objects(prefix="acme").decode()
    assert "veille-articles" not in text and "acme-articles-*" in text and "acme-runs-*" in text


# --------------------------------------------------------------------------- compose / client versions

def test_compose_runs_the_elasticsearch_major_of_the_client():
    import elasticsearch

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"elasticsearch", "kibana", "setup", "veille"} <= set(services)
    version = re.compile(r"(\d+)\.\d+\.\d+\}?$")
    es_major = int(version.search(services["elasticsearch"]["image"]).group(1))
    kb_major = int(version.search(services["kibana"]["image"]).group(1))
    assert es_major == kb_major == int(elasticsearch.__versionstr__.split(".")[0]) == 8
    env = services["elasticsearch"]["environment"]
    flat = env if isinstance(env, list) else [f"{k}={v}" for k, v in env.items()]
    assert "xpack.security.enabled=true" in flat
    example = (REPO / ".env.example").read_text()
    assert "ELASTIC_PASSWORD=" in example and "KIBANA_PASSWORD=" in example
    assert re.search(r"^STACK_VERSION=(\d+)\.", example, re.M).group(1) == str(es_major)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f"elasticsearch>={es_major}" in pyproject and f"<{es_major + 1}" in pyproject


# --------------------------------------------------------------------------- actions of a real crawl

@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    from crawler.mirror import Mirror
    from crawler.store import SQLiteStore

    tmp = tmp_path_factory.mktemp("contract")
    cluster = FakeCluster().start()
    try:
        with Mirror() as mirror:
            sources = tmp / "sources.yaml"
            sources.write_text(mirror.sources_yaml())
            env = _env(cluster, tmp, VEILLE_INDEX_BATCH_SIZE="25")
            res = subprocess.run([VEILLE, *crawl_args(sources, "--log-level", "WARNING", "-s", "VEILLE_ALERTS_ENABLED=False")],
                                 env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
        store = SQLiteStore.in_data_dir(tmp / "data")
        yield {"cluster": cluster, "articles": store.articles(), "tmp": tmp, "outlets": len(mirror.outlets)}
    finally:
        cluster.stop()


def test_crawl_actions_match_the_mapping(crawled):
    cluster, stored = crawled["cluster"], crawled["articles"]
    actions = [a for a in cluster.bulk_items if a["_index"].startswith("veille-articles")]
    assert {a["_id"] for a in actions} == {a["id"] for a in stored} and len(stored) >= 50
    assert {a["op"] for a in actions} == {"index"}
    first: dict[str, dict] = {}
    for a in actions:
        first.setdefault(a["_id"], a)
    assert {a["_index"] for a in first.values()} == {"veille-articles"}  # new articles: through the write alias
    assert {a["_index"] for a in actions} <= {"veille-articles", "veille-articles-000001"}  # updates: where they live
    mapped, p = fields("articles"), props("articles")
    by_id = {a["id"]: a for a in stored}
    for action in actions:
        src = action["source"]
        assert action["_id"] == src["id"] == article_id(src["url"])
        assert set(src) <= mapped, set(src) - mapped
        for name, value in src.items():
            assert _check_value(p[name]["type"], value), (name, value)
        for name in ("id", "url", "source", "outlet", "title", "body", "fetched", "word_count", "body_hash",
                     "revision", "lang", "indexed"):
            assert src[name] not in (None, ""), name
        row = by_id[src["id"]]
        for name in ("url", "source", "outlet", "title", "body", "published", "word_count", "authors"):
            assert src[name] == row[name], name
    # story fields end up as the store has them, although the dedup pipeline rewrites them for
    # earlier members (merges, canonical changes) after those were sent
    final = cluster.docs("veille-articles")
    for name in ("cluster_id", "dup_of", "is_canonical", "similarity"):
        assert {i: d[name] for i, d in final.items()} == {i: a[name] for i, a in by_id.items()}, name
    assert sum(1 for d in final.values() if d["cluster_id"]) >= 10
    assert all(d["revision"] == 1 for d in final.values())  # re-sending story fields is not a new revision
    canon = {d["cluster_id"] for d in final.values() if d["is_canonical"]}
    assert canon == {d["cluster_id"] for d in final.values() if d["cluster_id"]}  # one canonical per story


def test_crawl_runs_match_the_mapping(crawled):
    cluster = crawled["cluster"]
    runs = [a for a in cluster.bulk_items if a["_index"] == "veille-runs"]
    assert len(runs) == crawled["outlets"]
    mapped, p = fields("runs"), props("runs")
    for action in runs:
        src = action["source"]
        assert set(src) <= mapped
        for name, value in src.items():
            assert _check_value(p[name]["type"], value), (name, value)
        assert src["status"] == "ok" and src["pages_fetched"] > 0 and src["articles_new"] > 0
    spool_dir = crawled["tmp"] / "data" / "spool"
    assert not (spool_dir / "dead-letter.ndjson").exists() and not (spool_dir / "spool.ndjson").exists()
