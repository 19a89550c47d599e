"""Per-outlet page styles for the bundled mirror: URL schemes, article/section pages, feeds, sitemaps.

Each outlet imitates the markup and URL scheme of a French news site (fictional copies served on
127.0.0.1).  Article pages wrap the article text (title, lead, paragraphs, h2 subheadlines) in the
usual page furniture: header nav, breadcrumbs, share buttons, "Lire aussi" blocks, newsletter box,
footer and cookie banner.  Record-specific ``page_junk`` (captions, social bylines, inline "Lire
aussi" links, PREV/NEXT lines, the Google News line...) is injected where such sites put it,
mostly *inside* the article container, where extractors tend to keep it.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Callable
from xml.sax.saxutils import escape as xesc

__all__ = ["OUTLETS", "Outlet", "Ctx", "parse_date", "rfc822", "w3c"]

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre"]
DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]


def parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value)


def rfc822(dt: datetime) -> str:
    from email.utils import format_datetime
    return format_datetime(dt)


def w3c(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def fr_date(dt: datetime, with_day: bool = False) -> str:
    d = f"{dt.day if dt.day != 1 else '1er'} {MONTHS[dt.month - 1]} {dt.year}"
    return f"{DAYS[dt.weekday()]} {d}" if with_day else d


def _h(n: int, text: str) -> str:
    return f"<h{n}>{escape(text)}</h{n}>"


def _num(key: str, lo: int, span: int) -> int:
    return lo + int(hashlib.sha1(key.encode()).hexdigest(), 16) % span


@dataclass
class Ctx:
    """What a page needs besides the record: where it is served and what it links to."""

    base_url: str
    url: str = ""
    related: list = field(default_factory=list)       # [(title, url)]
    prev: tuple | None = None                          # (title, url)
    next: tuple | None = None
    read_also_url: str = ""


def _junk(rec: dict, kind: str) -> list[dict]:
    return [j for j in rec.get("page_junk") or [] if j.get("kind") == kind]


def _body_items(rec: dict, p_tag: Callable[[str], str], h2_tag: Callable[[str], str],
                read_also: Callable[[str], str] | None = None) -> list[str]:
    """Paragraphs and subheadlines, with inline 'Lire aussi' junk after paragraph N."""
    subs = set(rec.get("subheadings") or [])
    inline = {}
    for j in _junk(rec, "read_also"):
        inline.setdefault(int(j.get("after", 2)), []).append(j["text"])
    out = []
    for i, para in enumerate(rec["paragraphs"], start=1):
        out.append(h2_tag(para) if para in subs else p_tag(para))
        if read_also:
            for t in inline.get(i, []):
                out.append(read_also(t))
    return out


def _jsonld(rec: dict, site: str, ctx: Ctx, section_label: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": rec["title"],
        "description": rec["lead"],
        "datePublished": rec["published"],
        "dateModified": rec.get("modified") or rec["published"],
        "articleSection": section_label,
        "inLanguage": "fr-FR",
        "mainEntityOfPage": {"@type": "WebPage", "@id": ctx.url},
        "author": [{"@type": "Person" if " " in a and "avec" not in a else "Organization", "name": a}
                   for a in rec.get("authors") or []],
        "publisher": {"@type": "Organization", "name": site,
                      "logo": {"@type": "ImageObject", "url": ctx.base_url + "/static/logo.png"}},
        "image": [ctx.base_url + f"/static/img/{rec['slug'][:40]}.jpg"],
    }
    return ('<script type="application/ld+json">' + json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
            + "</script>")


def _head(rec: dict | None, title: str, site: str, ctx: Ctx, section_label: str = "", extra: str = "") -> str:
    parts = ['<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title>",
             f'<meta property="og:site_name" content="{escape(site)}">',
             f'<meta property="og:title" content="{escape(rec["title"] if rec else title)}">',
             f'<meta property="og:locale" content="fr_FR">']
    if rec:
        parts += [f'<meta name="description" content="{escape(rec["lead"][:300])}">',
                  '<meta property="og:type" content="article">',
                  f'<meta property="og:url" content="{escape(ctx.url)}">',
                  f'<meta property="og:description" content="{escape(rec["lead"][:300])}">',
                  f'<meta property="og:image" content="{ctx.base_url}/static/img/{rec["slug"][:40]}.jpg">',
                  f'<meta property="article:published_time" content="{rec["published"]}">',
                  f'<meta property="article:modified_time" content="{rec.get("modified") or rec["published"]}">',
                  f'<meta property="article:section" content="{escape(section_label)}">',
                  f'<meta name="author" content="{escape(", ".join(rec.get("authors") or []))}">',
                  f'<link rel="canonical" href="{escape(ctx.url)}">',
                  _jsonld(rec, site, ctx, section_label)]
    else:
        parts.append('<meta property="og:type" content="website">')
    parts += ['<link rel="stylesheet" href="/static/css/main.css">',
              '<script async src="/static/js/tag-manager.js"></script>', extra]
    return "<head>" + "\n".join(p for p in parts if p) + "</head>"


COOKIE_TEXT = ("Nous et nos partenaires utilisons des cookies ou technologies similaires pour stocker et accéder "
               "à des informations personnelles comme votre visite sur ce site. Vous pouvez retirer votre "
               "consentement ou vous opposer aux traitements basés sur l'intérêt légitime à tout moment en "
               "cliquant sur « Paramétrer » ou dans notre politique de confidentialité sur ce site.")


def _cookie_banner() -> str:
    return ('<div id="didomi-host" class="cookie-banner" role="dialog"><div class="didomi-popup">'
            '<p class="didomi-title">Vos choix concernant l\'utilisation de cookies</p>'
            f"<p>{escape(COOKIE_TEXT)}</p>"
            '<button class="didomi-accept">Accepter &amp; Fermer</button>'
            '<button class="didomi-params">Paramétrer</button>'
            '<button class="didomi-refuse">Continuer sans accepter →</button></div></div>')


def _share(cls: str = "share") -> str:
    return (f'<div class="{cls}-buttons"><span>Partager</span>'
            '<a class="share-facebook" href="https://www.facebook.com/sharer/sharer.php">Facebook</a>'
            '<a class="share-twitter" href="https://twitter.com/intent/tweet">X (Twitter)</a>'
            '<a class="share-whatsapp" href="https://wa.me/">WhatsApp</a>'
            '<a class="share-mail" href="mailto:?subject=A%20lire">E-mail</a>'
            '<button class="share-copy">Copier le lien</button></div>')


def _newsletter(name: str, cls: str = "newsletter") -> str:
    return (f'<aside class="{cls}-box"><p class="{cls}-title">Newsletter {escape(name)}</p>'
            "<p>Recevez chaque matin l'essentiel de l'actualité directement dans votre boîte mail.</p>"
            '<form action="/newsletter/inscription" method="post"><input type="email" name="email" '
            'placeholder="Votre adresse e-mail"><button type="submit">Je m\'inscris</button></form>'
            "<p class=\"legal\">En vous inscrivant, vous acceptez nos conditions générales d'utilisation "
            "et notre politique de confidentialité.</p></aside>")


def _links(items, cls: str = "", li: bool = True) -> str:
    inner = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in items)
    return f'<ul class="{cls}">{inner}</ul>'


FOOTER_LINKS = [("Mentions légales", "/mentions-legales"), ("Contact", "/contact"),
                ("Politique de confidentialité", "/mentions-legales#confidentialite"),
                ("Gestion des cookies", "/mentions-legales#cookies"), ("Plan du site", "/plan-du-site"),
                ("Recherche", "/recherche/"), ("Charte de déontologie", "/contact#deontologie"),
                ("Publicité", "/contact#publicite"), ("Recrutement", "/contact#recrutement"),
                ("Flux RSS", "/contact#rss")]
SOCIAL = [("Facebook", "https://www.facebook.com/"), ("Instagram", "https://www.instagram.com/"),
          ("X", "https://twitter.com/"), ("YouTube", "https://www.youtube.com/")]


def _footer(site: str, sections: list[tuple[str, str]], cls: str = "footer") -> str:
    return (f'<footer class="{cls}"><div class="{cls}-sections"><p>Rubriques</p>{_links(sections)}</div>'
            f'<div class="{cls}-links">{_links(FOOTER_LINKS)}</div>'
            f'<div class="{cls}-social"><p>Suivez-nous</p>{_links(SOCIAL)}</div>'
            f'<p class="{cls}-copyright">© {escape(site)} 2024 – Tous droits réservés. Reproduction interdite '
            "sans autorisation.</p></footer>")


def _figure(j: dict, fig_cls: str = "figure", cap_fmt: str = "{text} - {credit}", img: str = "") -> str:
    credit = j.get("credit")
    cap = cap_fmt.format(text=escape(j["text"]), credit=escape(credit)) if credit else escape(j["text"])
    return (f'<figure class="{fig_cls}"><img src="{img or "/static/img/photo.jpg"}" alt="{escape(j["text"])}" '
            f'width="1200" height="675"><figcaption>{cap}</figcaption></figure>')


def _byline_social(rec: dict, cls: str) -> str:
    out = []
    for j in _junk(rec, "byline"):
        if j.get("url"):
            out.append(f'<p class="{cls}"><a href="{escape(j["url"])}">{escape(j.get("name", j["text"]))}</a> '
                       f'{escape(j.get("role", ""))}</p>')
        else:
            out.append(f'<p class="{cls}">{escape(j["text"])}</p>')
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Outlet definition
# --------------------------------------------------------------------------------------------

@dataclass
class Outlet:
    id: str
    name: str
    sections: dict            # key -> (label, path)  e.g. "international": ("International", "/international/")
    main_section: str
    fil: tuple                # (label, path) of the "latest news" page
    feed_path: str
    feed_format: str          # "rss" | "atom"
    sitemap_path: str         # news sitemap
    sitemap_index_path: str | None
    allow: list
    deny: list
    junk_patterns: list
    article_path: Callable[[dict, set], str]
    article_page: Callable[["Outlet", dict, Ctx], str]
    section_page: Callable[["Outlet", str, str, list, Ctx], str]
    bait: list = field(default_factory=list)          # [(label, path)] denied-but-served links
    extra_disallow: list = field(default_factory=list)

    @property
    def robots_sitemap(self) -> str:
        return self.sitemap_index_path or self.sitemap_path

    def nav(self) -> list[tuple[str, str]]:
        return [(label, path) for label, path in self.sections.values()]


def _dt(rec):
    return parse_date(rec["published"])


def _unique(path_fn):
    """Wrap a URL builder so paths are unique within an outlet (bump a counter on collision)."""
    def build(rec, used: set) -> str:
        k = 0
        while True:
            path = path_fn(rec, k)
            if path not in used:
                used.add(path)
                return path
            k += 1
    return build


def _sec_path(o_sections, rec):
    return o_sections.get(rec.get("section"), next(iter(o_sections.values())))[1]


def _cat(rec):
    c = rec.get("category")
    return f"{c.strip('/')}/" if c else ""


# ----------------------------------------------------------------------------- BFMTV ----------

BFM_SECTIONS = {
    "international": ("International", "/international/"),
    "politique": ("Politique", "/politique/"),
    "economie": ("Économie", "/economie/"),
    "societe": ("Police-Justice", "/police-justice/"),
    "sport": ("Sport", "/sport/"),
    "culture": ("Culture", "/culture/"),
    "meteo": ("Météo", "/meteo/"),
    "paris": ("BFM Paris", "/paris/"),
    "tech": ("Tech", "/tech/"),
}


def _bfm_path(rec, k):
    dt = _dt(rec)
    stamp = int(dt.strftime("%Y%m%d%H%M")) + k
    return f"{_sec_path(BFM_SECTIONS, rec)}{_cat(rec)}{rec['slug']}_AN-{stamp}.html"


def _bfm_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    kickers = [j["text"] for j in _junk(rec, "kicker")]
    tag = kickers[0] if kickers else label
    badge = "".join(f'<span class="badge-alert">{escape(k)}</span>' for k in kickers[1:])
    figs = "".join(_figure(j, "content_img", img="/static/img/bfm.jpg") for j in _junk(rec, "caption"))
    body = _body_items(rec, lambda p: f"<p>{escape(p)}</p>", lambda h: f"<h2 class=\"title_h2\">{escape(h)}</h2>")
    authors = ", ".join(rec.get("authors") or [])
    related = "".join(f'<li class="item_list"><a href="{escape(u)}"><span class="title_related">{escape(t)}</span></a></li>'
                      for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(rec, rec['title'] + ' | BFMTV', 'BFMTV', ctx, label)}
<body class="article-page">
{_cookie_banner()}
<header class="header_container"><a class="logo" href="/"><span>BFMTV</span></a>
<nav class="main_nav" aria-label="Menu principal">{_links([('Accueil', '/'), ('En direct', '/en-direct/')] + o.nav() + [('Vidéos', '/video/'), ('Replay', '/replay/'), ('Météo', '/meteo/'), ('Recherche', '/recherche/')], 'nav_list')}</nav>
<div class="trending"><span>Les plus lus</span>{_links(ctx.related[:3], 'trending_list')}</div>
</header>
<main id="main_content">
<nav class="breadcrumb" aria-label="Fil d'Ariane"><ol><li><a href="/">Accueil</a></li><li><a href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(label)}</a></li><li>{escape(tag)}</li></ol></nav>
<article class="content_article" itemscope itemtype="https://schema.org/NewsArticle">
<header class="article_header">
<a class="content_tag" href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(tag)}</a>{badge}
<h1 class="content_title" itemprop="headline">{escape(rec['title'])}</h1>
</header>
{figs}
<div class="content_body">
<div class="author_block"><span class="author_name">{escape(authors)}</span>
<span class="content_date">Le {dt.strftime('%d/%m/%Y')} à {dt.strftime('%H:%M')}</span></div>
<div class="chapo"><p>{escape(rec['lead'])}</p></div>
<div class="content_body_wrapper">
{chr(10).join(body)}
{_byline_social(rec, 'content_signature')}
</div>
{_share('bfm_share')}
</div>
</article>
<section class="related_block"><h2 class="related_title">Sur le même sujet</h2><ul>{related}</ul></section>
{_newsletter('BFMTV')}
<aside class="ad_block"><p>Publicité</p><div class="ad-slot" data-slot="mpu"></div></aside>
</main>
{_footer('BFMTV', o.nav())}
</body></html>"""


# ------------------------------------------------------------------------- franceinfo ----------

FI_SECTIONS = {
    "international": ("Monde", "/monde/"),
    "politique": ("Politique", "/politique/"),
    "economie": ("Économie", "/economie/"),
    "societe": ("Faits-divers", "/faits-divers/"),
    "sport": ("Sports", "/sports/"),
    "culture": ("Culture", "/culture/"),
    "meteo": ("Météo", "/meteo/"),
    "paris": ("Paris Île-de-France", "/france/paris-ile-de-france/"),
    "tech": ("Internet", "/internet/"),
}


def _fi_path(rec, k):
    n = _num(rec["id"], 6_880_000, 80_000) + k
    return f"{_sec_path(FI_SECTIONS, rec)}{_cat(rec)}{rec['slug']}_{n}.html"


def _fi_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    figs = "".join(_figure(j, "c-image", cap_fmt="{text} ({credit})", img="/static/img/fi.jpg") for j in _junk(rec, "caption"))
    body = _body_items(rec, lambda p: f"<p>{escape(p)}</p>", lambda h: f"<h2>{escape(h)}</h2>",
                       lambda t: f'<p class="c-read-also"><a href="{escape(ctx.read_also_url or "/")}">{escape(t)}</a></p>')
    authors = ", ".join(rec.get("authors") or ["franceinfo"])
    related = "".join(f'<li class="related-links__item"><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(rec, rec['title'], 'Franceinfo', ctx, label)}
<body>
{_cookie_banner()}
<header class="header"><a class="header__logo" href="/">franceinfo</a>
<nav class="header__nav">{_links([('Direct TV', '/en-direct/tv.html'), ('Direct Radio', '/en-direct/radio.html')] + o.nav() + [('Vrai ou faux', '/vrai-ou-fake/'), ('Recherche', '/recherche/')], 'nav__list')}</nav>
</header>
<main class="main">
<nav class="breadcrumb" aria-label="Vous êtes ici"><a href="/">Accueil</a> › <a href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(label)}</a></nav>
<article class="c-article">
<div class="c-title"><h1 class="c-title__text">{escape(rec['title'])}</h1></div>
<div class="c-chapo"><p>{escape(rec['lead'])}</p></div>
{figs}
<div class="c-signature"><p class="c-signature__names">{escape(authors)} - France Télévisions</p>
<p class="c-signature__dates"><time datetime="{rec['published']}">Publié le {dt.strftime('%d/%m/%Y %H:%M')}</time></p></div>
{_share('c-share')}
<div class="c-body">
{chr(10).join(body)}
</div>
<div class="c-tags"><span>Voir les sujets</span> {_links([(label, o.sections.get(rec['section'], ('', '/'))[1])], 'tags')}</div>
</article>
<section class="related-links"><h2>À lire aussi</h2><ul>{related}</ul></section>
{_newsletter('franceinfo', 'c-newsletter')}
</main>
{_footer('France Télévisions', o.nav(), 'site-footer')}
</body></html>"""


# ----------------------------------------------------------------------------- Le Monde ----------

LM_SECTIONS = {
    "international": ("International", "/international/", 3210),
    "politique": ("Politique", "/politique/", 823448),
    "economie": ("Économie", "/economie/", 3234),
    "societe": ("Société", "/societe/", 3224),
    "sport": ("Sport", "/sport/", 3242),
    "culture": ("Culture", "/culture/", 3246),
    "meteo": ("Planète", "/planete/", 3244),
    "paris": ("Île-de-France", "/ile-de-france/", 3224),
    "tech": ("Pixels", "/pixels/", 4408996),
}


def _lm_path(rec, k):
    dt = _dt(rec)
    label, path, secid = LM_SECTIONS.get(rec.get("section"), LM_SECTIONS["societe"])
    n = _num(rec["id"], 6_390_000, 60_000) + k
    return f"{path}article/{dt:%Y/%m/%d}/{rec['slug']}_{n}_{secid}.html"


def _lm_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    figs = "".join(_figure(j, "article__media", cap_fmt='{text} <span class="article__credit">{credit}</span>', img="/static/img/lm.jpg") for j in _junk(rec, "caption"))
    body = _body_items(rec, lambda p: f'<p class="article__paragraph">{escape(p)}</p>',
                       lambda h: f'<h2 class="article__sub-title">{escape(h)}</h2>',
                       lambda t: f'<p class="article__paragraph article__paragraph--lire-aussi"><span class="lire-aussi__prefix">Lire aussi</span> | <a href="{escape(ctx.read_also_url or "/")}">{escape(t)}</a></p>')
    authors = ", ".join(rec.get("authors") or ["Le Monde"])
    related = "".join(f'<li class="services-related__item"><a class="services-related__link" href="{escape(u)}">{escape(t)}</a></li>' for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(rec, rec['title'], 'Le Monde.fr', ctx, label)}
<body class="article">
{_cookie_banner()}
<header class="Header"><a class="Header__logo" href="/">Le Monde</a>
<nav class="Nav">{_links([('Actualités', '/actualite-en-continu/')] + o.nav() + [('Idées', '/idees/'), ('M le mag', '/m-le-mag/'), ('Services', '/services/'), ('Recherche', '/recherche/'), ("S'abonner", '/abonnement/')], 'Nav__list')}</nav>
</header>
<main id="js-body">
<section class="zone zone--article">
<ul class="breadcrumb"><li><a href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(label)}</a></li></ul>
<header class="article__header">
<h1 class="article__title">{escape(rec['title'])}</h1>
<p class="article__desc">{escape(rec['lead'])}</p>
<div class="meta meta__publisher"><span class="meta__author">{escape(authors)}</span>
<span class="meta__date">Publié le {fr_date(dt)} à {dt.strftime('%Hh%M')}</span>
<span class="meta__reading-time">Temps de lecture {max(1, sum(len(p.split()) for p in rec['paragraphs']) // 230)} min.</span></div>
{_share('meta__social')}
</header>
<article class="article__content">
{figs}
{chr(10).join(body)}
</article>
<section class="article__footer"><p class="article__tags">Sur le même thème</p>{_links([(label, o.sections.get(rec['section'], ('', '/'))[1])], 'tags')}</section>
</section>
<aside class="aside__iso"><section class="services-related"><p class="services-related__title">Lire aussi</p><ul>{related}</ul></section>
{_newsletter('La Lettre du Monde', 'newsletter-promo')}
<div class="paywall-promo"><p>Offre spéciale : le premier mois à 1 €. Sans engagement.</p><a href="/abonnement/">S'abonner</a></div></aside>
</main>
{_footer('Le Monde', o.nav(), 'Footer')}
</body></html>"""


# --------------------------------------------------------------------------- 20 Minutes ----------

TM_SECTIONS = {
    "international": ("Monde", "/monde/"),
    "politique": ("Politique", "/politique/"),
    "economie": ("Économie", "/economie/"),
    "societe": ("Justice", "/justice/"),
    "sport": ("Sport", "/sport/"),
    "culture": ("Culture", "/culture/"),
    "meteo": ("Planète", "/planete/"),
    "paris": ("Paris", "/paris/"),
    "tech": ("High-Tech", "/high-tech/"),
}


def _tm_path(rec, k):
    dt = _dt(rec)
    n = _num(rec["id"], 4_110_000, 40_000) + k
    return f"{_sec_path(TM_SECTIONS, rec)}{n}-{dt:%Y%m%d}-{rec['slug']}"


def _tm_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    figs = "".join(_figure(j, "c-media", cap_fmt="{text} — {credit}", img="/static/img/20m.jpg") for j in _junk(rec, "caption"))
    body = _body_items(rec, lambda p: f"<p>{escape(p)}</p>", lambda h: f"<h2>{escape(h)}</h2>",
                       lambda t: f'<p class="c-read-more"><strong>À lire aussi :</strong> <a href="{escape(ctx.read_also_url or "/")}">{escape(t)}</a></p>')
    authors = ", ".join(rec.get("authors") or ["20 Minutes"])
    related = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(rec, rec['title'], '20 Minutes', ctx, label)}
<body>
{_cookie_banner()}
<header id="header"><a class="logo-20min" href="/">20 Minutes</a>
<nav class="c-nav">{_links([('Actu en continu', '/actu-en-continu/')] + o.nav() + [('Podcasts', '/podcasts/'), ('Rechercher', '/recherche/')], 'c-nav__list')}</nav>
</header>
<div id="main-content">
<nav class="c-breadcrumb"><a href="/">Accueil</a> / <a href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(label)}</a></nav>
<article class="c-article">
<header class="c-article-header">
<p class="c-kicker">{escape(label)}</p>
<h1 class="c-title">{escape(rec['title'])}</h1>
<p class="c-summary">{escape(rec['lead'])}</p>
<p class="c-byline">{escape(authors)} · Publié le {dt.strftime('%d/%m/%y à %Hh%M')}</p>
{_share('c-share')}
</header>
{figs}
<div class="c-content">
{chr(10).join(body)}
</div>
</article>
<section class="c-related"><h2>Sur le même sujet</h2><ul>{related}</ul></section>
{_newsletter('20 Minutes', 'c-newsletter')}
<div class="c-comments"><p>Réagissez à cet article</p><a href="/contact#commentaires">Voir les commentaires</a></div>
</div>
{_footer('20 Minutes', o.nav(), 'c-footer')}
</body></html>"""


# -------------------------------------------------------------------------- Ouest-France ----------

OF_SECTIONS = {
    "international": ("Monde", "/monde/"),
    "politique": ("Politique", "/politique/"),
    "economie": ("Économie", "/economie/"),
    "societe": ("Société", "/societe/"),
    "sport": ("Sport", "/sport/"),
    "culture": ("Culture", "/culture/"),
    "meteo": ("Météo", "/meteo/"),
    "paris": ("Île-de-France", "/ile-de-france/"),
    "tech": ("High-tech", "/high-tech/"),
    "bretagne": ("Bretagne", "/bretagne/"),
}


def _of_path(rec, k):
    u = uuid.UUID(hashlib.md5(f"{rec['id']}:{k}".encode()).hexdigest())
    return f"{_sec_path(OF_SECTIONS, rec)}{_cat(rec)}{rec['slug']}-{u}.html"


def _of_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    figs = "".join(_figure(j, "article-media", cap_fmt="{text} | {credit}", img="/static/img/of.jpg") for j in _junk(rec, "caption"))
    body = _body_items(rec, lambda p: f"<p>{escape(p)}</p>", lambda h: f'<h2 class="su-intertitre">{escape(h)}</h2>',
                       lambda t: f'<p class="lire-aussi"><span>Lire aussi :</span> <a href="{escape(ctx.read_also_url or "/")}">{escape(t)}</a></p>')
    authors = ", ".join(rec.get("authors") or ["Ouest-France"])
    related = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(rec, rec['title'], 'Ouest-France.fr', ctx, label)}
<body>
{_cookie_banner()}
<header class="su-header"><a class="su-logo" href="/">Ouest-France</a>
<nav class="su-menu">{_links([("L'actu en continu", '/actualite-en-continu/')] + o.nav() + [('Bretagne', '/bretagne/'), ('Normandie', '/normandie/'), ('Pays de la Loire', '/pays-de-la-loire/'), ('Avis de décès', '/contact#avis-de-deces'), ('Rechercher', '/recherche/')], 'su-menu__list')}</nav>
<p class="su-edition">Votre édition : <a href="/bretagne/">Rennes</a></p>
</header>
<main class="su-main">
<ol class="su-breadcrumb"><li><a href="/">Accueil</a></li><li><a href="{o.sections.get(rec['section'], ('', '/'))[1]}">{escape(label)}</a></li></ol>
<article class="article-detail">
<header>
<h1 class="su-title">{escape(rec['title'])}</h1>
<p class="su-author">{escape(authors)}.</p>
<p class="su-date">Publié le <time datetime="{rec['published']}">{fr_date(dt, True)} à {dt.strftime('%Hh%M')}</time></p>
</header>
{figs}
<div class="article-body">
<p class="su-chapo"><strong>{escape(rec['lead'])}</strong></p>
{chr(10).join(body)}
</div>
{_share('su-share')}
</article>
<section class="su-related"><h2>Ces articles peuvent vous intéresser</h2><ul>{related}</ul></section>
{_newsletter('Ouest-France', 'su-newsletter')}
</main>
{_footer('Ouest-France', o.nav(), 'su-footer')}
</body></html>"""


# --------------------------------------------------------------- CNN-fr mirror (aggregator) ----------

CN_SECTIONS = {
    "international": ("Monde", "/category/monde/"),
    "politique": ("Politique", "/category/politique/"),
    "economie": ("Économie", "/category/economie/"),
    "societe": ("France", "/category/france/"),
    "sport": ("Sport", "/category/sport/"),
    "culture": ("Divertissement", "/category/divertissement/"),
    "meteo": ("Météo", "/category/meteo/"),
    "paris": ("France", "/category/france/"),
    "tech": ("Technologie", "/category/technologie/"),
}


def _cn_path(rec, k):
    dt = _dt(rec)
    slug = rec["slug"] if k == 0 else f"{rec['slug']}-{k + 1}"
    return f"/{dt:%Y/%m/%d}/{slug}/"


def _cn_article(o: Outlet, rec: dict, ctx: Ctx) -> str:
    dt = _dt(rec)
    label = o.sections.get(rec["section"], ("Info", "/"))[0]
    title = rec["title"]
    repeats = _junk(rec, "title_repeat")
    sources = _junk(rec, "source")
    top = ""
    if repeats:
        top += (f'<figure class="wp-block-image"><img src="/wp-content/uploads/2024/11/img.jpg" alt="{escape(title)}">'
                f"<figcaption>{escape(repeats[0]['text'])}</figcaption></figure>"
                f"<p><strong>{escape(repeats[0]['text'])}</strong></p>")
    for j in sources:
        top += f"<p>{escape(j['text'])}</p>"
    figs = "".join(_figure(j, "wp-block-image") for j in _junk(rec, "caption"))
    body = [f"<p>{escape(rec['lead'])}</p>"] + _body_items(rec, lambda p: f"<p>{escape(p)}</p>", lambda h: f"<h2>{escape(h)}</h2>")
    tail = ""
    for j in _junk(rec, "google_news"):
        tail += f'<p>&nbsp;</p><p><a href="https://news.google.com/publications/CAAqBwgKMOTrlQsw5cXYAw">{escape(j["text"])}</a></p><p>&nbsp;</p>'
    prevs, nexts = _junk(rec, "prev"), _junk(rec, "next")
    if not prevs and ctx.prev:
        prevs = [{"text": "PREV " + ctx.prev[0]}]
    if not nexts and ctx.next:
        nexts = [{"text": "NEXT " + ctx.next[0]}]
    for js, nb, rel in ((prevs, ctx.prev, "prev"), (nexts, ctx.next, "next")):
        for j in js:
            word, _, rest = j["text"].partition(" ")
            href = nb[1] if nb else "/"
            tail += f'<p><a href="{escape(href)}" title="{escape(rest)}">{escape(word)}</a> {escape(rest)}</p>'
    related = "".join(f'<li><a href="{escape(u)}">{escape(t)}</a></li>' for t, u in ctx.related)
    return f"""<!DOCTYPE html>
<html lang="fr-FR">{_head(rec, title + ' - Actualités CNN', 'Actualités CNN en français', ctx, label)}
<body class="post-template-default single single-post">
<div class="top-bar"><span>{fr_date(dt, True)}</span> {_links([('À propos', '/contact'), ('Contact', '/contact'), ('Mentions légales', '/mentions-legales')], 'top-menu')}</div>
<header class="site-header"><p class="site-title"><a href="/">Actualités CNN en français</a></p>
<nav class="main-navigation">{_links([('Accueil', '/')] + o.nav() + [('Dernières nouvelles', '/derniere-heure/')], 'menu')}</nav>
</header>
<div id="content" class="site-content"><div id="primary" class="content-area"><main id="main" class="site-main">
<article class="post type-post status-publish format-standard has-post-thumbnail">
<header class="entry-header"><span class="cat-links"><a href="{o.sections.get(rec['section'], ('', '/'))[1]}" rel="category tag">{escape(label)}</a></span>
<h1 class="entry-title">{escape(title)}</h1>
<div class="entry-meta"><span class="posted-on"><time class="entry-date published" datetime="{rec['published']}">{fr_date(dt)}</time></span>
<span class="byline"> par <span class="author vcard"><a class="url fn n" href="/author/admin/">admin</a></span></span></div>
</header>
<div class="entry-content">
{top}
{figs}
{chr(10).join(body)}
{tail}
</div>
<footer class="entry-footer"><span class="tags-links">Mots-clés : <a href="/tag/actualites/" rel="tag">Actualités</a></span></footer>
</article>
<section class="related-posts"><h3>Articles similaires</h3><ul>{related}</ul></section>
<div id="comments" class="comments-area"><h3 class="comment-reply-title">Laisser un commentaire</h3>
<p class="logged-in-as">Votre adresse e-mail ne sera pas publiée. Les champs obligatoires sont indiqués avec *</p></div>
</main></div>
<aside id="secondary" class="widget-area"><section class="widget"><h2 class="widget-title">Articles récents</h2>{_links(ctx.related, 'recent')}</section></aside>
</div>
{_footer('Actualités CNN en français', o.nav(), 'site-footer')}
</body></html>"""


# ------------------------------------------------------------------------ section pages ----------

def _section_page(o: Outlet, label: str, path: str, items: list, ctx: Ctx) -> str:
    """A generic rubric page in the outlet's colours: article teasers + lots of nav links."""
    teasers = []
    for rec, url in items:
        dt = _dt(rec)
        teasers.append(f'<article class="teaser"><a class="teaser__link" href="{escape(url)}">'
                       f'<h3 class="teaser__title">{escape(rec["title"])}</h3></a>'
                       f'<p class="teaser__desc">{escape(rec["lead"][:180])}</p>'
                       f'<time datetime="{rec["published"]}">{dt.strftime("%d/%m/%Y %H:%M")}</time></article>')
    bait = "".join(f'<li><a href="{escape(p)}">{escape(t)}</a></li>' for t, p in o.bait)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(None, f'{label} : toute l’actualité | {o.name}', o.name, ctx)}
<body class="rubric">
{_cookie_banner()}
<header class="header"><a class="logo" href="/">{escape(o.name)}</a>
<nav class="nav">{_links([('Accueil', '/'), (o.fil[0], o.fil[1])] + o.nav() + [('Recherche', '/recherche/')], 'nav__list')}</nav></header>
<main>
<h1 class="rubric__title">{escape(label)}</h1>
<section class="rubric__list">{''.join(teasers) or '<p>Aucun article pour le moment.</p>'}</section>
<aside class="rubric__aside"><h2>Vidéos et directs</h2><ul>{bait}</ul>
<p><a href="https://www.example-partenaire.fr/offres">Nos offres partenaires</a></p>
<p><a href="/mentions-legales">Mentions légales</a> · <a href="/contact">Contact</a></p></aside>
</main>
{_footer(o.name, o.nav())}
</body></html>"""


def static_page(o: Outlet, title: str, paragraphs: list[str], ctx: Ctx) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="fr">{_head(None, f'{title} | {o.name}', o.name, ctx)}
<body>{_cookie_banner()}
<header><a href="/">{escape(o.name)}</a><nav>{_links(o.nav(), 'nav')}</nav></header>
<main class="page"><h1>{escape(title)}</h1>{body}</main>
{_footer(o.name, o.nav())}</body></html>"""


# ------------------------------------------------------------------------ feeds / sitemaps ----------

def rss_feed(o: Outlet, title: str, items: list, ctx: Ctx) -> str:
    out = []
    for rec, url in items:
        dt = _dt(rec)
        cats = f"<category>{xesc(o.sections.get(rec['section'], ('Info',))[0])}</category>"
        out.append(f"<item><title>{xesc(rec['title'])}</title><link>{xesc(url)}</link>"
                   f"<description>{xesc(rec['lead'])}</description><pubDate>{rfc822(dt)}</pubDate>"
                   f'<guid isPermaLink="true">{xesc(url)}</guid>'
                   f"<dc:creator>{xesc(', '.join(rec.get('authors') or [o.name]))}</dc:creator>{cats}"
                   f'<enclosure url="{xesc(ctx.base_url)}/static/img/{xesc(rec["slug"][:40])}.jpg" type="image/jpeg" length="0"/></item>')
    last = rfc822(max((_dt(r) for r, _ in items), default=datetime(2024, 11, 1, tzinfo=timezone.utc)))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
            f"<channel><title>{xesc(o.name)} - {xesc(title)}</title><link>{xesc(ctx.base_url)}/</link>"
            f'<atom:link href="{xesc(ctx.url)}" rel="self" type="application/rss+xml"/>'
            f"<description>Toute l'actualité de {xesc(o.name)}</description><language>fr</language>"
            f"<lastBuildDate>{last}</lastBuildDate><ttl>15</ttl>" + "".join(out) + "</channel></rss>\n")


def atom_feed(o: Outlet, title: str, items: list, ctx: Ctx) -> str:
    out = []
    for rec, url in items:
        authors = "".join(f"<author><name>{xesc(a)}</name></author>" for a in rec.get("authors") or [o.name])
        out.append(f"<entry><id>{xesc(url)}</id><title>{xesc(rec['title'])}</title>"
                   f'<link rel="alternate" type="text/html" href="{xesc(url)}"/>'
                   f"<published>{w3c(_dt(rec))}</published><updated>{w3c(parse_date(rec.get('modified') or rec['published']))}</updated>"
                   f'{authors}<summary type="text">{xesc(rec["lead"])}</summary>'
                   f'<category term="{xesc(o.sections.get(rec["section"], ("Info",))[0])}"/></entry>')
    upd = w3c(max((_dt(r) for r, _ in items), default=datetime(2024, 11, 1, tzinfo=timezone.utc)))
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">'
            f"<id>{xesc(ctx.url)}</id><title>{xesc(o.name)} - {xesc(title)}</title><updated>{upd}</updated>"
            f'<link rel="self" href="{xesc(ctx.url)}"/><link rel="alternate" href="{xesc(ctx.base_url)}/"/>'
            + "".join(out) + "</feed>\n")


def news_sitemap(o: Outlet, items: list, ctx: Ctx) -> str:
    out = []
    for rec, url in items:
        out.append(f"<url><loc>{xesc(url)}</loc><lastmod>{w3c(parse_date(rec.get('modified') or rec['published']))}</lastmod>"
                   f"<news:news><news:publication><news:name>{xesc(o.name)}</news:name><news:language>fr</news:language>"
                   f"</news:publication><news:publication_date>{w3c(_dt(rec))}</news:publication_date>"
                   f"<news:title>{xesc(rec['title'])}</news:title></news:news>"
                   f"<image:image><image:loc>{xesc(ctx.base_url)}/static/img/{xesc(rec['slug'][:40])}.jpg</image:loc></image:image></url>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
            'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">' + "".join(out) + "</urlset>\n")


def url_sitemap(urls: list[tuple[str, str]]) -> str:
    body = "".join(f"<url><loc>{xesc(u)}</loc><lastmod>{lm}</lastmod></url>" for u, lm in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + body + "</urlset>\n")


def sitemap_index(entries: list[tuple[str, str]]) -> str:
    body = "".join(f"<sitemap><loc>{xesc(u)}</loc><lastmod>{lm}</lastmod></sitemap>" for u, lm in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + body + "</sitemapindex>\n")


def robots_txt(o: Outlet, base_url: str) -> str:
    lines = ["# robots.txt", "User-agent: GPTBot", "Disallow: /", "", "User-agent: *", "Disallow: /recherche/",
             "Disallow: /api/"] + [f"Disallow: {p}" for p in o.extra_disallow]
    lines += ["Allow: /", "", f"Sitemap: {base_url}{o.robots_sitemap}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------ the outlets ----------

def _strip3(d):
    return {k: (v[0], v[1]) for k, v in d.items()}


OUTLETS: dict[str, Outlet] = {
    "bfmtv": Outlet(
        id="bfmtv", name="BFMTV", sections=BFM_SECTIONS, main_section="international",
        fil=("Toute l'actu en continu", "/news-24-7/"), feed_path="/rss/news-24-7/", feed_format="rss",
        sitemap_path="/sitemap_news.xml", sitemap_index_path=None,
        allow=[r"_AN-\d+\.html$"], deny=[r"/video/"], junk_patterns=[r"Journaliste BFMTV$", r"^Alerte info$"],
        article_path=_unique(_bfm_path), article_page=_bfm_article, section_page=_section_page,
        bait=[("Vidéo : les images de la tempête", "/video/meteo/les-images-de-la-tempete-en-video_AN-202411211030.html"),
              ("Replay : 20H BFM", "/replay/")]),
    "franceinfo": Outlet(
        id="franceinfo", name="Franceinfo", sections=FI_SECTIONS, main_section="international",
        fil=("Les dernières infos", "/en-continu/"), feed_path="/titres.rss", feed_format="rss",
        sitemap_path="/sitemap-news.xml", sitemap_index_path=None,
        allow=[r"_\d{6,8}\.html$"], deny=[r"/en-direct/"],
        junk_patterns=[r"^(RECIT|ENQUETE|DIRECT|REPORTAGE|INFO FRANCEINFO)\. "],
        article_path=_unique(_fi_path), article_page=_fi_article, section_page=_section_page,
        bait=[("DIRECT. Guerre en Ukraine : suivez les dernières informations", "/en-direct/direct-guerre-en-ukraine_6880001.html")]),
    "lemonde": Outlet(
        id="lemonde", name="Le Monde", sections=_strip3(LM_SECTIONS), main_section="international",
        fil=("Actualités en continu", "/actualite-en-continu/"), feed_path="/rss/une.xml", feed_format="rss",
        sitemap_path="/sitemap_news.xml", sitemap_index_path="/sitemap_index.xml",
        allow=[r"/\d{4}/\d{2}/\d{2}/[a-z0-9-]+_\d+_\d+\.html$"], deny=[r"/live/"], junk_patterns=[r"^Lire aussi \| "],
        article_path=_unique(_lm_path), article_page=_lm_article, section_page=_section_page,
        bait=[("En direct : guerre en Ukraine", "/international/live/2024/11/20/en-direct-guerre-en-ukraine_6390001_3210.html")]),
    "20minutes": Outlet(
        id="20minutes", name="20 Minutes", sections=TM_SECTIONS, main_section="societe",
        fil=("Actu en continu", "/actu-en-continu/"), feed_path="/feeds/atom-une.xml", feed_format="atom",
        sitemap_path="/sitemap-news.xml", sitemap_index_path=None,
        allow=[r"/\d{7}-\d{8}-[a-z0-9-]+$"], deny=[r"/videos/"], junk_patterns=[r"^À lire aussi :"],
        article_path=_unique(_tm_path), article_page=_tm_article, section_page=_section_page,
        bait=[("Vidéo : la neige tombe sur Paris", "/videos/paris/4110001-20241121-video-la-neige-tombe-sur-paris")]),
    "ouestfrance": Outlet(
        id="ouestfrance", name="Ouest-France", sections=OF_SECTIONS, main_section="meteo",
        fil=("L'actu en continu", "/actualite-en-continu/"), feed_path="/rss/une", feed_format="rss",
        sitemap_path="/sitemap-news.xml", sitemap_index_path=None,
        allow=[r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.html$"], deny=[r"/abonnement/"],
        junk_patterns=[r"^Lire aussi :"],
        article_path=_unique(_of_path), article_page=_of_article, section_page=_section_page,
        bait=[("Offre abonnement : 1 € le premier mois", "/abonnement/offre-decouverte-00000000-0000-0000-0000-000000000000.html")]),
    "cnnfr": Outlet(
        id="cnnfr", name="Actualités CNN en français", sections=CN_SECTIONS, main_section="international",
        fil=("Dernières nouvelles", "/derniere-heure/"), feed_path="/feed/", feed_format="rss",
        sitemap_path="/news-sitemap.xml", sitemap_index_path=None,
        allow=[r"/\d{4}/\d{2}/\d{2}/[^/]+/$"], deny=[r"/tag/", r"/category/", r"/author/", r"/web-stories/"],
        junk_patterns=[r"^For Latest Updates Follow us on Google News$", r"^(PREV|NEXT) ", r"^CNN$"],
        article_path=_unique(_cn_path), article_page=_cn_article, section_page=_section_page,
        bait=[("Actualités", "/tag/actualites/"), ("Web story : l'Ukraine en images", "/web-stories/2024/11/19/ukraine-en-images/")], extra_disallow=["/wp-admin/"]),
}
