"""German text analysis for lexical search and term matching: normalisation, stop words, Snowball stems,
hyphenated compounds."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_GERMAN

_WORD = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿß]+(?:[-–][0-9A-Za-zÀ-ÖØ-öø-ÿß]+)*")
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "é": "e", "è": "e", "à": "a"})
# Question words and fillers that say nothing about the topic.
_EXTRA_STOPWORDS = {
    "wie", "was", "wer", "wo", "wann", "warum", "wieso", "weshalb", "welche", "welcher", "welches", "welchen",
    "gibt", "geht", "eigentlich", "genau", "mal", "denn", "ja", "also", "äh", "ähm", "bitte", "kann", "können",
    "man", "macht", "machen", "sollte", "sollten", "muss", "müssen", "viel", "viele", "wurde", "wurden",
}
STOPWORDS: frozenset[str] = frozenset(w.translate(_FOLD) for w in set(STOPWORDS_GERMAN) | _EXTRA_STOPWORDS)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("german")


def fold(text: str) -> str:
    """Lowercase, fold umlauts and ß so that 'Strasse' and 'Straße', 'Buero' is not matched but 'Büro'/'Buro' is."""
    text = unicodedata.normalize("NFC", text).lower()
    return text.translate(_FOLD)


def words(text: str) -> list[str]:
    """Surface words; hyphenated compounds yield their parts and the joined form."""
    out: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFC", text)):
        token = match.group(0)
        parts = re.split(r"[-–]", token)
        if len(parts) > 1:
            out.extend(parts)
            out.append("".join(parts))
        else:
            out.append(token)
    return out


def analyze(text: str) -> list[str]:
    """Index/query terms: folded, stop words removed, stemmed. Numbers are kept as they are."""
    folded = [fold(w) for w in words(text)]
    kept = [w for w in folded if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(kept)


def key_terms(text: str) -> set[str]:
    """Content terms of a question (stems), used to check whether an answer really covers it."""
    return set(analyze(text))
