#!/usr/bin/env python3
"""Dedup quality on the wirecopy-dev gold set.

    .venv/bin/python bench/dedup_quality.py [--data /work/shared/data/wirecopy-dev] [--split]

Prints pairwise P/R/F1 and ARI over all doc pairs, heavy-tier and brief recall, same_topic
merge rate and seed merges for Veille's clusterer, and the plain datasketch MinHashLSH@0.5
baseline (README reference: word 5-shingles, union-find over LSH candidates) in the same run.
Only id/title/text/outlet are read as input; the other fields are used as gold.
``--split`` also scores two halves of the set (by gold cluster) separately.
"""
from __future__ import annotations

import argparse
import collections
import glob
import html
import json
import os
import re
import sys
import time
import unicodedata
from math import comb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from crawler.dedup import cluster_jsonl  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/data/wirecopy-dev")
DEFAULT_SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/seeds")


def load(data):
    docs = [json.loads(l) for l in open(os.path.join(data, "docs.jsonl"), encoding="utf-8")]
    gold = json.load(open(os.path.join(data, "clusters.json"), encoding="utf-8"))
    pairs = [json.loads(l) for l in open(os.path.join(data, "pairs.jsonl"), encoding="utf-8")]
    return docs, gold, pairs


def pair_scores(pred: dict, gold: dict) -> dict:
    """Pairwise P/R/F1 and adjusted Rand index over all pairs of the docs in ``gold``."""
    ids = list(gold)
    cont = collections.Counter((gold[i], pred[i]) for i in ids)
    g = collections.Counter(gold[i] for i in ids)
    p = collections.Counter(pred[i] for i in ids)
    tp = sum(comb(n, 2) for n in cont.values())
    sg = sum(comb(n, 2) for n in g.values())
    sp = sum(comb(n, 2) for n in p.values())
    P = tp / sp if sp else 1.0
    R = tp / sg if sg else 1.0
    F = 2 * P * R / (P + R) if P + R else 0.0
    total = comb(len(ids), 2)
    exp = sg * sp / total if total else 0.0
    mx = (sg + sp) / 2
    ari = (tp - exp) / (mx - exp) if mx != exp else 1.0
    return dict(P=P, R=R, F1=F, ARI=ari, tp=tp, gold_pairs=sg, pred_pairs=sp)


def breakdown(pred: dict, pairs: list) -> dict:
    out = {}
    copy = [p for p in pairs if p["label"] == "copy"]
    same = lambda p: pred[p["id_a"]] == pred[p["id_b"]]  # noqa: E731
    heavy = [p for p in copy if p["hardest_tier"] == "heavy"]
    brief = [p for p in copy if p["kind"] == "brief_containment" or p["hardest_tier"] == "brief"]
    out["heavy_R"] = sum(map(same, heavy)) / max(1, len(heavy))
    out["brief_R"] = sum(map(same, brief)) / max(1, len(brief))
    st = {(p["id_a"], p["id_b"]) for p in pairs if p["label"] == "same_topic"}
    st = {tuple(sorted(x)) for x in st}
    out["same_topic_merged"] = sum(pred[a] == pred[b] for a, b in st) / max(1, len(st))
    un = {tuple(sorted((p["id_a"], p["id_b"]))) for p in pairs if p["label"] == "unrelated"}
    out["unrelated_merged"] = sum(pred[a] == pred[b] for a, b in un) / max(1, len(un))
    by_tier = collections.defaultdict(list)
    for p in copy:
        by_tier[p["hardest_tier"]].append(same(p))
    out["R_by_tier"] = {k: round(sum(v) / len(v), 3) for k, v in sorted(by_tier.items())}
    return out


def veille_clusters(docs, extra=()):
    lines = [json.dumps({k: d[k] for k in ("id", "title", "text", "outlet") if k in d}) for d in list(docs) + list(extra)]
    return {r["id"]: r["cluster"] for r in cluster_jsonl(lines)}


# ---------------------------------------------------------------- README reference baseline
def baseline_clusters(docs, threshold=0.5):
    from datasketch import MinHash, MinHashLSH

    def words(t):
        return re.findall(r"\w+", unicodedata.normalize("NFKC", html.unescape(t)).lower())

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    parent = {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for d in docs:
        w = words(d["text"])
        sh = {" ".join(w[i:i + 5]) for i in range(max(1, len(w) - 4))}
        m = MinHash(num_perm=128)
        m.update_batch([s.encode() for s in sh])
        parent[d["id"]] = d["id"]
        for k in lsh.query(m):
            parent[find(k)] = find(d["id"])
        lsh.insert(d["id"], m)
    return {i: find(i) for i in parent}


def seed_docs(seeds_dir):
    out = []
    for f in sorted(glob.glob(os.path.join(seeds_dir, "*.txt"))):
        out.append(dict(id="seed-" + os.path.basename(f)[:3], text=open(f, encoding="utf-8").read(), title="", outlet=None))
    return out


def report(name, pred, gold, pairs, seeds=()):
    s = pair_scores(pred, gold)
    b = breakdown(pred, pairs)
    seed_merges = len({pred[x["id"]] for x in seeds}) if seeds else None
    line = ("%-22s P=%.4f R=%.4f F1=%.4f ARI=%.4f heavyR=%.3f briefR=%.3f same_topic_merged=%.4f unrelated_merged=%.4f"
            % (name, s["P"], s["R"], s["F1"], s["ARI"], b["heavy_R"], b["brief_R"], b["same_topic_merged"], b["unrelated_merged"]))
    if seeds:
        line += " seed_clusters=%d/%d" % (seed_merges, len(seeds))
    print(line)
    print("%-22s recall by tier: %s" % ("", b["R_by_tier"]))
    return s, b, seed_merges


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--seeds", default=DEFAULT_SEEDS)
    ap.add_argument("--split", action="store_true", help="also score two halves (by gold cluster) separately")
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args(argv)
    docs, gold, pairs = load(a.data)
    seeds = seed_docs(a.seeds) if os.path.isdir(a.seeds) else []
    t = time.perf_counter()
    pred = veille_clusters(docs, seeds)
    dt = time.perf_counter() - t
    print("docs=%d seeds=%d veille time=%.2fs" % (len(docs), len(seeds), dt))
    s, b, _ = report("veille", pred, gold, pairs, seeds)
    if a.split:
        cl = sorted(set(gold.values()))
        for h in (0, 1):
            keep = set(cl[h::2])
            sub = [d for d in docs if gold[d["id"]] in keep]
            g = {d["id"]: gold[d["id"]] for d in sub}
            ids = set(g)
            pr = veille_clusters(sub)
            report("veille half %d" % h, pr, g, [p for p in pairs if p["id_a"] in ids and p["id_b"] in ids])
    if not a.no_baseline:
        report("baseline LSH@0.5", baseline_clusters(docs), gold, pairs)
    print("dedup: pairF1=%.4f P=%.4f R=%.4f ARI=%.4f docs=%d" % (s["F1"], s["P"], s["R"], s["ARI"], len(docs)))


if __name__ == "__main__":
    main()
