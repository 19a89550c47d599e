"""Pipeline steps as plain functions: learned boilerplate keeps an article's derived fields true."""
from __future__ import annotations

from crawler.cleaning import SiteBoilerplate
from crawler.items import body_hash
from crawler.pages import build_article
from pipelines.boilerplate import strip_learned

PAGE = {"url": "http://x.example/a-1.html", "source": "x", "outlet": "X", "fetched": "2026-11-26T08:00:00+00:00"}
MENU = "Accueil Politique Économie Sport Culture Météo"


def extracted(paragraphs: list[str]) -> dict:
    return {"title": "T", "lead": ["Un chapô de six mots ici."], "paragraphs": paragraphs, "authors": [],
            "published": None, "lang": "fr", "description": None, "tags": []}


def test_stripping_learned_boilerplate_updates_word_count_and_hash_and_drops_stale_text_fields():
    model = SiteBoilerplate(min_docs=2, min_share=0.3)
    for i in range(3):
        model.observe("x", [f"Paragraphe propre numéro {i} de l'article.", MENU])
    article = build_article(PAGE, extracted(["Le vrai texte de l'article, en huit mots.", MENU]))
    article.update(signature=b"old", topics=["t"])
    assert strip_learned(model, article) == 1
    assert article["body"] == "Le vrai texte de l'article, en huit mots."
    assert article["word_count"] == 6 + 8
    assert article["body_hash"] == body_hash(article["body"])
    assert "signature" not in article and "topics" not in article
