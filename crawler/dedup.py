"""Near-duplicate wire-copy clustering (AFP/Reuters dispatches republished with small edits).

Pure library, no I/O: the Scrapy pipeline / SQLite store / CLI call it with plain data.

Pipeline
--------
1. ``normalize(text)``: HTML entities, NFKC, casefold, accents stripped, typography unified
   (quotes, apostrophes, NBSP, dashes, ellipsis, digit grouping), and the page chrome French
   sites put around AFP copy removed line by line (datelines, agency tails, bylines,
   "Publié le … Mis à jour le …", "Lire aussi …", PREV/NEXT, Google-News footer, the AFP
   copyright notice, short header/footer lines without sentence punctuation).
2. ``signature(text)``: word ``SHINGLE``-grams of the normalized text hashed with a pinned
   64-bit hash (see *Hashing scheme* below) into two MinHash sketches:
   ``full`` (``NUM_PERM`` values over the whole body) and ``lede`` (``LEDE_PERM`` values over
   the first ``LEDE_TOKENS`` tokens; this is what lets a short brief that is the lede of a long
   dispatch find and join it). Texts under ``SHORT_TOKENS`` tokens get an exact fingerprint of
   their normalized token string instead.
3. ``StoryIndex``: two datasketch ``MinHashLSH`` indexes (full, lede) give candidates; every
   candidate is then *verified* with the estimated Jaccard and estimated containment of the
   sketches (LSH alone both misses edited copies and lets same-story articles through).
   The new doc joins the cluster of its best verified earlier match.

Hashing scheme (stable across versions and restarts; do not change without bumping
``SIG_VERSION``):
- token hash: ``zlib.crc32(token_utf8)`` (uint32);
- shingle hash of tokens t0..t(k-1): ``h = 0; for t: h = (h * 0x100000001B3 + t + 1) mod 2^64``
  then the murmur3 ``fmix64`` finalizer;
- permutation i: ``((A[i] * h + B[i]) mod 2^64) >> 32`` (multiply-shift), with A (odd) / B
  drawn from a splitmix64 stream seeded with ``SEED`` (full) / ``SEED + 1`` (lede);
- the sketch value is the minimum over the shingles (uint32); an empty set gives 2^32-1.
``signature(...).to_bytes()`` is a self-describing little-endian record (see ``Signature``).
"""
from __future__ import annotations

import html
import json
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

__all__ = [
    "normalize", "tokens", "signature", "Signature", "DocMeta", "Assignment", "StoryIndex",
    "agency_credited", "cluster_jsonl", "SEED", "SHINGLE", "NUM_PERM", "LEDE_PERM", "LEDE_TOKENS",
    "SHORT_TOKENS",
]

# ----------------------------------------------------------------------------- parameters
SIG_VERSION = 1
SEED = 20260101          # pinned seed of the permutation parameters
SHINGLE = 4              # word k-grams
NUM_PERM = 128           # full-text sketch size
LEDE_PERM = 64           # lede sketch size
LEDE_TOKENS = 100        # lede window (tokens)
SHORT_TOKENS = 30        # below this many tokens: exact fingerprint only
SCHEME = "affine32"      # datasketch label for the uint32 values we store (we compute them ourselves)

_M64 = (1 << 64) - 1


def _splitmix64(seed: int, n: int) -> list[int]:
    out, x = [], seed & _M64
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out.append(z ^ (z >> 31))
    return out


def _perm_params(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    r = _splitmix64(seed, 2 * n)
    a = np.array([v | 1 for v in r[:n]], dtype=np.uint64)
    b = np.array(r[n:], dtype=np.uint64)
    return a, b


_PERMS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _perms(seed: int, n: int):
    p = _PERMS.get((seed, n))
    if p is None:
        p = _PERMS[(seed, n)] = _perm_params(seed, n)
    return p


# ----------------------------------------------------------------------------- normalization
_QUOTES = dict.fromkeys(map(ord, "«»“”„‟‹›\"″〈〉「」"), " ")
_APOS = dict.fromkeys(map(ord, "’‘`´ʼʻ′"), "'")
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−"), "-")
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2007\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u3000\t\r\x0b\x0c"), " ")
_ZW = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff\u00ad"), None)
_TRANS = {**_QUOTES, **_APOS, **_DASHES, **_SPACES, **_ZW}

_AG = r"(?:afp|reuters|belga|ap|ats|agences?|agence france[- ]presse|nxp|dpa|ansa|efe)"
# dateline at the start of the first body line: "PARIS (AFP) - ", "(AFP) — ", "Paris, France (AFP) - ",
# "BRUXELLES (Belga) -", "PARIS | " (Journal de Montréal), "WASHINGTON, 12 mars 2019 (AFP) -"
_DATELINE = re.compile(
    r"^(?:[\w'. -]{0,40}?(?:,\s*[\w' -]{0,25})?(?:,?\s*\d{1,2}\s+\w+\s+\d{4})?\s*)?\(\s*" + _AG
    + r"(?:\s*/\s*\w+)*\s*\)\s*(?:-+|:)\s*"
    r"|^[a-z][a-z' -]{1,30}\s*\|\s*")
# agency tail at the end of the last line
_TAIL = re.compile(
    r"(?:\s*(?:\(\s*(?:avec|source\s*:?|selon)\s+" + _AG + r"(?:\s*(?:et|,|/)\s*" + _AG + r")*\s*\)"
    r"|\(\s*" + _AG + r"(?:\s*/\s*" + _AG + r")*\s*\)"
    r"|(?:avec|source\s*:?)\s+" + _AG + r"(?:\s*(?:et|,|/)\s*" + _AG + r")*"
    r"|(?:©|\(c\)|copyright)\s*(?:\d{4}\s*)?(?:[\w-]+\s+avec\s+)?" + _AG
    + r"|belga))+\s*\.?\s*$")
# whole lines that are page chrome (checked on the normalized line)
_JUNK_LINE = re.compile(
    r"^(?:(?:a |>+ ?)?(?:lire|voir) (?:aussi|egalement)\b|a lire\b|a voir\b|sur le meme sujet\b|>+ |video\.|en images\b"
    r"|prev\b|next\b|precedent\b|suivant\b|for latest updates|follow us|suivez[- ]nous|abonnez[- ]vous|s'abonner|s'inscrire"
    r"|partager\b|partagez\b|copier le lien|voir les commentaires|la redaction vous conseille|dans la meme rubrique"
    r"|ce contenu n'a pas ete trouve|ce service est reserve|article reserve|offre limitee|vous lisez actuellement"
    r"|signaler\b|nos regles de publication|continuer la lecture|newsletter\b|temps de lecture\b|valeurs associees"
    r"|article original publie|https?://|vous avez (?:un scoop|vu une erreur|repere une erreur)|vous souhaitez reagir"
    r"|(?:par |source ?:? )?[\w' .-]{0,40}\bavec (?:l')?" + _AG + r"\b.{0,20}$|par [\w' .-]{2,40}$)")
_DATED = re.compile(r"\b(?:publie|mis a jour|mise a jour|modifie|cree|actualise|updated|published)\b")
_LEGAL = re.compile(r"tous droits (?:de reproduction|reserves)|agence france-presse\. toutes les informations"
                    r"|droits de propriete intellectuelle|sans l'accord prealable")
_END_PUNCT = re.compile(r"[.!?…:;)\]]\s*$|\.\.\.\s*$")
_NUM_GROUP = re.compile(r"(?<=\d)[ .'](?=\d{3}(?!\d))")
_WORD = re.compile(r"\w+")
_MULTI_WS = re.compile(r"[ ]+")


def _strip_accents(s: str) -> str:
    d = unicodedata.normalize("NFD", s)
    return "".join(c for c in d if not unicodedata.combining(c))


def _basic(text: str) -> str:
    """Typography-level normalization (keeps line structure)."""
    t = text
    for _ in range(2):                         # double-escaped leftovers: &amp;nbsp;
        if "&" not in t:
            break
        t = html.unescape(t)
    t = t.translate(_TRANS)
    t = unicodedata.normalize("NFKC", t)
    t = t.translate(_TRANS)
    t = _strip_accents(t.casefold())
    t = _NUM_GROUP.sub("", t)                  # 50 000 / 50.000 / 50'000 -> 50000
    return t


def _clean_lines(t: str, drop_short: bool) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in t.split("\n"):
        line = _MULTI_WS.sub(" ", raw).strip()
        if not line:
            continue
        if _LEGAL.search(line):
            continue
        ntok = len(_WORD.findall(line))
        if _JUNK_LINE.match(line) and ntok < 40:
            continue
        if ntok < 25 and _DATED.search(line) and re.search(r"\d", line):
            continue
        if line in seen:                        # repeated title / kicker lines
            continue
        seen.add(line)
        if drop_short and ntok < 15 and not _END_PUNCT.search(line):
            continue                            # kicker, title, byline, caption, chrome
        out.append(line)
    if out:
        out[0] = _DATELINE.sub("", out[0], count=1)
        for i in range(len(out)):              # dateline may follow a kept header line (chapo)
            if i > 3:
                break
            m = _DATELINE.match(out[i])
            if m and m.end() < 60:
                out[i] = out[i][m.end():]
        out[-1] = _TAIL.sub("", out[-1])
    return [l for l in out if l.strip()]


def normalize(text: str) -> str:
    """Canonical text used for shingling (one line per kept paragraph, single spaces)."""
    if not text:
        return ""
    t = _basic(text)
    lines = _clean_lines(t, drop_short=True)
    if sum(len(_WORD.findall(l)) for l in lines) < SHORT_TOKENS:
        lines = _clean_lines(t, drop_short=False)   # very short text: keep its short lines
    lines = [" ".join(_WORD.findall(l)) for l in lines]
    return "\n".join(l for l in lines if l)


def tokens(norm: str) -> list[str]:
    return norm.split()


# ----------------------------------------------------------------------------- hashing
_FNV = np.uint64(0x100000001B3)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB93FE1A85EC5)
_S33 = np.uint64(33)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S33)
    h = h * _C1
    h = h ^ (h >> _S33)
    h = h * _C2
    return h ^ (h >> _S33)


def token_hashes(toks: list[str]) -> np.ndarray:
    crc = zlib.crc32
    return np.fromiter((crc(t.encode()) for t in toks), dtype=np.uint64, count=len(toks))


def shingle_hashes(th: np.ndarray, k: int = SHINGLE) -> np.ndarray:
    """64-bit hashes of the word k-grams (a text shorter than k is one shingle)."""
    n = len(th)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    m = max(1, n - k + 1)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(min(k, n)):
            h = h * _FNV + th[j:j + m] + _ONE
        return np.unique(_fmix64(h))


def minhash_values(sh: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    a, b = _perms(seed, num_perm)
    if len(sh) == 0:
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    with np.errstate(over="ignore"):
        v = (np.multiply.outer(a, sh) + b[:, None]) >> _S32
    return v.min(axis=1).astype(np.uint32)


# ----------------------------------------------------------------------------- signature
_MAGIC = b"VSG"
_HDR = struct.Struct("<3sBIHHHHIIQ")   # magic, version, seed, shingle, num_perm, lede_perm, lede_tokens,
                                         # n_tokens, n_shingles, fingerprint


@dataclass(frozen=True)
class Signature:
    """Dedup signature of one text.

    ``full``/``lede``: uint32 MinHash values (empty for short texts); ``n_tokens``: normalized
    tokens; ``n_shingles``: distinct shingles (set size, used for containment); ``n_lede``:
    distinct lede shingles; ``fingerprint``: 64-bit hash of the normalized token string (exact
    duplicate / short-text key). ``to_bytes()`` layout (little endian): header
    ``<3sBIHHHHIIQ`` = b"VSG", version, seed, shingle k, num_perm, lede_perm, lede_tokens,
    n_tokens, n_shingles, fingerprint; then ``<I`` n_lede; then full values, then lede values
    (uint32 each).
    """
    n_tokens: int
    n_shingles: int
    n_lede: int
    fingerprint: int
    full: np.ndarray = field(repr=False)
    lede: np.ndarray = field(repr=False)
    seed: int = SEED
    shingle: int = SHINGLE
    lede_tokens: int = LEDE_TOKENS

    @property
    def is_short(self) -> bool:
        return self.n_tokens < SHORT_TOKENS

    def minhash(self) -> LeanMinHash:
        return LeanMinHash(seed=self.seed, hashvalues=self.full, scheme=SCHEME)

    def lede_minhash(self) -> LeanMinHash:
        return LeanMinHash(seed=self.seed + 1, hashvalues=self.lede, scheme=SCHEME)

    def to_bytes(self) -> bytes:
        hdr = _HDR.pack(_MAGIC, SIG_VERSION, self.seed, self.shingle, len(self.full), len(self.lede),
                        self.lede_tokens, self.n_tokens, self.n_shingles, self.fingerprint)
        return (hdr + struct.pack("<I", self.n_lede) + self.full.astype("<u4").tobytes()
                + self.lede.astype("<u4").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> "Signature":
        (magic, ver, seed, k, np_, lp, lt, nt, ns, fp) = _HDR.unpack_from(data, 0)
        if magic != _MAGIC or ver != SIG_VERSION:
            raise ValueError("not a Veille dedup signature (v%d)" % SIG_VERSION)
        off = _HDR.size
        (nl,) = struct.unpack_from("<I", data, off)
        off += 4
        full = np.frombuffer(data, dtype="<u4", count=np_, offset=off).astype(np.uint32)
        off += 4 * np_
        lede = np.frombuffer(data, dtype="<u4", count=lp, offset=off).astype(np.uint32)
        return cls(nt, ns, nl, fp, full, lede, seed, k, lt)

    def __eq__(self, other):
        return isinstance(other, Signature) and self.to_bytes() == other.to_bytes()

    def __hash__(self):
        return hash(self.to_bytes())


def _fingerprint(norm_tokens: list[str]) -> int:
    b = " ".join(norm_tokens).encode()
    return (zlib.crc32(b) << 32) | zlib.adler32(b)


def signature_of_normalized(norm: str, num_perm: int = NUM_PERM, lede_perm: int = LEDE_PERM,
                            shingle: int = SHINGLE, lede_tokens: int = LEDE_TOKENS, seed: int = SEED) -> Signature:
    toks = norm.split()
    fp = _fingerprint(toks)
    if len(toks) < SHORT_TOKENS:
        e = np.zeros(0, dtype=np.uint32)
        return Signature(len(toks), 0, 0, fp, e, e, seed, shingle, lede_tokens)
    th = token_hashes(toks)
    sh = shingle_hashes(th, shingle)
    lsh_ = shingle_hashes(th[:lede_tokens], shingle)
    return Signature(len(toks), len(sh), len(lsh_), fp, minhash_values(sh, num_perm, seed),
                     minhash_values(lsh_, lede_perm, seed + 1), seed, shingle, lede_tokens)


def signature(text: str) -> Signature:
    """Normalize ``text`` and compute its dedup signature."""
    return signature_of_normalized(normalize(text))


# ----------------------------------------------------------------------------- agency credit
_CREDIT = re.compile(
    r"\(\s*(?:afp|reuters|belga|ap|ats)(?:\s*/\s*\w+)*\s*\)|\bavec (?:l')?(?:afp|reuters|belga|agences)\b"
    r"|\bsource\s*:?\s*(?:afp|reuters|belga)\b|©\s*(?:\d{4}\s*)?(?:[\w-]+ avec )?afp\b|agence france[- ]presse"
    r"|^\s*(?:par\s+)?(?:afp|reuters|belga|ap)\s*$|\bpar afp\b|\bmise a jour .* par afp\b", re.M)
_PHOTO = re.compile(r"photo|illustration|archives|credit|image|video")


def agency_credited(text: str) -> bool:
    """True when the text credits a news agency as author/source (AFP, Reuters, Belga, ATS)."""
    if not text:
        return False
    for line in _basic(text).split("\n"):
        if _CREDIT.search(line) and not _PHOTO.search(line):
            return True
    return False


# ----------------------------------------------------------------------------- index
@dataclass
class DocMeta:
    id: str
    outlet: Optional[str] = None
    published: Optional[str] = None      # ISO 8601
    title: Optional[str] = None
    agency_credited: bool = False
    length: int = 0


@dataclass
class Assignment:
    cluster_id: str
    dup_of: Optional[str]
    similarity: Optional[float]
    is_canonical: bool
    canonical_id: str


def _est_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a) if len(a) else 0.0


def _containment(j: float, na: int, nb: int) -> float:
    """|A ∩ B| / min(|A|, |B|) from a Jaccard estimate and the set sizes."""
    if j <= 0 or na == 0 or nb == 0:
        return 0.0
    inter = j * (na + nb) / (1.0 + j)
    return min(1.0, inter / min(na, nb))


class _Doc:
    __slots__ = ("meta", "sig", "cluster", "order")

    def __init__(self, meta, sig, cluster, order):
        self.meta, self.sig, self.cluster, self.order = meta, sig, cluster, order


class StoryIndex:
    """Incremental near-duplicate story clustering.

    threshold: LSH threshold of the full-text index (candidate generation only);
    lede_threshold: LSH threshold of the lede index;
    min_jaccard: verified estimated Jaccard that alone makes a copy;
    min_containment / containment_jaccard: estimated containment of the smaller doc that makes a
        copy when the Jaccard estimate is at least containment_jaccard;
    min_lede: lede-sketch Jaccard making a copy when the smaller doc fits in the lede window
        (brief-in-article) and the full-text containment agrees (>= lede_containment).
    """

    def __init__(self, threshold: float = 0.3, num_perm: int = NUM_PERM, lede_threshold: float = 0.4,
                 lede_perm: int = LEDE_PERM, min_jaccard: float = 0.5, min_containment: float = 0.6,
                 containment_jaccard: float = 0.2, min_lede: float = 0.45, lede_containment: float = 0.5,
                 cluster_prefix: str = "S"):
        self.threshold, self.num_perm, self.lede_threshold, self.lede_perm = threshold, num_perm, lede_threshold, lede_perm
        self.min_jaccard, self.min_containment, self.containment_jaccard = min_jaccard, min_containment, containment_jaccard
        self.min_lede, self.lede_containment = min_lede, lede_containment
        self.cluster_prefix = cluster_prefix
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, hashfunc=_band_key)
        self._lede = MinHashLSH(threshold=lede_threshold, num_perm=lede_perm, hashfunc=_band_key)
        self._docs: dict[str, _Doc] = {}
        self._clusters: dict[str, list[str]] = {}
        self._canon: dict[str, str] = {}
        self._fp: dict[int, str] = {}          # fingerprint -> doc id (first seen)
        self._order = 0
        self._next_cluster = 0
        self._changes: list[tuple[str, str]] = []

    # -- candidates / verification -------------------------------------------------------
    def _similarity(self, s: Signature, o: Signature) -> float:
        """Verified similarity in [0, 1] (0 when not a copy)."""
        if s.is_short or o.is_short:
            return 1.0 if s.fingerprint == o.fingerprint else 0.0
        if s.fingerprint == o.fingerprint:
            return 1.0
        j = _est_jaccard(s.full, o.full)
        if j >= self.min_jaccard:
            return j
        c = _containment(j, s.n_shingles, o.n_shingles)
        if j >= self.containment_jaccard and c >= self.min_containment:
            return c * 0.99
        small = min(s.n_tokens, o.n_tokens)
        if small <= s.lede_tokens and len(s.lede) and len(o.lede):
            jl = _est_jaccard(s.lede, o.lede)
            cl = _containment(jl, s.n_lede, o.n_lede)
            if jl >= self.min_lede and c >= self.lede_containment:
                return min(cl, c) * 0.98
        return 0.0

    def _candidates(self, sig: Signature) -> set[str]:
        if sig.is_short:
            d = self._fp.get(sig.fingerprint)
            return {d} if d else set()
        c = set(self._lsh.query(LeanMinHash(seed=sig.seed, hashvalues=sig.full, scheme=SCHEME)))
        c.update(self._lede.query(LeanMinHash(seed=sig.seed + 1, hashvalues=sig.lede, scheme=SCHEME)))
        d = self._fp.get(sig.fingerprint)
        if d:
            c.add(d)
        return c

    def best_match(self, sig: Signature, exclude: Optional[str] = None) -> tuple[Optional[str], float]:
        best, bsim, border = None, 0.0, None
        for k in self._candidates(sig):
            if k == exclude:
                continue
            doc = self._docs.get(k)
            if doc is None:
                continue
            sim = self._similarity(sig, doc.sig)
            if sim > 0 and (sim > bsim or (sim == bsim and doc.order < border)):
                best, bsim, border = k, sim, doc.order
        return best, bsim

    # -- canonical ---------------------------------------------------------------------------
    @staticmethod
    def _canon_key(d: _Doc):
        m = d.meta
        return (0 if m.agency_credited else 1, m.published or "\uffff", -(m.length or d.sig.n_tokens), d.order)

    def _update_canonical(self, cid: str) -> None:
        ids = self._clusters[cid]
        new = min((self._docs[i] for i in ids), key=self._canon_key).meta.id
        old = self._canon.get(cid)
        if new != old:
            if old is not None and old in self._docs:
                self._changes.append((old, new))
            self._canon[cid] = new

    def canonical_changes(self) -> list[tuple[str, str]]:
        """(previous canonical id, new canonical id) pairs since the last call, oldest first.
        The store sets is_canonical=0 on the first and 1 on the second."""
        ch, self._changes = self._changes, []
        return ch

    # -- mutation ----------------------------------------------------------------------------
    def _new_cluster_id(self) -> str:
        while True:
            self._next_cluster += 1
            cid = "%s%06d" % (self.cluster_prefix, self._next_cluster)
            if cid not in self._clusters:
                return cid

    def _insert(self, meta: DocMeta, sig: Signature, cid: str) -> None:
        self._order += 1
        self._docs[meta.id] = _Doc(meta, sig, cid, self._order)
        self._clusters.setdefault(cid, []).append(meta.id)
        if sig.is_short:
            self._fp.setdefault(sig.fingerprint, meta.id)
        else:
            self._lsh.insert(meta.id, LeanMinHash(seed=sig.seed, hashvalues=sig.full, scheme=SCHEME),
                             check_duplication=False)
            self._lede.insert(meta.id, LeanMinHash(seed=sig.seed + 1, hashvalues=sig.lede, scheme=SCHEME),
                              check_duplication=False)
            self._fp.setdefault(sig.fingerprint, meta.id)

    def _remove(self, doc_id: str) -> _Doc:
        d = self._docs.pop(doc_id)
        if doc_id in self._lsh:
            self._lsh.remove(doc_id)
        if doc_id in self._lede:
            self._lede.remove(doc_id)
        if self._fp.get(d.sig.fingerprint) == doc_id:
            del self._fp[d.sig.fingerprint]
        self._clusters[d.cluster].remove(doc_id)
        return d

    def add(self, meta: DocMeta, sig: Signature) -> Assignment:
        """Assign ``meta.id`` to a story cluster. Re-adding an existing id (re-crawl) keeps it in
        its cluster when it still matches that cluster (or matches nothing else)."""
        old = self._docs.get(meta.id)
        if old is not None:
            old_cid = old.cluster
            self._remove(meta.id)
            best, sim = self.best_match(sig)
            if best is None or self._docs[best].cluster != old_cid:
                # keep its cluster unless it now clearly belongs elsewhere and its old cluster lost it
                same = [k for k in self._clusters[old_cid]]
                if best is None or any(self._similarity(sig, self._docs[k].sig) > 0 for k in same) or not same:
                    cid = old_cid
                    b2 = max(((self._similarity(sig, self._docs[k].sig), k) for k in same), default=(0.0, None))
                    best, sim = (b2[1], b2[0]) if b2[0] > 0 else (None, None)
                else:
                    cid = self._docs[best].cluster
            else:
                cid = old_cid
            self._insert(meta, sig, cid)
            self._docs[meta.id].order = old.order
        else:
            best, sim = self.best_match(sig)
            cid = self._docs[best].cluster if best else self._new_cluster_id()
            if not best:
                sim = None
            self._insert(meta, sig, cid)
        for c in {cid} | ({old.cluster} if old is not None else set()):
            if self._clusters.get(c):
                self._update_canonical(c)
            elif c in self._clusters:
                del self._clusters[c]
                self._canon.pop(c, None)
        canon = self._canon[cid]
        return Assignment(cid, best, None if sim is None else round(float(sim), 4), canon == meta.id, canon)

    # -- queries -----------------------------------------------------------------------------
    def members(self, cluster_id: str) -> list[str]:
        return list(self._clusters.get(cluster_id, []))

    def cluster_of(self, doc_id: str) -> Optional[str]:
        d = self._docs.get(doc_id)
        return d.cluster if d else None

    def canonical(self, cluster_id: str) -> Optional[str]:
        return self._canon.get(cluster_id)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._docs

    @classmethod
    def rebuild(cls, records: Iterable[tuple[DocMeta, bytes, Optional[str]]], **kw) -> "StoryIndex":
        """Rebuild from stored ``(meta, signature bytes, cluster_id)`` records (e.g. the last N
        days, oldest first). Stored cluster ids are kept; records without one are assigned."""
        idx = cls(**kw)
        pending = []
        maxn = 0
        for meta, blob, cid in records:
            sig = blob if isinstance(blob, Signature) else Signature.from_bytes(blob)
            if cid:
                idx._insert(meta, sig, cid)
                m = re.match(re.escape(idx.cluster_prefix) + r"(\d+)$", cid)
                if m:
                    maxn = max(maxn, int(m.group(1)))
            else:
                pending.append((meta, sig))
        idx._next_cluster = max(idx._next_cluster, maxn)
        for cid in idx._clusters:
            idx._update_canonical(cid)
        idx._changes.clear()
        for meta, sig in pending:
            idx.add(meta, sig)
        return idx


def _band_key(b: bytes) -> int:
    # compact LSH bucket key (memory): 64 bits of the band's bytes
    return int.from_bytes(b[:8], "little") ^ (zlib.crc32(b) << 11)


# ----------------------------------------------------------------------------- CLI helper
def cluster_jsonl(lines: Iterable[str], **kw) -> Iterator[dict]:
    """``veille dedup FILE.jsonl``: read {"id","text","title"?,"outlet"?,"published"?} per line,
    cluster in input order with a throwaway index, yield {"id","cluster"} per input line."""
    idx = StoryIndex(**kw)
    for line in lines:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        text = r.get("text") or ""
        meta = DocMeta(id=str(r["id"]), outlet=r.get("outlet"), published=r.get("published"),
                       title=r.get("title"), agency_credited=agency_credited(text), length=len(text))
        a = idx.add(meta, signature(text))
        yield {"id": meta.id, "cluster": a.cluster_id}
