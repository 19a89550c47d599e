"""Article extraction: HTML -> title, lead, body paragraphs and metadata.

trafilatura does the extraction (main-content detection, comment removal,
metadata); this module walks trafilatura's structured output (its XML body:
``head``/``p``/``list``/``quote`` elements) and post-processes it:

* splits the lead (standfirst) from the body using the page description,
  recovering a visible standfirst that trafilatura left out;
* drops the title when it is repeated in the body;
* drops "link boxes" (a heading followed by teaser links, e.g. a live blog's
  "Les principales infos de ce matin" entry made only of links);
* applies the line rules of :mod:`crawler.cleaning` and optional site-level
  boilerplate learned by :class:`crawler.cleaning.SiteBoilerplate`.

Everything here is a top-level function working on plain data, so it can run
in a worker process (``ProcessPoolExecutor``) with picklable args and results.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Sequence

from w3lib.encoding import html_to_unicode

from .cleaning import (
    SiteBoilerplate,
    _key,
    clean_paragraphs,
    normalize_line,
    same_text,
)

__all__ = ["ExtractionError", "decode_html", "extract_article", "article_text"]


class ExtractionError(ValueError):
    """Raised when a document contains no article text at all."""


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

_SINGLE_BYTE_LATIN = {"cp1252", "latin_1", "iso8859_1", "iso8859_15", "ascii", "cp1250"}
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _codec_name(enc: str | None) -> str | None:
    import codecs

    if not enc:
        return None
    try:
        return codecs.lookup(enc.strip().strip("\"'")).name.replace("-", "_")
    except LookupError:
        return None


def _looks_utf8(body: bytes) -> bool:
    """Bytes with non-ASCII content that is mostly valid UTF-8."""
    if not _UTF8_MULTIBYTE.search(body):
        return False
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        pass
    # A few stray bytes in an otherwise UTF-8 page: still UTF-8.
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 0x7F and ch != "\ufffd")
    return good > 4 * bad


def _auto_detect(body: bytes) -> str | None:
    return "utf-8" if _looks_utf8(body) or not re.search(rb"[\x80-\xff]", body) else "cp1252"


def decode_html(body: bytes, declared_encoding: str | None = None) -> str:
    """Decode an HTML byte string, robust to missing or wrong charset labels.

    ``declared_encoding`` may be a charset name (``"iso-8859-1"``) or a full
    Content-Type header value.  Order: BOM, declared charset (HTTP header),
    ``<meta charset>``, then detection.  A page labelled with a single-byte
    Latin charset whose bytes are in fact UTF-8 is decoded as UTF-8, and a
    page labelled UTF-8 whose bytes are not is decoded as windows-1252.
    ISO-8859-1 is read as windows-1252 (as browsers do).  Never raises.
    """
    if isinstance(body, str):
        return body
    body = bytes(body or b"")
    header = None
    if declared_encoding:
        header = declared_encoding if "charset" in declared_encoding.lower() else f"text/html; charset={declared_encoding}"
    try:
        enc, text = html_to_unicode(header, body, default_encoding="utf-8", auto_detect_fun=_auto_detect)
    except Exception:  # pragma: no cover - w3lib is defensive already
        return body.decode("utf-8", errors="replace")
    codec = _codec_name(enc)
    if codec in _SINGLE_BYTE_LATIN and _looks_utf8(body):
        return body.decode("utf-8", errors="replace")
    if codec == "utf_8" and "\ufffd" in text and not body.startswith(b"\xef\xbb\xbf") and not _looks_utf8(body):
        return body.decode("cp1252", errors="replace")
    return text


# --------------------------------------------------------------------------
# Metadata helpers (read from the page head; trafilatura gives the rest)
# --------------------------------------------------------------------------

_DATE_META = (
    "article:published_time",
    "og:article:published_time",
    "datePublished",
    "date",
    "pubdate",
    "publishdate",
    "dc.date.issued",
    "DC.date.issued",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
)
_ISO_DT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s?(?:Z|[+-]\d{2}:?\d{2})?)?$")


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    if not _ISO_DT.match(v):
        return None
    v = re.sub(r"\s+(?=[+-]\d{2}:?\d{2}$)", "", v)
    v = v.replace(" ", "T", 1)
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    m = re.search(r"([+-]\d{2})(\d{2})$", v)
    if m and "T" in v and v[-5] in "+-":
        v = v[:-5] + f"{m.group(1)}:{m.group(2)}"
    if "." in v:
        v = re.sub(r"\.\d+", "", v)
    return v


def _jsonld_objects(tree) -> list[dict]:
    out: list[dict] = []
    for node in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(node.text or "")
        except (ValueError, TypeError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                out.append(item)
                if "@graph" in item:
                    stack.append(item["@graph"])
    return out


def _published_from_tree(tree) -> str | None:
    for obj in _jsonld_objects(tree):
        t = obj.get("@type")
        types = t if isinstance(t, list) else [t]
        if any(isinstance(x, str) and ("Article" in x or x in ("BlogPosting", "LiveBlogPosting", "Report")) for x in types):
            iso = _iso(str(obj.get("datePublished") or ""))
            if iso:
                return iso
    for name in _DATE_META:
        for node in tree.xpath(f'//meta[@property="{name}" or @name="{name}" or @itemprop="{name}"]/@content'):
            iso = _iso(node)
            if iso:
                return iso
    for node in tree.xpath('//time[@itemprop="datePublished"]/@datetime | //*[@itemprop="datePublished"]/@content'):
        iso = _iso(node)
        if iso:
            return iso
    return None


def _authors_from_tree(tree) -> list[str]:
    for obj in _jsonld_objects(tree):
        t = obj.get("@type")
        types = t if isinstance(t, list) else [t]
        if not any(isinstance(x, str) and ("Article" in x or x in ("BlogPosting", "LiveBlogPosting", "Report")) for x in types):
            continue
        auth = obj.get("author")
        items = auth if isinstance(auth, list) else [auth]
        names = []
        for a in items:
            name = a.get("name") if isinstance(a, dict) else a if isinstance(a, str) else None
            if isinstance(name, str):
                name = normalize_line(name)
                if name and not name.startswith("http") and name not in names:
                    names.append(name)
        if names:
            return names
    return []


def _lang_from_tree(tree) -> str | None:
    candidates = tree.xpath("/html/@lang | /html/@xml:lang")
    candidates += tree.xpath('//meta[@property="og:locale"]/@content | //meta[@http-equiv="content-language"]/@content')
    for c in candidates:
        m = re.match(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z]+)?\s*$", c or "")
        if m:
            return m.group(1).lower()
    return None


def _strip_site_suffix(title: str, sitename: str | None, url: str | None) -> str:
    """"Titre - Le Figaro" -> "Titre" when the last segment names the site."""
    names = {_key(sitename)} if sitename else set()
    if url:
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/")[0].split(":")[0]
        if host:
            names.add(_key(host))
            names.add(_key(host.rsplit(".", 1)[0]))
    for sep in (" | ", " - ", " – ", " — ", " : "):
        if sep in title:
            head, _, tail = title.rpartition(sep)
            kt = _key(tail)
            if head and kt and any(kt == n or kt.replace(" ", "") == n.replace(" ", "").replace(".fr", "") for n in names if n):
                return head.strip()
    return title


def _split_list(value) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        for part in re.split(r"\s*[;,]\s*", str(item)):
            part = normalize_line(part)
            if part and part.casefold() not in {o.casefold() for o in out}:
                out.append(part)
    return out


def _split_authors(value: str | None) -> list[str]:
    if not value:
        return []
    out: list[str] = []
    for part in re.split(r"\s*;\s*", value):
        part = normalize_line(part)
        if part and part not in out:
            out.append(part)
    return out


# --------------------------------------------------------------------------
# Body walking
# --------------------------------------------------------------------------

_MARKER_LINK = re.compile(r"^(?:>|→|►|▶)\s*\S")


def _text(el) -> str:
    return normalize_line("".join(el.itertext()))


def _blocks(body) -> list[dict]:
    """Flatten trafilatura's XML body into blocks {kind, text, bold, link}."""
    blocks: list[dict] = []

    def add(el, kind):
        text = _text(el)
        if not text:
            return
        inner = "".join(
            "".join(c.itertext()) for c in el if c.tag in ("hi", "ref")
        )
        bold = bool(len(el)) and all(c.tag == "hi" for c in el) and normalize_line(inner) == text
        link_text = normalize_line("".join("".join(r.itertext()) for r in el.iter("ref")))
        blocks.append(
            {
                "kind": kind,
                "text": text,
                "bold": bold,
                "link": bool(link_text) and link_text == text,
                "rend": el.get("rend", ""),
            }
        )

    for el in body:
        tag = el.tag
        if tag == "list":
            for item in el.iter("item"):
                add(item, "item")
        elif tag == "table":
            for row in el.iter("row"):
                cells = [_text(c) for c in row if _text(c)]
                if cells:
                    blocks.append({"kind": "row", "text": " | ".join(cells), "bold": False, "link": False, "rend": ""})
        elif tag in ("head", "p", "quote", "code"):
            add(el, "head" if tag == "head" else "p")
        elif tag in ("graphic", "lb"):
            continue
        else:
            add(el, "p")
    return blocks


def _loose(text: str) -> str:
    """Whitespace-collapsed, casefolded text: a cheap key to compare a link with a paragraph."""
    return " ".join(text.split()).casefold()


def _standalone_link_texts(tree, candidates: Iterable[str]) -> set[str]:
    """The candidate texts (>= 3 words) that are one link filling its whole parent p/li/div.

    A paragraph made of one such link is a teaser ("read also"), not article text.
    ``candidates``: the paragraph texts of interest, so the page's other links (menus, teaser
    lists: hundreds on a real page) are skipped on a cheap key.
    """
    wanted = {_loose(t) for t in candidates if len(t.split()) >= 3}
    out: set[str] = set()
    if tree is None or not wanted:
        return out
    for a in tree.xpath("//body//a[@href]"):
        text = _loose(a.text_content())
        if text not in wanted:
            continue
        parent = a.getparent()
        if parent is None or parent.tag not in ("p", "li", "div", "span", "strong", "em", "b"):
            continue
        if parent.tag in ("strong", "em", "b", "span"):
            parent = parent.getparent()
            if parent is None or parent.tag not in ("p", "li", "div"):
                continue
        if _loose(parent.text_content()) == text:
            out.add(text)
    return out


def _is_header_line(b: dict) -> bool:
    """Short label (brand, section, kicker) rather than text."""
    t = b["text"]
    return len(t.split()) <= 5 and not re.search(r"[.!?…:;,»\"]$", t)


def _is_heading(b: dict) -> bool:
    return b["kind"] == "head" or (b["bold"] and len(b["text"].split()) <= 25)


def _is_teaser(b: dict) -> bool:
    return (b["link"] or bool(_MARKER_LINK.match(b["text"]))) and len(b["text"].split()) <= 30


def _drop_link_boxes(blocks: list[dict], removed: list[dict]) -> list[dict]:
    """Drop a heading whose section is made (mostly) of teaser links."""
    out: list[dict] = []
    i = 0
    n = len(blocks)
    while i < n:
        b = blocks[i]
        if _is_heading(b):
            j = i + 1
            while j < n and not _is_heading(blocks[j]):
                j += 1
            section = blocks[i + 1 : j]
            teasers = sum(1 for s in section if _is_teaser(s))
            if len(section) >= 2 and teasers * 2 >= len(section) + (len(section) % 2) and all(
                len(s["text"].split()) <= 30 for s in section
            ):
                for s in [b, *section]:
                    removed.append({"line": s["text"], "rule": "link-box"})
                i = j
                continue
        out.append(b)
        i += 1
    return out


def _desc_key(desc: str | None) -> str:
    if not desc:
        return ""
    d = normalize_line(desc)
    d = re.sub(r"(?:\s+#\w+)+$", "", d)  # trailing hashtags
    d = re.sub(r"\s*(?:\.\.\.|…)$", "", d)  # truncation mark
    return _key(d)


def _matches_desc(text: str, dkey: str) -> bool:
    if len(dkey) < 30:
        return False
    t = _key(text)
    if not t:
        return False
    if t == dkey:
        return True
    short, long_ = (t, dkey) if len(t) < len(dkey) else (dkey, t)
    return long_.startswith(short) and len(short) >= 0.6 * len(long_)


_INVISIBLE = {"script", "style", "noscript", "template", "head", "title", "meta", "button", "option"}


def _visible_standfirst(tree, dkey: str) -> str | None:
    """Text of a visible page element equal to the description, if any.

    Linear scan of text nodes for the start of the description, then a short
    climb to the element whose whole text is the description.
    """
    if len(dkey) < 30 or tree is None:
        return None
    probe = dkey[:30]
    for node in tree.xpath("//body//text()"):
        el = node.getparent()
        # (text in or after a script/style: the climb below would stop at once)
        if el is None or not isinstance(el.tag, str) or el.tag in _INVISIBLE or not node.strip():
            continue
        key = _key(node)
        if probe not in key and probe[:15] not in key:
            continue
        for _ in range(4):
            if el is None or not isinstance(el.tag, str) or el.tag in ("body", "html"):
                break
            if any(a.tag in _INVISIBLE for a in el.iterancestors() if isinstance(a.tag, str)) or el.tag in _INVISIBLE:
                break
            txt = normalize_line(el.text_content())
            if len(txt) > 2 * len(dkey) + 40:
                break
            if _matches_desc(txt, dkey) and len(_key(txt)) >= 0.9 * len(dkey):
                return txt
            el = el.getparent()
    return None


# Fewer words than this is a menu or a stub, not an article (the shortest wire briefs have ~40).
MIN_ARTICLE_WORDS = 12

# fast=True: no readability/jusText fallback comparison. favor_precision=True: trafilatura skips
# its recall passes (the baseline rescue, and the escalation that renders the whole page to text
# whenever the article is under 3,000 characters: a third of the extraction time on a 340 KB
# page) and drops single-link teaser paragraphs itself. On the extraction dev set neither
# changes the result (135/135 paragraphs, 0 junk: bench/extraction_quality.py); together they
# make Veille's extraction cheaper than bare trafilatura.extract. Stubs are caught by
# MIN_ARTICLE_WORDS.
_PARSER_OPTS = dict(
    include_comments=False,
    include_tables=True,
    include_images=False,
    include_formatting=True,
    include_links=False,
    with_metadata=False,  # read by _page_metadata, which skips what Veille does not use
    deduplicate=False,
    fast=True,
    favor_precision=True,
)


def _parse(html: str):
    """The page tree, parsed once as trafilatura parses it (its parser, its repairs)."""
    from trafilatura.utils import load_html

    try:
        return load_html(html)
    except Exception:  # pragma: no cover - lxml/trafilatura are defensive already
        return None


def _page_metadata(tree, url: str | None, need_date: bool):
    """trafilatura's ``extract_metadata`` restricted to the fields Veille uses.

    Same functions in the same order (so the same values for title, author, description,
    sitename, tags and date), minus the licence and categories lookups, and minus htmldate's
    date search when the page already gave its publication date (JSON-LD / meta tags).
    """
    from trafilatura.metadata import (
        META_URL,
        examine_meta,
        extract_author,
        extract_meta_json,
        extract_catstags,
        extract_sitename,
        extract_title,
        extract_url,
        find_date,
    )
    from trafilatura.settings import set_date_params

    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:
        metadata.author = None
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception:  # bugs in trafilatura's json_metadata (it logs and goes on too)
        pass
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = extract_author(tree)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    if need_date:
        date_config = set_date_params(True)
        date_config["url"] = metadata.url
        metadata.date = find_date(tree, **date_config)
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        metadata.sitename = metadata.sitename.lstrip("@")
        if metadata.sitename and "." not in metadata.sitename and not metadata.sitename[0].isupper():
            metadata.sitename = metadata.sitename.title()
    elif metadata.url:
        mymatch = META_URL.match(metadata.url)
        if mymatch:
            metadata.sitename = mymatch[1]
    if not metadata.tags:
        metadata.tags = extract_catstags("tag", tree)
    metadata.clean_and_trim()
    return metadata


def extract_article(
    html: str | bytes,
    url: str | None = None,
    *,
    junk_patterns: Sequence[str] = (),
    boilerplate: SiteBoilerplate | None = None,
    outlet: str | None = None,
) -> dict:
    """Extract the article of one HTML page.

    Returns a plain dict: ``title``, ``lead`` (standfirst paragraphs),
    ``paragraphs`` (body incl. subheadlines, without lead and title),
    ``authors``, ``published`` (ISO-8601 or None), ``sitename``, ``lang``,
    ``description``, ``tags`` and ``removed`` ({"line", "rule"} records of what
    the cleaning dropped).  ``junk_patterns`` are extra per-source regexes;
    ``boilerplate``/``outlet`` strip lines learned as site boilerplate (this
    function does not update ``boilerplate``; callers ``observe`` results).

    Raises :class:`ExtractionError` when there is no article text at all.
    """
    from trafilatura import bare_extraction

    if isinstance(html, (bytes, bytearray, memoryview)):
        raw = bytes(html)
        if not raw.strip():
            raise ExtractionError("empty document: no article text")
        head = raw[:4096]
        if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ExtractionError("binary document (NUL bytes): not HTML, no article text")
        html = decode_html(raw)
    if not isinstance(html, str) or not html.strip():
        raise ExtractionError("empty document: no article text")
    if "\x00" in html[:4096]:
        raise ExtractionError("binary document (NUL bytes): not HTML, no article text")
    if "<" not in html:
        raise ExtractionError("document is not HTML (no markup): no article text")

    # One parse: trafilatura copies the tree it is given before pruning it, so this tree stays
    # whole for the metadata and the post-processing below.
    tree = _parse(html)
    own_published = _published_from_tree(tree) if tree is not None else None
    try:
        doc = bare_extraction(tree if tree is not None else html, url=url, **_PARSER_OPTS)
    except Exception as exc:  # trafilatura may raise on pathological markup
        raise ExtractionError(f"extraction failed: {exc}") from exc
    if doc is None or getattr(doc, "body", None) is None or not len(doc.body):
        raise ExtractionError(f"no article text found in document{f' ({url})' if url else ''}")
    meta = _page_metadata(tree, url, need_date=not own_published) if tree is not None else doc
    doc.description, doc.author, doc.sitename, doc.title, doc.date, doc.tags = (
        meta.description, meta.author, meta.sitename, meta.title, meta.date, meta.tags)

    description = normalize_line(doc.description) if doc.description else None
    authors = (_authors_from_tree(tree) if tree is not None else []) or _split_authors(doc.author)
    sitename = normalize_line(doc.sitename) if doc.sitename else None
    title = _strip_site_suffix(normalize_line(doc.title), sitename, url) if doc.title else None

    removed: list[dict] = []
    blocks = _blocks(doc.body)

    # 1. page-header lines (brand, section kicker, "Alerte info") printed just
    #    before the title, then the title itself as the first heading.
    tpos = next(
        (i for i, b in enumerate(blocks[:6]) if (title and same_text(b["text"], title)) or (b["kind"] == "head" and b["rend"] == "h1")),
        None,
    )
    if tpos and all(_is_header_line(b) for b in blocks[:tpos]):
        for b in blocks[:tpos]:
            removed.append({"line": b["text"], "rule": "pre-title"})
        blocks = blocks[tpos:]
    if blocks and blocks[0]["kind"] == "head" and blocks[0]["rend"] == "h1":
        if not title:
            title = blocks[0]["text"]
        rule = "title-repeat" if same_text(blocks[0]["text"], title) else "title-h1"
        removed.append({"line": blocks[0]["text"], "rule": rule})
        blocks = blocks[1:]

    # 2. link-only boxes (heading + teaser links), paragraphs that are a
    #    single link (inline "read also" teasers), then the title repeated.
    blocks = _drop_link_boxes(blocks, removed)
    standalone = _standalone_link_texts(tree, [b["text"] for b in blocks if b["kind"] in ("p", "item")])
    if standalone:
        kept_blocks = []
        for b in blocks:
            if b["kind"] in ("p", "item") and _loose(b["text"]) in standalone:
                removed.append({"line": b["text"], "rule": "link-only"})
            else:
                kept_blocks.append(b)
        blocks = kept_blocks
    kept_blocks = []
    for b in blocks:
        if title and same_text(b["text"], title):
            removed.append({"line": b["text"], "rule": "title-repeat"})
        else:
            kept_blocks.append(b)
    blocks = kept_blocks

    # 3. lead: the block(s) matching the description near the top, or a
    #    visible standfirst element trafilatura did not keep.
    dkey = _desc_key(description)
    lead: list[str] = []
    body_lines = [b["text"] for b in blocks]
    lead_idx = next((i for i, t in enumerate(body_lines[:4]) if _matches_desc(t, dkey)), None)
    if lead_idx is not None:
        lead = [body_lines[lead_idx]]
        body_lines = body_lines[:lead_idx] + body_lines[lead_idx + 1 :]
    else:
        found = _visible_standfirst(tree, dkey)
        if found and not any(_matches_desc(t, dkey) for t in body_lines):
            lead = [found]

    # 4. line rules.
    lead, rem = clean_paragraphs(lead, title=title, extra_patterns=junk_patterns, authors=authors)
    removed.extend(rem)
    paragraphs, rem = clean_paragraphs(body_lines, title=title, extra_patterns=junk_patterns, authors=authors)
    removed.extend(rem)

    # 5. site-level boilerplate.
    if boilerplate is not None and outlet:
        lead, rem = boilerplate.strip(outlet, lead)
        removed.extend(rem)
        paragraphs, rem = boilerplate.strip(outlet, paragraphs)
        removed.extend(rem)

    # 6. the lead printed again in the body.
    lead_keys = {_key(l) for l in lead}
    deduped = []
    for p in paragraphs:
        k = _key(p)
        if k in lead_keys:
            removed.append({"line": p, "rule": "lead-repeat"})
        else:
            deduped.append(p)
    paragraphs = deduped

    words = sum(len(line.split()) for line in (*lead, *paragraphs))
    if words < MIN_ARTICLE_WORDS:
        raise ExtractionError(f"no article text left after cleaning ({words} words){f' ({url})' if url else ''}")

    published = own_published
    if not published and doc.date:
        published = _iso(str(doc.date))
    lang = (doc.language or None) if hasattr(doc, "language") else None
    if not lang and tree is not None:
        lang = _lang_from_tree(tree)
    tags = _split_list(list(doc.tags or []))

    return {
        "title": title,
        "lead": lead,
        "paragraphs": paragraphs,
        "authors": authors,
        "published": published,
        "sitename": sitename,
        "lang": lang,
        "description": description,
        "tags": tags,
        "removed": removed,
    }


def article_text(result: dict) -> str:
    """Lead then body paragraphs, one per line (no title)."""
    return "\n".join([*result.get("lead", []), *result.get("paragraphs", [])])
