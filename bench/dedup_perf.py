#!/usr/bin/env python3
"""Dedup throughput / latency / memory at scale, on synthetic wire copy.

    .venv/bin/python bench/dedup_perf.py [--docs 100000] [--data /work/shared/data/wirecopy-dev]

Synthesizer: new "dispatches" are built from the dev set's paragraphs (sentences of random
dev docs, with ~15 % of the words swapped for random vocabulary so every dispatch is unique),
then republished 1-8 times with edits modelled on gen.py's families: dateline add/remove,
agency tail, byline, "Publié le … Mis à jour le …", "Lire aussi", lede rewrite, truncation,
appended background paragraph, 40-80-word brief, typography (quotes, apostrophes, NBSP,
ellipsis, HTML entities), junk footers, the AFP copyright notice. Texts are generated in
chunks and dropped once signed, so the RSS measured is the index's.

Reports (one run): normalize+signature docs/s on one core, StoryIndex.add docs/s, query
(candidates + verification) p50/p99 at full size, peak RSS, and rebuild time from stored
(meta, signature bytes, cluster_id) records (a temporary SQLite table).
Goals: >= 1500 sig/s/core, p99 query < 5 ms at 100k, rebuild < 10 s, RSS < 1 GiB.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from crawler.dedup import DocMeta, StoryIndex, agency_credited, normalize, signature_of_normalized  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/data/wirecopy-dev")
NBSP = "\u00a0"
CITIES = ["PARIS", "Lyon", "MARSEILLE", "Bruxelles", "GENÈVE", "Washington", "Moscou", "Toulouse"]
OUTLETS = ["Le Figaro", "20 Minutes", "BFMTV", "Boursorama", "Yahoo Actualités", "Ouest-France", "Le Point",
           "Tribune de Genève", "CNN-fr (site miroir)", "franceinfo"]
SYN = [("a déclaré", "a affirmé"), ("a indiqué", "a précisé"), ("selon", "d'après"), ("lors de", "au cours de"),
       ("notamment", "en particulier"), ("toutefois", "cependant"), ("également", "aussi")]
AFP_LEGAL = ("Tous droits de reproduction et de représentation réservés. © 2019 Agence France-Presse. Toutes les "
             "informations reproduites dans cette rubrique (dépêches, photos, logos) sont protégées par des droits de "
             "propriété intellectuelle détenus par l'AFP. Par conséquent, aucune de ces informations ne peut être "
             "reproduite, modifiée, rediffusée, traduite, exploitée commercialement ou réutilisée de quelque manière que "
             "ce soit sans l'accord préalable écrit de l'AFP.")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Synth:
    def __init__(self, data: str, seed: int = 7):
        self.rng = random.Random(seed)
        docs = [json.loads(l) for l in open(os.path.join(data, "docs.jsonl"), encoding="utf-8")]
        self.sents = []
        for d in docs:
            for p in re.split(r"\n+", d["text"]):
                if len(p.split()) >= 12:
                    self.sents.extend(s for s in re.split(r"(?<=[.!?])\s+", p) if len(s.split()) >= 5)
        self.words = " ".join(self.sents).split()          # running text of the dev set
        self.vocab = sorted({w for w in self.words if w.isalpha()})
        self.titles = [d["title"] for d in docs if d.get("title")]
        self.n_story = 0

    def dispatch(self) -> list[str]:
        """A new unique dispatch: paragraphs of 6-12-word windows of dev-set running text, with
        10 % of the words swapped (so dispatches share no more than real same-day news does)."""
        rng = self.rng
        W, n = self.words, len(self.words)
        paras = []
        for _ in range(rng.randint(4, 10)):
            w = []
            for _ in range(rng.randint(4, 9)):
                i = rng.randrange(n - 12)
                w.extend(W[i:i + rng.randint(6, 12)])
            for k in range(len(w)):
                if rng.random() < 0.10:
                    w[k] = rng.choice(self.vocab)
            paras.append(" ".join(w) + ".")
        return paras

    def copy(self, paras: list[str], brief: bool = False) -> str:
        rng = self.rng
        body = list(paras)
        if brief:
            words = " ".join(body[:2]).split()
            body = [" ".join(words[:rng.randint(40, 80)])]
        else:
            tier = rng.choice(["verbatim", "light", "light", "medium", "medium", "heavy"])
            if tier in ("medium", "heavy"):
                if tier == "heavy" or rng.random() < 0.5:          # lede rewrite
                    s = body[0]
                    for a, b in rng.sample(SYN, 3):
                        s = s.replace(a, b, 1)
                    parts = s.split(", ", 1)
                    body[0] = (parts[1][0].upper() + parts[1][1:] + ", " + parts[0].lower()) if len(parts) == 2 and len(parts[1]) > 1 else s
                if tier == "heavy" or rng.random() < 0.3:          # truncation
                    body = body[:max(2, int(len(body) * rng.uniform(0.6, 0.8)))]
                if tier == "heavy" or rng.random() < 0.2:          # background paragraph
                    body.append("Pour rappel, " + rng.choice(self.sents) + " " + rng.choice(self.sents))
                if rng.random() < 0.5:                               # lire aussi
                    body.insert(rng.randint(1, len(body)), "Lire aussi : " + rng.choice(self.titles))
        if rng.random() < 0.5:
            body[0] = rng.choice(["%s (AFP) - ", "%s (AFP) — ", "(AFP) - ", "%s | "]).replace("%s", rng.choice(CITIES)) + body[0]
        header = []
        if rng.random() < 0.6:
            header.append(rng.choice(["Par Le Figaro avec AFP", "20 Minutes avec AFP", "AFP", "Source AFP", "B.L. avec AFP"]))
        if rng.random() < 0.5:
            header.append("Publié le 12 mars 2019 à 1%dh%02d, mis à jour le 12 mars 2019 à 18h%02d"
                          % (rng.randint(0, 9), rng.randint(0, 59), rng.randint(0, 59)))
        footer = []
        if rng.random() < 0.5:
            t = rng.choice(["(Avec AFP)", "avec AFP", "(ats/afp/nxp)", "© 2019 AFP", "Source : AFP"])
            if rng.random() < 0.4:
                body[-1] += " " + t
            else:
                footer.append(t)
        if rng.random() < 0.3:
            footer += ["For Latest Updates Follow us on Google News", "PREV " + rng.choice(self.titles),
                       "NEXT " + rng.choice(self.titles)]
        if rng.random() < 0.1:
            footer.append(AFP_LEGAL)
        text = ("\n\n" if rng.random() < 0.7 else "\n").join(header + body + footer)
        q = rng.random()
        if q < 0.3:
            text = re.sub(r'"([^"]*)"', "«" + NBSP + r"\1" + NBSP + "»", text)
        elif q < 0.5:
            text = re.sub(r'"([^"]*)"', r"“\1”", text)
        if rng.random() < 0.4:
            text = text.replace("'", "’")
        if rng.random() < 0.1:
            text = text.replace("é", "&eacute;").replace(NBSP, "&nbsp;")
        return text

    def stream(self, n: int):
        """Yields (id, story, outlet, text); copies of one dispatch are spread out in time."""
        rng = self.rng
        pending = []          # (due_index, story, paras, brief)
        i = 0
        while i < n:
            if not pending or rng.random() < 0.35:
                self.n_story += 1
                paras = self.dispatch()
                k = rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 8])
                for c in range(k):
                    pending.append((i + rng.randint(0, 200), self.n_story, paras, c == 1 and rng.random() < 0.1))
                pending.sort(key=lambda x: x[0])
            _, story, paras, brief = pending.pop(0)
            yield "x%07d" % i, story, rng.choice(OUTLETS), self.copy(paras, brief)
            i += 1


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--queries", type=int, default=2000)
    a = ap.parse_args(argv)
    n = a.docs
    synth = Synth(a.data)
    print("docs=%d  baseline RSS %.0f MiB" % (n, rss_mib()))

    # 1) normalize + signature (one core), texts generated in chunks and dropped
    sig_time = sig_cpu = ag_time = 0.0
    metas, sigs, story_of = [], [], {}
    stream = synth.stream(n)
    chunk = []
    for item in stream:
        chunk.append(item)
        if len(chunk) == 2000:
            t, c = time.perf_counter(), time.process_time()
            for i, story, outlet, text in chunk:
                sigs.append(signature_of_normalized(normalize(text)))
            sig_time += time.perf_counter() - t
            sig_cpu += time.process_time() - c
            t = time.perf_counter()
            for i, story, outlet, text in chunk:
                metas.append(DocMeta(id=i, outlet=outlet, agency_credited=agency_credited(text), length=len(text)))
                story_of[i] = story
            ag_time += time.perf_counter() - t
            chunk = []
    if chunk:
        t, c = time.perf_counter(), time.process_time()
        for i, story, outlet, text in chunk:
            sigs.append(signature_of_normalized(normalize(text)))
        sig_time += time.perf_counter() - t
        sig_cpu += time.process_time() - c
        for i, story, outlet, text in chunk:
            metas.append(DocMeta(id=i, outlet=outlet, agency_credited=agency_credited(text), length=len(text)))
            story_of[i] = story
    del chunk, stream
    print("normalize+signature: %.0f docs/s per core (CPU time, %.1f s); %.0f docs/s wall on this shared machine;"
          " agency_credited: %.0f docs/s" % (n / sig_cpu, sig_cpu, n / sig_time, n / ag_time))

    # 2) inserts
    idx = StoryIndex()
    lat = []
    t0 = time.perf_counter()
    for m, s in zip(metas, sigs):
        t = time.perf_counter()
        idx.add(m, s)
        lat.append(time.perf_counter() - t)
        idx.canonical_changes()
        idx.merges()
    ins = time.perf_counter() - t0
    print("insert (StoryIndex.add, incl. query+verify): %.0f docs/s; add p50 %.2f ms p99 %.2f ms"
          % (n / ins, 1e3 * pct(lat, 50), 1e3 * pct(lat, 99)))
    from collections import Counter
    from math import comb
    pred = {m.id: idx.cluster_of(m.id) for m in metas}
    tp = sum(comb(c, 2) for c in Counter((story_of[i], pred[i]) for i in pred).values())
    sp = sum(comb(c, 2) for c in Counter(pred.values()).values())
    sg = sum(comb(c, 2) for c in Counter(story_of.values()).values())
    print("clusters=%d stories=%d; synthetic pairwise P=%.4f R=%.4f"
          % (len(set(pred.values())), len(set(story_of.values())), tp / max(1, sp), tp / max(1, sg)))

    # 3) queries at full size
    rng = random.Random(1)
    qs = [sigs[rng.randrange(n)] for _ in range(min(a.queries, n))]
    ql, nc = [], []
    for s in qs:
        t = time.perf_counter()
        idx.matches(s)
        ql.append(time.perf_counter() - t)
        nc.append(len(idx._candidates(s)))
    print("query (candidates+verify) at %d docs: p50 %.2f ms  p99 %.2f ms  max %.2f ms; candidates p50 %d p99 %d"
          % (len(idx), 1e3 * pct(ql, 50), 1e3 * pct(ql, 99), 1e3 * max(ql), pct(nc, 50), pct(nc, 99)))
    gc.freeze()           # what a long-running crawler can do after its start-up rebuild
    ql2 = []
    for s in qs:
        t = time.perf_counter()
        idx.matches(s)
        ql2.append(time.perf_counter() - t)
    gc.unfreeze()
    print("query after gc.freeze(): p50 %.2f ms  p99 %.2f ms  max %.2f ms" % (1e3 * pct(ql2, 50), 1e3 * pct(ql2, 99), 1e3 * max(ql2)))
    print("peak RSS after index build: %.0f MiB" % rss_mib())

    # 4) rebuild from stored records (temporary SQLite table)
    assign = {m.id: idx.cluster_of(m.id) for m in metas}
    del idx
    gc.collect()
    with tempfile.TemporaryDirectory() as td:
        db = sqlite3.connect(os.path.join(td, "store.db"))
        db.execute("CREATE TABLE articles (id TEXT PRIMARY KEY, outlet TEXT, published TEXT, title TEXT,"
                   " agency INTEGER, length INTEGER, sig BLOB, cluster TEXT)")
        db.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?)",
                       ((m.id, m.outlet, m.published, m.title, int(m.agency_credited), m.length, s.to_bytes(), assign[m.id])
                        for m, s in zip(metas, sigs)))
        db.commit()
        del sigs
        gc.collect()
        t = time.perf_counter()
        rows = db.execute("SELECT id, outlet, published, title, agency, length, sig, cluster FROM articles ORDER BY rowid")
        idx2 = StoryIndex.rebuild((DocMeta(r[0], r[1], r[2], r[3], bool(r[4]), r[5]), r[6], r[7]) for r in rows)
        rb = time.perf_counter() - t
        db.close()
    same = sum(idx2.cluster_of(i) == c for i, c in assign.items())
    print("rebuild from SQLite (%d records): %.2f s; clusters preserved %d/%d" % (len(idx2), rb, same, len(assign)))
    print("peak RSS: %.0f MiB" % rss_mib())


if __name__ == "__main__":
    main()
