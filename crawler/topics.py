"""Topics: Lucene query-string queries (the syntax analysts type in Kibana) matched against articles.

One query semantics, two engines:

* embedded: `compile_query(q)` / `TopicMatcher` evaluate the luqum parse tree in Python;
* search backend: `to_search_query(q)` renders the *same tree* as Elasticsearch/OpenSearch
  DSL (explicit `bool` nodes, one `query_string` per leaf), to be registered as a percolator
  query on an index created with `search_index_body()`.

Semantics (both engines):

* bare terms combine with AND (``DEFAULT_OPERATOR``); ``OR``/``AND``/``NOT`` (upper case),
  ``+term`` / ``-term``, parentheses; precedence is luqum's: NOT > AND > OR > implicit AND,
  so ``a OR b c`` means ``(a OR b) AND c``. Boolean logic is exact: a negated clause inside an
  OR means "does not contain" (unlike Lucene's classic parser, where it only filters).
* text analysis (``ANALYSIS`` for the backend, `analyze` here): standard tokenization, French
  elision (``l'élection`` -> ``élection``), lower case, ASCII folding (accents), Lucene's
  light French stemmer (``élections`` ~ ``élection``, ``présidentielles`` ~ ``présidentiel``).
* ``"a phrase"`` matches consecutive tokens inside one field value; ``"a b"~N`` is a sloppy
  phrase (Lucene slop: position edits, a swap costs 2).
* wildcards ``*`` / ``?`` inside a word and fuzzy ``word~N`` are matched against the stemmed
  *and* the unstemmed (folded) tokens (backend: the ``.exact`` sub-fields); they are not stemmed.
* ``field:value`` / ``field:(...)`` on title, lead, body, outlet, source, authors, lang;
  without a field: title + lead + body (a term may be in any of them; a phrase must be in one).
  ``published:[2024-01-01 TO 2024-12-31]`` (and ``published:>=2024-05-01``) compares dates.
* ``term^2`` boosts are accepted and ignored; ``field:*`` means "field is not empty".
* regular expressions ``/.../`` and unknown fields are rejected when the config is loaded.
"""
from __future__ import annotations

import contextvars
import re
import unicodedata
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any, Callable, Literal

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

try:  # the lead's loader; Duration accepts "30m", "1h", "1d" or seconds
    from crawler.config import Duration
except Exception:  # pragma: no cover - config.py not there yet
    Duration = timedelta  # type: ignore[misc,assignment]

DEFAULT_FIELDS = ("title", "lead", "body")
TEXT_FIELDS = ("title", "lead", "body", "outlet", "source", "authors", "lang")
DATE_FIELDS = ("published",)
DEFAULT_OPERATOR = "AND"
POSITION_GAP = 100  # between values of a multi-valued field (authors), as in Elasticsearch

ELISION_ARTICLES = ("l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu")


class QuerySyntaxError(ValueError):
    """A topic query that does not parse or uses something we cannot evaluate."""


# --------------------------------------------------------------------------- analysis

# Unicode word segmentation (UAX#29, Lucene's StandardTokenizer) for Latin text: letters join
# across . ' ’ : · and digits across . , ; ' ’; everything else separates.
_TOKEN_RE = re.compile(
    r"\w+(?:(?:(?<=[^\W\d_])[.'’:·](?=[^\W\d_])|(?<=\d)[.,;'’](?=\d))\w+)*", re.UNICODE)
_FOLD_EXTRA = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O",
                             "đ": "d", "ð": "d", "þ": "th", "ł": "l", "Ł": "L", "ı": "i"})


def _elide(token: str) -> str:
    for quote in ("'", "’"):
        i = token.find(quote)
        if i > 0:
            if token[:i].lower() in ELISION_ARTICLES:
                return token[i + 1:]
            return token
    return token


def fold(text: str) -> str:
    """Lower case and strip accents (Elasticsearch lowercase + asciifolding)."""
    text = text.lower().translate(_FOLD_EXTRA)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _ends(s: list[str], n: int, suffix: str) -> bool:
    return n >= len(suffix) and "".join(s[n - len(suffix):n]) == suffix


def _norm(s: list[str], n: int) -> int:
    if n > 4:
        table = {"à": "a", "á": "a", "â": "a", "ô": "o", "è": "e", "é": "e", "ê": "e", "ù": "u", "û": "u",
                 "î": "i", "ç": "c"}
        for i in range(n):
            s[i] = table.get(s[i], s[i])
        ch = s[0]
        i = 1
        while i < n:
            if s[i] == ch and ch.isalpha():
                del s[i]
                n -= 1
            else:
                ch = s[i]
                i += 1
    if n > 4 and _ends(s, n, "ie"):
        n -= 2
    if n > 4:
        if s[n - 1] == "r":
            n -= 1
        if s[n - 1] == "e":
            n -= 1
        if s[n - 1] == "e":
            n -= 1
        if s[n - 1] == s[n - 2] and s[n - 1].isalpha():
            n -= 1
    return n


def _light_french(s: list[str], n: int) -> int:  # noqa: C901 - a faithful port of Lucene's FrenchLightStemmer
    if n > 5 and s[n - 1] == "x":
        if s[n - 3] == "a" and s[n - 2] == "u" and s[n - 4] != "e":
            s[n - 2] = "l"
        n -= 1
    if n > 3 and s[n - 1] == "x":
        n -= 1
    if n > 3 and s[n - 1] == "s":
        n -= 1
    if n > 9 and _ends(s, n, "issement"):
        n -= 6
        s[n - 1] = "r"
        return _norm(s, n)
    if n > 8 and _ends(s, n, "issant"):
        n -= 4
        s[n - 1] = "r"
        return _norm(s, n)
    if n > 6 and _ends(s, n, "ement"):
        n -= 4
        if n > 3 and _ends(s, n, "ive"):
            n -= 1
            s[n - 1] = "f"
        return _norm(s, n)
    if n > 11 and _ends(s, n, "ficatrice"):
        n -= 5
        s[n - 2], s[n - 1] = "e", "r"
        return _norm(s, n)
    if n > 10 and _ends(s, n, "ficateur"):
        n -= 4
        s[n - 2], s[n - 1] = "e", "r"
        return _norm(s, n)
    if n > 9 and _ends(s, n, "catrice"):
        n -= 3
        s[n - 4], s[n - 3], s[n - 2] = "q", "u", "e"
        return _norm(s, n)
    if n > 8 and _ends(s, n, "cateur"):
        n -= 2
        s[n - 4], s[n - 3], s[n - 2], s[n - 1] = "q", "u", "e", "r"
        return _norm(s, n)
    if n > 8 and _ends(s, n, "atrice"):
        n -= 4
        s[n - 2], s[n - 1] = "e", "r"
        return _norm(s, n)
    if n > 7 and _ends(s, n, "ateur"):
        n -= 3
        s[n - 2], s[n - 1] = "e", "r"
        return _norm(s, n)
    if n > 6 and _ends(s, n, "trice"):
        n -= 1
        s[n - 3], s[n - 2], s[n - 1] = "e", "u", "r"
    if n > 5 and _ends(s, n, "ième"):
        return _norm(s, n - 4)
    if n > 7 and _ends(s, n, "teuse"):
        n -= 2
        s[n - 1] = "r"
        return _norm(s, n)
    if n > 6 and _ends(s, n, "teur"):
        n -= 1
        s[n - 1] = "r"
        return _norm(s, n)
    if n > 5 and _ends(s, n, "euse"):
        return _norm(s, n - 2)
    if n > 8 and _ends(s, n, "ère"):
        n -= 1
        s[n - 2] = "e"
        return _norm(s, n)
    if n > 7 and _ends(s, n, "ive"):
        n -= 1
        s[n - 1] = "f"
        return _norm(s, n)
    if n > 4 and (_ends(s, n, "folle") or _ends(s, n, "molle")):
        n -= 2
        s[n - 1] = "u"
        return _norm(s, n)
    if n > 9 and _ends(s, n, "nnelle"):
        return _norm(s, n - 5)
    if n > 9 and _ends(s, n, "nnel"):
        return _norm(s, n - 3)
    if n > 4 and _ends(s, n, "ète"):
        n -= 1
        s[n - 2] = "e"
    if n > 8 and _ends(s, n, "ique"):
        n -= 4
    if n > 8 and _ends(s, n, "esse"):
        return _norm(s, n - 3)
    if n > 7 and _ends(s, n, "inage"):
        return _norm(s, n - 3)
    if n > 9 and _ends(s, n, "isation"):
        n -= 7
        if n > 5 and _ends(s, n, "ual"):
            s[n - 2] = "e"
        return _norm(s, n)
    if n > 9 and _ends(s, n, "isateur"):
        return _norm(s, n - 7)
    if n > 8 and _ends(s, n, "ation"):
        return _norm(s, n - 5)
    if n > 8 and _ends(s, n, "ition"):
        return _norm(s, n - 5)
    return _norm(s, n)


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """Lucene FrenchLightStemmer (Elasticsearch `light_french`) on a folded token."""
    chars = list(token)
    return "".join(chars[:_light_french(chars, len(chars))])


def normalize_token(raw: str) -> str:
    """Elision + lowercase + ASCII folding: what the backend does to wildcard/fuzzy terms."""
    return fold(_elide(raw))


def analyze(text: str) -> list[tuple[str, str]]:
    """Text -> [(folded, stemmed)] tokens, in order (the `veille_fr` analyzer)."""
    out = []
    for m in _TOKEN_RE.finditer(text or ""):
        folded = normalize_token(m.group(0))
        if folded:
            out.append((folded, stem(folded)))
    return out


# --------------------------------------------------------------------------- article view


class _FieldView:
    __slots__ = ("stems", "folded", "positions", "values", "empty")

    def __init__(self, values: list[str]):
        self.stems: set[str] = set()
        self.folded: set[str] = set()
        self.positions: dict[str, list[int]] = {}
        self.values = values
        pos = 0
        for value in values:
            for folded, stemmed in analyze(value):
                self.stems.add(stemmed)
                self.folded.add(folded)
                self.positions.setdefault(stemmed, []).append(pos)
                pos += 1
            pos += POSITION_GAP
        self.empty = not self.stems


class ArticleView:
    """An article analysed once, field by field, for any number of topic queries."""

    def __init__(self, article: dict):
        self.article = article
        self._fields: dict[str, _FieldView] = {}

    def field(self, name: str) -> _FieldView:
        view = self._fields.get(name)
        if view is None:
            value = self.article.get(name)
            if value is None:
                values = []
            elif isinstance(value, (list, tuple)):
                values = [str(v) for v in value if v is not None]
            else:
                values = [str(value)]
            view = self._fields[name] = _FieldView(values)
        return view


# --------------------------------------------------------------------------- compilation

Pred = Callable[[ArticleView], bool]

_WILD_RE = re.compile(r"(?<!\\)[*?]")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _has_wildcard(word: str) -> bool:
    return bool(_WILD_RE.search(word))


def _wildcard_regex(word: str) -> re.Pattern:
    parts = []
    i = 0
    while i < len(word):
        c = word[i]
        if c == "\\" and i + 1 < len(word):
            parts.append(re.escape(normalize_token(word[i + 1])))
            i += 2
            continue
        if c == "*":
            parts.append(".*")
        elif c == "?":
            parts.append(".")
        else:
            parts.append(re.escape(normalize_token(c) if c not in "'’" else c))
        i += 1
    pattern = "".join(parts)
    # elision on the literal prefix ("l'élect*")
    m = re.match(r"^(\w+)\\?['’](.*)$", pattern)
    if m and m.group(1) in ELISION_ARTICLES:
        pattern = m.group(2)
    return re.compile(pattern + r"\Z", re.DOTALL)


def _damerau(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] | None = None
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _sloppy_match(positions: dict[str, list[int]], terms: list[str], slop: int) -> bool:
    """Is there one position per term with max(p_i - i) - min(p_i - i) <= slop (Lucene slop)?"""
    lists = []
    for i, t in enumerate(terms):
        ps = positions.get(t)
        if not ps:
            return False
        lists.append(sorted(p - i for p in ps))
    if slop == 0:
        common = set(lists[0])
        for lst in lists[1:]:
            common &= set(lst)
            if not common:
                return False
        return True
    # smallest window covering one value from each list
    merged = sorted((v, k) for k, lst in enumerate(lists) for v in lst)
    need = len(lists)
    counts = [0] * need
    covered = 0
    lo = 0
    for hi in range(len(merged)):
        k = merged[hi][1]
        counts[k] += 1
        if counts[k] == 1:
            covered += 1
        while covered == need:
            if merged[hi][0] - merged[lo][0] <= slop:
                return True
            kl = merged[lo][1]
            counts[kl] -= 1
            if counts[kl] == 0:
                covered -= 1
            lo += 1
    return False


def _check_field(name: str) -> str:
    name_l = name.lower()
    if name_l not in TEXT_FIELDS and name_l not in DATE_FIELDS:
        raise QuerySyntaxError(f"unknown field {name!r} (known: {', '.join(TEXT_FIELDS + DATE_FIELDS)})")
    return name_l


def _word_pred(word: str, fields: tuple[str, ...]) -> Pred:
    if word == "*":
        return lambda a: any(not a.field(f).empty for f in fields)
    if _has_wildcard(word):
        rx = _wildcard_regex(word)

        def wild(a: ArticleView) -> bool:
            for f in fields:
                fv = a.field(f)
                if any(rx.match(t) for t in fv.folded) or any(rx.match(t) for t in fv.stems):
                    return True
            return False
        return wild
    tokens = [s for _, s in analyze(_unescape(word))]
    if not tokens:
        raise QuerySyntaxError(f"term {word!r} has no searchable characters")
    if len(tokens) == 1:
        t = tokens[0]
        return lambda a: any(t in a.field(f).stems for f in fields)
    # a word the analyzer splits ("Saint-Denis"): every token, all in one field (backend: best_fields, AND)
    return lambda a: any(all(t in a.field(f).stems for t in tokens) for f in fields)


def _phrase_pred(text: str, fields: tuple[str, ...], slop: int) -> Pred:
    tokens = [s for _, s in analyze(_unescape(text))]
    if not tokens:
        raise QuerySyntaxError(f"phrase {text!r} has no searchable characters")
    if len(tokens) == 1:
        t = tokens[0]
        return lambda a: any(t in a.field(f).stems for f in fields)

    def phrase(a: ArticleView) -> bool:
        return any(_sloppy_match(a.field(f).positions, tokens, slop) for f in fields)
    return phrase


def _fuzzy_pred(word: str, degree: Any, fields: tuple[str, ...]) -> Pred:
    edits = _fuzzy_edits(degree)
    target = normalize_token(_unescape(word))  # like the backend: normalized, not stemmed

    def fuzzy(a: ArticleView) -> bool:
        for f in fields:
            fv = a.field(f)
            if any(_damerau(target, t, edits) <= edits for t in fv.folded | fv.stems):
                return True
        return False
    return fuzzy


def _fuzzy_edits(degree: Any) -> int:
    try:
        d = float(degree) if degree is not None else 2.0
    except (TypeError, ValueError):
        d = 2.0
    if d < 1:  # luqum's default (0.5) and old-style similarities: Lucene's default of 2 edits
        return 2
    return min(int(d), 2)


def _date_key(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return str(value).strip().replace(" ", "T")


def _range_pred(field: str, low: str | None, high: str | None, inc_low: bool, inc_high: bool) -> Pred:
    def rng(a: ArticleView) -> bool:
        v = _date_key(a.article.get(field))
        if not v:
            return False
        if low is not None and low != "*":
            lv = v[:len(low)]
            if lv < low or (not inc_low and lv == low):
                return False
        if high is not None and high != "*":
            hv = v[:len(high)]
            if hv > high or (not inc_high and hv == high):
                return False
        return True
    return rng


def _walk(node: tree.Item):
    yield node
    for child in node.children:
        yield from _walk(child)


def _compile(node: tree.Item, fields: tuple[str, ...]) -> Pred:  # noqa: C901
    if isinstance(node, tree.SearchField):
        name = _check_field(node.name)
        if any(isinstance(n, tree.SearchField) for n in _walk(node.expr)):
            raise QuerySyntaxError(f"nested fields are not supported: {node}")
        if name in DATE_FIELDS:
            return _compile_date(node.expr, name)
        return _compile(node.expr, (name,))
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return _compile(node.expr, fields)
    if isinstance(node, tree.Boost):
        return _compile(node.expr, fields)
    if isinstance(node, tree.Plus):
        return _compile(node.a, fields)
    if isinstance(node, (tree.Not, tree.Prohibit)):
        inner = _compile(node.a, fields)
        return lambda a: not inner(a)
    if isinstance(node, tree.OrOperation):
        preds = [_compile(c, fields) for c in node.children]
        return lambda a: any(p(a) for p in preds)
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation)):
        preds = [_compile(c, fields) for c in node.children]
        # evaluate positive clauses first: cheaper short-circuit on typical queries
        return lambda a: all(p(a) for p in preds)
    if isinstance(node, tree.Proximity):
        return _phrase_pred(node.term.value[1:-1], fields, int(float(node.degree or 0)))
    if isinstance(node, tree.Fuzzy):
        if not isinstance(node.term, tree.Word):
            raise QuerySyntaxError(f"fuzzy operator on something else than a word: {node}")
        return _fuzzy_pred(node.term.value, node.degree, fields)
    if isinstance(node, tree.Phrase):
        return _phrase_pred(node.value[1:-1], fields, 0)
    if isinstance(node, tree.Word):
        return _word_pred(node.value, fields)
    if isinstance(node, tree.Regex):
        raise QuerySyntaxError(f"regular expressions are not supported: {node}")
    if isinstance(node, (tree.Range, tree.From, tree.To)):
        raise QuerySyntaxError(f"ranges are only supported on dates (published:[a TO b]): {node}")
    raise QuerySyntaxError(f"unsupported query element: {node}")


def _range_bounds(node: tree.Item) -> tuple[str | None, str | None, bool, bool]:
    if isinstance(node, tree.Range):
        return str(node.low).strip('"'), str(node.high).strip('"'), node.include_low, node.include_high
    if isinstance(node, tree.From):
        return str(node.a).strip('"'), None, node.include, True
    if isinstance(node, tree.To):
        return None, str(node.a).strip('"'), True, node.include
    raise QuerySyntaxError(f"the published field takes a range, e.g. published:[2024-01-01 TO *]: {node}")


def _compile_date(node: tree.Item, field: str) -> Pred:
    low, high, il, ih = _range_bounds(node)
    return _range_pred(field, low, high, il, ih)


def parse(query: str) -> tree.Item:
    """Parse a query with luqum; a syntax error raises QuerySyntaxError."""
    if not isinstance(query, str) or not query.strip():
        raise QuerySyntaxError("empty query")
    try:
        return parser.parse(query)
    except (ParseError, TypeError) as exc:
        raise QuerySyntaxError(f"cannot parse query {query!r}: {exc}") from None


def _compile_view(query: str) -> Pred:
    node = parse(query)
    try:
        return _compile(node, DEFAULT_FIELDS)
    except re.error as exc:  # pragma: no cover - defensive
        raise QuerySyntaxError(f"bad wildcard in {query!r}: {exc}") from None


def compile_query(q: str) -> Callable[[dict], bool]:
    """Compile a query into a predicate over article dicts; bad queries raise QuerySyntaxError."""
    pred = _compile_view(q)
    return lambda article: pred(article if isinstance(article, ArticleView) else ArticleView(article))


def check_query(q: str) -> str:
    """Validate a query (parse + compile on both engines); returns it unchanged."""
    _compile_view(q)
    to_search_query(q)
    return q


# --------------------------------------------------------------------------- search backend

ANALYSIS = {
    "filter": {
        "veille_elision": {"type": "elision", "articles_case": True, "articles": list(ELISION_ARTICLES)},
        "veille_stemmer": {"type": "stemmer", "language": "light_french"},
    },
    "analyzer": {
        "veille_fr": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["veille_elision", "lowercase", "asciifolding", "veille_stemmer"],
        },
        "veille_exact": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["veille_elision", "lowercase", "asciifolding"],
        },
    },
    "normalizer": {"veille_norm": {"type": "custom", "filter": ["lowercase", "asciifolding"]}},
}


def _text_mapping() -> dict:
    return {
        "type": "text",
        "analyzer": "veille_fr",
        "position_increment_gap": POSITION_GAP,
        "fields": {
            "exact": {"type": "text", "analyzer": "veille_exact", "position_increment_gap": POSITION_GAP},
            "norm": {"type": "keyword", "normalizer": "veille_norm"},
        },
    }


def search_index_body(percolator: bool = False) -> dict:
    """Settings + mappings for an article (or percolator) index where to_search_query means the same."""
    props: dict[str, Any] = {f: _text_mapping() for f in TEXT_FIELDS}
    props["id"] = {"type": "keyword"}
    props["published"] = {"type": "date"}
    if percolator:
        props["query"] = {"type": "percolator"}
    return {"settings": {"analysis": ANALYSIS}, "mappings": {"properties": props}}


def _date_math(bound: str) -> str:
    """A partial date compares as a prefix (whole day/month/year), as in the embedded engine."""
    unit = {4: "y", 7: "M", 10: "d"}.get(len(bound))
    return f"{bound}||/{unit}" if unit and "T" not in bound else bound


def _leaf(text: str, fields: tuple[str, ...], exact_too: bool = False) -> dict:
    flds = list(fields) + ([f + ".exact" for f in fields] if exact_too else [])
    return {"query_string": {"query": text, "fields": flds, "default_operator": DEFAULT_OPERATOR,
                             "analyze_wildcard": False, "auto_generate_synonyms_phrase_query": False}}


def _lucene_escape(text: str) -> str:
    return re.sub(r'([+\-=&|><!(){}\[\]^"~*?:\\/ ])', r"\\\1", text)


def _dsl(node: tree.Item, fields: tuple[str, ...]) -> dict:  # noqa: C901
    if isinstance(node, tree.SearchField):
        name = _check_field(node.name)
        if name in DATE_FIELDS:
            low, high, il, ih = _range_bounds(node.expr)
            rng: dict[str, Any] = {}
            if low not in (None, "*"):
                rng["gte" if il else "gt"] = _date_math(low)
            if high not in (None, "*"):
                rng["lte" if ih else "lt"] = _date_math(high)
            return {"range": {name: rng}} if rng else {"exists": {"field": name}}
        return _dsl(node.expr, (name,))
    if isinstance(node, (tree.Group, tree.FieldGroup, tree.Boost)):
        return _dsl(node.expr, fields)
    if isinstance(node, tree.Plus):
        return _dsl(node.a, fields)
    if isinstance(node, (tree.Not, tree.Prohibit)):
        return {"bool": {"must_not": [_dsl(node.a, fields)]}}
    if isinstance(node, tree.OrOperation):
        return {"bool": {"should": [_dsl(c, fields) for c in node.children], "minimum_should_match": 1}}
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation)):
        musts, nots = [], []
        for c in node.children:
            inner = c
            while isinstance(inner, tree.Group) and isinstance(inner.expr, (tree.Not, tree.Prohibit)):
                inner = inner.expr
            if isinstance(inner, (tree.Not, tree.Prohibit)):
                nots.append(_dsl(inner.a, fields))
            else:
                musts.append(_dsl(c, fields))
        out: dict[str, Any] = {}
        if musts:
            out["must"] = musts
        if nots:
            out["must_not"] = nots
        return {"bool": out}
    if isinstance(node, tree.Proximity):
        return _leaf(f"{node.term.value}~{int(float(node.degree or 0))}", fields)
    if isinstance(node, tree.Fuzzy):
        return _leaf(f"{node.term.value}~{_fuzzy_edits(node.degree)}", fields, exact_too=True)
    if isinstance(node, tree.Phrase):
        return _leaf(node.value, fields)
    if isinstance(node, tree.Word):
        if node.value == "*":
            return {"bool": {"should": [{"exists": {"field": f}} for f in fields], "minimum_should_match": 1}}
        return _leaf(node.value, fields, exact_too=_has_wildcard(node.value))
    _compile(node, fields)  # raises the right QuerySyntaxError
    raise QuerySyntaxError(f"unsupported query element: {node}")  # pragma: no cover


def to_search_query(q: str) -> dict:
    """The Elasticsearch/OpenSearch DSL meaning exactly what compile_query(q) means.

    Use on an index created with search_index_body() (percolator=True for percolation).
    """
    node = parse(q)
    _compile(node, DEFAULT_FIELDS)  # same validation as the embedded engine
    return _dsl(node, DEFAULT_FIELDS)


# --------------------------------------------------------------------------- config models

_target_names: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("veille_target_names", default=None)
_topic_ids: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("veille_topic_ids", default=None)


class Target(BaseModel):
    """Where alerts go. `type` decides which other fields are needed.

    log: nothing (``stream: stdout|stderr|log``). webhook: ``url``, optional ``secret_env``
    (HMAC-SHA256 key), ``timeout``, ``retries``. slack: ``url`` or ``url_env``. email: ``to``,
    ``smtp_host``, ``smtp_port``, ``sender``, ``starttls`` (true/false/omitted = when offered),
    ``ssl``, ``username_env`` / ``password_env``.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["log", "webhook", "slack", "email"]
    name: str | None = None  # filled from the key of the `targets:` map
    # log
    stream: Literal["stdout", "stderr", "log"] = "stdout"
    # webhook / slack
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    timeout: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    backoff: float = Field(0.5, ge=0)
    # email
    to: list[str] = []
    sender: str = "veille@localhost"
    smtp_host: str | None = None
    smtp_port: int = Field(587, gt=0, lt=65536)
    starttls: bool | None = None
    ssl: bool = False
    username_env: str | None = None
    password_env: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"not an http(s) URL: {v!r}")
        return v

    @field_validator("to")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for addr in v:
            if not re.match(r"^[^@\s]+@[^@\s]+$", addr):
                raise ValueError(f"not an email address: {addr!r}")
        return v

    @model_validator(mode="after")
    def _needs(self) -> "Target":
        if self.type == "webhook" and not self.url:
            raise ValueError("a webhook target needs url")
        if self.type == "slack" and not (self.url or self.url_env):
            raise ValueError("a slack target needs url or url_env")
        if self.type == "email":
            if not self.to:
                raise ValueError("an email target needs to: [addresses]")
            if not self.smtp_host:
                raise ValueError("an email target needs smtp_host")
            if self.ssl and self.starttls:
                raise ValueError("choose ssl or starttls, not both")
        return self


def _known_target(name: str) -> str:
    known = _target_names.get()
    if known is not None and name not in known:
        raise ValueError(f"unknown target {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    return name


TargetName = Annotated[str, AfterValidator(_known_target)]


class Topic(BaseModel):
    """One monitored topic: a query, optional outlet/language filters, targets and mode."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    name: str
    query: str
    outlets: list[str] = []  # outlet names or source ids; case/accent-insensitive; empty = all
    languages: list[str] = []  # e.g. [fr]; empty = all
    targets: list[TargetName] = []  # names from the top-level `targets:` map
    mode: Literal["instant", "digest"] = "instant"
    digest_period: Duration | None = None  # type: ignore[valid-type]
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _unique_id(cls, v: str) -> str:
        seen = _topic_ids.get()
        if seen is not None:
            if v in seen:
                raise ValueError(f"duplicate topic id {v!r}")
            seen.add(v)
        return v

    @field_validator("query")
    @classmethod
    def _valid_query(cls, v: str) -> str:
        try:
            return check_query(v)
        except QuerySyntaxError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _digest(self) -> "Topic":
        if self.mode == "digest" and not self.digest_period:
            raise ValueError("mode: digest needs digest_period (e.g. 1h)")
        if self.mode == "instant" and self.digest_period:
            raise ValueError("digest_period is only for mode: digest")
        return self

    @property
    def digest_seconds(self) -> float | None:
        if self.digest_period is None:
            return None
        p = self.digest_period
        return p.total_seconds() if isinstance(p, timedelta) else float(p)

    def search_query(self) -> dict:
        """Percolator query for this topic: the query plus its outlet/language filters."""
        filters: list[dict] = []
        if self.outlets:
            vals = [fold(o) for o in self.outlets]
            filters.append({"bool": {"should": [{"terms": {"outlet.norm": vals}}, {"terms": {"source.norm": vals}}],
                                     "minimum_should_match": 1}})
        if self.languages:
            filters.append({"terms": {"lang.norm": [fold(x) for x in self.languages]}})
        q = to_search_query(self.query)
        return {"bool": {"must": [q], "filter": filters}} if filters else q


class TopicsFile(BaseModel):
    """The whole config/topics.yaml."""

    model_config = ConfigDict(extra="forbid")

    targets: dict[str, Target] = {}
    topics: list[Topic]

    @model_validator(mode="wrap")
    @classmethod
    def _cross_refs(cls, data: Any, handler: Any) -> "TopicsFile":
        names = set(data.get("targets") or {}) if isinstance(data, dict) and isinstance(data.get("targets") or {}, dict) else None
        t1 = _target_names.set(names)
        t2 = _topic_ids.set(set())
        try:
            return handler(data)
        finally:
            _target_names.reset(t1)
            _topic_ids.reset(t2)

    @model_validator(mode="after")
    def _name_targets(self) -> "TopicsFile":
        for key, target in self.targets.items():
            if target.name is None:
                target.name = key
        return self

    def targets_for(self, topic: "Topic | str") -> list[Target]:
        topic = self.get(topic) if isinstance(topic, str) else topic
        return [self.targets[name] for name in topic.targets]

    def get(self, topic_id: str) -> Topic:
        for topic in self.topics:
            if topic.id == topic_id:
                return topic
        raise KeyError(f"unknown topic {topic_id!r}")


def load_topics(path: Any = None) -> TopicsFile:
    """Load config/topics.yaml (or VEILLE_TOPICS) with line-numbered errors."""
    import os
    from pathlib import Path

    from crawler.config import CONFIG_DIR, load_yaml
    path = Path(path or os.environ.get("VEILLE_TOPICS", CONFIG_DIR / "topics.yaml"))
    return load_yaml(path, TopicsFile)


# --------------------------------------------------------------------------- matcher


class TopicMatcher:
    """Match articles against many topics; each article is analysed once."""

    def __init__(self, topics: list[Topic]):
        self.topics = [t for t in topics if getattr(t, "enabled", True)]
        self._compiled: list[tuple[Topic, Pred, set[str], set[str]]] = []
        for t in self.topics:
            self._compiled.append((t, _compile_view(t.query), {fold(o) for o in t.outlets},
                                   {fold(x) for x in t.languages}))

    def match(self, article: dict) -> list[str]:
        view = ArticleView(article)
        outlet_keys = {fold(str(article.get(k) or "")) for k in ("outlet", "source")} - {""}
        lang = fold(str(article.get("lang") or ""))
        out = []
        for topic, pred, outlets, langs in self._compiled:
            if outlets and not (outlets & outlet_keys):
                continue
            if langs and lang not in langs:
                continue
            if pred(view):
                out.append(topic.id)
        return out

    def matching_topics(self, article: dict) -> list[Topic]:
        ids = set(self.match(article))
        return [t for t in self.topics if t.id in ids]
