"""The shared topic-query table: (query, article, expected).

Run against the embedded matcher (tests/test_topics.py) and, in the integration suite,
against a real OpenSearch node: index the articles in an index created with
`crawler.topics.search_index_body(percolator=True)`, register `to_search_query(query)`
and percolate. Both engines must give `expected`.
"""
from __future__ import annotations

ELECTIONS = {
    "id": "a1",
    "title": "Élections européennes : la liste de Jordan Bardella en tête",
    "lead": "Le Rassemblement national creuse l'écart selon un sondage.",
    "body": "À trois semaines du scrutin, l'élection s'annonce difficile pour la majorité présidentielle. "
            "Emmanuel Macron doit s'exprimer jeudi.",
    "outlet": "Le Monde",
    "source": "lemonde",
    "authors": ["Jean Dupont", "Marie Curie"],
    "lang": "fr",
    "published": "2024-05-20T08:00:00+00:00",
}

GREVE = {
    "id": "a2",
    "title": "GREVE DES CHEMINOTS : TRAFIC TRES PERTURBE",
    "lead": "La SNCF prévoit un train sur deux mardi.",
    "body": "Les syndicats réclament une hausse des salaires. Le ministre des Transports appelle au dialogue.",
    "outlet": "Le Figaro",
    "source": "lefigaro",
    "authors": ["Paul Martin"],
    "lang": "fr",
    "published": "2024-03-05T06:30:00+00:00",
}

FOOT = {
    "id": "a3",
    "title": "Football : l'OM s'impose à Marseille",
    "lead": "",
    "body": "Victoire 2-0 face à Lyon au Vélodrome. Les supporters ont fêté la victoire jusqu'au bout de la nuit.",
    "outlet": "L'Équipe",
    "source": "lequipe",
    "authors": [],
    "lang": "fr",
    "published": "2024-04-01T20:00:00+00:00",
}

INDIA = {
    "id": "a4",
    "title": "Elections in India",
    "lead": "Voters head to the polls.",
    "body": "Nearly a billion voters are registered.",
    "outlet": "BBC News",
    "source": "bbc",
    "authors": ["Jane Smith"],
    "lang": "en",
    "published": "2024-04-19T05:00:00+00:00",
}

ARTICLES = [ELECTIONS, GREVE, FOOT, INDIA]

CASES = [
    # plain terms: case, accents, plural/stemming, elision
    ("élection", ELECTIONS, True),
    ("Election", ELECTIONS, True),
    ("ELECTIONS", ELECTIONS, True),
    ("élections", GREVE, False),
    ("élections", INDIA, True),
    ("grève", GREVE, True),
    ("grèves", GREVE, True),
    ("cheminot", GREVE, True),
    ("européen", ELECTIONS, True),
    ("présidentielles", ELECTIONS, True),
    ("l'élection", ELECTIONS, True),
    ("l'élection", GREVE, False),
    ("OM", FOOT, True),
    ("velodrome", FOOT, True),
    ("Lion", FOOT, False),
    # boolean operators, implicit AND, +/-
    ("élection AND sondage", ELECTIONS, True),
    ("élection AND grève", ELECTIONS, False),
    ("élection OR grève", GREVE, True),
    ("élection OR football", GREVE, False),
    ("élection sondage", ELECTIONS, True),
    ("élection grève", ELECTIONS, False),
    ("élection NOT Macron", ELECTIONS, False),
    ("grève NOT Macron", GREVE, True),
    ("+grève -SNCF", GREVE, False),
    ("+grève -Macron", GREVE, True),
    ("-football", ELECTIONS, True),
    ("NOT football", FOOT, False),
    ("élection AND (sondage OR grève)", ELECTIONS, True),
    # grouping and precedence (implicit AND binds loosest: a OR b c == (a OR b) AND c)
    ("(élection OR grève) AND sondage", ELECTIONS, True),
    ("(élection OR grève) AND SNCF", GREVE, True),
    ("élection OR grève sondage", GREVE, False),
    ("élection OR grève sondage", ELECTIONS, True),
    ("élection AND NOT (Macron OR Bardella)", ELECTIONS, False),
    ("grève AND NOT (Macron OR Bardella)", GREVE, True),
    ("football OR (grève AND -salaires)", GREVE, False),
    # phrases and proximity
    ('"liste de Jordan Bardella"', ELECTIONS, True),
    ('"Bardella Jordan"', ELECTIONS, False),
    ('"Bardella Jordan"~1', ELECTIONS, False),
    ('"Bardella Jordan"~2', ELECTIONS, True),
    ('"majorité présidentielle"', ELECTIONS, True),
    ('"Macron s\'exprimer"', ELECTIONS, False),
    ('"Macron s\'exprimer"~1', ELECTIONS, True),
    ('"l\'élection s\'annonce difficile"', ELECTIONS, True),
    ('"Emmanuel Macron"', GREVE, False),
    # wildcards
    ("élect*", ELECTIONS, True),
    ("élect*", GREVE, False),
    ("électo*", ELECTIONS, False),
    ("chemin*", GREVE, True),
    ("gr?ve", GREVE, True),
    ("gr?ves", GREVE, False),
    ("cheminot?", GREVE, True),
    ("*drome", FOOT, True),
    ("title:supp*", FOOT, False),
    # fields
    ("title:élection", ELECTIONS, True),
    ("title:Macron", ELECTIONS, False),
    ("body:Macron", ELECTIONS, True),
    ("lead:sondage", ELECTIONS, True),
    ("lead:sondage", GREVE, False),
    ('outlet:"Le Monde"', ELECTIONS, True),
    ("outlet:figaro", ELECTIONS, False),
    ("outlet:figaro", GREVE, True),
    ("outlet:équipe", FOOT, True),
    ("source:lequipe", FOOT, True),
    ('authors:"Jean Dupont"', ELECTIONS, True),
    ("authors:curie", ELECTIONS, True),
    ('authors:"Dupont Marie"', ELECTIONS, False),
    ('authors:"Dupont Marie"~5', ELECTIONS, False),
    ("authors:dupont", GREVE, False),
    ("lang:en AND élections", INDIA, True),
    ("lang:en AND élections", ELECTIONS, False),
    ("title:(élection OR grève)", GREVE, True),
    ("title:(élection AND sondage)", ELECTIONS, False),
    ("title:(football AND marseille)", FOOT, True),
    # dates, boosts, fuzzy
    ("published:[2024-05-01 TO 2024-05-31]", ELECTIONS, True),
    ("published:[2024-05-01 TO 2024-05-31]", GREVE, False),
    ("élection^2 OR football", ELECTIONS, True),
    ("Lion~1", FOOT, True),
    ("Lion~1", GREVE, False),
]
