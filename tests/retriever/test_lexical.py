"""German analysis and the BM25 index: umlauts, hyphens, numbers, compounds, filters, incremental sync."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from retriever.lexical import LexicalIndex
from retriever.models import SearchFilters
from retriever.text import Decompounder, analyze, content_words, fold, words
from core.settings import Settings
from core.store import ChunkStore
from tests.helpers import HashEmbeddings

# --------------------------------------------------------------------------------------------------------------
# Analyzer


def test_umlauts_and_sharp_s_fold() -> None:
    assert fold("Straße Büro ÄRGER") == "strasse buro arger"
    assert analyze("Straße") == analyze("Strasse")
    assert analyze("Bürgerbüro") == analyze("Burgerburo")


def test_stop_and_question_words_are_dropped() -> None:
    assert analyze("Wie viele sind es denn eigentlich?") == []
    assert analyze("Was kostet das WLAN?") == analyze("kostet WLAN")


def test_hyphenated_words_give_parts_and_joined_form() -> None:
    terms = analyze("E-Scooter-Verleih")
    assert analyze("Verleih")[0] in terms
    assert analyze("Scooter")[0] in terms
    assert analyze("EScooterVerleih")[0] in terms


def test_numbers_are_normalised() -> None:
    assert analyze("1.214 Interviews")[0] == "1214" == analyze("1214")[0]
    assert "3,5" in analyze("3,5 Prozent") and "3,5" in analyze("3.5 Prozent")
    assert words("am 15.09.2022") == ["am", "15", "09", "2022"]
    assert "2,3" in analyze("im Schnitt 2,3-mal im Monat")


def test_decompounder_splits_against_the_vocabulary() -> None:
    vocabulary = {"passanten", "befragung", "strassen", "umfrage", "geschafts", "ubergaben", "stadt", "fest"}
    splitter = Decompounder(vocabulary, min_part=4)
    assert splitter.split("passantenbefragung") == ("passanten", "befragung")
    assert splitter.split("strassenumfrage") == ("strassen", "umfrage")
    assert splitter.split("befragung") == ()  # a known word that is no compound
    assert splitter.split("stadtfest") == ("stadt", "fest")
    assert splitter.split("verleih") == ()  # too short to hold two parts of four letters
    assert splitter.split("unbekanntwort") == ()


def test_compound_parts_are_added_beside_the_whole_word() -> None:
    splitter = Decompounder({"passanten", "befragung"})
    terms = analyze("Passantenbefragung", splitter)
    assert analyze("Passantenbefragung")[0] in terms
    assert analyze("Befragung")[0] in terms and analyze("Passanten")[0] in terms


def test_content_words_keep_numbers_and_drop_single_letters() -> None:
    assert content_words("a 5 Euro") == ["5", "euro"]


# --------------------------------------------------------------------------------------------------------------
# Index over a real (embedded) Chroma store


def _chunk(source: str, index: int, text: str, type_: str = "article", phase: str = "E", date: int = 20240101):
    chunk_id = hashlib.sha256(f"{source}{index}{text}".encode()).hexdigest()[:32]
    meta = {
        "source_id": source, "chunk_index": index, "title": source.title(), "type": type_, "phase": phase,
        "date_int": date, "content_hash": hashlib.sha256(text.encode()).hexdigest(), "path": f"/{source}.md",
    }
    return chunk_id, text, meta


DOCS = [
    _chunk("hohenbrueck", 0, "Die Passantenbefragung in Hohenbrück ergab 1.214 vollständige Interviews."),
    _chunk("hohenbrueck", 1, "Am häufigsten wünschten sich die Passanten mehr Sitzgelegenheiten.", phase="K"),
    _chunk("hohenbrueck", 2, "Die Kosten der Befragung lagen bei 14.800 Euro.", phase="K", date=20230301),
    _chunk("wlan", 0, "Das Straßen-WLAN in Lindenfeld kostet 380 Euro pro Access Point.", type_="webtalk", phase="T"),
    _chunk("wlan", 1, "Die Stadtwerke übernehmen den Betrieb des Hotspots.", type_="webtalk", phase="T"),
]


@pytest.fixture
def store(tmp_path: Path) -> ChunkStore:
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", collection="lexicaltest")
    embeddings = HashEmbeddings()
    chunk_store = ChunkStore(settings, embeddings.model_name, embeddings.dimension)
    ids, texts, metas = zip(*DOCS)
    chunk_store.upsert(list(ids), list(texts), list(metas), embeddings.embed_passages(list(texts)))
    return chunk_store


def _index(store: ChunkStore, tmp_path: Path, **kwargs) -> LexicalIndex:
    index = LexicalIndex(tmp_path / "lexical", **kwargs)
    index.sync(store)
    return index


def _ids(results: list[tuple[str, float]]) -> list[str]:
    return [cid for cid, _ in results]


def test_search_ranks_the_matching_chunk_first(store: ChunkStore, tmp_path: Path) -> None:
    index = _index(store, tmp_path)
    assert _ids(index.search("Sitzgelegenheiten", 3))[0] == DOCS[1][0]
    assert _ids(index.search("Strasse Wlan", 3))[0] == DOCS[3][0]  # umlaut/ß folding and hyphen parts
    assert _ids(index.search("1214 Interviews", 3))[0] == DOCS[0][0]  # thousands separator


def test_compound_part_in_the_query_finds_the_compound(store: ChunkStore, tmp_path: Path) -> None:
    with_parts = _index(store, tmp_path)
    # "Passantenbefragung" splits into two words of the index vocabulary ("Passanten", "Befragung")
    assert set(_ids(with_parts.search("Befragung", 5))) == {DOCS[0][0], DOCS[2][0]}
    without = LexicalIndex(tmp_path / "plain", decompound=False)
    without.sync(store)
    assert _ids(without.search("Befragung", 5)) == [DOCS[2][0]]
    # the query side is split too: "Passantenbefragung" finds a chunk with "Befragung" only
    assert DOCS[2][0] in _ids(with_parts.search("Passantenbefragung", 5))


def test_filters_type_phase_date(store: ChunkStore, tmp_path: Path) -> None:
    index = _index(store, tmp_path)
    assert set(_ids(index.search("Euro", 5))) == {DOCS[2][0], DOCS[3][0]}
    assert _ids(index.search("Euro", 5, SearchFilters(types=["webtalk"]))) == [DOCS[3][0]]
    assert _ids(index.search("Euro", 5, SearchFilters(phases=["K"]))) == [DOCS[2][0]]
    assert _ids(index.search("Euro", 5, SearchFilters(date_to="2023-12-31"))) == [DOCS[2][0]]
    assert _ids(index.search("Euro", 5, SearchFilters(date_from="2024-01-01"))) == [DOCS[3][0]]
    assert index.search("Euro", 5, SearchFilters(types=["course"])) == []


def test_sync_after_prune_and_update(store: ChunkStore, tmp_path: Path) -> None:
    index = _index(store, tmp_path)
    store.delete([DOCS[3][0]])  # a pruned document's chunk
    changed = _chunk("wlan", 1, "Die Stadtwerke übernehmen den Betrieb der Glasfaser.", type_="webtalk", phase="T")
    store.delete([DOCS[4][0]])
    store.upsert([changed[0]], [changed[1]], [changed[2]], HashEmbeddings().embed_passages([changed[1]]))
    assert not index.is_current(store)  # 4 chunks in the store, 5 in the index
    index.sync(store)
    assert DOCS[3][0] not in index.ids and DOCS[4][0] not in index.ids
    assert index.search("Access Point", 3) == []
    assert _ids(index.search("Glasfaser", 3)) == [changed[0]]
    assert index.is_current(store)


def test_sync_reads_only_new_texts(store: ChunkStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index(store, tmp_path)
    fetched: list[str] = []
    original = store.get

    def counting_get(ids):  # noqa: ANN001, ANN202
        fetched.extend(ids)
        return original(ids)

    monkeypatch.setattr(store, "get", counting_get)
    new = _chunk("neu", 0, "Ein Lastenradverleih startet im Frühjahr.")
    store.upsert([new[0]], [new[1]], [new[2]], HashEmbeddings().embed_passages([new[1]]))
    index.sync(store)
    assert fetched == [new[0]]
    assert _ids(index.search("Lastenradverleih", 3)) == [new[0]]
    assert _ids(index.search("Sitzgelegenheiten", 3)) == [DOCS[1][0]]  # cached chunks still searchable


def test_index_is_persisted_and_reloaded(store: ChunkStore, tmp_path: Path) -> None:
    _index(store, tmp_path)
    reloaded = LexicalIndex(tmp_path / "lexical")
    reloaded.load()
    assert _ids(reloaded.search("Hotspots Betrieb", 2))[0] == DOCS[4][0]
    assert reloaded.is_current(store)
    assert not LexicalIndex(tmp_path / "lexical", decompound=False).is_current(store)  # other parameters


def test_neighbours_follow_chunk_index_within_a_source(store: ChunkStore, tmp_path: Path) -> None:
    index = _index(store, tmp_path)
    assert index.neighbours(DOCS[1][0]) == [DOCS[0][0], DOCS[2][0]]
    assert index.neighbours(DOCS[0][0]) == [DOCS[1][0]]
    assert index.neighbours(DOCS[3][0]) == [DOCS[4][0]]
    assert index.neighbours("unknown") == []


def test_bm25_scores_match_bm25s(store: ChunkStore, tmp_path: Path) -> None:
    """The vectorised index build gives the scores bm25s itself computes (lucene variant)."""
    import bm25s

    index = _index(store, tmp_path, decompound=False)
    texts = {cid: (meta, text) for cid, text, meta in DOCS}
    corpus = [analyze(f"{texts[cid][0]['title']} \n{texts[cid][1]}") for cid in index.ids]
    vocab: dict[str, int] = {}
    token_ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus]
    reference = bm25s.BM25(k1=index.k1, b=index.b, method="lucene")
    reference.index(bm25s.tokenization.Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
    query = analyze("Befragung Euro Kosten")
    expected = reference.get_scores([vocab[t] for t in query if t in vocab])
    actual = index.scores("Befragung Euro Kosten")
    assert actual is not None
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
