"""Near-duplicate wire-copy clustering (crawler/dedup.py)."""
from __future__ import annotations

import importlib.util
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from crawler.dedup import (
    NUM_PERM, SHORT_TOKENS, DocMeta, Signature, StoryIndex, agency_credited, cluster_jsonl, normalize,
    shingle_hashes, signature, token_hashes,
)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEV = SHARED / "data" / "wirecopy-dev"
SEEDS = SHARED / "seeds"
NBSP = "\u00a0"

BASE = """Le conseil municipal de Villeneuve-sur-Lot a voté mardi soir la fermeture définitive de la piscine Jean-Moulin, construite en 1972, dont la rénovation aurait coûté plus de 4 millions d'euros selon un audit présenté aux élus. La décision, adoptée par 21 voix contre 12, a provoqué la colère de plusieurs associations sportives qui dénoncent un "abandon" des quartiers nord de la ville.

"Nous ne pouvions pas engager une telle somme alors que le bâtiment présente des fissures structurelles", a déclaré le maire, Patrick Delmas, lors d'une conférence de presse mercredi matin. Selon lui, les nageurs seront orientés vers le centre aquatique intercommunal, situé à une dizaine de kilomètres.

Les clubs de natation et de plongée, qui comptent ensemble près de 600 licenciés, estiment que ce transfert allongera considérablement les temps de trajet des enfants. Une pétition lancée la semaine dernière a déjà recueilli plus de 3 500 signatures, a indiqué la présidente du club local, Sandrine Vidal.

L'opposition municipale a annoncé son intention de saisir le tribunal administratif de Bordeaux, estimant que la délibération n'avait pas été précédée d'une concertation suffisante avec les habitants. Elle réclame une étude indépendante sur l'état réel du bâtiment.

La préfecture de Lot-et-Garonne a indiqué qu'elle examinerait la légalité de la délibération dans les délais habituels. Le site de la piscine pourrait accueillir à terme un programme de logements sociaux, selon un document d'urbanisme consulté par l'AFP.

Les travaux de démolition ne devraient pas débuter avant le printemps prochain, le temps de désamianter le bâtiment et de reloger les activités scolaires qui y étaient organisées chaque semaine."""

# same event, written independently (a paraphrase, not a copy): must stay apart
OTHER = """À Villeneuve-sur-Lot, la piscine Jean-Moulin va fermer ses portes. Réunis mardi, les élus ont tranché par 21 voix contre 12 en faveur d'une fermeture, jugeant trop élevée la facture d'une remise aux normes estimée à plus de 4 millions d'euros.

Pour le maire Patrick Delmas, l'équipement vieux d'un demi-siècle n'était plus sauvable : des fissures ont été relevées dans la structure. Les usagers devront désormais se rendre au centre aquatique de l'agglomération.

Une décision qui passe mal auprès des clubs sportifs. Sandrine Vidal, qui préside le club de natation, évoque des familles contraintes de faire des kilomètres chaque semaine et rappelle que leur pétition a dépassé les 3 500 signatures.

Dans l'opposition, on promet un recours devant la justice administrative et on exige une expertise indépendante. La préfecture, de son côté, contrôlera la délibération comme elle le fait habituellement.

Selon nos informations, des logements sociaux pourraient à terme remplacer le bassin, dont la démolition n'interviendrait pas avant le printemps."""

AFP_LEGAL = ("Tous droits de reproduction et de représentation réservés. © 2019 Agence France-Presse. Toutes les informations "
             "reproduites dans cette rubrique (dépêches, photos, logos) sont protégées par des droits de propriété intellectuelle "
             "détenus par l'AFP. Par conséquent, aucune de ces informations ne peut être reproduite, modifiée, rediffusée, traduite, "
             "exploitée commercialement ou réutilisée de quelque manière que ce soit sans l'accord préalable écrit de l'AFP. L'AFP ne "
             "pourra être tenue pour responsable des délais, erreurs, omissions qui ne peuvent être exclus, ni des conséquences des "
             "actions ou transactions effectuées sur la base de ces informations.")


def paras(t=BASE):
    return t.split("\n\n")


def is_copy(a: str, b: str) -> bool:
    return StoryIndex().similarity(signature(a), signature(b)) is not None


def clusters_of(*texts):
    idx = StoryIndex()
    return [idx.add(DocMeta(id="t%d" % i), signature(t)).cluster_id for i, t in enumerate(texts)] and \
        [idx.cluster_of("t%d" % i) for i in range(len(texts))]


# ---------------------------------------------------------------- normalization / edit families
def test_dateline_removed():
    for dl in ("PARIS (AFP) - ", "VILLENEUVE-SUR-LOT (AFP) – ", "(AFP) — ", "Bordeaux, France (AFP) - ", "AGEN | "):
        assert normalize(dl + BASE) == normalize(BASE), dl


def test_agency_tail_removed():
    for tail in (" (Avec AFP)", " avec AFP", "\n\n(Avec AFP)", "\n\nAvec Reuters", " (avec AFP et Reuters)", "\n\n© 2019 AFP",
                 " (ats/afp/nxp)", "\n\nSource : AFP", "\n\n(Belga)"):
        assert normalize(BASE + tail) == normalize(BASE), tail


def test_bylines_dated_lines_and_lire_aussi_removed():
    p = paras()
    text = "\n\n".join(["Société", "Par Le Figaro avec AFP", "Publié le 12 mars 2019 à 10h02, mis à jour le 12 mars 2019 à 18h40",
                        p[0], p[1], "LIRE AUSSI - Les piscines municipales face à la flambée des prix de l'énergie",
                        *p[2:4], "A lire aussi : Le centre aquatique intercommunal rouvre après travaux", *p[4:]])
    assert normalize(text) == normalize(BASE)


def test_junk_footers_removed():
    text = BASE + "\n\nFor Latest Updates Follow us on Google News\n\nPREV Un automobiliste flashé à 200 km/h sur l'A62\n\n" \
                  "NEXT Mercato : le club bordelais recrute un milieu de terrain\n\nPartager sur Facebook\n\nVoir les commentaires"
    assert normalize(text) == normalize(BASE)


def test_afp_copyright_notice_removed_and_not_shared_evidence():
    assert normalize(BASE + "\n\n" + AFP_LEGAL) == normalize(BASE)
    # two different short dispatches carrying the same long notice must not match
    a = paras()[0] + "\n\n" + paras()[1] + "\n\n" + AFP_LEGAL
    b = paras(OTHER)[0] + "\n\n" + paras(OTHER)[1] + "\n\n" + AFP_LEGAL
    assert not is_copy(a, b)


def test_typography_variants():
    t = BASE
    t = re.sub(r'"([^"]*)"', "«" + NBSP + r"\1" + NBSP + "»", t).replace("'", "’").replace("3 500", "3" + NBSP + "500")
    t = t.replace("é", "&eacute;", 3).replace("...", "…")
    assert normalize(t) == normalize(BASE)
    t2 = re.sub(r'"([^"]*)"', r"“\1”", BASE).replace("3 500", "3500").replace("\n\n", "\n")
    assert normalize(t2) == normalize(BASE)
    assert normalize("L’ÉTÉ — «\u00a0chaud\u00a0» : 50\u202f000 œufs") == "l ete chaud 50000 oeufs"


def test_lede_rewrite_is_copy():
    p = paras()
    p[0] = ("Par 21 voix contre 12, le conseil municipal de Villeneuve-sur-Lot a voté mardi soir la fermeture définitive de la "
            "piscine Jean-Moulin, construite en 1972, dont la rénovation aurait coûté plus de 4 millions d'euros d'après un audit "
            "présenté aux élus. La décision a provoqué la colère de plusieurs associations sportives qui fustigent un \"abandon\" "
            "des quartiers nord de la ville.")
    p[1] = p[1].replace("a déclaré", "a affirmé")
    assert is_copy("\n\n".join(p), BASE)


def test_truncation_is_copy():
    assert is_copy("\n\n".join(paras()[:4]), BASE)


def test_appended_background_paragraph_is_copy():
    bg = ("Pour rappel, la commune avait déjà fermé en 2015 son stade nautique d'été, jugé trop coûteux à entretenir, "
          "malgré une mobilisation des riverains qui avaient organisé plusieurs rassemblements devant la mairie.")
    assert is_copy(BASE + "\n\n" + bg, BASE)
    assert is_copy("\n\n".join(paras()[:4] + [bg]), BASE)           # heavy: truncated + appended


def test_brief_in_long_article():
    brief = "VILLENEUVE-SUR-LOT (AFP) - " + " ".join(" ".join(paras()[:2]).split()[:62])
    long_ = BASE + "\n\n" + "\n\n".join(paras(OTHER)[1:])         # the dispatch plus more text
    assert SHORT_TOKENS <= len(normalize(brief).split()) <= 100
    assert is_copy(brief, long_)
    assert is_copy(long_, brief)
    c = clusters_of(long_, brief, BASE)
    assert c[0] == c[1] == c[2]
    c = clusters_of(brief, long_)                                   # brief first
    assert c[0] == c[1]


def test_same_event_paraphrase_is_not_copy():
    assert not is_copy(BASE, OTHER)
    c = clusters_of(BASE, OTHER)
    assert c[0] != c[1]


# ---------------------------------------------------------------- signatures
def test_signature_bytes_round_trip():
    s = signature(BASE)
    b = s.to_bytes()
    s2 = Signature.from_bytes(b)
    assert s2 == s and s2.to_bytes() == b
    assert np.array_equal(s2.full, s.full) and np.array_equal(s2.lede, s.lede)
    assert (s2.n_tokens, s2.n_shingles, s2.n_lede, s2.fingerprint) == (s.n_tokens, s.n_shingles, s.n_lede, s.fingerprint)
    assert len(s.full) == NUM_PERM
    with pytest.raises(ValueError):
        Signature.from_bytes(b"XXX" + b[3:])
    sh = Signature.from_bytes(signature("Court texte.").to_bytes())
    assert sh.is_short and len(sh.full) == 0


def test_signature_stability_pinned_values():
    """Hard-coded values: if these change, stored signatures are no longer comparable (bump SIG_VERSION)."""
    assert token_hashes("afp pour").tolist() == [14989974165381554745, 13371992220525412834]
    assert shingle_hashes(token_hashes("la piscine jean moulin")).tolist() == [17187351030077290930]
    s = signature(BASE)
    assert (s.n_tokens, s.n_shingles, s.n_lede) == (274, 271, 97)
    assert s.fingerprint == 0x85B8FD6F181E6BBD
    assert s.full[:4].tolist() == [2265508, 11990842, 8859801, 5892826]
    assert s.lede[:4].tolist() == [4093629, 46579543, 87601246, 19897870]
    assert zlib.crc32(s.to_bytes()) == 641958747
    mh = s.minhash()
    assert mh.jaccard(signature(BASE + " (Avec AFP)").minhash()) == 1.0


def test_short_text_fingerprint_fallback():
    a = "Alerte : séisme de magnitude 5,2 ressenti dans les Pyrénées, pas de victime signalée."
    b = "ALERTE - Séisme de magnitude 5,2 ressenti dans les Pyrénées, pas de victime signalée (AFP)"
    c = "Alerte : séisme de magnitude 4,1 ressenti dans les Alpes, pas de victime signalée."
    sa, sb, sc = signature(a), signature(b), signature(c)
    assert sa.is_short and len(sa.full) == 0
    assert sa.fingerprint == sb.fingerprint != sc.fingerprint
    idx = StoryIndex()
    ca = idx.add(DocMeta("a"), sa).cluster_id
    assert idx.add(DocMeta("b"), sb).cluster_id == ca
    assert idx.add(DocMeta("c"), sc).cluster_id != ca
    # a short text never joins a long article by sketch similarity
    assert idx.add(DocMeta("d"), signature(" ".join(BASE.split()[:20]))).cluster_id != idx.add(DocMeta("e"), signature(BASE)).cluster_id


# ---------------------------------------------------------------- index behaviour
def test_assignment_fields_and_dup_of():
    idx = StoryIndex()
    a1 = idx.add(DocMeta("x1", outlet="Le Figaro", published="2019-03-12T10:00:00"), signature(BASE))
    assert a1.dup_of is None and a1.similarity is None and a1.is_canonical and a1.canonical_id == "x1"
    a2 = idx.add(DocMeta("x2", outlet="BFMTV", published="2019-03-12T11:00:00"), signature("PARIS (AFP) - " + BASE))
    assert a2.cluster_id == a1.cluster_id and a2.dup_of == "x1" and a2.similarity == 1.0 and not a2.is_canonical
    a3 = idx.add(DocMeta("x3"), signature(OTHER))
    assert a3.cluster_id != a1.cluster_id
    assert idx.members(a1.cluster_id) == ["x1", "x2"]


def test_canonical_changes_when_agency_copy_arrives():
    idx = StoryIndex()
    idx.add(DocMeta("late", published="2019-03-12T12:00:00", length=900), signature(BASE))
    a = idx.add(DocMeta("early", published="2019-03-12T09:00:00", length=800), signature(BASE + "\n\nVoir les commentaires"))
    assert a.is_canonical and idx.canonical_changes() == [("late", "early")]        # earliest wins
    text = "PARIS (AFP) - " + BASE + " (Avec AFP)"
    assert agency_credited(text) and not agency_credited(BASE)
    a = idx.add(DocMeta("wire", published="2019-03-12T15:00:00", agency_credited=True, length=700), signature(text))
    assert a.is_canonical and a.canonical_id == "wire"
    assert idx.canonical_changes() == [("early", "wire")]
    a = idx.add(DocMeta("later", published="2019-03-12T08:00:00"), signature(BASE))
    assert not a.is_canonical and a.canonical_id == "wire" and idx.canonical_changes() == []


def test_agency_credited_variants():
    assert agency_credited("Texte.\n\nPar Le Figaro avec AFP")
    assert agency_credited("AFP\n\nTexte de la dépêche.")
    assert agency_credited("Texte. (ats/afp/nxp)")
    assert agency_credited("Texte.\n© 2019 AFP")
    assert not agency_credited("Texte.\n\nPhoto d'illustration. © AFP / Archives")
    assert not agency_credited("Un article de notre rédaction sur l'AFPA et la formation.")


def test_recrawl_with_small_edits_keeps_cluster():
    idx = StoryIndex()
    c = idx.add(DocMeta("a"), signature(BASE)).cluster_id
    idx.add(DocMeta("b"), signature("\n\n".join(paras()[:4])))
    edited = BASE.replace("21 voix contre 12", "21 voix contre 13") + "\n\nMis à jour le 13 mars 2019 à 08h00"
    a = idx.add(DocMeta("a"), signature(edited))
    assert a.cluster_id == c and len(idx) == 2 and sorted(idx.members(c)) == ["a", "b"]
    # even a singleton re-crawled with a heavier change keeps its id
    c2 = idx.add(DocMeta("o"), signature(OTHER)).cluster_id
    assert idx.add(DocMeta("o"), signature(OTHER + "\n\nUn paragraphe ajouté lors de la mise à jour de l'article.")).cluster_id == c2


def test_merge_reported_when_a_doc_bridges_two_clusters():
    p = paras()
    head, tail = "\n\n".join(p[:3]), "\n\n".join(p[2:])        # overlap: one paragraph, different ledes
    idx = StoryIndex()
    c1 = idx.add(DocMeta("h"), signature(head)).cluster_id
    c2 = idx.add(DocMeta("t"), signature(tail)).cluster_id
    assert c1 != c2
    a = idx.add(DocMeta("full"), signature(BASE))
    assert idx.cluster_of("h") == idx.cluster_of("t") == a.cluster_id
    assert idx.merges() in ([(c2, c1)], [(c1, c2)])


def test_rebuild_continues_clusters():
    idx = StoryIndex()
    records = []
    texts = {"a": BASE, "b": "PARIS (AFP) - " + BASE, "c": OTHER, "d": "\n\n".join(paras()[:4])}
    for i, t in texts.items():
        m = DocMeta(i, published="2019-03-12T1%d:00:00" % len(records))
        s = signature(t)
        records.append((m, s.to_bytes(), idx.add(m, s).cluster_id))
    idx2 = StoryIndex.rebuild(records)
    for m, _, c in records:
        assert idx2.cluster_of(m.id) == c
    assert idx2.canonical(records[0][2]) == "a" and idx2.canonical_changes() == []
    # a later copy joins the stored cluster; a new story gets a fresh, non-colliding id
    a = idx2.add(DocMeta("e"), signature("\n\n".join(paras()[:5])))    # found through the rebuilt LSH bands
    assert a.cluster_id == records[0][2] and a.dup_of in ("a", "b", "d")
    n = idx2.add(DocMeta("f"), signature(BASE.replace("piscine", "patinoire").replace("nageurs", "patineurs")
                                          .replace("natation", "hockey").replace("Villeneuve-sur-Lot", "Agen")))
    assert n.cluster_id not in {c for _, _, c in records} or n.cluster_id == records[0][2]
    # records without a cluster id are assigned on rebuild
    idx3 = StoryIndex.rebuild([(records[0][0], records[0][1], records[0][2]), (DocMeta("z"), signature(BASE).to_bytes(), None)])
    assert idx3.cluster_of("z") == records[0][2]


def test_cluster_jsonl_order_and_format():
    rows = [{"id": "1", "text": BASE}, {"id": "2", "text": OTHER, "title": "t"}, {"id": "3", "text": "PARIS (AFP) - " + BASE}]
    out = list(cluster_jsonl(json.dumps(r) for r in rows))
    assert [o["id"] for o in out] == ["1", "2", "3"] and set(out[0]) == {"id", "cluster"}
    assert out[0]["cluster"] == out[2]["cluster"] != out[1]["cluster"]


# ---------------------------------------------------------------- hard negatives and dev-set goals
def _needs(p: Path) -> Path:
    if not p.exists():
        pytest.skip("%s absent (../shared sits beside the repo)" % p)
    return p


def test_seeds_never_merged():
    files = sorted(_needs(SEEDS).glob("*.txt"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    idx = StoryIndex()
    cl = [idx.add(DocMeta(f.name), signature(t)).cluster_id for f, t in zip(files, texts)]
    assert len(set(cl)) == len(files)
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            assert idx.similarity(signature(texts[i]), signature(texts[j])) is None


def test_dev_same_topic_pairs_not_copies():
    d = _needs(DEV)
    docs = {}
    for line in open(d / "docs.jsonl", encoding="utf-8"):
        r = json.loads(line)
        docs[r["id"]] = r["text"]
    sig = {}
    idx = StoryIndex()
    bad = []
    for line in open(d / "pairs.jsonl", encoding="utf-8"):
        p = json.loads(line)
        if p["label"] == "copy":
            continue
        for k in (p["id_a"], p["id_b"]):
            if k not in sig:
                sig[k] = signature(docs[k])
        if idx.similarity(sig[p["id_a"]], sig[p["id_b"]]) is not None:
            bad.append((p["id_a"], p["id_b"], p["label"]))
    assert not bad


def test_dev_set_quality_goals():
    d = _needs(DEV)
    spec = importlib.util.spec_from_file_location("dedup_quality", REPO / "bench" / "dedup_quality.py")
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    docs, gold, pairs = q.load(str(d))
    pred = q.veille_clusters(docs)
    s = q.pair_scores(pred, gold)
    b = q.breakdown(pred, pairs)
    assert s["F1"] >= 0.97 and s["P"] >= 0.98, s
    assert b["heavy_R"] >= 0.90 and b["brief_R"] >= 0.90, b
    assert b["same_topic_merged"] <= 0.01, b
    assert s["ARI"] >= 0.95, s


def test_bulk_band_keys_match_datasketch_hashing():
    from crawler.dedup import LeanMinHash, _band_keys_bulk
    idx = StoryIndex()
    v = np.random.default_rng(0).integers(0, 2**32, size=(20, NUM_PERM), dtype=np.uint64).astype(np.uint32)
    for lsh in (idx._lsh, idx._lede):
        bk = _band_keys_bulk(v[:, :lsh.h], lsh.b, lsh.r)
        for i in range(len(v)):
            hv = LeanMinHash(seed=1, hashvalues=v[i, :lsh.h], scheme="affine32").hashvalues
            assert bk[i].tolist() == [lsh._H(hv[s:e]) for s, e in lsh.hashranges]
