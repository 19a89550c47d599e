"""The `veille` command as a user meets it: help on every verb, the offline demo, extract on a saved page."""
from __future__ import annotations

import json

from conftest import needs_shared
from crawler.cli import build_parser


def test_every_verb_has_help(run_veille):
    verbs = build_parser()._subparsers._group_actions[0].choices
    assert {"crawl", "search", "show", "sources", "extract", "reprocess", "stats", "demo", "dedup", "clusters"} <= set(verbs)
    for verb in verbs:
        result = run_veille(verb, "--help")
        assert result.proc.returncode == 0, (verb, result.output)
        assert "usage: veille " + verb in result.proc.stdout


def test_sources_validates_the_shipped_config(run_veille):
    result = run_veille("sources")
    assert result.proc.returncode == 0, result.output
    for outlet in ("BFMTV", "franceinfo", "Le Monde", "Le Figaro", "Libération", "20 Minutes", "France 24", "RFI",
                   "Ouest-France", "Les Echos", "Euronews FR", "CNN-fr"):
        assert outlet in result.proc.stdout


def test_demo_crawls_the_bundled_mirror_offline(run_veille):
    result = run_veille("demo", "--keep", timeout=300)
    assert result.proc.returncode == 0, result.output[-3000:]
    out = result.proc.stdout
    assert "Crawl summary" in out and "articles stored" in out and "veille search" in out
    served = int(out.split("Serving ")[1].split(" articles")[0])
    assert served >= 60
    assert "BFMTV" in out and "CNN" in out
    rows = [line for line in out.splitlines() if "│" in line and ("T0" in line or "T1" in line or "T2" in line)]
    assert len(rows) >= 60, f"expected a row per stored article, got {len(rows)}"


def test_extract_prints_the_article_of_a_saved_page(run_veille):
    pages = needs_shared("data", "extraction-dev")
    record = json.loads((pages / "expected.json").read_text(encoding="utf-8"))[0]
    page = pages / record["file"]
    text = run_veille("extract", str(page), "--url", record["url"])
    lines = text.proc.stdout.splitlines()
    norm = lambda s: " ".join(s.split())  # noqa: E731
    assert [norm(line) for line in lines] == [norm(p) for p in record["body_paragraphs"]]
    as_json = json.loads(run_veille("extract", str(page), "--url", record["url"], "--format", "json").proc.stdout)
    assert norm(as_json["title"]) == norm(record["title"])
    assert as_json["authors"] == record["authors"]
    assert as_json["lead"] == record["summary"]


def test_extract_refuses_a_binary_file_clearly(run_veille, tmp_path):
    blob = tmp_path / "image.html"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    result = run_veille("extract", str(blob))
    assert result.proc.returncode == 1
    assert "image.html" in result.proc.stderr and "no article text" in result.proc.stderr


def test_search_with_an_unreachable_cluster_falls_back_or_says_so(run_veille):
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    both = run_veille("search", "grève", env={"ELASTICSEARCH_URL": dead, "VEILLE_STORE": "both"})
    assert both.proc.returncode == 0, both.output
    assert "veille:" in both.proc.stderr and "0 result(s)" in both.proc.stdout  # warned, answered from SQLite
    only = run_veille("search", "grève", env={"ELASTICSEARCH_URL": dead, "VEILLE_STORE": "elasticsearch"},
                      check=False)
    assert only.proc.returncode == 1 and "veille:" in only.proc.stderr
    assert "Traceback" not in only.output
