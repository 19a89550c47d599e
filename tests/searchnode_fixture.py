"""pytest fixtures for a real local search node (OpenSearch 2.19, see tests/searchnode).

Import them from ``tests/conftest.py``::

    from searchnode_fixture import search_node, private_search_node  # noqa: F401

* ``search_node`` (session): the node every integration test shares. If
  ``VEILLE_TEST_SEARCH_URL`` is set (``.ci/run`` does it) that running node is
  used; otherwise one node is started for the session (about 4 s warm).
  Skipped only if java or mvn is missing.
* ``private_search_node`` (function): a fresh node of the test's own, that the test
  may ``kill()`` / ``restart()`` / ``stop()`` (crash tests); always started here.

Both yield a :class:`crawler.searchnode.SearchNode`; ``node.url`` is the base URL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

try:
    from crawler import searchnode
except ImportError:  # pytest started without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from crawler import searchnode


def _skip_without_tools() -> None:
    missing = searchnode.missing_tools()
    if missing:
        pytest.skip(f"search node needs {' and '.join(missing)} on PATH (Java 17 + Maven)")


@pytest.fixture(scope="session")
def search_node(tmp_path_factory):
    url = os.environ.get("VEILLE_TEST_SEARCH_URL")
    if url:
        node = searchnode.SearchNode.external_node(url)
        if searchnode.health(node.url) is None:
            raise searchnode.SearchNodeError(f"VEILLE_TEST_SEARCH_URL={url} does not answer _cluster/health")
        yield node
        return
    _skip_without_tools()
    # shared_node() keeps one node per process even if this module is imported twice
    node = searchnode.shared_node(data_dir=tmp_path_factory.mktemp("searchnode"))
    yield node
    node.stop()


@pytest.fixture
def private_search_node(tmp_path):
    _skip_without_tools()
    node = searchnode.SearchNode(data_dir=tmp_path / "searchnode")
    node.start(timeout=180)
    yield node
    node.stop()
