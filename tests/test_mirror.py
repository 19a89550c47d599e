"""The bundled local mirror: server behaviour, content, discovery channels, sources.yaml."""
from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import feedparser
import pytest
import yaml

from crawler.mirror import CHANNELS, Mirror, load_articles, synthetic_articles
from crawler.mirror.render import OUTLETS
from crawler.mirror.server import RequestRecord, Route, SiteServer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_RAW = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def fetch(url: str, headers: dict | None = None, method: str = "GET", follow: bool = True):
    """(status, headers, body) without raising on 3xx/4xx."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with (_OPENER if follow else _RAW).open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def links(html: str, base: str) -> list[str]:
    p = _Links()
    p.feed(html)
    return [urljoin(base, h).split("#")[0] for h in p.hrefs]


NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9", "news": "http://www.google.com/schemas/sitemap-news/0.9"}


@pytest.fixture(scope="module")
def mirror():
    with Mirror() as m:
        yield m


@pytest.fixture(scope="module")
def sources(mirror):
    return {s["id"]: s for s in yaml.safe_load(mirror.sources_yaml())["sources"]}


# ----------------------------------------------------------------------------- SiteServer ----------

def test_site_server_routes_head_redirect_404_and_log():
    calls = []

    def dynamic(req: RequestRecord) -> Route:
        calls.append(req)
        return Route(body=f"vous avez demandé {req.path}", content_type="text/plain; charset=utf-8")

    with SiteServer({"/a": Route(body="<p>é</p>"), "/dyn": dynamic,
                     "/old": Route(status=301, headers={"Location": "/a"})}) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:")
        status, headers, body = fetch(srv.base_url + "/a")
        assert (status, body.decode()) == (200, "<p>é</p>")
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        status, headers, body = fetch(srv.base_url + "/a", method="HEAD")
        assert status == 200 and body == b"" and headers["Content-Length"] == str(len("<p>é</p>".encode()))
        status, _, body = fetch(srv.base_url + "/dyn?q=1", headers={"X-Test": "oui"})
        assert status == 200 and body.decode() == "vous avez demandé /dyn?q=1"
        assert calls[0].header("x-test") == "oui"
        status, headers, _ = fetch(srv.base_url + "/old", follow=False)
        assert status == 301 and headers["Location"] == "/a"
        assert fetch(srv.base_url + "/old")[2] == "<p>é</p>".encode()
        assert fetch(srv.base_url + "/nope")[0] == 404
        srv.add("/nope", Route(body="now"))
        assert fetch(srv.base_url + "/nope")[0] == 200
        paths = [(r.method, r.path) for r in srv.requests]
        assert ("HEAD", "/a") in paths and ("GET", "/dyn?q=1") in paths
        assert len(srv.requests_for("/a")) == 3  # GET, HEAD, and the GET after the redirect


def test_site_server_conditional_get_and_concurrency():
    route = Route(body="<rss/>", etag="v1", last_modified=1_732_000_000.0, content_type="application/rss+xml")
    with SiteServer({"/feed": route, "/slow": Route(body="ok", delay=0.3)}) as srv:
        status, headers, _ = fetch(srv.url("/feed"))
        assert status == 200 and headers["ETag"] == '"v1"' and headers["Last-Modified"].endswith("GMT")
        assert fetch(srv.url("/feed"), {"If-None-Match": '"v1"'})[0] == 304
        assert fetch(srv.url("/feed"), {"If-None-Match": 'W/"v1", "other"'})[0] == 304
        assert fetch(srv.url("/feed"), {"If-None-Match": '"v0"'})[0] == 200
        assert fetch(srv.url("/feed"), {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
        assert fetch(srv.url("/feed"), {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})[0] == 200
        # If-None-Match wins over If-Modified-Since
        assert fetch(srv.url("/feed"), {"If-None-Match": '"v0"', "If-Modified-Since": headers["Last-Modified"]})[0] == 200
        results = []
        threads = [threading.Thread(target=lambda: results.append(fetch(srv.url("/slow"))[0])) for _ in range(8)]
        t0 = datetime.now()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 8
        assert (datetime.now() - t0).total_seconds() < 2.0  # threaded: the delays overlap
        assert len(srv.requests_for("/slow")) == 8


# ----------------------------------------------------------------------------- content ----------

def test_bundled_content_shape():
    arts = load_articles()
    assert len(arts) >= 60
    outlets = Counter(a["outlet"] for a in arts)
    assert len(outlets) >= 6
    assert {"bfmtv", "cnnfr", "franceinfo", "lemonde", "20minutes", "ouestfrance"} <= set(outlets)
    assert all(n >= 8 for n in outlets.values()), outlets
    assert sum(a["seed"] for a in arts) == 5
    for a in arts:
        assert re.fullmatch(r"[a-z0-9-]+", a["slug"]), a["id"]
        assert a["title"] and isinstance(a["lead"], str) and a["lead"]
        assert a["paragraphs"] and all(isinstance(p, str) and p.strip() for p in a["paragraphs"])
        assert set(a.get("subheadings") or []) <= set(a["paragraphs"])
        assert re.search(r"\+0[12]:00$", a["published"]) and datetime.fromisoformat(a["published"])
        assert isinstance(a["authors"], list) and a["authors"]
        for j in a["page_junk"]:
            assert j["kind"] and j["text"]
            assert j["text"] not in [a["lead"], *a["paragraphs"]], (a["id"], j)
        assert any(c in a["lead"] + "".join(a["paragraphs"]) for c in "éèàç")  # French text


def test_wire_stories_are_republished_with_edits():
    arts = load_articles()
    stories = defaultdict(list)
    for a in arts:
        if a["story"] and not a["seed"]:
            stories[a["story"]].append(a)
    assert len(stories) >= 6
    for story, copies in stories.items():
        assert 3 <= len({c["outlet"] for c in copies}) <= 6, story
        assert len({c["title"] for c in copies}) == len(copies), story  # headlines changed
    body = lambda a: " ".join([a["lead"], *a["paragraphs"]])
    assert any("(AFP) -" in body(a) for a in arts)
    assert any(a["paragraphs"][-1] == "(Avec AFP)" for a in arts)
    briefs = [a for a in arts if a["story"] and len(body(a).split()) <= 80]
    assert briefs and all(len(body(a).split()) >= 40 for a in briefs)
    # the seeds' story also has distinct, non-copy articles on the same events (hard negatives)
    assert sum(1 for a in arts if a["story"] is None and "mine" in a["title"].lower()) >= 2


# ----------------------------------------------------------------------------- serving ----------

def test_robots_feeds_sitemaps(mirror, sources):
    assert set(mirror.outlets) == set(sources) and len(sources) >= 6
    formats = set()
    for oid, srv in mirror.outlets.items():
        status, headers, body = fetch(srv.url("/robots.txt"))
        robots = body.decode()
        assert status == 200 and "Disallow: /recherche/" in robots
        sm = re.search(r"^Sitemap: (\S+)$", robots, re.M).group(1)
        assert sm in sources[oid]["sitemaps"]
        for feed in sources[oid]["feeds"]:
            status, headers, body = fetch(feed)
            assert status == 200 and "ETag" in headers and "Last-Modified" in headers
            parsed = feedparser.parse(body)
            assert not parsed.bozo, (feed, parsed.get("bozo_exception"))
            formats.add(parsed.version[:3])
            assert parsed.entries and all(e.link.startswith(srv.base_url) and e.get("published") for e in parsed.entries)
        for url in sources[oid]["sitemaps"]:
            status, headers, body = fetch(url)
            assert status == 200 and "ETag" in headers and "Last-Modified" in headers
            root = ET.fromstring(body)
            if root.tag == f"{{{NS['sm']}}}sitemapindex":
                subs = [e.text for e in root.findall("sm:sitemap/sm:loc", NS)]
                assert len(subs) >= 2
                root = ET.fromstring(fetch(subs[0])[2])
            entries = root.findall("sm:url", NS)
            assert entries
            for e in entries:
                assert e.find("news:news/news:publication_date", NS) is not None
                assert e.find("news:news/news:title", NS).text
                assert e.find("news:news/news:publication/news:language", NS).text == "fr"
    assert {"rss", "ato"} <= formats
    assert sum(1 for s in sources.values() if fetch(s["sitemaps"][0])[2].find(b"<sitemapindex") >= 0) == 1


def test_conditional_get_on_mirror(mirror, sources):
    srv = mirror.outlets["bfmtv"]
    feed = sources["bfmtv"]["feeds"][0]
    _, headers, _ = fetch(feed)
    assert fetch(feed, {"If-None-Match": headers["ETag"]})[0] == 304
    assert fetch(feed, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    sm = sources["bfmtv"]["sitemaps"][0]
    _, sm_headers, _ = fetch(sm)
    assert fetch(sm, {"If-None-Match": sm_headers["ETag"]})[0] == 304
    art = mirror.by_outlet("bfmtv")[0]
    _, a_headers, _ = fetch(art["url"])
    assert fetch(art["url"], {"If-None-Match": a_headers["ETag"]})[0] == 304
    seen = [r for r in srv.requests if r.header("If-None-Match")]
    assert len(seen) >= 3
    assert fetch(srv.url("/actu"), follow=False)[0] == 301
    assert fetch(srv.url("/mentions-legales"))[0] == 200


def test_article_pages(mirror):
    for rec in mirror.articles:
        status, headers, body = fetch(rec["url"])
        html = body.decode("utf-8")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert '<meta charset="utf-8">' in html
        assert 'property="og:title"' in html and 'property="og:site_name"' in html
        assert f'content="{rec["published"]}"' in html and '"@type": "NewsArticle"' in html
        assert "<h1" in html and "<footer" in html and "cookie" in html.lower()
    # URL styles are the outlets' own
    url = {r["outlet"]: r["path"] for r in mirror.articles if r["seed"]}
    assert re.search(r"^/international/europe/ukraine/[a-z0-9-]+_AN-\d{12}\.html$", url["bfmtv"])
    assert re.search(r"^/\d{4}/\d{2}/\d{2}/[a-z0-9-]+/$", url["cnnfr"])
    assert re.search(r"/article/\d{4}/\d{2}/\d{2}/[a-z0-9-]+_\d+_\d+\.html$", url["lemonde"])


def _discover(source: dict) -> dict[str, set[str]]:
    """URLs each channel of a source yields, filtered by allow/deny like the spider."""
    found = {c: set() for c in CHANNELS}
    for feed in source["feeds"]:
        found["feed"] |= {e.link for e in feedparser.parse(fetch(feed)[2]).entries}
    todo = list(source["sitemaps"])
    while todo:
        root = ET.fromstring(fetch(todo.pop())[2])
        todo += [e.text for e in root.findall("sm:sitemap/sm:loc", NS)]
        found["sitemap"] |= {e.text for e in root.findall("sm:url/sm:loc", NS)}
    for section in source["sections"]:
        status, _, body = fetch(section)
        assert status == 200
        found["section"] |= set(links(body.decode(), section))
    host = urlparse(source["feeds"][0]).netloc
    ok = lambda u: (urlparse(u).netloc == host and any(re.search(p, u) for p in source["allow"])
                    and not any(re.search(p, u) for p in source["deny"]))
    return {c: {u for u in urls if ok(u)} for c, urls in found.items()}, found


def test_every_article_reachable_and_each_channel_needed(mirror, sources):
    for oid, source in sources.items():
        found, raw = _discover(source)
        expected = {r["url"] for r in mirror.by_outlet(oid)}
        reachable = set().union(*found.values())
        assert reachable == expected, (oid, expected - reachable, reachable - expected)
        for channel in CHANNELS:
            others = set().union(*(v for c, v in found.items() if c != channel))
            assert found[channel] - others, f"{oid}: no article only reachable via {channel}"
        # section pages also carry non-article links the allow/deny rules must drop
        assert any(urlparse(u).netloc != urlparse(source["feeds"][0]).netloc for u in raw["section"])
        assert any(u.endswith("/mentions-legales") for u in raw["section"])
        denied = [u for u in raw["section"] if any(re.search(p, u) for p in source["allow"])
                  and any(re.search(p, u) for p in source["deny"])]
        assert denied, f"{oid}: no link that only the deny rules drop"
        for u in denied:
            assert fetch(u)[0] == 200


def test_sources_yaml_schema(mirror):
    text = mirror.sources_yaml()
    doc = yaml.safe_load(text)
    keys = {"id", "name", "language", "feeds", "sitemaps", "sections", "allow", "deny", "interval", "junk_patterns"}
    for s in doc["sources"]:
        assert set(s) == keys
        assert re.fullmatch(r"[a-z0-9_-]+", s["id"]) and s["language"] == "fr" and s["interval"] == "15m"
        for k in ("feeds", "sitemaps", "sections"):
            assert s[k] and all(u.startswith("http://127.0.0.1:") for u in s[k])
        for k in ("allow", "deny", "junk_patterns"):
            assert all(re.compile(p) for p in s[k])
    config = pytest.importorskip("crawler.config")
    data, lines = config.parse_yaml(text)
    parsed = config.validate(data, lines, config.SourcesFile, "<mirror>")
    assert {s.id for s in parsed.sources} == set(mirror.outlets)


def test_add_article_updates_feed_and_sitemap():
    with Mirror() as m:
        src = yaml.safe_load(m.sources_yaml())["sources"]
        feed = next(s for s in src if s["id"] == "20minutes")["feeds"][0]
        _, h1, _ = fetch(feed)
        base = m.by_outlet("20minutes")[-1]
        rec = m.add_article(dict(base, id="new-20m", slug="une-nouvelle-breve", title="Une nouvelle brève",
                                 published="2024-11-30T12:00:00+01:00"))
        assert rec["url"].startswith(m.outlets["20minutes"].base_url)
        status, h2, body = fetch(feed, {"If-None-Match": h1["ETag"]})
        assert status == 200 and h2["ETag"] != h1["ETag"] and rec["url"].encode() in body
        assert fetch(rec["url"])[0] == 200


# ----------------------------------------------------------------------------- synthetic ----------

def test_synthetic_articles_deterministic_and_varied():
    a, b = synthetic_articles(300, seed=1), synthetic_articles(300, seed=1)
    assert a == b and len(a) == 300
    assert synthetic_articles(50, seed=2) != a[:50]
    assert len({r["id"] for r in a}) == 300 and len({r["title"] for r in a}) == 300
    assert len({r["outlet"] for r in a}) == len(OUTLETS)
    firsts = Counter(r["paragraphs"][0] for r in a)
    assert firsts.most_common(1)[0][1] <= 10
    for r in a:
        assert set(r) >= {"id", "outlet", "section", "slug", "title", "lead", "paragraphs", "authors",
                          "published", "seed", "story", "page_junk"}
        datetime.fromisoformat(r["published"])


def test_synthetic_mirror_serves_everything():
    with Mirror(synthetic_articles(240, seed=3)) as m:
        urls = [r["url"] for r in m.articles]
        assert len(set(urls)) == 240
        for source in yaml.safe_load(m.sources_yaml())["sources"]:
            oid = source["id"]
            found, _ = _discover(source)
            assert set().union(*found.values()) == {r["url"] for r in m.by_outlet(oid)}
        for u in urls[::17]:
            assert fetch(u)[0] == 200


def test_heavy_chrome_pages_have_real_page_weight_and_the_same_article():
    """Mirror(chrome="heavy") (the throughput benchmark's realistic pages): 180-520 KB of page
    furniture around the same article, which extraction still finds exactly."""
    import urllib.request

    from crawler.extraction import extract_article
    from crawler.mirror import Mirror, synthetic_articles

    with Mirror(synthetic_articles(6), chrome="heavy") as mirror:
        for rec in mirror.articles:
            body = urllib.request.urlopen(rec["url"]).read()
            assert 180_000 <= len(body) <= 520_000, (rec["outlet"], len(body))
            got = extract_article(body, rec["url"])
            assert got["title"] == rec["title"]
            assert got["lead"] == [rec["lead"]]
            assert got["paragraphs"] == rec["paragraphs"]
