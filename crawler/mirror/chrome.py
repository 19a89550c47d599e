"""Heavy page chrome for the benchmark mirror: realistic page weight around the same articles.

Real French news article pages weigh 230-500 KB (the extraction dev set: Euronews, Le Figaro,
Le Monde, Les Echos) of which the article text is a few KB.  The rest is page furniture:

* inline ``<style>`` (critical CSS, 85-120 KB on Le Figaro, Le Monde, Les Echos);
* an inline SVG icon sprite (20-75 KB);
* inline ``<script>`` state: a hydration JSON blob (``window.__INITIAL_STATE__``: the article
  again, teasers, config; up to 255 KB on Les Echos) and tag-manager / consent snippets;
* a mega-menu of a few hundred links, teaser lists ("À la une", "Les plus lus", "Dans la même
  rubrique", videos) and a long footer: 1,000-1,900 elements and 150-420 links per page.

:func:`add_heavy_chrome` wraps an article page rendered by :mod:`crawler.mirror.render` in such
furniture (outside the article container: head, top of body, before the site footer and at the
end of the body), deterministically per page.  ``Mirror(chrome="heavy")`` uses it; the light
default keeps the ~10 KB pages the tests rely on.
"""
from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache
from html import escape

__all__ = ["add_heavy_chrome"]

_WORDS = ("actualite politique economie societe sport culture international planete sciences tech idees "
          "debats enquete video podcast direct meteo region paris lyon marseille europe monde elections "
          "climat sante education justice police emploi logement transport energie agriculture football "
          "rugby tennis cinema musique livres series jeux immobilier bourse consommation famille").split()
_CSS_PROPS = ("display:flex", "display:block", "display:none", "margin:0 auto", "padding:0 16px", "padding:8px 0",
              "font-size:1.125rem", "font-size:14px", "line-height:1.5", "font-weight:700", "color:#1a1a1a",
              "color:#5c5c5c", "background-color:#fff", "background:#f4f4f4", "border-bottom:1px solid #e0e0e0",
              "position:relative", "position:absolute", "top:0", "left:0", "width:100%", "max-width:1200px",
              "justify-content:space-between", "align-items:center", "gap:12px", "overflow:hidden",
              "text-overflow:ellipsis", "white-space:nowrap", "transition:opacity .2s ease-in-out", "z-index:10",
              "grid-template-columns:repeat(3,1fr)", "border-radius:4px", "font-family:Georgia,serif")
_KICKERS = ("EN DIRECT", "DÉCRYPTAGE", "ENQUÊTE", "VIDÉO", "PODCAST", "ANALYSE", "TRIBUNE", "RÉCIT", "INFOGRAPHIE",
            "ABONNÉS", "ENTRETIEN", "REPORTAGE", "LES ÉCHOS DU JOUR", "MÉTÉO", "FACT-CHECK")
_TEASE_A = ("Ce que l'on sait", "Pourquoi", "Comment", "Ce qui change", "Tout comprendre sur", "Les chiffres de",
            "Cinq questions sur", "La carte de", "Le récit de", "Ce qu'il faut retenir de", "Enquête sur",
            "Les coulisses de")
_TEASE_B = ("la réforme des retraites", "la hausse des prix de l'énergie", "la grève à la SNCF", "la crise du logement",
            "la sécheresse dans le Sud", "la rentrée scolaire", "la dette publique", "l'élection présidentielle américaine",
            "la guerre en Ukraine", "la fin de l'hiver", "la Coupe du monde de rugby", "le budget 2025",
            "la pénurie de médecins", "la transition énergétique", "l'intelligence artificielle au travail",
            "la nouvelle loi immigration", "les Jeux paralympiques", "la pollution de l'air à Paris")


def _rng(key: str) -> random.Random:
    return random.Random(int(hashlib.sha1(key.encode()).hexdigest()[:16], 16))


def _ident(rng: random.Random) -> str:
    return "-".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


@lru_cache(maxsize=None)
def _css(site: str, size: int) -> str:
    """A site's critical CSS (same on every page of the site), about ``size`` characters."""
    rng = _rng("css" + site)
    rules, n = [], 0
    while n < size:
        sel = f".{_ident(rng)}__{rng.choice(_WORDS)}" + (f"--{rng.choice(_WORDS)}" if rng.random() < 0.4 else "")
        if rng.random() < 0.3:
            sel += f" .{_ident(rng)}"
        rule = sel + "{" + ";".join(rng.sample(_CSS_PROPS, rng.randint(2, 7))) + "}"
        if rng.random() < 0.08:
            rule = "@media (min-width:" + str(rng.choice((576, 768, 992, 1200))) + "px){" + rule + "}"
        rules.append(rule)
        n += len(rule)
    return "<style>" + "".join(rules) + "</style>"


@lru_cache(maxsize=None)
def _svg_sprite(site: str, size: int) -> str:
    rng = _rng("svg" + site)
    syms, n = [], 0
    while n < size:
        d = "M" + " ".join(f"{rng.uniform(0, 24):.3f} {rng.uniform(0, 24):.3f}" + rng.choice(("L", "C", "Q", "l", "c"))
                           for _ in range(rng.randint(8, 40))) + "Z"
        sym = f'<symbol id="icon-{_ident(rng)}" viewBox="0 0 24 24"><path fill="currentColor" d="{d}"></path></symbol>'
        syms.append(sym)
        n += len(sym)
    return '<svg xmlns="http://www.w3.org/2000/svg" style="display:none" aria-hidden="true">' + "".join(syms) + "</svg>"


@lru_cache(maxsize=None)
def _mega_menu(site: str, n_links: int) -> str:
    """Nested rubric menu (same on every page of the site)."""
    rng = _rng("menu" + site)
    groups, count = [], 0
    while count < n_links:
        head = _ident(rng)
        k = rng.randint(6, 18)
        items = "".join(f'<li class="menu__item"><a class="menu__link" href="/{head}/{_ident(rng)}/">'
                        f"{escape(_ident(rng).replace('-', ' ').capitalize())}</a></li>" for _ in range(k))
        groups.append(f'<li class="menu__group"><a class="menu__head" href="/{head}/">{escape(head.replace("-", " ").capitalize())}'
                      f'</a><button class="menu__toggle" aria-expanded="false"><svg><use href="#icon-chevron"></use></svg>'
                      f'</button><ul class="menu__sub">{items}</ul></li>')
        count += k + 1
    return (f'<div class="mega-menu" id="burger-menu" hidden><nav aria-label="Toutes les rubriques">'
            f'<ul class="menu">{"".join(groups)}</ul></nav></div>')


@lru_cache(maxsize=None)
def _footer_links(site: str, n_links: int) -> str:
    rng = _rng("foot" + site)
    cols = []
    for _ in range(max(1, n_links // 15)):
        items = "".join(f'<li><a href="/{_ident(rng)}/">{escape(_ident(rng).replace("-", " ").capitalize())}</a></li>'
                        for _ in range(15))
        cols.append(f'<div class="footer-col"><p class="footer-col__title">{escape(_ident(rng).capitalize())}</p><ul>{items}</ul></div>')
    return f'<div class="site-map-footer">{"".join(cols)}</div>'


def _teaser_title(rng: random.Random) -> str:
    return f"{rng.choice(_TEASE_A)} {rng.choice(_TEASE_B)}"


def _teasers(rng: random.Random, n: int) -> tuple[str, list[dict]]:
    blocks, data = [], []
    titles = ("À la une", "Les plus lus", "Dans la même rubrique", "Nos dernières vidéos", "Les plus partagés",
              "Sélection de la rédaction", "Newsletters", "Services partenaires")
    per = max(4, n // len(titles))
    for t in titles:
        items = []
        for _ in range(per):
            title = _teaser_title(rng)
            url = f"/{rng.choice(_WORDS)}/article/{rng.randint(6_000_000, 6_999_999)}.html"
            kicker = rng.choice(_KICKERS)
            data.append({"id": rng.randint(10**6, 10**7), "title": title, "url": url, "kicker": kicker,
                         "image": {"src": f"/img/{rng.getrandbits(64):016x}.jpg", "width": 640, "height": 360,
                                   "alt": title}, "premium": rng.random() < 0.3})
            items.append(f'<article class="teaser teaser--small"><a class="teaser__link" href="{url}">'
                         f'<picture class="teaser__media"><source srcset="/img/{rng.getrandbits(64):016x}.webp 640w" '
                         f'type="image/webp"><img src="/img/{rng.getrandbits(64):016x}.jpg" alt="" loading="lazy" '
                         f'width="640" height="360"></picture><span class="teaser__kicker">{escape(kicker)}</span>'
                         f'<h3 class="teaser__title">{escape(title)}</h3></a>'
                         f'<span class="teaser__meta"><svg class="icon"><use href="#icon-clock"></use></svg>'
                         f'<time>il y a {rng.randint(2, 59)} min</time></span></article>')
        blocks.append(f'<section class="teasers-block"><h2 class="teasers-block__title">{escape(t)}</h2>'
                      f'<div class="teasers-block__list">{"".join(items)}</div></section>')
    return f'<aside class="page-teasers">{"".join(blocks)}</aside>', data


def _state_script(rec: dict, url: str, teasers: list[dict], rng: random.Random, size: int) -> str:
    """The hydration blob: the article again (as structured content), teasers, config, ad slots."""
    state = {
        "page": {"type": "article", "url": url, "id": rec.get("id"), "section": rec.get("section")},
        "article": {"title": rec["title"], "lead": rec["lead"], "authors": rec.get("authors"),
                    "published": rec["published"],
                    "blocks": [{"type": "paragraph", "html": p, "id": rng.getrandbits(40)} for p in rec["paragraphs"]]},
        "teasers": teasers,
        "ads": [],
    }
    text = json.dumps(state, ensure_ascii=False)
    while len(text) < size:
        state["ads"].extend({"slot": f"{_ident(rng)}-{i}", "sizes": [[300, 250], [300, 600], [728, 90]],
                             "targeting": {"kw": rng.sample(_WORDS, 5), "pos": i, "id": f"{rng.getrandbits(64):016x}"}}
                            for i in range(50))
        text = json.dumps(state, ensure_ascii=False)
    return "<script>window.__INITIAL_STATE__=" + text.replace("</", "<\\/") + ";</script>"


_TAG_MANAGER = ("<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),event:'gtm.js'});"
                "var f=d.getElementsByTagName(s)[0],j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;"
                "j.src='/static/js/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);})(window,document,'script',"
                "'dataLayer','GTM-XXXX');</script>")


def add_heavy_chrome(page: str, site: str, rec: dict, url: str) -> str:
    """``page`` (a rendered article page) with realistic heavy furniture, 220-520 KB in all."""
    rng = _rng(url or rec.get("id", ""))
    site_rng = _rng("site" + site)
    css = _css(site, site_rng.randint(60_000, 120_000))
    svg = _svg_sprite(site, site_rng.randint(20_000, 70_000))
    menu = _mega_menu(site, site_rng.randint(180, 320))
    footer = _footer_links(site, site_rng.randint(60, 120))
    teasers_html, teaser_data = _teasers(rng, rng.randint(32, 72))
    state = _state_script(rec, url, teaser_data, rng, rng.randint(20_000, 260_000))

    head_end = page.find("</head>")
    if head_end >= 0:
        page = page[:head_end] + css + _TAG_MANAGER + page[head_end:]
    body_start = page.find("<body")
    if body_start >= 0:
        body_start = page.find(">", body_start) + 1
        page = page[:body_start] + svg + menu + page[body_start:]
    foot = page.rfind("<footer")
    if foot < 0:
        foot = page.rfind("</body>")
    page = page[:foot] + teasers_html + page[foot:]
    end = page.rfind("</body>")
    page = page[:end] + footer + state + page[end:]
    return page
