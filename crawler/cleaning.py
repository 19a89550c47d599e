"""Junk-line cleaning for extracted French news articles.

Pure functions on plain strings: no HTML, no Scrapy. Each rule is
conservative: it only matches whole lines that look like page furniture
(bylines, share prompts, related links, paywall notices, photo credits...),
never an ordinary sentence that merely mentions AFP, Google or Twitter.

``clean_paragraphs`` returns the kept lines and a ``removed`` list of
``{"line": ..., "rule": ...}`` records so callers and tests can see why a line
went away.  ``SiteBoilerplate`` learns lines that recur across many articles
of the same outlet (newsletter blurbs, legal notices...) and strips them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable, Sequence

__all__ = [
    "clean_paragraphs",
    "classify_line",
    "normalize_line",
    "same_text",
    "SiteBoilerplate",
]

_WS = re.compile(r"\s+")
# Characters stripped from the edges when comparing a line to the title.
_EDGE = " \t\"'«»“”‘’>›•·*-–—|:.!?…"


def normalize_line(line: str) -> str:
    """Whitespace-collapsed, NFC, non-breaking-space-free version of ``line``."""
    line = unicodedata.normalize("NFC", line).replace("\u00a0", " ").replace("\u202f", " ")
    return _WS.sub(" ", line).strip()


def _key(line: str) -> str:
    """Comparison key: casefolded, quotes/apostrophes unified, edges stripped."""
    s = normalize_line(line).casefold()
    s = s.replace("’", "'").replace("‘", "'").replace("`", "'")
    s = s.replace("“", '"').replace("”", '"')
    s = re.sub(r"\s*([«»:;!?])\s*", r"\1", s)
    return s.strip(_EDGE)


def same_text(a: str | None, b: str | None) -> bool:
    """True when two strings are the same text up to spacing, case and quotes."""
    if not a or not b:
        return False
    ka, kb = _key(a), _key(b)
    return bool(ka) and ka == kb


def _words(line: str) -> int:
    return len(line.split())


def _ends_like_sentence(line: str) -> bool:
    return bool(re.search(r"[.!?…»\"”)]\s*$", line)) and not re.search(
        r"\b[A-Z]\.\s*$", line
    )


# --------------------------------------------------------------------------
# Rule patterns (compiled once).  Each applies to a whole, normalised line.
# --------------------------------------------------------------------------

_I = re.IGNORECASE
_UP = "A-ZÀ-ÖØ-ÞŒ"  # upper-case letters incl. French accents

_PREV_NEXT = re.compile(
    # upper-case footer labels: "PREV <headline>", "NEXT « <headline> »"
    r"^(?:PREV|NEXT|PREVIOUS|PR[ÉE]C[ÉE]DENT|SUIVANT)(?:\s*[:»›>\-–—|]\s*|\s+)\S"
    # "Article précédent : <headline>", "Next article <headline>"
    r"|^(?:(?:Article|Billet|Post) (?:précédent|suivant)|(?:Previous|Next) (?:article|post|story))\b\s*[:»›>\-–—|]?\s*\S"
    # mixed case only with a separator: "Précédent : <headline>" (not "Suivant les ...")
    r"|^(?:Précédent|Suivant|Previous|Next)\s*[:»›>|]\s*\S"
    # the bare link label
    r"|^(?:[«‹<←]\s*)?(?:Précédent|Suivant|PREV|NEXT|Previous|Next|Article (?:précédent|suivant))(?:\s*[»›>→])?$"
)

_GOOGLE_NEWS = re.compile(
    r"^(?:For (?:the )?Latest (?:Updates|News),? )?Follow us on Google News\b"
    r"|^(?:Suivez|Retrouvez|Ajoutez|Abonnez)[-\s]?(?:nous|vous|moi)?\b.{0,80}\bGoogle (?:News|Actualités)\b"
    r"|^(?:Suivez|Suivre) (?:toute )?l['’]actualité\b.{0,60}\bsur Google (?:News|Actualités)\b",
    _I,
)

_SOCIAL_URL = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:twitter\.com|x\.com|instagram\.com|bsky\.app/profile"
    r"|threads\.net|linkedin\.com/in|facebook\.com)/@?[\w.\-]+/?\S*",
    _I,
)
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,30}\b")
_JOB_WORDS = re.compile(
    r"\b(?:journaliste|rédact(?:eur|rice)|reporter|correspondante?|envoyée? spéciale?|"
    r"chef(?:fe)? de rubrique|éditeur|éditrice|journalist|editor|BFMTV|RMC)\b",
    _I,
)
_SOCIAL_WORDS = re.compile(r"\b(?:twitter|x|instagram|bluesky|threads|linkedin|facebook)\b", _I)

# Unambiguous "related article" labels: the whole line is a link teaser.
_RELATED = re.compile(
    r"^(?:[ÀA] lire (?:aussi|également|ensuite|sur le même sujet)|Lire (?:aussi|également|la suite)"
    r"|LIRE (?:AUSSI|ÉGALEMENT|LA SUITE)|[ÀA] LIRE(?: AUSSI| ÉGALEMENT)?"
    r"|[ÀA] voir (?:aussi|également)|Voir (?:aussi|également)|[ÀA] (?:découvrir|écouter|regarder) (?:aussi|également)"
    r"|[ÀA] VOIR(?: AUSSI)?|Read (?:more|also)|See also)\b"
)
# Labels that could also open a real sentence ("Pour aller plus loin, le ...")
# only count when the line is the label alone or label + separator + headline.
_RELATED_WEAK = re.compile(
    r"^(?:Sur le même (?:sujet|thème)|Dans la même rubrique|Nos articles sur .{1,60}|Retrouvez (?:notre|nos|tous nos) (?:dossier|articles?)\b.{0,60}"
    r"|Pour aller plus loin|En savoir plus|Related(?: articles?| stories)?|Articles? (?:liés?|associés?)|Les plus lus|Les articles les plus lus)"
    r"(?:\s*[:>»›|\-–—]\s*\S.*)?$"
)
# Section-kicker prefixes ("VIDÉO - ", "EN IMAGES - ") only count as related
# links when a dash/colon follows and the line is a short headline.
_KICKER_ONLY = re.compile(
    r"^(?:VID[ÉE]O|EN IMAGES|PHOTOS?|INFOGRAPHIE|PODCAST|AUDIO|REPLAY|DIRECT|LIVE|ENTRETIEN|GRAND FORMAT|"
    r"D[ÉE]CRYPTAGE|TRIBUNE|ANALYSE|R[ÉE]CIT|REPORTAGE|ENQU[ÊE]TE|INTERVIEW|CHRONIQUE|[ÉE]DITO|EXCLUSIF|"
    r"T[ÉE]MOIGNAGE|PORTRAIT|INFO [A-Z0-9]+|VRAI OU FAUX|CARTE|QUIZ|FACT-CHECK|[ÉE]DITORIAL)\b"
)
# ">" / "►" before a headline marks a teaser link ("> A Milwaukee, JD Vance ...").
# "»" and "›" are left alone: sites also use them as bullets or heading marks.
_LINK_MARKER = re.compile(r"^(?:>|→|⇒|►|▶)\s*\S")

_SHARE = re.compile(
    r"^(?:Partager(?: (?:cet article|sur \w+|l['’]article|par e-?mail))?|Partagez(?: cet article| sur \w+)?"
    r"|Tweeter|Twitter|Facebook|WhatsApp|Linkedin|Messenger|E-?mail|Copier le lien|Lien copié|Imprimer|Envoyer(?: par e-?mail)?"
    r"|Ajouter (?:à|aux) (?:mes|vos) (?:favoris|articles)|Sauvegarder(?: cet article)?|Commenter|Réagir|\d+ commentaires?"
    r"|Abonnez[-\s]vous\b.*|S['’]abonner\b.*|Je m['’]abonne\b.*|Déjà abonné\b.*|Offre (?:spéciale|d['’]abonnement)\b.*"
    r"|Inscrivez[-\s]vous\b.*(?:newsletter|lettre|alerte|gratuit).*|(?:Recevez|Découvrez|Retrouvez) (?:gratuitement |chaque \w+ )?(?:notre|nos|la) (?:newsletter|lettre)\b.*"
    r"|(?:La |Notre )?Newsletter\b.{0,80}|S['’]inscrire(?: à la newsletter)?.*"
    r"|Suivez[-\s]nous(?: sur)?\b.{0,60}|Télécharge[rz] (?:l['’]application|notre application)\b.*"
    r"|(?:Nouveau\s*:\s*)?(?:Découvrez|Je découvre|Profitez de) (?:nos|les) offres\b.{0,60}"
    r"|Share(?: this article)?|Subscribe\b.{0,60}|Sign up\b.{0,80})$",
    _I,
)

_ADVERT = re.compile(
    r"^(?:Passer la publicité|Publicité|PUBLICITÉ|Pub|Advertisement|Annonce|Contenu sponsorisé|Sponsorisé"
    r"|La suite après (?:cette |la )?publicité|Article (?:suivant|continue) après (?:la |cette )?publicité)\.?$",
    _I,
)

_PAYWALL = re.compile(
    r"^(?:Il vous reste \d+(?:[.,]\d+)?\s*% de cet article à lire"
    r"|La suite (?:de cet article )?est réservée aux abonnés"
    r"|(?:Cet )?[Aa]rticle réservé aux abonnés"
    r"|(?:Contenu |Article )?[Rr]éservé (?:aux|à nos) abonnés"
    r"|Article abonnés?$|Abonnés$"
    r"|Vous avez lu \d+(?:[.,]\d+)?\s*% de (?:cet|l['’]) article"
    r"|Cet article est réservé aux abonnés"
    r"|Pour lire la suite(?: de cet article)?,? (?:abonnez|connectez|inscrivez)"
    r"|(?:Déjà abonné|Vous êtes abonné)\s*\?)",
    _I,
)

_CONNECT = r"(?:et|&|avec|,|de|du|des|d['’]|la|le|les|l['’]|pour|à|au|aux|von|van|el|al|da|di|y)"
_NAME = rf"(?:[{_UP}][\w'’.\-]*|[{_UP}]\.)"
_BYLINE = re.compile(
    rf"^(?:Par|PAR|By|Propos recueillis par|(?:Article )?[Rr]édigé par|[ÉE]crit par|Texte(?: et photos)?\s*:?)\s+{_NAME}(?:\s*(?:{_CONNECT}\s*)*{_NAME})*"
    rf"(?:\s*[,(\-–—|]\s*(?:envoyée? spéciale?|correspondante?|avec (?:AFP|Reuters|AP)|AFP|Reuters|AP|pour [\w .'’-]+|à [{_UP}][\w'’ -]+)\)?)*"
    r"(?:\s*(?:Publié|Mis à jour|Modifié|Le \d).*)?\s*$"
)
_DATE_LABEL = re.compile(r"^(?:Publié|Mis à jour|Mise à jour|Modifié|Actualisé|Updated|Published)\b", _I)
_DATE_WORDS = {
    "le", "la", "l'", "à", "a", "il", "y", "et", "h", "min", "mn", "heures", "heure", "depuis", "aujourd'hui", "hier",
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    "janvier", "février", "fevrier", "mars", "avril", "mai", "juin", "juillet", "août", "aout", "septembre",
    "octobre", "novembre", "décembre", "decembre", "janv", "févr", "fév", "avr", "juil", "sept", "oct", "nov", "déc",
    "publié", "mis", "mise", "jour", "modifié", "actualisé", "updated", "published", "on", "at", "cet", "sur",
}


def _is_dateline(line: str) -> bool:
    if _DATELINE.match(line):
        return True
    if _words(line) > 20 or not _DATE_LABEL.match(line) or not re.search(r"\d", line):
        return False
    for tok in re.split(r"[\s,|·•:/()\-–—]+", line.casefold()):
        tok = tok.strip(".'’")
        if tok and not re.search(r"\d", tok) and tok not in _DATE_WORDS:
            return False
    return True


_DATELINE = re.compile(
    r"^Temps de lecture\s*:?\s*\d+\s*min(?:utes?)?\.?$"
    r"|^Lecture\s*:?\s*\d+\s*min\.?$"
    r"|^\d+\s*min(?:utes?)?\s+de lecture\.?$",
    _I,
)

_AGENCIES = (
    r"AFP|Reuters|REUTERS|AP|Associated Press|ANP|EPA|DPA|Getty(?: Images)?|GETTY IMAGES|Shutterstock|SIPA|Sipa"
    r"|Abaca|ABACA|MAXPPP|Maxppp|Hans Lucas|Hans LUCAS|PHOTOPQR|IP3|Belga|BELGA|AA|Anadolu|Xinhua|Wikimedia Commons"
    r"|Le Figaro|Le Monde|Euronews|BFMTV|LP|Leemage|Alamy|DR|Photononstop|EFE|ANSA|TASS|Ria Novosti|Pool|POOL|BELGA/AFP"
)
_CAPNAME = rf"[{_UP}][\w'’.\-]*"
_CREDIT_TAIL = re.compile(
    # "... - SAUL LOEB / AFP", "... 2023. LUDOVIC MARIN / AFP", "(Photo by Ludovic MARIN / AFP)",
    # "© Jim Watson / AFP": capitalised names, a slash, an agency, at the very end.
    rf"(?:^|\s[-–—|]\s|[.,;]\s+|\(\s*|©\s*|\s)"
    rf"(?:(?:Photos?|Crédits?(?: photos?)?|Illustration|Image)\s*(?:by|par|:)?\s*)?"
    rf"(?:{_CAPNAME}\s+){{0,4}}{_CAPNAME}\s*/\s*(?:[\w .'’\-]+/\s*)?(?:{_AGENCIES})\b[^\s]*\s*\)?\.?\s*$"
    # "... mercredi. REUTERS/Gleb Garanich": agency first, then the photographer.
    rf"|(?:^|[.,;]\s+|\s[-–—|]\s|\(\s*)(?:REUTERS|Reuters|AFP|AP|EPA|SIPA|Sipa(?: Press)?|Getty Images|ABACA|MAXPPP|Belga|BELGA)"
    rf"\s*/\s*(?:{_CAPNAME}\s*){{1,4}}\)?\.?$"
)
_CREDIT_AFTER_STOP = re.compile(
    # "... près de Bakhmout. Sipa Press", "Illustration. Getty Images"
    r"[.]\s+(?:AFP|Reuters|REUTERS|AP|Getty Images|GETTY IMAGES|Sipa Press|SIPA|Shutterstock|ABACA|Abaca|MAXPPP|Maxppp|Belga|BELGA|EPA|DPA)\.?$"
)
_CREDIT_LINE = re.compile(
    rf"^(?:©|\(c\)|Crédits?(?: photos?)?\s*:|Photo\s*:|Photos\s*:|Illustration\s*:|Image\s*:|Source(?: photo)?\s*:)\s*\S.{{0,120}}$"
    rf"|.{{0,300}}©\s*[\w .'’/\-]{{2,60}}$"
    r"|^(?:AFP|Reuters|REUTERS|AP|Getty Images|Shutterstock|SIPA|Abaca|ABACA|MAXPPP|Belga|BELGA|EPA|DPA)$",
    _I,
)


_CONSENT = re.compile(
    r"^(?:Ce contenu (?:est bloqué|n['’]est pas (?:disponible|accessible))|Pour (?:afficher|voir|accéder à) ce contenu"
    r"|Vous avez (?:refusé|désactivé)|En cliquant sur|Contenu (?:indisponible|bloqué)|Ce contenu provient de"
    r"|Pour (?:afficher|lire) (?:cette|la) vidéo|Cette vidéo (?:est bloquée|n['’]est pas disponible)"
    r"|Accepter (?:les cookies|et (?:fermer|continuer))|Gérer mes (?:choix|cookies)|Paramétrer les cookies)\b",
    _I,
)
_SOCIAL_EMBED = re.compile(
    r"^[—–-]\s*[^\n]{1,80}\(@\w{1,30}\)\s+\S+ \d{1,2},? \d{4}$"  # "— Name (@handle) November 20, 2024"
    r"|^pic\.twitter\.com/\w+$"
    r"|^(?:Voir cette publication sur Instagram|Une publication partagée par .{1,80}|View this post on Instagram)$",
    _I,
)
_UI_PROMPT = re.compile(
    r"^(?:Afficher (?:plus|la suite)|Voir plus|Charger plus|Voir les commentaires|\d+ réactions?|Réagissez à cet article"
    r"|[ÉE]couter (?:cet |l['’])article|Cet article vous a plu\s*\?|Signaler (?:une erreur|un abus)|Retour en haut(?: de la page)?"
    r"|Votre navigateur ne (?:supporte|permet) pas.{0,100}|Offre limitée.{0,60}"
    r"|Tous droits réservés|Mots[- ]clés\s*:.{0,120}|Sujets? associés?|Thèmes? associés?)\.?$",
    _I,
)
_AGENCY_LINE = re.compile(
    # "(Avec AFP)" sign-offs are part of the article text (wire-copy marker): kept.
    r"^(?:Photo d['’]illustration|\(Illustration\)|Illustration)\.?$",
    _I,
)


def _is_consent_placeholder(line: str) -> bool:
    """Embed placeholders: "Ce contenu est bloqué car vous n'avez pas accepté les cookies..."."""
    if not _CONSENT.match(line):
        return False
    words = _words(line)
    if re.search(r"cookies?|traceurs|consentement", line, _I):
        return words <= 60
    return words <= 12 and not _ends_like_sentence(line)


def _is_credit_caption(line: str) -> bool:
    if _CREDIT_LINE.match(line):
        return _words(line) <= 60
    # A sentence ending "... transmis à l'AFP." never matches: the agency must
    # follow a slash after capitalised names, or stand alone after a full stop.
    words = _words(line)
    if words <= 40 and _CREDIT_TAIL.search(line):
        return True
    return words <= 25 and bool(_CREDIT_AFTER_STOP.search(line))


def _is_social_byline(line: str) -> bool:
    words = _words(line)
    if _SOCIAL_URL.match(line):
        rest = _SOCIAL_URL.sub("", line, count=1).strip()
        return _words(rest) <= 12
    if words <= 10 and _HANDLE.search(line):
        # "Hugo Septier @Hugo_Septier", "@handle Journaliste BFMTV",
        # "Suivez-moi sur X : @handle" — but not a sentence quoting a handle.
        without = _HANDLE.sub("", line).strip(" -–—|:·•,")
        if not without:
            return True
        if re.match(r"^(?:Suivez[-\s](?:moi|nous|le|la)|Follow(?: me| us)?)\b", without, _I):
            return True
        if _JOB_WORDS.search(without) or _SOCIAL_WORDS.fullmatch(without.strip()):
            return True
        caps = [w for w in without.split() if w[:1].isupper()]
        return len(caps) == len(without.split()) and len(caps) <= 4
    return False


def _is_related(line: str) -> bool:
    words = _words(line)
    if words > 40:
        return False
    if _LINK_MARKER.match(line):
        # "> Europe : les ventes ..." teaser links; not "» Le fil des événements :"
        # (a heading, ending with a colon) and not a quoted sentence.
        return not line.rstrip().endswith(":") and not _ends_like_sentence(line)
    if _RELATED.match(line) or _RELATED_WEAK.match(line):
        return True
    if _KICKER_ONLY.match(line):
        # "VIDÉO - Titre" / "EN IMAGES. Titre": a short headline after a
        # separator, not a sentence (a lead like "ENTRETIEN - X explique ... ." stays).
        return (
            bool(re.match(r"^\S+(?: \S+)?\s*[-–—:.>»|]\s*\S", line))
            and words <= 25
            and not _ends_like_sentence(line)
        )
    return False


_ROLE_BYLINE = re.compile(
    rf"^{_NAME}(?:[ \-]{_NAME}){{1,3}}\s*[,\-–—|·•]?\s*"
    r"(?:Journaliste|Rédact(?:eur|rice)(?: en chef)?|Reporter|Correspondante?|Envoyée? spéciale?|Chef(?:fe)? de (?:rubrique|service)|"
    r"Grand reporter|Éditorialiste|Chroniqueu(?:r|se))\b.{0,40}$"
)
_BYLINE_SEP = " ,;&|·•-–—/:"


def _strip_authors(line: str, authors: Sequence[str]) -> tuple[int, str]:
    """Remove leading author names (and connectors) from ``line``'s key."""
    rest = re.sub(r"^(?:par|by)\s+", "", _key(line))
    keys = sorted({_key(a) for a in authors if a and _key(a)}, key=len, reverse=True)
    found = 0
    while True:
        rest = rest.lstrip(_BYLINE_SEP)
        rest = re.sub(r"^(?:et|and|avec)\s+", "", rest)
        for k in keys:
            if rest.startswith(k) and (len(rest) == len(k) or not rest[len(k)].isalnum()):
                rest = rest[len(k):]
                found += 1
                break
        else:
            return found, rest.strip(_BYLINE_SEP)


def _is_byline(line: str, authors: Sequence[str] = ()) -> bool:
    if _words(line) > 16:
        return False
    if _BYLINE.match(line) or (_ROLE_BYLINE.match(line) and not _ends_like_sentence(line)):
        return True
    if not authors:
        return False
    found, rest = _strip_authors(line, authors)
    if not found:
        return False
    # "Hugo Septier Journaliste BFMTV", "Karim Haddad, Paul Martin - France Télévisions",
    # "Sophie Lefèvre · Publié le 17/10/24 à 23h40": names + a short tail.
    return not rest or (_words(rest) <= 6 and not _ends_like_sentence(rest)) or _is_dateline(rest)


Rule = tuple[str, Callable[[str], bool]]

_RULES: list[Rule] = [
    ("prev-next", lambda s: _words(s) <= 60 and bool(_PREV_NEXT.match(s))),
    ("google-news", lambda s: _words(s) <= 25 and bool(_GOOGLE_NEWS.match(s))),
    ("social-byline", _is_social_byline),
    ("advertising", lambda s: bool(_ADVERT.match(s))),
    ("paywall", lambda s: _words(s) <= 40 and bool(_PAYWALL.match(s))),
    ("consent-placeholder", _is_consent_placeholder),
    ("social-embed", lambda s: bool(_SOCIAL_EMBED.match(s))),
    ("ui-prompt", lambda s: bool(_UI_PROMPT.match(s))),
    ("related-link", _is_related),
    ("share-subscribe", lambda s: _words(s) <= 25 and bool(_SHARE.match(s))),
    ("dateline", _is_dateline),
    ("photo-credit", lambda s: _is_credit_caption(s) or bool(_AGENCY_LINE.match(s))),
]


def classify_line(line: str, *, title: str | None = None, authors: Sequence[str] = ()) -> str | None:
    """Name of the first junk rule matching ``line``, or ``None`` if it is kept."""
    s = normalize_line(line)
    if not s:
        return "empty"
    if title and same_text(s, title):
        return "title-repeat"
    for name, test in _RULES:
        if test(s):
            return name
    if _is_byline(s, authors):
        return "byline"
    return None


def _compile_extra(patterns: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for p in patterns:
        if not p:
            continue
        try:
            out.append((p, re.compile(p, re.IGNORECASE)))
        except re.error as exc:  # a broken config pattern must not kill extraction
            raise ValueError(f"invalid junk pattern {p!r}: {exc}") from exc
    return out


def clean_paragraphs(
    paragraphs: list[str],
    *,
    title: str | None = None,
    extra_patterns: Sequence[str] = (),
    authors: Sequence[str] = (),
) -> tuple[list[str], list[dict]]:
    """Drop junk lines from ``paragraphs``.

    Returns ``(kept, removed)`` where ``removed`` is a list of
    ``{"line": original_line, "rule": rule_name}``.  ``extra_patterns`` are
    per-source regular expressions (searched, case-insensitive) from config;
    they are reported as rule ``"extra:<pattern>"``.
    """
    extra = _compile_extra(extra_patterns)
    kept: list[str] = []
    removed: list[dict] = []
    lines = [normalize_line(p) for p in paragraphs]
    for i, line in enumerate(lines):
        if not line:
            continue
        rule = classify_line(line, title=title, authors=authors)
        if rule is None:
            for pat, rx in extra:
                if rx.search(line):
                    rule = f"extra:{pat}"
                    break
        nxt = next((l for l in lines[i + 1 :] if l), "")
        if rule is None and nxt and _is_caption_of(line, nxt):
            # "Joe Biden ... à Washington" followed by the same caption with a credit.
            rule = "photo-caption"
        if rule == "empty":
            continue
        if rule:
            removed.append({"line": paragraphs[i], "rule": rule})
        else:
            kept.append(line)
    return kept, removed


def _is_caption_of(line: str, nxt: str) -> bool:
    """True when ``nxt`` is ``line`` plus a photo credit (caption printed twice)."""
    if len(line) < 10 or not nxt.startswith(line) or len(nxt) <= len(line):
        return False
    return _is_credit_caption(nxt)


# --------------------------------------------------------------------------
# Site-level boilerplate
# --------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _bp_key(line: str) -> str:
    return _DIGITS.sub("0", _key(line))


class SiteBoilerplate:
    """Lines that recur across an outlet's articles (learned, persisted as JSON).

    ``counts`` layout (what ``to_dict`` returns)::

        {"min_docs": 5, "min_share": 0.3,
         "outlets": {"lemonde": {"docs": 12, "lines": {"<normalised line>": 7, ...}}}}

    Each distinct normalised line is counted at most once per observed article.
    A line is boilerplate for an outlet once it appeared in at least
    ``min_docs`` articles and in at least ``min_share`` of them.
    """

    MAX_LINES_PER_OUTLET = 20000

    def __init__(self, counts: dict | None = None, *, min_docs: int = 5, min_share: float = 0.3):
        self.min_docs = int(min_docs)
        self.min_share = float(min_share)
        self.outlets: dict[str, dict] = {}
        if counts:
            outlets = counts.get("outlets", counts)
            for name, data in outlets.items():
                if not isinstance(data, dict):
                    continue
                self.outlets[name] = {
                    "docs": int(data.get("docs", 0)),
                    "lines": {str(k): int(v) for k, v in dict(data.get("lines", {})).items()},
                }

    def observe(self, outlet: str, lines: Iterable[str]) -> None:
        data = self.outlets.setdefault(outlet, {"docs": 0, "lines": {}})
        data["docs"] += 1
        counts = data["lines"]
        for key in {_bp_key(l) for l in lines if l and l.strip()}:
            if key:
                counts[key] = counts.get(key, 0) + 1
        if len(counts) > self.MAX_LINES_PER_OUTLET:
            # forget lines seen only once so the store stays bounded
            for k in [k for k, v in counts.items() if v <= 1]:
                del counts[k]

    def is_boilerplate(self, outlet: str, line: str) -> bool:
        data = self.outlets.get(outlet)
        if not data or data["docs"] <= 0:
            return False
        n = data["lines"].get(_bp_key(line), 0)
        return n >= self.min_docs and n / data["docs"] >= self.min_share

    def strip(self, outlet: str, lines: list[str]) -> tuple[list[str], list[dict]]:
        kept, removed = [], []
        for line in lines:
            if self.is_boilerplate(outlet, line):
                removed.append({"line": line, "rule": "site-boilerplate"})
            else:
                kept.append(line)
        return kept, removed

    def to_dict(self) -> dict:
        return {
            "min_docs": self.min_docs,
            "min_share": self.min_share,
            "outlets": {
                name: {"docs": d["docs"], "lines": dict(d["lines"])} for name, d in self.outlets.items()
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SiteBoilerplate":
        d = d or {}
        return cls(d, min_docs=d.get("min_docs", 5), min_share=d.get("min_share", 0.3))
