"""Article extraction (crawler.extraction) and dev-set quality."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crawler.cleaning import SiteBoilerplate  # noqa: E402
from crawler.extraction import ExtractionError, article_text, decode_html, extract_article  # noqa: E402

DEV_DIR = REPO.parent / "shared" / "data" / "extraction-dev"

needs_dev = pytest.mark.skipif(
    not (DEV_DIR / "expected.json").exists(),
    reason=f"extraction dev set not found at {DEV_DIR} (../shared absent)",
)


def norm(s: str) -> str:
    return " ".join(s.split())


def _dev_records() -> list[dict]:
    return json.loads((DEV_DIR / "expected.json").read_text(encoding="utf-8"))


def _dev(name: str) -> tuple[dict, bytes]:
    rec = next(r for r in _dev_records() if name in r["file"])
    return rec, (DEV_DIR / rec["file"]).read_bytes()


# ---------------------------------------------------------------- dev-set quality


@needs_dev
def test_dev_set_recall_and_zero_junk():
    found = expected = 0
    junk: list[str] = []
    for rec in _dev_records():
        raw = (DEV_DIR / rec["file"]).read_bytes()
        out = article_text(extract_article(raw, rec["url"]))
        exp = [norm(p) for p in rec["body_paragraphs"]]
        flat = norm(out)
        found += sum(p in flat for p in exp)
        expected += len(exp)
        junk += [f"{rec['file']}: {l}" for l in out.splitlines() if norm(l) and not any(norm(l) in p for p in exp)]
    assert expected == 135
    assert found >= 134, f"recall {found}/{expected}"
    assert junk == []


@needs_dev
def test_bench_script_reports_both_extractors():
    sys.path.insert(0, str(REPO / "bench"))
    import extraction_quality

    res = extraction_quality.evaluate()
    assert len(res["rows"]) == 6
    assert res["totals"]["veille"]["junk"] == 0
    assert res["totals"]["bare"]["junk"] > res["totals"]["veille"]["junk"]
    assert res["totals"]["veille"]["found"] >= res["totals"]["bare"]["found"]


@needs_dev
def test_dev_page_fields_le_figaro():
    rec, raw = _dev("LeFigaro_2024_04_30")  # no <meta charset>: bytes decoded as UTF-8
    r = extract_article(raw, rec["url"])
    assert r["title"] == rec["title"]
    assert r["authors"] == ["E.P."]
    assert r["published"] == "2024-04-30T14:11:00+02:00"
    assert r["lead"] == [norm(s) for s in rec["summary"]]
    assert r["paragraphs"][0] == norm(rec["body_paragraphs"][1])
    assert r["title"] not in r["paragraphs"]
    assert r["lang"] == "fr"
    assert r["sitename"] == "Le Figaro"
    assert "Londres" in r["tags"]
    # reader comments are not article body
    text = article_text(r)
    assert "Big Brother" not in text and "Gilfred" not in text
    assert not text.startswith(r["title"])


@needs_dev
def test_dev_page_le_monde_standfirst_and_paywall():
    rec, raw = _dev("LeMonde")
    r = extract_article(raw, rec["url"])
    assert r["lead"] == [norm(rec["summary"][0])]  # standfirst trafilatura leaves out
    assert r["published"] == "2023-08-30T14:52:08+02:00"  # same instant as 12:52:08+00:00
    assert {"line": "Il vous reste 57.09% de cet article à lire. La suite est réservée aux abonnés.", "rule": "paywall"} in r["removed"]
    assert "« Désaccord total »" in r["paragraphs"]


@needs_dev
def test_dev_page_live_blog_link_box_and_byline():
    rec, raw = _dev("LesEchos")
    r = extract_article(raw, rec["url"])
    rules = {x["line"]: x["rule"] for x in r["removed"]}
    assert rules["Par Les Echos"] == "byline"
    assert rules["9h00 - Les principales infos de ce matin"] == "link-box"
    assert rules["> A Milwaukee, JD Vance trace sa vision de l'Amérique"] == "link-box"
    assert "» Le fil des événements de jeudi :" in r["paragraphs"]
    assert r["lead"] == [norm(rec["summary"][0])]
    assert r["authors"] == ["Les Echos"]


@needs_dev
def test_junk_patterns_and_site_boilerplate_are_applied():
    rec, raw = _dev("EuronewsFR_2024_04_30")
    base = extract_article(raw, rec["url"])
    target = base["paragraphs"][3]
    r = extract_article(raw, rec["url"], junk_patterns=[r"^" + target[:25].replace("(", r"\(")])
    assert target not in r["paragraphs"]
    assert any(x["rule"].startswith("extra:") for x in r["removed"])

    bp = SiteBoilerplate(min_docs=2, min_share=0.5)
    for _ in range(3):
        bp.observe("euronews", [target, "autre ligne"])
    r = extract_article(raw, rec["url"], boilerplate=bp, outlet="euronews")
    assert target not in r["paragraphs"]
    assert {"line": target, "rule": "site-boilerplate"} in r["removed"]


# ---------------------------------------------------------------- synthetic pages

ARTICLE = """<!DOCTYPE html>
<html lang="fr-FR"><head>
<meta charset="{charset}">
<title>Les prix de l'énergie reculent en été</title>
<meta property="og:title" content="Les prix de l'énergie reculent en été">
<meta name="description" content="Le prix du gaz a baissé de 12 % en juillet, selon la Commission de régulation de l'énergie.">
<meta property="article:published_time" content="2024-07-18T08:01:58+02:00">
<meta name="author" content="Amélie Durand">
</head><body>
<header><nav><a href="/">Accueil</a> <a href="/eco">Économie</a></nav></header>
<article>
<h1>Les prix de l'énergie reculent en été</h1>
<p class="chapo">Le prix du gaz a baissé de 12 % en juillet, selon la Commission de régulation de l'énergie.</p>
<p>Par Amélie Durand</p>
<p>La baisse, la plus forte depuis deux ans, s'explique par des stocks européens remplis à 85 % dès la fin juin, a indiqué la CRE dans un communiqué transmis à l'AFP.</p>
<p>Passer la publicité</p>
<p>Les ménages chauffés au gaz verront leur facture diminuer dès le mois d'août, a précisé le régulateur, qui anticipe une stabilisation à l'automne.</p>
<h2>Une détente fragile</h2>
<p>Les analystes restent prudents : une vague de froid précoce ou une tension sur les livraisons de gaz naturel liquéfié pourraient inverser la tendance d'ici l'hiver.</p>
<p>À lire aussi : Électricité, ce qui change au 1er août</p>
<p>Le gouvernement, de son côté, a promis de maintenir le bouclier tarifaire pour les ménages modestes jusqu'à la fin de l'année, selon un arrêté publié au Journal officiel.</p>
<p>Inscrivez-vous à la newsletter Économie</p>
<p>Le prix du gaz a baissé de 12 % en juillet, selon la Commission de régulation de l'énergie.</p>
</article>
<footer><p>© Exemple Média 2024 – Tous droits réservés</p></footer>
</body></html>
"""


def _page(charset: str = "utf-8") -> str:
    return ARTICLE.replace("{charset}", charset)


def test_extract_synthetic_article_structure():
    r = extract_article(_page().encode("utf-8"), "https://exemple.fr/eco/prix-energie")
    assert r["title"] == "Les prix de l'énergie reculent en été"
    assert r["lead"] == ["Le prix du gaz a baissé de 12 % en juillet, selon la Commission de régulation de l'énergie."]
    assert r["paragraphs"][0].startswith("La baisse, la plus forte depuis deux ans")
    assert "Une détente fragile" in r["paragraphs"]
    assert r["paragraphs"][-1].startswith("Le gouvernement, de son côté")
    assert r["published"] == "2024-07-18T08:01:58+02:00"
    assert r["lang"] == "fr"
    assert r["authors"] == ["Amélie Durand"]
    text = article_text(r)
    for junk in ("Passer la publicité", "À lire aussi", "Inscrivez-vous", "Par Amélie Durand", "Accueil"):
        assert junk not in text
    assert text.splitlines()[0] == r["lead"][0]
    assert r["title"] not in text.splitlines()
    assert len(text.splitlines()) == 1 + len(r["paragraphs"])
    rules = {x["rule"] for x in r["removed"]}
    assert {"advertising", "related-link", "share-subscribe", "byline", "lead-repeat"} <= rules
    assert text.count("Le prix du gaz a baissé de 12 %") == 1


def test_result_is_plain_picklable_data():
    r = extract_article(_page(), "https://exemple.fr/a")
    assert pickle.loads(pickle.dumps(r)) == r
    assert json.loads(json.dumps(r)) == r
    assert set(r) == {"title", "lead", "paragraphs", "authors", "published", "sitename", "lang", "description", "tags", "removed"}


def test_worker_process_call():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1) as ex:
        r = ex.submit(extract_article, _page().encode(), "https://exemple.fr/a").result(timeout=60)
    assert r["title"] == "Les prix de l'énergie reculent en été"


def test_latin1_page_with_meta_charset():
    raw = _page("iso-8859-1").encode("cp1252")
    r = extract_article(raw, "https://exemple.fr/a")
    assert r["title"] == "Les prix de l'énergie reculent en été"
    assert "Une détente fragile" in r["paragraphs"]


BFM_LIKE = """<html lang="fr"><head><meta charset="utf-8"><title>Guerre en Ukraine: Kiev reçoit des mines</title>
<meta property="og:title" content="Guerre en Ukraine: Kiev reçoit des mines"></head><body>
<div class="content"><p class="brand">BFMTV</p><p class="kicker">Ukraine</p><p class="flash">Alerte info</p>
<h1>Guerre en Ukraine: Kiev reçoit des mines</h1>
<figure><img src="a.jpg"><figcaption>Joe Biden à Washington - SAUL LOEB / AFP</figcaption></figure>
<p>Les autorités américaines estiment que cette aide pourrait enrayer l'avancée russe de ces dernières semaines, selon un responsable.</p>
<p>Le président Joe Biden a autorisé la livraison de mines antipersonnel « non persistantes » à l'Ukraine, a déclaré mercredi un haut responsable.</p>
<div class="encadre"><h3>Les principales infos de ce matin</h3>
<p>&gt; Les Bourses européennes ouvrent en hausse</p><p>&gt; Le Village olympique ouvre ses portes</p><p>Météo : un week-end ensoleillé</p></div>
<h3>Une décision contestée</h3>
<p>La Campagne internationale pour interdire les mines a dénoncé une décision « désastreuse » dans un communiqué transmis à l'AFP.</p>
<ul><li>› 164 États ont signé la convention d'Ottawa</li><li>› Les États-Unis n'en font pas partie</li></ul>
<p class="read-also"><a href="/vigilance">Vigilance orange : comment se protéger en cas de vents violents</a></p>
<p>Moscou a accusé Washington de vouloir prolonger la guerre en renforçant ses livraisons d'armes à Kiev, selon le Kremlin.</p>
<p><a href="https://twitter.com/Hugo_Septier">Hugo Septier</a> Journaliste BFMTV</p>
</div></body></html>"""


def test_header_labels_link_box_and_byline_on_bfm_like_page():
    r = extract_article(BFM_LIKE, "https://exemple.fr/ukraine")
    text = article_text(r)
    rules = {x["line"]: x["rule"] for x in r["removed"]}
    for line in ("BFMTV", "Ukraine", "Alerte info"):
        assert rules.get(line) == "pre-title", r["removed"]
    assert rules.get("Les principales infos de ce matin") == "link-box"
    assert "Les Bourses européennes" not in text
    assert "Hugo Septier" not in text
    assert r["title"] == "Guerre en Ukraine: Kiev reçoit des mines"
    assert "Une décision contestée" in r["paragraphs"]
    assert "communiqué transmis à l'AFP." in text
    assert r["paragraphs"][-1].startswith("Moscou a accusé Washington")
    assert "› 164 États ont signé la convention d'Ottawa" in r["paragraphs"]  # bullets are not teaser links
    assert "Vigilance orange" not in text  # a paragraph that is one teaser link
    assert r["paragraphs"][0].startswith("Les autorités américaines")


# ---------------------------------------------------------------- decode_html

TEXT = "<html><body><p>L’été à Noël : « 12 € » — déjà vu, cœur œuvre.</p></body></html>"


def test_decode_windows_1252_labelled_iso_8859_1():
    raw = TEXT.encode("cp1252")  # ’ « » € — œ are cp1252-only bytes (0x80-0x9F)
    assert decode_html(raw, "ISO-8859-1") == TEXT
    assert decode_html(raw, "text/html; charset=iso-8859-1") == TEXT


def test_decode_plain_iso_8859_1():
    text = "<html><body><p>Le député a été réélu à Besançon.</p></body></html>"
    assert decode_html(text.encode("latin-1"), "iso-8859-1") == text


def test_decode_utf8_mislabelled_as_latin1():
    raw = TEXT.encode("utf-8")
    assert decode_html(raw, "iso-8859-1") == TEXT
    meta = ('<html><head><meta charset="iso-8859-1"></head>' + TEXT[6:]).encode("utf-8")
    assert "L’été à Noël" in decode_html(meta)


def test_decode_without_any_charset():
    assert decode_html(TEXT.encode("utf-8")) == TEXT
    assert decode_html(TEXT.encode("cp1252")) == TEXT


def test_decode_meta_charset_and_utf8_label_on_cp1252_bytes():
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"></head><body>é€</body></html>'
    assert "é€" in decode_html(page.encode("cp1252"))
    assert "é€" in decode_html(page.encode("cp1252"), "utf-8")  # header lies


def test_decode_never_raises_on_garbage():
    for raw in (b"", b"\x00\xff\xfe\x80garbage\x9d", bytes(range(256)), b"<p>ok</p>"):
        assert isinstance(decode_html(raw, "no-such-charset"), str)
        assert isinstance(decode_html(raw), str)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "payload",
    [b"", b"   \n", "", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", bytes(range(256)) * 4, "just some words, no markup"],
)
def test_extraction_error_on_non_article_input(payload):
    with pytest.raises(ExtractionError) as exc:
        extract_article(payload, "https://exemple.fr/x")
    assert str(exc.value)


def test_extraction_error_on_html_without_text():
    with pytest.raises(ExtractionError, match="no article text"):
        extract_article("<html><head><title>x</title></head><body><nav><a href='/'>Accueil</a></nav></body></html>")


def test_article_text_format():
    assert article_text({"lead": ["A."], "paragraphs": ["B.", "C."], "title": "T"}) == "A.\nB.\nC."
    assert article_text({"lead": [], "paragraphs": ["B."]}) == "B."
