"""German text analysis for lexical search and term matching: normalisation (case, umlauts, ß), stop words,
Snowball stems, numbers, hyphenated words and closed compounds.

- Umlauts and ß are folded ("Straße" = "Strasse", "Büro" = "Buro"), accents dropped.
- Hyphenated words yield their parts and the joined form ("E-Scooter-Verleih" → e, scooter, verleih,
  escooterverleih), so "Scooterverleih" and "Scooter" both match.
- Numbers: German thousands separators are removed ("1.214" = "1214"), decimals keep their comma ("3,5"; "3.5" is
  read as "3,5" too), dates and other dotted numbers give their parts ("15.09.2022" → 15, 09, 2022).
- Closed compounds ("Passantenbefragung") are split against a vocabulary (the index's own words) by
  `Decompounder`: the parts are added beside the whole word, so "Befragung" finds "Passantenbefragung" and
  "Geschäftsübergaben" finds "Übergaben". Measured in bench/compare.py (see bench/README.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable
from functools import lru_cache

import Stemmer


def _bm25s_german_stopwords() -> tuple[str, ...]:
    """bm25s's German stop word list, read from its module file: importing `bm25s.stopwords` would run bm25s's
    package init (scipy), which costs server start time for a list of words."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("bm25s")
    if spec is None or not spec.submodule_search_locations:
        from bm25s.stopwords import STOPWORDS_GERMAN

        return tuple(STOPWORDS_GERMAN)
    location = Path(next(iter(spec.submodule_search_locations))) / "stopwords.py"
    module_spec = importlib.util.spec_from_file_location("_bm25s_stopwords", location)
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return tuple(module.STOPWORDS_GERMAN)


STOPWORDS_GERMAN = _bm25s_german_stopwords()

_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿß"
_NUMBER = r"\d+(?:[.,]\d+)*"
_WORD_PART = rf"[0-9{_LETTERS}]+"
_TOKEN = re.compile(rf"{_NUMBER}(?![{_LETTERS}\d])|{_WORD_PART}(?:[-–]{_WORD_PART})*")
_NUMBER_RE = re.compile(_NUMBER)
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")
_HYPHEN = re.compile(r"[-–]")
_FOLD_PAIRS = (("ä", "a"), ("ö", "o"), ("ü", "u"), ("ß", "ss"), ("é", "e"), ("è", "e"), ("ê", "e"), ("à", "a"),
               ("á", "a"), ("â", "a"), ("ç", "c"), ("ñ", "n"), ("ó", "o"), ("ò", "o"), ("ô", "o"), ("í", "i"),
               ("ì", "i"), ("ú", "u"))
_FOLD = str.maketrans(dict(_FOLD_PAIRS))
# Question words and fillers that say nothing about the topic.
_EXTRA_STOPWORDS = {
    "wie", "was", "wer", "wo", "wann", "warum", "wieso", "weshalb", "welche", "welcher", "welches", "welchen",
    "gibt", "geht", "eigentlich", "genau", "mal", "denn", "ja", "also", "äh", "ähm", "bitte", "kann", "können",
    "man", "macht", "machen", "sollte", "sollten", "muss", "müssen", "viel", "viele", "wurde", "wurden",
}
STOPWORDS: frozenset[str] = frozenset(w.translate(_FOLD) for w in set(STOPWORDS_GERMAN) | _EXTRA_STOPWORDS)

# Linking elements (Fugenelemente) tried between compound parts, most specific first.
_LINKS = ("s", "es", "n", "en", "e", "")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("german")


def fold(text: str) -> str:
    """Lowercase, fold umlauts and ß so that 'Strasse' and 'Straße', 'Büro' and 'Buro' match ('Buero' does not)."""
    text = unicodedata.normalize("NFC", text).lower()
    if text.isascii():
        return text
    for source, target in _FOLD_PAIRS:  # str.replace per character is much faster than str.translate
        if source in text:
            text = text.replace(source, target)
    return text


def _number_terms(token: str) -> list[str]:
    if _THOUSANDS.fullmatch(token):
        return [token.replace(".", "")]
    separators = sum(1 for ch in token if ch in ".,")
    if separators == 1:
        return [token.replace(".", ",")]
    return [part for part in re.split(r"[.,]", token) if part]


def _expand_token(token: str, out: list[str]) -> None:
    """Append the words of one token: numbers normalised, hyphenated words as parts plus the joined form."""
    if token[0].isdigit() and _NUMBER_RE.fullmatch(token):
        out.extend(_number_terms(token))
        return
    parts = [part for part in _HYPHEN.split(token) if part]
    if len(parts) > 1:
        out.extend(parts)
        out.append("".join(parts))
    else:
        out.append(token)


def words(text: str) -> list[str]:
    """Surface words; hyphenated words yield their parts and the joined form, numbers are normalised."""
    out: list[str] = []
    for token in _TOKEN.findall(unicodedata.normalize("NFC", text)):
        _expand_token(token, out)
    return out


def content_words(text: str) -> list[str]:
    """Folded words without stop words and single letters (numbers stay): what gets stemmed and indexed."""
    out: list[str] = []
    stop = STOPWORDS
    for token in _TOKEN.findall(fold(text)):
        if token.isalpha():  # fast path: a plain word
            if len(token) > 1 and token not in stop:
                out.append(token)
            continue
        expanded: list[str] = []
        _expand_token(token, expanded)
        out.extend(w for w in expanded if w not in stop and (len(w) > 1 or w.isdigit()))
    return out


class Decompounder:
    """Splits closed compounds into parts that are themselves words of a vocabulary.

    A word of at least `2 * min_part` letters is split at the longest known head (allowing a linking element
    s/es/n/en/e) whose rest is a known word or again a compound (at most three parts). With `unknown_heads`, a
    word whose tail (the compound's head word, "Befragung" in "Passantenbefragung") is known is split even if its
    first part occurs only inside compounds. Only alphabetic words; parts shorter than `min_part` are never used,
    so "Verleih" does not become "Ver" + "leih".
    """

    def __init__(self, vocabulary: Collection[str], min_part: int = 4, unknown_heads: bool = False) -> None:
        self.vocabulary = vocabulary
        self.min_part = min_part
        self.unknown_heads = unknown_heads
        self._memo: dict[str, tuple[str, ...]] = {}

    def split(self, word: str) -> tuple[str, ...]:
        """The parts of `word` (empty if it is no compound of known words)."""
        cached = self._memo.get(word)
        if cached is None:
            cached = ()
            if len(word) >= 2 * self.min_part and word.isalpha():
                cached = tuple(self._split(word, 2) or ())
            self._memo[word] = cached
        return cached

    def _split(self, word: str, depth: int) -> list[str] | None:
        n, shortest = len(word), self.min_part
        fallback: list[str] | None = None
        for cut in range(n - shortest, shortest - 1, -1):
            head = word[:cut]
            if head not in self.vocabulary:
                continue
            for link in _LINKS:
                start = cut + len(link)
                if n - start < shortest or (link and not word.startswith(link, cut)):
                    continue
                tail = word[start:]
                if tail in self.vocabulary:
                    return [head, tail]
                if depth > 0 and fallback is None and len(tail) >= 2 * shortest:
                    rest = self._split(tail, depth - 1)
                    if rest:
                        fallback = [head, *rest]
        if fallback is None and self.unknown_heads:
            for cut in range(shortest + 1, n - shortest):  # longest known tail first
                tail = word[cut:]
                if tail in self.vocabulary and len(tail) > shortest:
                    return [word[:cut], tail]
        return fallback


def expand_compounds(folded: Iterable[str], decompounder: Decompounder | None) -> list[str]:
    """The words followed by the parts of those that are compounds."""
    out: list[str] = []
    for word in folded:
        out.append(word)
        if decompounder is not None:
            out.extend(part for part in decompounder.split(word) if part not in STOPWORDS)
    return out


def stem_words(folded: list[str]) -> list[str]:
    return _stemmer().stemWords(folded)


def analyze(text: str, decompounder: Decompounder | None = None) -> list[str]:
    """Index/query terms: folded, stop words removed, (compounds split,) stemmed. Numbers are kept as they are."""
    return stem_words(expand_compounds(content_words(text), decompounder))


def key_terms(text: str) -> set[str]:
    """Content terms of a question (stems), used to check whether an answer really covers it."""
    return set(analyze(text))


Analyzer = Callable[[str], list[str]]
