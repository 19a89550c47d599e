"""Junk-line rules and site boilerplate (crawler.cleaning)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crawler.cleaning import SiteBoilerplate, classify_line, clean_paragraphs  # noqa: E402

SEEDS = REPO.parent / "shared" / "seeds"


def _seed_lines(prefix: str) -> list[str]:
    files = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not files:
        pytest.skip(f"seed {prefix}_*.txt not found under {SEEDS} (../shared absent)")
    return files[0].read_text(encoding="utf-8").splitlines()


def _rules(removed: list[dict]) -> dict[str, str]:
    return {r["line"]: r["rule"] for r in removed}


# ---------------------------------------------------------------- real seeds


def test_seed_000_twitter_byline_and_photo_credit_dropped_body_kept():
    lines = _seed_lines("000")
    title = "Guerre en Ukraine: les États-Unis vont fournir des mines antipersonnel à Kiev face à l'avancée russe"
    kept, removed = clean_paragraphs(lines, title=title)
    rules = _rules(removed)
    assert rules["https://twitter.com/Hugo_Septier Hugo Septier Journaliste BFMTV"] == "social-byline"
    assert rules[title] == "title-repeat"
    credited = "Joe Biden et Volodymyr Zelensky, le jeudi 11 juillet à Washington - SAUL LOEB / AFP"
    assert rules[credited] == "photo-credit"
    assert rules["Joe Biden et Volodymyr Zelensky, le jeudi 11 juillet à Washington"] == "photo-caption"
    # sentences that mention AFP / the agency stay
    assert any(l.endswith("a écrit l'organisation dans un communiqué transmis à l'AFP.") for l in kept)
    assert "Contrer les avancées Russes" in kept  # subheadline
    assert kept[-1].startswith("Le groupe, prix Nobel de la paix en 1997")


def test_seed_004_google_news_prev_next_and_repeated_title():
    lines = _seed_lines("004")
    title = "Biden autorise l’Ukraine à utiliser des armes américaines à longue portée en Russie"
    kept, removed = clean_paragraphs(lines, title=title)
    rules = [r["rule"] for r in removed]
    assert rules.count("title-repeat") == 3
    assert "google-news" in rules
    assert sum(1 for r in removed if r["rule"] == "prev-next") == 2
    assert not any("Google News" in l for l in kept)
    assert not any(l.startswith(("PREV", "NEXT")) for l in kept)
    assert title not in kept
    assert kept[-1] == (
        "Jack Forrest, Katie Bo Lillis, Natasha Bertrand, Kylie Atwood, Helen Regan et Gawon Bae "
        "de CNN ont contribué à ce rapport."
    )


@pytest.mark.parametrize("prefix", ["001", "002", "003"])
def test_clean_seed_articles_lose_nothing(prefix):
    lines = [l for l in _seed_lines(prefix) if l.strip()]
    kept, removed = clean_paragraphs(lines)
    assert removed == []
    assert len(kept) == len(lines)


# ---------------------------------------------------------------- rule families

JUNK = [
    ("PREV qu’est-ce qu’Emma a pensé de Nikos Aliagas ? Ses conseils en espèces", "prev-next"),
    ("NEXT « Pour l’instant, j’ai fait des choses décentes »", "prev-next"),
    ("Article précédent : Les Bourses européennes ouvrent en hausse", "prev-next"),
    ("Suivant »", "prev-next"),
    ("For Latest Updates Follow us on Google News", "google-news"),
    ("Suivez-nous sur Google News", "google-news"),
    ("Suivez toute l'actualité de BFMTV sur Google News", "google-news"),
    ("https://twitter.com/Hugo_Septier Hugo Septier Journaliste BFMTV", "social-byline"),
    ("https://x.com/jdupont Jean Dupont", "social-byline"),
    ("Jean Dupont @jdupont", "social-byline"),
    ("@Hugo_Septier", "social-byline"),
    ("À lire aussi La natalité russe menacée d’effondrement", "related-link"),
    ("Lire aussi : Le Kremlin répond à Washington", "related-link"),
    ("LIRE AUSSI - Ukraine : ce que l'on sait", "related-link"),
    ("Lire la suite", "related-link"),
    ("VIDÉO - Le survêtement de Maduro fait sensation", "related-link"),
    ("> A Milwaukee, JD Vance trace sa vision de l'Amérique", "related-link"),
    ("Partager", "share-subscribe"),
    ("Partager sur Facebook", "share-subscribe"),
    ("Abonnez-vous", "share-subscribe"),
    ("Inscrivez-vous à la newsletter Politique", "share-subscribe"),
    ("Recevez gratuitement notre newsletter", "share-subscribe"),
    ("Passer la publicité", "advertising"),
    ("Publicité", "advertising"),
    ("Il vous reste 57.09% de cet article à lire. La suite est réservée aux abonnés.", "paywall"),
    ("Cet article est réservé aux abonnés.", "paywall"),
    ("Par Les Echos", "byline"),
    ("Par Le Figaro avec AFP", "byline"),
    ("Par Jean Dupont et Marie-Claire Martin", "byline"),
    ("Par E.P.", "byline"),
    ("Joe Biden et Volodymyr Zelensky, le jeudi 11 juillet à Washington - SAUL LOEB / AFP", "photo-credit"),
    ("Des soldats ukrainiens près de Bakhmout (Photo : GENYA SAVILOV / AFP)", "photo-credit"),
    ("Crédit photo : Reuters", "photo-credit"),
    ("Sophie Binet, à Paris, le 29 août 2023. LUDOVIC MARIN / AFP", "photo-credit"),
    ("Des secouristes à Kiev, mercredi. REUTERS/Gleb Garanich", "photo-credit"),
    ("Un soldat ukrainien, près de Bakhmout. Sipa Press", "photo-credit"),
    ("Joe Biden. © Jim Watson / AFP", "photo-credit"),
    ("Publié le 18 juil. 2024 à 8:01 Mis à jour le 18 juil. 2024 à 9:05", "dateline"),
    ("Hugo Septier Journaliste BFMTV", "byline"),
    ("RECIT. Guerre en Ukraine : mille jours de conflit en cinq dates", "related-link"),
    ("Ce contenu est bloqué car vous n'avez pas accepté les cookies et autres traceurs.", "consent-placeholder"),
    ("— Emmanuel Macron (@EmmanuelMacron) November 20, 2024", "social-embed"),
    ("Écouter cet article", "ui-prompt"),
    ("Photo d'illustration", "photo-credit"),
    ("Nouveau : découvrez nos offres Premium !", "share-subscribe"),
]


@pytest.mark.parametrize("line,rule", JUNK)
def test_junk_rule(line, rule):
    assert classify_line(line) == rule
    kept, removed = clean_paragraphs(["Un vrai paragraphe de l'article, avec une phrase complète.", line])
    assert kept == ["Un vrai paragraphe de l'article, avec une phrase complète."]
    assert removed == [{"line": line, "rule": rule}]


REAL_SENTENCES = [
    "L'organisation a écrit dans un communiqué transmis à l'AFP que la décision était « désastreuse ».",
    "Selon l'AFP, 12 personnes ont été tuées dans la frappe / l'attaque de mardi.",
    "Google News a été lancé en 2002 et agrège les articles de milliers de médias.",
    "Le groupe a annoncé suivre l'affaire de près sur Google et sur ses propres canaux.",
    "Elon Musk a racheté Twitter en 2022, avant de le renommer X.",
    "Le compte @Elysee a publié un message dimanche soir.",
    "Emmanuel Macron a réagi sur X : « Nous serons aux côtés de l'Ukraine. »",
    "Par ailleurs, le gouvernement a promis une aide de 2 milliards d'euros.",
    "Par La Poste, le colis a mis trois semaines à arriver.",
    "Suivant les recommandations de l'OMS, le gouvernement a relevé le niveau d'alerte.",
    "Précédent historique, cette décision ouvre la voie à d'autres recours.",
    "Pour aller plus loin, le ministre propose de taxer les superprofits.",
    "Publié le 3 mars au Journal officiel, le décret entre en vigueur lundi.",
    "Lire, écrire et compter restent les priorités du ministre.",
    "Partager la richesse est l'objectif affiché du projet de loi.",
    "ENTRETIEN - Dans un entretien au Figaro, le ministre détaille son plan.",
    "LE POINT SUR LA SITUATION - «Nous avons pratiquement fait échouer toute leur campagne pour 2025», a affirmé le ministre.",
    "» Le fil des événements de jeudi :",
    "Contrer les avancées Russes",
    "Next, un fonds d'investissement, a racheté la start-up.",
    "Jean Dupont, Journaliste à Libération, a été arrêté mardi à Minsk.",
    "En cliquant sur le bouton, le joueur a déclenché une alarme.",
    "Avec l'AFP, nous avons enquêté sur les mines antipersonnel.",
    "› 12 morts et 30 blessés selon le dernier bilan",
    "La CNIL a sanctionné Google pour des cookies déposés sans consentement.",
    "Le ministre a répondu à la question / AFP",
    "(Avec AFP)",  # wire-copy sign-off: part of the article text
    "Avec AFP",
    "Il a été interrogé mardi soir par Reuters.",
    "Le texte sera examiné en commission mardi prochain, puis en séance publique le mois suivant, a précisé le rapporteur du projet de loi au Sénat. AFP",
]


@pytest.mark.parametrize("line", REAL_SENTENCES)
def test_real_sentences_are_kept(line):
    assert classify_line(line) is None
    kept, removed = clean_paragraphs([line])
    assert kept == [line] and removed == []


@pytest.mark.parametrize(
    "line,authors",
    [
        ("Karim Haddad, Paul Martin - France Télévisions", ["Karim Haddad", "Paul Martin"]),
        ("franceinfo avec BBC - France Télévisions", ["franceinfo avec BBC"]),
        ("Sophie Lefèvre · Publié le 17/10/24 à 23h40", ["Sophie Lefèvre"]),
        ("Par Paul Martin", ["Paul Martin"]),
    ],
)
def test_byline_from_known_authors(line, authors):
    assert classify_line(line, authors=authors) == "byline"


def test_author_name_inside_a_sentence_is_kept():
    assert classify_line("Paul Martin a déclaré mardi que la réforme était nécessaire.", authors=["Paul Martin"]) is None


def test_title_repeat_ignores_spacing_case_and_quotes():
    title = "Sophie Binet met en garde Emmanuel\u00a0Macron sur la «\u00a0gravité de la situation\u00a0»"
    kept, removed = clean_paragraphs(
        ["Sophie Binet met en garde Emmanuel Macron sur la « gravité de la situation »", "Texte de l'article."],
        title=title,
    )
    assert kept == ["Texte de l'article."]
    assert removed[0]["rule"] == "title-repeat"


def test_extra_patterns_from_config():
    lines = ["Retrouvez toutes nos infos sur franceinfo.fr", "Le gouvernement a tranché mardi."]
    kept, removed = clean_paragraphs(lines, extra_patterns=[r"^Retrouvez toutes nos infos"])
    assert kept == ["Le gouvernement a tranché mardi."]
    assert removed == [{"line": lines[0], "rule": "extra:^Retrouvez toutes nos infos"}]


def test_invalid_extra_pattern_is_reported():
    with pytest.raises(ValueError, match="invalid junk pattern"):
        clean_paragraphs(["x"], extra_patterns=["(unclosed"])


def test_empty_lines_and_whitespace_are_normalised():
    kept, removed = clean_paragraphs(["", "  ", "Une\u00a0phrase   avec  des espaces. "])
    assert kept == ["Une phrase avec des espaces."]
    assert removed == []


# ---------------------------------------------------------------- site boilerplate


_SUBJECTS = ["Kiev", "Paris", "Berlin", "Madrid", "Rome", "Lisbonne", "Vienne", "Prague", "Varsovie", "Oslo"]


def _article(i: int) -> list[str]:
    return [
        f"Le conseil municipal de {_SUBJECTS[i]} a voté le budget après un long débat.",
        "Retrouvez l'essentiel de l'actualité chaque matin dans votre boîte mail.",
        f"Cet article a été mis à jour le {i} mai à {10 + i}h00.",
    ]


def test_site_boilerplate_learns_recurring_lines():
    bp = SiteBoilerplate(min_docs=5, min_share=0.3)
    for i in range(4):
        bp.observe("exemple", _article(i))
    promo = "Retrouvez l'essentiel de l'actualité chaque matin dans votre boîte mail."
    assert not bp.is_boilerplate("exemple", promo)  # only 4 articles so far
    bp.observe("exemple", _article(4))
    assert bp.is_boilerplate("exemple", promo)
    # numbers are normalised, so the dated update line also counts as boilerplate
    assert bp.is_boilerplate("exemple", "Cet article a été mis à jour le 9 mai à 19h00.")
    assert not bp.is_boilerplate("exemple", _article(2)[0])
    assert not bp.is_boilerplate("autre-site", promo)  # per outlet
    kept, removed = bp.strip("exemple", _article(7))
    assert kept == [_article(7)[0]]
    assert {r["rule"] for r in removed} == {"site-boilerplate"}


def test_site_boilerplate_counts_a_line_once_per_article_and_respects_share():
    bp = SiteBoilerplate(min_docs=2, min_share=0.5)
    bp.observe("s", ["Abonnez-vous à notre lettre", "Abonnez-vous à notre lettre", "a"])
    assert bp.to_dict()["outlets"]["s"]["lines"]["abonnez-vous à notre lettre"] == 1
    bp.observe("s", ["Abonnez-vous à notre lettre"])
    assert bp.is_boilerplate("s", "Abonnez-vous à notre lettre")
    for i in range(3):
        bp.observe("s", [f"autre {i}"])
    # 2 of 5 articles = 40% < 50%
    assert not bp.is_boilerplate("s", "Abonnez-vous à notre lettre")


def test_site_boilerplate_round_trip_json():
    bp = SiteBoilerplate(min_docs=3, min_share=0.25)
    for i in range(6):
        bp.observe("lemonde", _article(i))
    data = json.loads(json.dumps(bp.to_dict()))
    bp2 = SiteBoilerplate.from_dict(data)
    assert bp2.to_dict() == bp.to_dict()
    assert bp2.min_docs == 3 and bp2.min_share == 0.25
    line = _article(0)[1]
    assert bp2.is_boilerplate("lemonde", line) == bp.is_boilerplate("lemonde", line) is True
    assert SiteBoilerplate(data).is_boilerplate("lemonde", line)
    assert SiteBoilerplate.from_dict({}).to_dict()["outlets"] == {}
