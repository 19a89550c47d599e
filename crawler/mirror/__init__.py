"""The bundled local mirror of French outlets, for the demo, the tests and the benchmark.

    from crawler.mirror import Mirror
    with Mirror() as m:                 # six outlets, each on its own 127.0.0.1 port
        print(m.sources_yaml())         # a sources.yaml document pointing at them
        m.articles[0]["url"]            # content records, with their URL once started

Each outlet serves ``/robots.txt``, a feed (RSS 2.0, Atom for 20minutes), a Google News sitemap
(behind a sitemap index for lemonde), section pages, article pages and a few non-article pages.
Articles are split between discovery channels (``rec["channels"]``): some are listed everywhere,
some only on section pages, some only in the sitemap, some only in the feed.
"""
from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from . import render
from .chrome import add_heavy_chrome
from .render import OUTLETS, Ctx, parse_date, w3c
from .server import RequestRecord, Route, SiteServer

__all__ = ["Mirror", "SiteServer", "Route", "RequestRecord", "load_articles", "synthetic_articles",
           "CONTENT_DIR", "OUTLETS", "CHANNELS"]

CONTENT_DIR = Path(__file__).resolve().parent / "content"
CHANNELS = ("feed", "sitemap", "section")
REQUIRED = ("id", "outlet", "section", "slug", "title", "lead", "paragraphs", "authors", "published",
            "seed", "story", "page_junk")
# Rotation of discovery channels within an outlet (by publication order), unless a record sets
# its own "channels": every channel is the only way to some articles.
_ROTATION = (("feed", "sitemap", "section"), ("section",), ("sitemap",), ("feed",))


def load_articles() -> list[dict]:
    """The bundled content records (all ``content/*.yaml`` files, in name order)."""
    out: list[dict] = []
    for path in sorted(CONTENT_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for rec in data:
            missing = [k for k in REQUIRED if k not in rec]
            if missing:
                raise ValueError(f"{path.name}: record {rec.get('id')!r} lacks {missing}")
            if rec["outlet"] not in OUTLETS:
                raise ValueError(f"{path.name}: record {rec['id']!r} has unknown outlet {rec['outlet']!r}")
            rec.setdefault("subheadings", [])
            out.append(rec)
    ids = [r["id"] for r in out]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate article ids in bundled content")
    return out


def slugify(text: str, max_len: int = 90) -> str:
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("œ", "oe"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:max_len].rstrip("-")


def _epoch(rec: dict) -> float:
    return parse_date(rec.get("modified") or rec["published"]).timestamp()


def _etag(body: str | bytes) -> str:
    return hashlib.sha1(body if isinstance(body, bytes) else body.encode("utf-8")).hexdigest()[:20]


STATIC_PAGES = {
    "/mentions-legales": ("Mentions légales", [
        "Le présent site est édité à des fins de démonstration. Il reproduit la mise en page d'un site "
        "d'information français sur un serveur local.",
        "Directeur de la publication : la rédaction. Hébergement : serveur local 127.0.0.1.",
        "Conformément au règlement général sur la protection des données, vous disposez d'un droit d'accès, "
        "de rectification et de suppression des données vous concernant."]),
    "/contact": ("Nous contacter", [
        "Pour toute question relative à nos contenus, écrivez à la rédaction via le formulaire ci-dessous.",
        "Service abonnés : du lundi au vendredi, de 9 heures à 18 heures."]),
    "/plan-du-site": ("Plan du site", ["Retrouvez l'ensemble de nos rubriques et de nos services."]),
    "/recherche/": ("Recherche", ["Saisissez un ou plusieurs mots-clés pour lancer votre recherche."]),
}


class Mirror:
    """The bundled outlets, each on its own :class:`SiteServer` on 127.0.0.1."""

    def __init__(self, articles: list[dict] | None = None, chrome: str = "light"):
        """``chrome="heavy"`` wraps article pages in realistic page weight (:mod:`.chrome`, 220-520 KB
        a page, like real French news pages); the light default keeps ~10 KB pages."""
        if chrome not in ("light", "heavy"):
            raise ValueError(f"chrome must be 'light' or 'heavy', not {chrome!r}")
        self.chrome = chrome
        recs = load_articles() if articles is None else articles
        # fresh copies; a URL from another (stopped) mirror's ports is dropped
        self.articles: list[dict] = [{k: v for k, v in r.items() if k not in ("url", "path")} for r in recs]
        for r in self.articles:
            r.setdefault("subheadings", [])
            r.setdefault("page_junk", [])
        used = {r["outlet"] for r in self.articles}
        self.outlets: dict[str, SiteServer] = {oid: SiteServer() for oid in OUTLETS if oid in used}
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Mirror":
        if self._started:
            return self
        for srv in self.outlets.values():
            srv.start()
        self._assign_urls()
        for oid in self.outlets:
            self._render_outlet(oid)
        self._started = True
        return self

    def stop(self) -> None:
        for srv in self.outlets.values():
            srv.stop()
        self._started = False

    def __enter__(self) -> "Mirror":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- content ------------------------------------------------------------------------------
    def by_outlet(self, oid: str) -> list[dict]:
        return sorted((r for r in self.articles if r["outlet"] == oid), key=lambda r: (r["published"], r["id"]))

    def _assign_urls(self) -> None:
        for oid, srv in self.outlets.items():
            used: set[str] = set()
            for i, rec in enumerate(self.by_outlet(oid)):
                self._place(rec, used, i)

    def _place(self, rec: dict, used: set, i: int) -> None:
        outlet = OUTLETS[rec["outlet"]]
        if "url" not in rec:
            rec["path"] = outlet.article_path(rec, used)
            rec["url"] = self.outlets[rec["outlet"]].base_url + rec["path"]
        else:
            used.add(rec["path"])
        if not rec.get("channels"):
            rec["channels"] = list(_ROTATION[i % len(_ROTATION)])

    def add_article(self, rec: dict) -> dict:
        """Publish a new article on a running mirror (feeds, sitemaps and sections are re-rendered)."""
        rec = dict(rec)
        rec.setdefault("subheadings", [])
        rec.setdefault("page_junk", [])
        rec.setdefault("channels", list(CHANNELS))
        self.articles.append(rec)
        if self._started:
            used = {r["path"] for r in self.articles if r["outlet"] == rec["outlet"] and "path" in r}
            self._place(rec, used, 0)
            self._render_outlet(rec["outlet"])
        return rec

    def refresh(self, oid: str | None = None) -> None:
        """Re-render one outlet (or all) after editing records in place."""
        for o in [oid] if oid else list(self.outlets):
            self._render_outlet(o)

    def channel_urls(self, oid: str, channel: str) -> list[str]:
        return [r["url"] for r in self.by_outlet(oid) if channel in r["channels"]]

    # -- rendering ----------------------------------------------------------------------------
    def _render_outlet(self, oid: str) -> None:
        o = OUTLETS[oid]
        srv = self.outlets[oid]
        base = srv.base_url
        recs = self.by_outlet(oid)
        newest = sorted(recs, key=lambda r: r["published"], reverse=True)
        sec_recs = [r for r in recs if "section" in r["channels"]]
        routes: dict[str, Route] = {}

        def page(body: str, lm: float | None = None, ctype="text/html; charset=utf-8") -> Route:
            return Route(body=body, content_type=ctype, etag=_etag(body), last_modified=lm)

        # article pages
        for rec in recs:
            ranked = sorted((r for r in sec_recs if r is not rec),
                            key=lambda r: (r["section"] != rec["section"],
                                           abs(parse_date(r["published"]).timestamp() - parse_date(rec["published"]).timestamp())))
            related = [(r["title"], r["url"]) for r in ranked[:4]]
            prev = nxt = None
            older = [r for r in sec_recs if r["published"] < rec["published"] and r is not rec]
            newer = [r for r in sec_recs if r["published"] > rec["published"] and r is not rec]
            if older:
                prev = (older[-1]["title"], older[-1]["url"])
            if newer:
                nxt = (newer[0]["title"], newer[0]["url"])
            ctx = Ctx(base_url=base, url=rec["url"], related=related, prev=prev, next=nxt,
                      read_also_url=related[0][1] if related else "/")
            html = o.article_page(o, rec, ctx)
            if self.chrome == "heavy":
                html = add_heavy_chrome(html, o.name, rec, rec["url"]).encode("utf-8")
            routes[rec["path"]] = page(html, _epoch(rec))

        # section pages: one per rubric, the "latest news" page and the home page
        newest_sec = [r for r in newest if "section" in r["channels"]]
        for key, (label, path) in o.sections.items():
            items = [(r, r["url"]) for r in newest_sec if r["section"] == key]
            routes.setdefault(path, page(o.section_page(o, label, path, items, Ctx(base, base + path))))
        items = [(r, r["url"]) for r in newest_sec]
        routes[o.fil[1]] = page(o.section_page(o, o.fil[0], o.fil[1], items, Ctx(base, base + o.fil[1])))
        routes["/"] = page(o.section_page(o, f"{o.name} : l'actualité en direct", "/", items[:30], Ctx(base, base + "/")))

        # feed
        feed_items = [(r, r["url"]) for r in newest if "feed" in r["channels"]]
        feed_lm = max((_epoch(r) for r, _ in feed_items), default=None)
        ctx = Ctx(base, base + o.feed_path)
        if o.feed_format == "atom":
            body = render.atom_feed(o, "À la une", feed_items, ctx)
            routes[o.feed_path] = page(body, feed_lm, "application/atom+xml; charset=utf-8")
        else:
            body = render.rss_feed(o, "À la une", feed_items, ctx)
            routes[o.feed_path] = page(body, feed_lm, "application/rss+xml; charset=utf-8")

        # sitemaps
        sm_items = [(r, r["url"]) for r in newest if "sitemap" in r["channels"]]
        sm_lm = max((_epoch(r) for r, _ in sm_items), default=None)
        routes[o.sitemap_path] = page(render.news_sitemap(o, sm_items, Ctx(base, base + o.sitemap_path)), sm_lm,
                                      "application/xml; charset=utf-8")
        if o.sitemap_index_path:
            lm_str = w3c(datetime.fromtimestamp(sm_lm or 0, tz=timezone.utc))
            pages_path = "/sitemap_pages.xml"
            routes[pages_path] = page(render.url_sitemap([(base + p, "2024-09-01T00:00:00+02:00") for p in
                                                          ("/mentions-legales", "/contact", "/plan-du-site")]),
                                      parse_date("2024-09-01T00:00:00+02:00").timestamp(), "application/xml; charset=utf-8")
            routes[o.sitemap_index_path] = page(render.sitemap_index([(base + o.sitemap_path, lm_str),
                                                                      (base + pages_path, "2024-09-01T00:00:00+02:00")]),
                                                sm_lm, "application/xml; charset=utf-8")

        # robots, static pages, bait pages (denied by the source config), a redirect
        routes["/robots.txt"] = Route(body=render.robots_txt(o, base), content_type="text/plain; charset=utf-8")
        for path, (title, paras) in STATIC_PAGES.items():
            routes[path] = page(render.static_page(o, title, paras, Ctx(base, base + path)))
        for title, path in o.bait:
            routes.setdefault(path, page(render.static_page(o, title, ["Contenu vidéo ou interactif."], Ctx(base, base + path))))
        routes["/actu"] = Route(status=301, headers={"Location": o.fil[1]})
        with srv._lock:
            srv.routes = {**{k: v for k, v in srv.routes.items() if k.startswith("/__")}, **routes}

    # -- config -------------------------------------------------------------------------------
    def source_entry(self, oid: str) -> dict:
        o = OUTLETS[oid]
        base = self.outlets[oid].base_url
        return {
            "id": oid,
            "name": o.name,
            "language": "fr",
            "feeds": [base + o.feed_path],
            "sitemaps": [base + (o.sitemap_index_path or o.sitemap_path)],
            "sections": [base + o.sections[o.main_section][1], base + o.fil[1]],
            "allow": list(o.allow),
            "deny": list(o.deny),
            "interval": "15m",
            "junk_patterns": list(o.junk_patterns),
        }

    def sources_yaml(self) -> str:
        """A sources.yaml document for the served outlets (call after start())."""
        if not self._started:
            raise RuntimeError("Mirror.sources_yaml() needs a started mirror (ports are ephemeral)")
        doc = {"sources": [self.source_entry(oid) for oid in self.outlets]}
        head = "# Generated by crawler.mirror.Mirror: the bundled local mirror of French outlets.\n"
        return head + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=200)


# ---------------------------------------------------------------------------------------------
# Synthetic articles for the benchmark mirror
# ---------------------------------------------------------------------------------------------

_SUBJECTS = ["Le gouvernement", "La mairie de Paris", "La SNCF", "Météo-France", "L'Insee", "Le Conseil d'État",
             "Les agriculteurs", "Les syndicats", "La préfecture de police", "Le ministère de la Santé",
             "Les enseignants", "La Banque de France", "L'Assemblée nationale", "Le Sénat", "La RATP",
             "Les pompiers", "La Cour des comptes", "Les commerçants", "Les étudiants", "Les maires ruraux",
             "Le XV de France", "Les Bleues", "Un collectif d'habitants", "La région Bretagne", "L'Union européenne"]
_PREDICATES = ["annonce un plan d'urgence", "dévoile son calendrier", "appelle à la mobilisation",
               "revoit ses prévisions", "tire la sonnette d'alarme", "lance une consultation",
               "obtient gain de cause", "présente un bilan contrasté", "promet des mesures rapides",
               "fait face à la grogne", "suspend le projet", "confirme la hausse", "prolonge le dispositif",
               "rejette la proposition", "accélère la transition", "se prépare à l'hiver",
               "renonce à la réforme", "signe un accord", "publie des chiffres inédits", "maintient le cap"]
_PLACES = ["", " à Lyon", " à Marseille", " en Bretagne", " en Normandie", " à Toulouse", " à Lille",
           " en Île-de-France", " à Bordeaux", " à Nantes", " à Strasbourg", " en Occitanie",
           " dans le Grand Est", " à Rennes", " en Corse", " à Montpellier"]
_TOPICS = [" pour 2025", " après la tempête", " malgré les critiques", " face à l'inflation", " avant les fêtes",
           " dès lundi", " sous pression", "", " cet hiver", " jusqu'en mars"]
_NAMES = ["Claire Dubois", "Julien Moreau", "Sophie Lefèvre", "Antoine Girard", "Camille Bernard", "Thomas Roux",
          "Léa Fontaine", "Nicolas Mercier", "Manon Chevalier", "Hugo Lambert", "Inès Garnier", "Maxime Faure",
          "Sarah Benali", "Paul Martin", "Élise Robin", "Karim Haddad"]
_SECTIONS = ["international", "politique", "economie", "societe", "sport", "culture", "meteo", "paris", "tech"]
_CAPTIONS = ["Une vue de la manifestation, dans le centre-ville.", "Le ministre lors de sa conférence de presse.",
             "Des usagers sur un quai de gare, à Paris.", "Le site, photographié depuis les airs.",
             "Illustration. Un bureau de vote dans une école.", "La façade du bâtiment, ce matin."]
_CREDITS = ["AFP", "MAXPPP", "Photo d'illustration / AFP", "SIPA", "REUTERS", "Archives Ouest-France"]


def _paragraph_pool() -> list[str]:
    pool: list[str] = []
    for rec in load_articles():
        subs = set(rec.get("subheadings") or [])
        for p in [rec["lead"]] + list(rec["paragraphs"]):
            if p not in subs and len(p) >= 80 and p not in pool:
                pool.append(p)
    return pool


def synthetic_articles(n: int, seed: int = 0) -> list[dict]:
    """``n`` deterministic article records recombined from the bundled paragraphs (benchmark mirror)."""
    rng = random.Random(seed)
    pool = _paragraph_pool()
    outlets = list(OUTLETS)
    start = datetime(2024, 10, 1, 6, 0, tzinfo=timezone(timedelta(hours=2)))
    titles: set[str] = set()
    out = []
    for i in range(n):
        for attempt in range(50):
            title = (rng.choice(_SUBJECTS) + " " + rng.choice(_PREDICATES) + rng.choice(_PLACES)
                     + rng.choice(_TOPICS))
            if title not in titles:
                break
        else:
            title = f"{title} ({i})"
        titles.add(title)
        k = rng.randint(4, 8)
        picks = rng.sample(pool, k + 1)
        lead, paras = picks[0], picks[1:]
        subheads = []
        if k >= 6:
            sub = rng.choice(["Des réactions contrastées", "Un calendrier serré", "Ce qui va changer",
                              "Les prochaines étapes", "Un précédent en 2019", "Inquiétudes sur le terrain"])
            paras.insert(k // 2, sub)
            subheads.append(sub)
        minutes = rng.randint(0, 60 * 24 * 60)
        dt = start + timedelta(minutes=minutes)
        tz = timezone(timedelta(hours=2)) if dt < datetime(2024, 10, 27, 1, 0, tzinfo=timezone.utc) else timezone(timedelta(hours=1))
        dt = dt.astimezone(tz)
        junk = []
        if rng.random() < 0.5:
            junk.append({"kind": "caption", "text": rng.choice(_CAPTIONS), "credit": rng.choice(_CREDITS)})
        out.append({
            "id": f"syn-{seed}-{i:05d}",
            "outlet": outlets[i % len(outlets)],
            "section": rng.choice(_SECTIONS),
            "slug": slugify(title),
            "title": title,
            "lead": lead,
            "paragraphs": paras,
            "subheadings": subheads,
            "authors": rng.sample(_NAMES, rng.choice([1, 1, 2])),
            "published": dt.isoformat(timespec="seconds"),
            "seed": False,
            "story": None,
            "page_junk": junk,
        })
    return out
