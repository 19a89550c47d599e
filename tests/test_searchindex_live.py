"""The search-cluster path against a real node (OpenSearch 2.19 from tests/searchnode, or VEILLE_TEST_SEARCH_URL).

What this proves, on a real engine: es-setup (templates with the French analyzer, write aliases,
percolator topics; ISM when the plugin is there -- the Maven-built test node has no ISM plugin,
so the test checks it is reported as skipped), a real `veille crawl` of the local mirror indexed
through the bulk helper, `veille search` with French stemming/accents, revisions, percolation,
and a node killed mid-crawl: the crawl goes on, the spool holds what was not indexed, and
`veille replay` after the restart leaves every article in the index exactly once.
What it does not prove: Elasticsearch-specific behaviour (ILM, the elasticsearch-py client against
a real ES; covered only by the fault tests' fake) and Kibana (import runs only when KIBANA_URL is set).
Each test uses its own index prefix, so a shared node is not polluted.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import crawl_args
from searchnode_fixture import private_search_node, search_node  # noqa: F401
from crawler.items import article_id
from crawler.searchindex import ClusterArticleIndex, ClusterConfig, kibana_import, load_json, make_backend
from crawler.spool import Spool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
VEILLE = str(REPO / ".venv" / "bin" / "veille") if (REPO / ".venv" / "bin" / "veille").exists() else "veille"

ELECTION = {
    "id": "live-lemonde-election", "outlet": "lemonde", "section": "politique",
    "slug": "municipales-l-election-partielle-de-villeurbanne-fixee-au-printemps",
    "title": "Municipales : l'élection partielle de Villeurbanne fixée au printemps",
    "lead": "Le tribunal administratif a annulé le scrutin de novembre ; les électeurs retourneront aux urnes.",
    "paragraphs": [
        "Le tribunal administratif de Lyon a annulé mardi l'election municipale de Villeurbanne, relevant des "
        "irrégularités dans plusieurs bureaux de vote lors du second tour.",
        "La préfecture a fixé la date du nouveau scrutin au mois de mars. Les listes candidates disposent de "
        "trois semaines pour déposer leurs dossiers.",
        "Les élus d'opposition saluent une décision qui « rétablit la sincérité du vote », tandis que la majorité "
        "sortante annonce qu'elle ne fera pas appel.",
    ],
    "authors": ["Jeanne Morel"], "published": "2024-11-20T18:30:00+01:00", "seed": False, "story": None,
    "page_junk": [],
}


def cluster_env(url: str, tmp: Path, prefix: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTICSEARCH_", "OPENSEARCH_", "VEILLE_"))}
    env.update(OPENSEARCH_URL=url, VEILLE_INDEX_PREFIX=prefix, VEILLE_DATA=str(tmp / "data"), PYTHONUNBUFFERED="1",
               VEILLE_INDEX_BACKOFF="0.2", VEILLE_INDEX_RETRIES="1", VEILLE_INDEX_TIMEOUT="5")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def veille(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([VEILLE, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def crawl_cmd(sources: Path) -> list[str]:
    return [VEILLE, *crawl_args(sources, "--log-level", "WARNING", "-s", "VEILLE_ALERTS_ENABLED=False")]


def backend(url: str, prefix: str):
    return make_backend(ClusterConfig.from_env({"OPENSEARCH_URL": url, "VEILLE_INDEX_PREFIX": prefix}))


@pytest.fixture
def prefix(search_node):  # noqa: F811
    name = f"vt{uuid.uuid4().hex[:8]}"
    yield name
    be = backend(search_node.url, name)
    for path in (f"/{name}-*", f"/_index_template/{name}-*"):
        be.request("DELETE", path)
    be.close()


@pytest.fixture
def mirror():
    from crawler.mirror import Mirror, load_articles

    m = Mirror(load_articles() + [ELECTION]).start()
    yield m
    m.stop()


def hold_articles_after(mirror, served: int) -> threading.Event:
    """Serve the first `served` article pages, hold the others until the returned event is set.

    This makes "the node dies mid-crawl" deterministic: however fast the crawl, articles are still
    waiting to be fetched when the node is killed.
    """
    release, lock, count = threading.Event(), threading.Lock(), [0]

    def gated(route):
        def answer(_record):
            with lock:
                count[0] += 1
                first = count[0] <= served
            if not first:
                release.wait(60)
            return route
        return answer

    for oid, site in mirror.outlets.items():
        for rec in mirror.by_outlet(oid):
            site.add(rec["path"], gated(site.routes[rec["path"]]))
    return release


def stored_articles(tmp: Path) -> list[dict]:
    from crawler.store import SQLiteStore

    store = SQLiteStore.in_data_dir(tmp / "data")
    try:
        return store.articles()
    finally:
        store.close()


def all_ids(be, kind="articles") -> list[str]:
    be.request("POST", f"/{be.names.aliases()[kind]}/_refresh")
    status, res = be.request("POST", f"/{be.names.aliases()[kind]}/_search",
                             {"size": 1000, "_source": False, "query": {"match_all": {}}})
    assert status == 200, res
    return [h["_id"] for h in res["hits"]["hits"]]


def test_setup_installs_template_alias_topics_idempotently(search_node, prefix, tmp_path):  # noqa: F811
    env = cluster_env(search_node.url, tmp_path, prefix)
    first = veille(env, "es-setup")
    assert first.returncode == 0, first.stdout + first.stderr
    again = veille(env, "es-setup")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"alias {prefix}-articles -> {prefix}-articles-000001 (kept)" in again.stdout
    be = backend(search_node.url, prefix)
    # ISM: installed when the plugin exists, reported as skipped otherwise (the Maven test node has none)
    assert "ISM policy" in first.stdout
    status, _ = be.request("GET", "/_plugins/_ism/policies/x")
    if status in (400, 405):
        assert "skipped, the index-management plugin is not installed" in first.stdout
    status, tpl = be.request("GET", f"/_index_template/{prefix}-articles")
    assert status == 200 and tpl["index_templates"][0]["index_template"]["index_patterns"] == [f"{prefix}-articles-*"]
    assert be.alias_indices(f"{prefix}-articles") == [f"{prefix}-articles-000001"]
    status, aliases = be.request("GET", f"/_alias/{prefix}-articles")
    assert aliases[f"{prefix}-articles-000001"]["aliases"][f"{prefix}-articles"]["is_write_index"] is True
    # the analyzer of the template, on the real engine
    status, res = be.request("POST", f"/{prefix}-articles/_analyze",
                             {"analyzer": "veille_fr", "text": "Les Élections de l'Hôtel de Ville"})
    assert [t["token"] for t in res["tokens"]] == ["election", "hotel", "vile"]  # light_french stem
    status, mapping = be.request("GET", f"/{prefix}-articles/_mapping")
    props = mapping[f"{prefix}-articles-000001"]["mappings"]["properties"]
    assert props == load_json("articles-template.json")["template"]["mappings"]["properties"]
    # topics of config/topics.yaml became percolator queries
    from crawler.topics import load_topics

    topics = [t for t in load_topics().topics if t.enabled]
    be.request("POST", f"/{prefix}-topics/_refresh")
    status, res = be.request("GET", f"/{prefix}-topics/_count")
    assert res["count"] == len(topics)
    be.close()


def test_crawl_search_revisions_percolate(search_node, prefix, mirror, tmp_path):  # noqa: F811
    env = cluster_env(search_node.url, tmp_path, prefix, VEILLE_INDEX_BATCH_SIZE=20)
    assert veille(env, "es-setup").returncode == 0
    sources = tmp_path / "sources.yaml"
    sources.write_text(mirror.sources_yaml())
    res = subprocess.run(crawl_cmd(sources), env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    stored = stored_articles(tmp_path)
    be = backend(search_node.url, prefix)
    ids = all_ids(be)
    assert sorted(ids) == sorted(a["id"] for a in stored) and len(ids) >= 60
    assert len(all_ids(be, "runs")) == len(mirror.outlets)
    assert not Spool(tmp_path / "data" / "spool").pending()

    # veille search: the same query-string syntax as Kibana, French stemming and accents
    election_id = article_id(next(r["url"] for r in mirror.articles if r["id"] == ELECTION["id"]))
    for query in ("élections", "ELECTION", "election AND Villeurbanne", "title:élection", "électeur",
                  '"élection partielle"'):
        out = veille(env, "search", query, "--json")
        assert out.returncode == 0, out.stderr
        hits = [json.loads(line)["id"] for line in out.stdout.splitlines() if line.strip()]
        assert election_id in hits, (query, hits)
    out = veille(env, "search", "élections AND météo", "--json")  # default operator AND
    assert out.stdout.strip() == ""
    out = veille(env, "search", "élection", "--source", "bfmtv", "--json")
    assert out.stdout.strip() == ""
    bad = veille(env, "search", "title:(unclosed", "--json")
    assert bad.returncode == 2
    # with the cluster configured but VEILLE_STORE=sqlite, the embedded store answers (same hits here)
    out = veille({**env, "VEILLE_STORE": "sqlite"}, "search", "élection", "--json")
    assert election_id in out.stdout

    # revisions: same URL, changed body -> the live document is replaced, the old version kept
    index = ClusterArticleIndex(be)
    live = be.get(election_id)
    changed = {**live, "body": live["body"] + "\nMise à jour : la date du 16 mars est confirmée.",
               "fetched": "2099-01-01T00:00:00+00:00"}
    changed.pop("body_hash")
    assert index.index_article(changed) == "updated"
    assert index.index_article(changed) == "unchanged"  # idempotent
    assert index.index_article({**live}) == "unchanged"  # an older version arriving late changes nothing
    be.refresh()
    now = be.get(election_id)
    assert (now["revision"], now["revision_count"]) == (2, 1) and "16 mars" in now["body"]
    revisions = index.revisions(election_id)
    assert [r["revision"] for r in revisions] == [1] and revisions[0]["body"] == live["body"]
    assert revisions[0]["superseded"] == "2099-01-01T00:00:00+00:00"
    assert all_ids(be).count(election_id) == 1
    hits = [h["id"] for h in be.search("16 AND mars AND Villeurbanne")]
    assert hits == [election_id]

    # percolation: the topics registered by es-setup, on the real percolator
    from crawler.topics import TopicMatcher, load_topics

    topics = [t for t in load_topics().topics if t.enabled]
    sample = [a for a in stored if a["title"]][:25]
    for article in sample:
        assert be.percolate(article) == sorted(TopicMatcher(topics).match(article)), article["title"]
    be.close()


def test_node_killed_mid_crawl_then_replay(private_search_node, mirror, tmp_path):  # noqa: F811
    node = private_search_node
    prefix = "veille"
    env = cluster_env(node.url, tmp_path, prefix, VEILLE_INDEX_BATCH_SIZE=2, VEILLE_INDEX_FLUSH_SECONDS=0.2,
                      VEILLE_INDEX_RETRY_AFTER=2)
    assert veille(env, "es-setup", "--no-topics").returncode == 0
    sources = tmp_path / "sources.yaml"
    sources.write_text(mirror.sources_yaml())
    be = backend(node.url, prefix)
    release = hold_articles_after(mirror, served=12)
    proc = subprocess.Popen(crawl_cmd(sources), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    indexed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, res = be.request("GET", f"/{prefix}-articles/_count")
            indexed = res["count"] if status == 200 else 0
        except Exception:  # noqa: BLE001
            indexed = 0
        if indexed >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the crawl ended before the node could be killed"
    assert indexed >= 2, "the first articles were never indexed"
    node.kill()
    release.set()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err[-3000:]  # the crawl went on without the cluster

    stored = stored_articles(tmp_path)
    spool = Spool(tmp_path / "data" / "spool")
    spooled = [r for r in spool.records() if r["kind"] == "article"]
    assert spooled, "nothing was spooled: the kill came too late"
    assert len(stored) >= 60 and {r["id"] for r in spooled} <= {a["id"] for a in stored}

    # while the node is down, replay fails and keeps everything
    down = veille(env, "replay", timeout=120)
    assert down.returncode == 1 and spool.pending() >= len(spooled)

    node.restart(timeout=180)
    be = backend(node.url, prefix)
    be.request("GET", "/_cluster/health", params={"wait_for_status": "yellow"})  # NB opensearch-py: no "timeout" param
    rep = veille(env, "replay")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    ids = all_ids(be)
    assert sorted(ids) == sorted(a["id"] for a in stored)  # every article, once
    assert len(all_ids(be, "runs")) == len(mirror.outlets)
    assert spool.pending() == 0 and spool.dead_count() == 0
    again = veille(env, "replay")  # nothing left, nothing changes
    assert again.returncode == 0 and sorted(all_ids(be)) == sorted(ids)
    be.close()


def test_kibana_import():
    url = os.environ.get("KIBANA_URL")
    if not url:
        pytest.skip("KIBANA_URL not set: Kibana cannot run here; saved objects are checked by the contract tests")
    result = kibana_import(url, username=os.environ.get("KIBANA_USERNAME") or os.environ.get("ELASTICSEARCH_USERNAME"),
                           password=os.environ.get("KIBANA_PASSWORD") or os.environ.get("ELASTICSEARCH_PASSWORD"))
    assert result["success"] and result["successCount"] >= 10
    again = kibana_import(url, username=os.environ.get("KIBANA_USERNAME") or os.environ.get("ELASTICSEARCH_USERNAME"),
                          password=os.environ.get("KIBANA_PASSWORD") or os.environ.get("ELASTICSEARCH_PASSWORD"))
    assert again["success"]  # overwrite=true: idempotent
