"""German sentence splitting, shared by ingestion (chunks never cut a sentence) and answering (answers are built
from whole sentences)."""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    """
    z b bzw dr ca nr usw etc vgl ggf ggfs u a d h o ä s o prof hr fr st str abs bd bsp bspw
    inkl evtl sog mio mrd tel zzgl zz zzt max min jh jhd jhdt u v m z t i d r i a o g e v mind gem lt
    ebd hrsg geb gest kap ff f jr sen dipl ing univ med phil rer nat techn tsd ausg anm bes betr
    dt engl frz lat allg allgem v chr n chr okt nov dez jan feb mär apr jun jul aug sep sept spez
    vs zb dgl ehem einschl entspr erg evang kath gegr gr kl insb insbes inkl jew jährl mtl tägl wö
    vorm nachm ca rd od stellv stv verh verw vlt vllt zit ziff zus zw nr no tab abb fig vol ed eds
    """.split()
)
MONTHS = frozenset(
    """
    januar jänner februar märz april mai juni juli august september oktober november dezember
    jan feb mär mrz apr jun jul aug sep sept okt nov dez
    """.split()
)

# Function words that start sentences but never follow an ordinal number ("Nr. 5. Das ..." splits).
SENTENCE_STARTERS = frozenset(
    """
    der die das den dem des ein eine einer eines einem einen es er sie wir ich ihr man du dies diese dieser
    dieses diesem diesen dann danach daher deshalb doch auch aber und oder so zudem außerdem somit also damit
    dabei hier heute in im am an auf aus bei mit nach von vor zu zum zur für über unter durch ob wenn wie was
    wer wo als seit bis nun jetzt nicht kein keine alle viele mehr weitere schließlich zunächst zuerst zuletzt
    insgesamt allerdings jedoch trotzdem gleichzeitig mittlerweile inzwischen sowohl
    """.split()
)

# A candidate boundary: sentence punctuation (plus closing quotes/brackets), whitespace, then a plausible start.
_BOUNDARY_RE = re.compile(r"([.!?…]+)([\"'”“»«›)\]]*)(\s+)(?=[\"'„“»«‚(\[]?[A-ZÄÖÜ0-9])")
_TOKEN_BEFORE_RE = re.compile(r"(\S+)$")


def split_sentences(text: str) -> list[str]:
    """Split German text into sentences.

    Does not split after abbreviations ("z. B.", "bzw.", "Dr.", "ca.", "Nr."), single letters/initials, ordinal
    numbers ("18. März", "2. Halbjahr") or inside decimals ("3.5"). Blank lines always separate sentences.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        start = 0
        for m in _BOUNDARY_RE.finditer(paragraph):
            if not _is_boundary(paragraph, m):
                continue
            end = m.end(2)
            piece = paragraph[start:end].strip()
            if piece:
                sentences.append(piece)
            start = m.end(3)
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def _is_boundary(text: str, m: re.Match[str]) -> bool:
    punct = m.group(1)
    if "!" in punct or "?" in punct or "…" in punct or len(punct) > 1:
        return True
    before = _TOKEN_BEFORE_RE.search(text, 0, m.start(1))
    if before is None:
        return True
    token = before.group(1).lstrip("\"'„“»«‚([")
    bare = token.rstrip(".").lower()
    next_word = re.match(r"[\"'„“»«‚(\[]?([\wÄÖÜäöüß]+)", text[m.end(3):])
    nxt = next_word.group(1).lower() if next_word else ""
    if not bare:
        return True
    if "." in bare:  # "z.B", "u.a", "d.h" (the trailing dot is the match) or "3.5"
        return False
    if bare in ABBREVIATIONS:
        return False
    if len(bare) == 1 and bare.isalpha():  # initials, "z. B."
        return False
    if bare.isdigit():
        if len(bare) <= 2:  # ordinals ("18. März", "2. Halbjahr") unless a typical sentence start follows
            return nxt in SENTENCE_STARTERS
        if nxt in MONTHS:  # "2024. März" is unusual; keep it safe
            return False
    return True
