"""Characteristic terms of groups of texts, shown in readable German surface forms.

Terms are compared as stems (so "Befragung" and "Befragungen" count together) and weighted by class-based TF-IDF
(c-TF-IDF, as in BERTopic): a stem's frequency within a group times log(1 + average group size / its frequency over
all groups). Each stem is shown as the surface word it appears as most often ("Passantenbefragung", not
"passantenbefrag").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from retriever.text import STOPWORDS, fold, stem_words

_WORD = re.compile(r"[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß\-]{2,}")
_SPEAKER = re.compile(r"^[^:\n]{2,60}:\s+", re.M)  # "Petra Lang: " before a transcript line: a name, no topic
_MIN_STEM = 3


class TermCounter:
    """Counts stems per group and remembers which surface word each stem was written as."""

    def __init__(self) -> None:
        self.surfaces: dict[str, Counter[str]] = {}
        self._stem_of: dict[str, str | None] = {}

    def stems(self, text: str) -> list[str]:
        found: list[str] = []
        for word in _WORD.findall(_SPEAKER.sub("", text)):
            word = word.strip("-")
            stem = self._stem_of.get(word, "")
            if stem == "":
                folded = fold(word)
                stem = None if folded in STOPWORDS or len(folded) < 4 else stem_words([folded])[0]
                stem = stem if stem and len(stem) >= _MIN_STEM else None
                self._stem_of[word] = stem
            if stem is not None:
                found.append(stem)
                self.surfaces.setdefault(stem, Counter())[word] += 1
        return found

    def surface(self, stem: str) -> str:
        """The most frequent written form; capitalised forms (German nouns) win ties."""
        forms = self.surfaces.get(stem)
        if not forms:
            return stem
        return max(forms.items(), key=lambda item: (item[1], item[0][:1].isupper(), -len(item[0])))[0]


def class_tfidf(groups: Sequence[Counter[str]]) -> list[dict[str, float]]:
    """c-TF-IDF weight of every stem in every group, times log(1 + groups / groups containing the stem): a word
    that every group uses ("Innenstadt", "Jahr") labels none of them."""
    total: Counter[str] = Counter()
    spread: Counter[str] = Counter()
    for counts in groups:
        total.update(counts)
        spread.update(counts.keys())
    average = sum(total.values()) / max(1, len(groups))
    weights: list[dict[str, float]] = []
    for counts in groups:
        size = sum(counts.values()) or 1
        weights.append({
            stem: (n / size) * math.log(1 + average / total[stem]) * math.log(1 + len(groups) / spread[stem])
            for stem, n in counts.items()
        })
    return weights


def characteristic_terms(
    groups: Sequence[Iterable[str]], top: int = 6, exclude: Iterable[str] = (), min_texts: int = 1
) -> list[list[str]]:
    """For each group of texts, its `top` characteristic terms as surface words (stems in `exclude` left out,
    e.g. the topic's own words). A term must occur in `min_texts` texts of its group: with one text per document,
    2 keeps a single document's names and places from labelling a topic. Only terms mostly written capitalised
    count: German nouns make readable labels, inflected verbs ("festgelegt") do not."""
    counter = TermCounter()
    per_text = [[counter.stems(text) for text in texts] for texts in groups]
    counts = [Counter(stem for stems in texts for stem in stems) for texts in per_text]
    spread = [Counter(stem for stems in texts for stem in set(stems)) for texts in per_text]
    excluded = {stem for text in exclude for stem in counter.stems(text)}
    labels: list[list[str]] = []
    for texts_with, weights in zip(spread, class_tfidf(counts)):
        ranked = sorted(
            (stem for stem in weights
             if stem not in excluded and texts_with[stem] >= min_texts and counter.surface(stem)[:1].isupper()),
            key=lambda stem: (-weights[stem], stem),
        )
        labels.append([counter.surface(stem) for stem in ranked[:top]])
    return labels
