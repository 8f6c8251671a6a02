"""The evidence rerank: the first hits reordered by their best sentence (retriever/answer.py)."""

from __future__ import annotations

from retriever.answer import ExtractiveAnswerer
from retriever.models import SearchHit
from tests.helpers import HashEmbeddings

QUESTION = "Wie viele Stellplätze pro Wohnung verlangt Altenmoor nach der Absenkung?"


def _hit(chunk_id: str, text: str, score: float) -> SearchHit:
    return SearchHit(chunk_id, text, score, {"title": f"Titel {chunk_id}", "type": "article", "source_id": chunk_id})


def _hits() -> list[SearchHit]:
    return [
        _hit("a", "Das Kaufhaus wurde zu Wohnungen umgebaut. Der Lichthof bringt Tageslicht in alle Etagen.", 0.52),
        _hit("b", "Altenmoor verlangt nach der Absenkung nur noch 0,5 Stellplätze pro Wohnung in der Innenstadt.", 0.50),
        _hit("c", "Die Stadt hat den Bebauungsplan geändert, damit im Kerngebiet gewohnt werden darf.", 0.49),
        _hit("d", "Wie viele Stellplätze pro Wohnung verlangt Altenmoor nach der Absenkung? Genau diese Frage.", 0.10),
    ]


def _answerer(depth: int = 3, weight: float = 5.0) -> tuple[ExtractiveAnswerer, HashEmbeddings]:
    embeddings = HashEmbeddings()
    return ExtractiveAnswerer(None, embeddings, rerank_depth=depth, rerank_weight=weight), embeddings  # type: ignore[arg-type]


def test_the_chunk_whose_sentence_answers_moves_up_within_the_depth() -> None:
    answerer, _ = _answerer()
    reranked = answerer.rerank(QUESTION, _hits())
    assert reranked[0].chunk_id == "b"
    assert reranked[3].chunk_id == "d"  # below the depth: never moved, however well it matches
    assert {h.chunk_id for h in reranked[:3]} == {"a", "b", "c"}
    assert all("evidence" in h.metadata for h in reranked[:3]) and "evidence" not in reranked[3].metadata
    assert [h.score for h in reranked if h.chunk_id == "b"] == [0.50]  # scores stay the retrieval scores


def test_switched_off_or_nothing_to_reorder_keeps_the_hits() -> None:
    hits = _hits()
    assert _answerer(depth=0)[0].rerank(QUESTION, hits) == hits
    assert _answerer(weight=0.0)[0].rerank(QUESTION, hits) == hits
    assert _answerer()[0].rerank(QUESTION, hits[:1]) == hits[:1]
    assert _answerer()[0].rerank(QUESTION, []) == []


def test_sentences_are_embedded_once_for_rerank_and_answer() -> None:
    answerer, embeddings = _answerer()
    hits = answerer.rerank(QUESTION, _hits())
    embedded = embeddings.embedded
    answerer.select(QUESTION, hits)  # the answer reads the same chunks: all sentence vectors are cached
    assert embeddings.embedded == embedded
