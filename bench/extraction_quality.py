"""Extraction quality on the shared dev set: bare trafilatura vs Veille.

Usage (from the repo root):  .venv/bin/python bench/extraction_quality.py [-v]

Per page and in total: paragraph recall (expected paragraphs found in the
output after whitespace normalisation) and junk lines (non-empty output lines
not contained in any expected paragraph), scored as in the dev set README.
``-v`` also lists missed paragraphs and junk lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_DIR = REPO.parent / "shared" / "data" / "extraction-dev"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def norm(s: str) -> str:
    return " ".join(s.split())


def score(out: str, expected: list[str]) -> dict:
    exp = [norm(p) for p in expected]
    flat = norm(out)
    missed = [p for p in exp if p not in flat]
    junk = [l for l in out.splitlines() if norm(l) and not any(norm(l) in p for p in exp)]
    return {"found": len(exp) - len(missed), "expected": len(exp), "missed": missed, "junk": junk}


def load_dev(dev_dir: Path = DEV_DIR) -> list[dict]:
    return json.loads((dev_dir / "expected.json").read_text(encoding="utf-8"))


def run_bare(html: str, url: str) -> str:
    from trafilatura import extract

    return extract(html) or ""


def run_veille(html_bytes: bytes, url: str) -> str:
    from crawler.extraction import article_text, extract_article

    return article_text(extract_article(html_bytes, url))


def evaluate(dev_dir: Path = DEV_DIR) -> dict:
    rows = []
    for rec in load_dev(dev_dir):
        raw = (dev_dir / rec["file"]).read_bytes()
        html = raw.decode("utf-8")
        bare = score(run_bare(html, rec["url"]), rec["body_paragraphs"])
        veille = score(run_veille(raw, rec["url"]), rec["body_paragraphs"])
        rows.append({"file": rec["file"], "bare": bare, "veille": veille})
    totals = {
        k: {
            "found": sum(r[k]["found"] for r in rows),
            "expected": sum(r[k]["expected"] for r in rows),
            "junk": sum(len(r[k]["junk"]) for r in rows),
        }
        for k in ("bare", "veille")
    }
    return {"rows": rows, "totals": totals}


def main(argv: list[str]) -> int:
    if not (DEV_DIR / "expected.json").exists():
        print(f"dev set not found at {DEV_DIR}", file=sys.stderr)
        return 2
    verbose = "-v" in argv
    res = evaluate()
    print(f"dev set: {DEV_DIR}")
    print(f"{'page':40} {'bare recall':>12} {'bare junk':>10} {'veille recall':>14} {'veille junk':>12}")
    for r in res["rows"]:
        b, v = r["bare"], r["veille"]
        print(
            f"{Path(r['file']).name:40} {b['found']:>5}/{b['expected']:<6} {len(b['junk']):>10}"
            f" {v['found']:>7}/{v['expected']:<6} {len(v['junk']):>12}"
        )
        if verbose:
            for m in v["missed"]:
                print(f"    veille MISSED: {m[:140]}")
            for j in v["junk"]:
                print(f"    veille JUNK:   {j[:140]}")
    tb, tv = res["totals"]["bare"], res["totals"]["veille"]
    print(
        f"{'TOTAL':40} {tb['found']:>5}/{tb['expected']:<6} {tb['junk']:>10}"
        f" {tv['found']:>7}/{tv['expected']:<6} {tv['junk']:>12}"
    )
    print(
        f"bare trafilatura.extract (defaults): recall {tb['found']}/{tb['expected']}, junk {tb['junk']}\n"
        f"veille extract_article+clean:       recall {tv['found']}/{tv['expected']}, junk {tv['junk']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
