"""Wire-copy stories in the crawl: clusters continue across crawls (index rebuilt from the store),
the canonical member follows the rules, and the CLI shows the story."""
from __future__ import annotations

import json

from crawler.mirror.server import Route, SiteServer
from test_crawl import article_html, feed

DISPATCH = [
    "Le trafic ferroviaire sera fortement perturbé jeudi sur l'ensemble du réseau à l'appel de quatre "
    "syndicats de cheminots qui contestent la réforme du fret, a annoncé mercredi la SNCF.",
    "Un TGV sur deux circulera en moyenne, et seulement un TER sur trois dans plusieurs régions, dont "
    "l'Occitanie, les Hauts-de-France et la Bourgogne-Franche-Comté, selon les prévisions de la direction.",
    "Les syndicats réclament le maintien de l'activité de fret au sein du groupe public et des garanties "
    "pour les quelque 4.500 salariés concernés par le plan de discontinuité imposé par Bruxelles.",
    "Le ministre des Transports a appelé au « sens des responsabilités » des organisations syndicales, "
    "rappelant que des négociations étaient prévues la semaine prochaine au ministère.",
    "La direction invite les voyageurs à reporter leurs déplacements ou à consulter l'application SNCF "
    "Connect, où les horaires seront mis à jour mercredi à partir de 17 heures.",
]
OTHER_STORY = [
    "Le Vendée Globe a pris le départ dimanche des Sables-d'Olonne sous un soleil radieux, devant une "
    "foule de spectateurs massés le long du chenal pour saluer les quarante skippers engagés.",
    "Les navigateurs doivent parcourir environ 45.000 kilomètres en solitaire, sans escale et sans "
    "assistance, avant de revenir en Vendée dans un peu plus de deux mois pour les plus rapides.",
    "Plusieurs favoris ont choisi une option au large dès la première nuit pour éviter une zone de vents "
    "faibles annoncée au large du cap Finisterre, selon les routeurs interrogés.",
]


def serve_outlet(site: SiteServer, articles: dict[str, tuple[str, list[str]]]) -> None:
    site.add("/robots.txt", Route(body="User-agent: *\n", content_type="text/plain"))
    site.add("/rss.xml", Route(body=feed(site.base_url, list(articles)), content_type="application/rss+xml"))
    for path, (title, paragraphs) in articles.items():
        site.add(path, Route(body=article_html(title, paragraphs)))


def two_sources(a: SiteServer, b: SiteServer) -> str:
    return "sources:\n" + "".join(
        f"  - id: {sid}\n    name: {name}\n    feeds: [{site.base_url}/rss.xml]\n    allow: ['-\\d+\\.html$']\n"
        for sid, name, site in (("alpha", "Alpha Info", a), ("beta", "Beta Actu", b)))


def test_story_continues_across_crawls_and_canonical_follows_agency_credit(crawl, run_veille):
    with SiteServer() as alpha, SiteServer() as beta:
        serve_outlet(alpha, {"/eco/greve-sncf-1.html": ("Grève SNCF : un TGV sur deux jeudi", DISPATCH),
                             "/sport/vendee-globe-2.html": ("Vendée Globe : c'est parti", OTHER_STORY)})
        serve_outlet(beta, {})
        first = crawl(two_sources(alpha, beta))
        stored = {a["title"]: a for a in first.articles()}
        assert len(stored) == 2
        story = stored["Grève SNCF : un TGV sur deux jeudi"]["cluster_id"]
        assert story and stored["Vendée Globe : c'est parti"]["cluster_id"] != story

        # A second crawl, a new process: beta republishes the dispatch with small edits and the agency credit.
        copy = ["PARIS (AFP) - " + DISPATCH[0], *DISPATCH[1:4], DISPATCH[4].replace("17 heures", "17h"),
                "(Avec AFP)"]
        serve_outlet(beta, {"/france/sncf-greve-jeudi-3.html": ("Grève à la SNCF : le trafic très perturbé jeudi", copy)})
        second = crawl(two_sources(alpha, beta))
        articles = {a["source"]: a for a in second.articles() if a["title"].startswith("Grève")}
        assert articles["beta"]["cluster_id"] == story, "the copy must join the story found in the earlier crawl"
        assert articles["beta"]["dup_of"] == articles["alpha"]["id"]
        assert articles["beta"]["similarity"] is not None
        # The agency-credited copy becomes the canonical member; the first one is no longer canonical.
        assert articles["beta"]["is_canonical"] == 1 and articles["alpha"]["is_canonical"] == 0

        clusters = run_veille("clusters")
        assert story in clusters.output and "Alpha Info, Beta Actu" in clusters.output
        shown = run_veille("show", articles["alpha"]["id"])
        assert "also carried by Beta Actu" in shown.output
        hits = run_veille("search", "grève AND fret", "--json")
        assert {json.loads(line)["cluster_id"] for line in hits.proc.stdout.splitlines()} == {story}


def test_dedup_command_clusters_json_lines(run_veille, tmp_path):
    docs = [
        {"id": "a", "text": "\n".join(DISPATCH)},
        {"id": "b", "text": "\n".join(OTHER_STORY)},
        {"id": "c", "text": "PARIS (AFP) - " + "\n".join(DISPATCH[:4]) + "\n(Avec AFP)"},
        {"id": "d", "text": "Bref."},
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    result = run_veille("dedup", str(path))
    rows = [json.loads(line) for line in result.proc.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    clusters = {r["id"]: r["cluster"] for r in rows}
    assert clusters["a"] == clusters["c"]
    assert len({clusters["a"], clusters["b"], clusters["d"]}) == 3


def test_concurrent_crawl_processes_share_stories_through_the_store(tmp_path):
    """Two crawl processes (two trackers on one store): the second sees the first's article."""
    from crawler.items import article_id
    from crawler.store import SQLiteStore
    from pipelines.dedup import StoryTracker

    store = SQLiteStore(tmp_path / "veille.sqlite3")
    first, second = StoryTracker(store, 14, catch_up_every=0), StoryTracker(store, 14, catch_up_every=0)

    def article(url: str, outlet: str, paragraphs: list[str]) -> dict:
        return {"id": article_id(url), "url": url, "source": outlet.lower(), "outlet": outlet, "title": "t",
                "lead": "", "body": "\n".join(paragraphs), "fetched": "2026-11-26T08:00:00+00:00", "word_count": 100}

    a = article("http://a.example/1", "Alpha", DISPATCH)
    a.update(first.assign(a))
    store.index_article(a)
    b = article("http://b.example/2", "Beta", ["PARIS (AFP) - " + DISPATCH[0], *DISPATCH[1:]])
    b.update(second.assign(b))
    assert b["cluster_id"] == a["cluster_id"] and b["dup_of"] == a["id"]
