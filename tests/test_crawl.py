"""End-to-end crawls of local sites with the real spider and pipelines (`veille crawl` in a subprocess)."""
from __future__ import annotations

import os
import random

import pytest

from crawler.mirror.server import Route, SiteServer

PARA = ("Le gouvernement a présenté mardi un plan de soutien aux agriculteurs touchés par la sécheresse, "
        "avec des aides d'urgence versées avant la fin de l'année, a indiqué le ministère de l'Agriculture.")
PARA2 = ("Les organisations syndicales ont salué « une première étape » mais réclament des moyens durables "
         "pour les exploitations les plus fragiles, notamment dans le Sud-Ouest et en Occitanie.")
PARA3 = ("Selon les chiffres publiés par la préfecture, plus de trois cents communes sont concernées par des "
         "restrictions d'eau renforcées depuis le début du mois de septembre.")


def article_html(title: str, paragraphs: list[str], charset: str | None = "utf-8", close: bool = True) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (f"<!DOCTYPE html><html lang=\"fr\"><head>{meta}<title>{title}</title>"
            f'<meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="2026-11-20T08:00:00+01:00"></head>'
            f"<body><header><nav><a href='/'>Accueil</a> <a href='/politique/'>Politique</a></nav></header>"
            f"<main><article><h1>{title}</h1>{body}</article></main>"
            f"<footer><a href='/mentions-legales'>Mentions légales</a></footer></body></html>")
    return html if close else html[: html.index(paragraphs[-1][:40]) + 20]


def sources_yaml(base: str, *, feeds=("/rss.xml",), sitemaps=("/sitemap.xml",), sections=("/politique/",),
                 source_id: str = "testinfo") -> str:
    def urls(paths):
        return "[" + ", ".join(base + p for p in paths) + "]"

    return (f"sources:\n  - id: {source_id}\n    name: Test Info\n    feeds: {urls(feeds)}\n"
            f"    sitemaps: {urls(sitemaps)}\n    sections: {urls(sections)}\n"
            f"    allow: ['-\\d+\\.html$']\n")


@pytest.fixture
def site():
    with SiteServer() as server:
        yield server


def feed(base: str, links: list[str]) -> str:
    items = "".join(f"<item><title>t</title><link>{base}{link}</link></item>" for link in links)
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Test</title>{items}</channel></rss>"


def sitemap(base: str, links: list[str]) -> str:
    urls = "".join(
        f"<url><loc>{base}{link}</loc><news:news><news:publication_date>2026-11-20T08:00:00+01:00"
        f"</news:publication_date></news:news></url>" for link in links)
    return ("<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
            f"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>{urls}</urlset>")


def serve_basic_site(site: SiteServer) -> None:
    """Three articles, each found by exactly one discovery channel, plus a robots.txt-forbidden one."""
    b = site.base_url
    site.add("/robots.txt", Route(body="User-agent: *\nDisallow: /prive/\n", content_type="text/plain"))
    site.add("/rss.xml", Route(body=feed(b, ["/politique/par-flux-1.html?utm_source=rss", "/prive/secret-9.html"]),
                               content_type="application/rss+xml", etag="feed-v1", last_modified=1763600000))
    site.add("/sitemap.xml", Route(body=sitemap(b, ["/politique/par-sitemap-2.html"]),
                                   content_type="application/xml", etag="sitemap-v1"))
    site.add("/politique/", Route(body="<html><body><a href='/politique/par-rubrique-3.html'>A</a>"
                                       "<a href='/mentions-legales'>M</a><a href='https://ailleurs.example/x-4.html'>X</a>"
                                       "</body></html>"))
    for n, slug in enumerate(["par-flux-1", "par-sitemap-2", "par-rubrique-3"], start=1):
        site.add(f"/politique/{slug}.html", Route(body=article_html(f"Article {slug}", [PARA, PARA2, PARA3])))
    site.add("/prive/secret-9.html", Route(body=article_html("Secret", [PARA])))


def test_discovers_from_feed_sitemap_and_sections_politely(site, crawl):
    serve_basic_site(site)
    result = crawl(sources_yaml(site.base_url))
    assert result.proc.returncode == 0, result.output
    urls = sorted(a["url"] for a in result.articles())
    assert urls == [f"{site.base_url}/politique/{s}.html" for s in ("par-flux-1", "par-rubrique-3", "par-sitemap-2")]
    assert not site.requests_for("/prive/secret-9.html"), "robots.txt Disallow must be honoured"
    stats = result.stats("testinfo")
    assert stats["robots_forbidden"] == 1
    assert stats["skipped/offsite"] == 1
    assert stats["articles/new"] == 3
    user_agents = {r.header("User-Agent") for r in site.requests}
    assert all("Veille/" in ua and "contact" in ua for ua in user_agents)
    assert "Crawl summary" in result.output and "testinfo" in result.output
    article = result.articles()[0]
    assert PARA in article["body"] and "Mentions légales" not in article["body"]


def test_second_crawl_fetches_nothing_known_and_uses_conditional_get(site, crawl):
    serve_basic_site(site)
    crawl(sources_yaml(site.base_url))
    site.clear_requests()
    second = crawl(sources_yaml(site.base_url))
    article_requests = [r for r in site.requests if r.path.endswith(".html")]
    assert article_requests == [], f"known articles fetched again: {article_requests}"
    feed_requests = site.requests_for("/rss.xml")
    assert feed_requests and feed_requests[0].header("If-None-Match") == '"feed-v1"'
    assert feed_requests[0].header("If-Modified-Since")
    stats = second.stats("testinfo")
    assert stats["not_modified"] == 2  # feed and sitemap answered 304
    assert stats["skipped/known"] == 1  # the section page still links to a stored article
    assert len(second.articles()) == 3


def test_config_typo_names_file_line_and_field(site, crawl, tmp_path):
    text = sources_yaml(site.base_url).replace("    allow:", "    alow:")
    result = crawl(text, check=False)
    assert result.proc.returncode == 2
    assert "sources.yaml:7" in result.output and "alow" in result.output and "unknown field" in result.output


def test_redirects_off_site_and_to_private_addresses_are_refused(site, crawl):
    b = site.base_url
    with SiteServer() as other:  # another local service, on a port that is not allowlisted
        other.add("/admin-1.html", Route(body=article_html("Interne", [PARA])))
        site.add("/robots.txt", Route(body="User-agent: *\n", content_type="text/plain"))
        site.add("/rss.xml", Route(body=feed(b, ["/go/vers-ailleurs-1.html", "/go/vers-interne-2.html",
                                                 "/go/vers-metadata-3.html", "/ok/normal-4.html"]),
                                   content_type="application/rss+xml"))
        site.add("/go/vers-ailleurs-1.html", Route(status=302, headers={"Location": "https://ailleurs.example/a-1.html"}))
        site.add("/go/vers-interne-2.html", Route(status=302, headers={"Location": f"{other.base_url}/admin-1.html"}))
        site.add("/go/vers-metadata-3.html", Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data-3.html"}))
        site.add("/ok/normal-4.html", Route(body=article_html("Normal", [PARA, PARA2])))
        result = crawl(sources_yaml(b, sitemaps=(), sections=()).replace("    sitemaps: []\n    sections: []\n", ""),
                       allow=f"127.0.0.1:{site.port}")
        assert not other.requests, "the crawler reached a non-allowlisted local service after a redirect"
    stats = result.stats("testinfo")
    assert [a["title"] for a in result.articles()] == ["Normal"]
    assert stats["skipped/private_address"] >= 1
    assert stats["offsite_filtered"] >= 2  # ailleurs.example and the metadata address are off-site too


def test_private_source_is_refused_unless_allowlisted(site, crawl):
    serve_basic_site(site)
    result = crawl(sources_yaml(site.base_url), allow="")
    assert site.requests == []
    assert result.stats("testinfo")["skipped/private_address"] >= 3
    assert result.articles() == []


def test_charsets_are_decoded_right(site, crawl):
    b = site.base_url
    text_fr = "L’été où Noël coûta 30 € : œuvres, cœur et « guillemets » à Nîmes."
    latin = "Élève à l'école, garçon déçu : où êtes-vous ? Hélène répondit à Noël."
    pages = {
        # ISO-8859-1, declared in the HTTP header only.
        "/p/latin-1.html": Route(body=article_html("Latin", [latin, PARA, PARA2], charset=None).encode("iso-8859-1"),
                                 content_type="text/html; charset=ISO-8859-1"),
        # windows-1252 declared in a meta tag only (curly quotes, euro, oe ligature).
        "/p/cp1252-2.html": Route(body=article_html("Cp1252", [text_fr, PARA, PARA2], charset="windows-1252").encode("cp1252"),
                                  content_type="text/html"),
        # Mislabelled: the header says ISO-8859-1 but the bytes are windows-1252.
        "/p/mislabel-3.html": Route(body=article_html("Faux latin", [text_fr, PARA, PARA2], charset=None).encode("cp1252"),
                                    content_type="text/html; charset=iso-8859-1"),
        # Mislabelled the other way: the header says ISO-8859-1 but the bytes are UTF-8.
        "/p/utf8-4.html": Route(body=article_html("UTF-8", [latin, PARA, PARA2], charset=None).encode("utf-8"),
                                content_type="text/html; charset=iso-8859-1"),
    }
    site.add("/robots.txt", Route(body="User-agent: *\n", content_type="text/plain"))
    site.add("/rss.xml", Route(body=feed(b, list(pages)), content_type="application/rss+xml"))
    for path, route in pages.items():
        site.add(path, route)
    result = crawl(sources_yaml(b, sitemaps=(), sections=()).replace("    sitemaps: []\n    sections: []\n", ""))
    bodies = {a["title"]: a["body"] for a in result.articles()}
    assert set(bodies) == {"Latin", "Cp1252", "Faux latin", "UTF-8"}, result.output[-3000:]
    assert latin in bodies["Latin"]
    assert text_fr in bodies["Cp1252"]
    assert text_fr in bodies["Faux latin"]
    assert latin in bodies["UTF-8"], bodies["UTF-8"][:200]


def test_bad_responses_are_counted_and_lose_nothing(site, crawl):
    b = site.base_url
    rng = random.Random(7)
    site.add("/robots.txt", Route(body="User-agent: *\n", content_type="text/plain"))
    broken_feed = feed(b, ["/a/bon-1.html", "/a/tronque-2.html"]).replace("</channel></rss>", "<item><title>oops</item>")
    site.add("/rss.xml", Route(body=broken_feed, content_type="application/rss+xml"))
    site.add("/sitemap.xml", Route(body=sitemap(b, ["/a/absent-3.html", "/a/panne-4.html", "/a/binaire-5.html",
                                                    "/a/enorme-6.html", "/a/vide-7.html", "/a/lent-8.html"]),
                                   content_type="application/xml"))
    site.add("/a/bon-1.html", Route(body=article_html("Bon", [PARA, PARA2, PARA3])))
    site.add("/a/tronque-2.html", Route(body=article_html("Tronqué", [PARA, PARA2, PARA3], close=False)))
    site.add("/a/absent-3.html", Route(status=404, body="introuvable"))
    site.add("/a/panne-4.html", Route(status=500, body="erreur"))
    site.add("/a/binaire-5.html", Route(body=bytes(rng.getrandbits(8) for _ in range(5000)),
                                        content_type="application/octet-stream"))
    site.add("/a/enorme-6.html", Route(body=article_html("Énorme", [PARA] * 3000)))
    site.add("/a/vide-7.html", Route(body="<html><body><nav><a href='/'>Accueil</a></nav></body></html>"))
    site.add("/a/lent-8.html", Route(body=article_html("Lent", [PARA]), delay=2.5))
    result = crawl(sources_yaml(b, sections=()).replace("    sections: []\n", ""),
                   "-s", "DOWNLOAD_MAXSIZE=200000", "-s", "RETRY_TIMES=2", "-s", "DOWNLOAD_TIMEOUT=1")
    assert result.proc.returncode == 0, result.output[-3000:]
    stats = result.stats("testinfo")
    assert stats["errors/feed_malformed"] == 1
    assert stats["errors/truncated_html"] == 1
    assert stats["errors/http_404"] == 1
    assert stats["errors/http_500"] == 1
    assert stats["skipped/not_html"] == 1
    assert stats["skipped/too_large"] == 1
    assert stats["skipped/no_text"] == 1
    assert stats["errors/timeout"] == 1
    assert len(site.requests_for("/a/panne-4.html")) == 3, "a 500 is retried (RETRY_TIMES=2) before it is recorded"
    assert len(site.requests_for("/a/absent-3.html")) == 3, "a 404 is retried too (fresh articles lag on CDNs)"
    titles = sorted(a["title"] for a in result.articles())
    assert titles == ["Bon", "Tronqué"]
    tronque = next(a for a in result.articles() if a["title"] == "Tronqué")
    assert PARA in tronque["body"]
    seen = {r["url"]: r for r in map(dict, result.db.execute("SELECT * FROM seen_urls").fetchall())}
    assert seen[f"{b}/a/panne-4.html"]["status"] == 500 and seen[f"{b}/a/panne-4.html"]["error"] == "HTTP 500"
    assert seen[f"{b}/a/absent-3.html"]["status"] == 404
    assert seen[f"{b}/a/lent-8.html"]["error"] == "timeout"
    assert "Crawl summary" in result.output and "http_500 1" in result.output


def test_raw_pages_are_archived_and_reprocess_rebuilds_articles(site, crawl, run_veille):
    serve_basic_site(site)
    first = crawl(sources_yaml(site.base_url))
    before = {a["id"]: a for a in first.articles()}
    assert all(a["raw_ref"] and a["raw_ref"].startswith("warc/") for a in before.values())
    # Damage the stored bodies, as an older cleaner might have left them: reprocess restores them from WARC.
    db = first.db
    db.execute("UPDATE articles SET body = body || char(10) || 'Partager sur Facebook', body_hash = 'stale'")
    db.commit()
    result = run_veille("reprocess", "--sources-file", str(first.data.parent / "sources.yaml"))
    assert "3 updated" in result.output, result.output
    after = {a["id"]: a for a in first.articles()}
    assert all(after[i]["body"] == before[i]["body"] for i in before)
    assert all(a["revision"] == 2 for a in after.values())


def test_scrapy_crawl_command_works_too(site, tmp_path):
    serve_basic_site(site)
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(site.base_url), encoding="utf-8")
    env = {**os.environ, "VEILLE_DATA": str(tmp_path / "data"), "VEILLE_SOURCES": str(sources)}
    proc = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "news", "-a", "source=testinfo",
                           "-s", "VEILLE_ALLOWED_HOSTS=127.0.0.1", "-s", "DOWNLOAD_DELAY=0",
                           "-s", "AUTOTHROTTLE_ENABLED=False"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'veille/articles/new': 3" in proc.stderr
