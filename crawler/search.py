"""Query-string queries (the Lucene syntax analysts type in Kibana) for the embedded store.

luqum parses the query; `to_fts5` renders the tree as an SQLite FTS5 expression. The
default operator between bare terms is AND, as in `crawler.topics`.
"""
from __future__ import annotations

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

FTS_FIELDS = {"title": "title", "lead": "lead", "body": "body", "outlet": "outlet", "authors": "authors"}


class QueryError(ValueError):
    """A query that does not parse or cannot be run on the embedded store."""


def parse_query(query: str) -> tree.Item:
    try:
        return parser.parse(query)
    except (ParseError, TypeError, ValueError) as exc:
        raise QueryError(f"cannot parse query {query!r}: {exc}") from None


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _is_negative(node: tree.Item) -> bool:
    return isinstance(node, (tree.Not, tree.Prohibit))


def _render(node: tree.Item) -> str:
    if isinstance(node, tree.Word):
        value = node.value
        if value.endswith("*") and "*" not in value[:-1] and "?" not in value:
            return _quote(value[:-1]) + "*"
        if any(ch in value for ch in "*?"):
            raise QueryError(f"wildcards are supported only at the end of a word on the embedded store: {value!r}")
        return _quote(value)
    if isinstance(node, tree.Phrase):
        return _quote(node.value.strip('"'))
    if isinstance(node, tree.Proximity):
        words = " ".join(_quote(w) for w in node.term.value.strip('"').split())
        return f"NEAR({words}, {int(node.degree or 0)})"
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return "(" + _render(node.expr) + ")"
    if isinstance(node, tree.Plus):
        return _render(node.a)
    if isinstance(node, tree.SearchField):
        column = FTS_FIELDS.get(node.name.lower())
        if column is None:
            raise QueryError(f"unknown field {node.name!r} (known: {', '.join(FTS_FIELDS)})")
        return f"{{{column}}} : ({_render(node.expr)})"
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation, tree.OrOperation)):
        joiner = " OR " if isinstance(node, tree.OrOperation) else " AND "
        positives = [c for c in node.children if not _is_negative(c)]
        negatives = [c for c in node.children if _is_negative(c)]
        if not positives:
            raise QueryError("a query needs at least one term that is not negated")
        text = joiner.join(_render(c) for c in positives)
        if negatives:
            text = "(" + text + ")" + "".join(" NOT " + _render(c.a) for c in negatives)
        return "(" + text + ")"
    if _is_negative(node):
        raise QueryError("a query needs at least one term that is not negated")
    raise QueryError(f"unsupported query element on the embedded store: {node!s}")


def to_fts5(query: str) -> str:
    """Translate a Lucene query-string query into an FTS5 MATCH expression."""
    return _render(parse_query(query))
