"""Extraction on the mirror's seed-derived pages: every expected paragraph kept, no page junk.

The five seed articles are served in their outlets' page styles with the junk such sites carry
(header lines, captions with credits, a social byline, PREV/NEXT links, the Google News line, a
repeated title...).  ``crawler.extraction`` must give back exactly the article text.
"""
from __future__ import annotations

import re
import urllib.request
from html import unescape

import pytest

from crawler.mirror import Mirror, load_articles

extraction = pytest.importorskip("crawler.extraction")

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SEEDS = [a for a in load_articles() if a["seed"]]
OTHERS = [a for a in load_articles() if not a["seed"]]


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


@pytest.fixture(scope="module")
def served():
    with Mirror() as m:
        pages = {}
        for rec in m.articles:
            with _OPENER.open(rec["url"], timeout=10) as resp:
                pages[rec["id"]] = (rec, resp.read().decode("utf-8"))
        yield pages


def check_page(rec: dict, html: str) -> None:
    result = extraction.extract_article(html, rec["url"])
    expected = [norm(rec["lead"])] + [norm(p) for p in rec["paragraphs"]]
    lines = [norm(line) for line in extraction.article_text(result).split("\n") if line.strip()]
    missing = [e for e in expected if e not in lines]
    assert not missing, f"{rec['id']}: lost {len(missing)} paragraph(s), first: {missing[0][:100]!r}"
    extra = [line for line in lines if line not in expected]
    assert not extra, f"{rec['id']}: kept junk line(s): {extra[:3]!r}"
    assert lines == expected, f"{rec['id']}: paragraphs out of order or repeated"
    junk = {norm(j["text"]) for j in rec["page_junk"]}
    assert not junk & set(lines)
    assert norm(result["title"]) == norm(rec["title"])


def test_five_seeds_served():
    assert len(SEEDS) == 5
    assert {a["outlet"] for a in SEEDS} == {"bfmtv", "lemonde", "ouestfrance", "franceinfo", "cnnfr"}
    kinds = {j["kind"] for a in SEEDS for j in a["page_junk"]}
    assert {"kicker", "caption", "byline", "google_news", "prev", "next", "title_repeat"} <= kinds


@pytest.mark.parametrize("seed_id", [a["id"] for a in SEEDS])
def test_seed_page_extraction(served, seed_id):
    rec, html = served[seed_id]
    body = html.split("<body", 1)[1]
    visible = norm(unescape(re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", body, flags=re.S)))
    for j in rec["page_junk"]:  # the junk really is on the page, as visible text
        assert norm(j["text"]) in visible, j
    check_page(rec, html)


@pytest.mark.parametrize("article_id", [a["id"] for a in OTHERS])
def test_other_mirror_pages_extraction(served, article_id):
    rec, html = served[article_id]
    check_page(rec, html)
