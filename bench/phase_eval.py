"""EKT phase tagging, measured: macro-F1 on the hand-labelled passages (eval/phase), phase accuracy of the answers to
the gold questions (eval/gold), a per-method ablation and the tagger's cost per chunk against the embedding cost.

    .venv/bin/python bench/phase_eval.py            # everything (first run builds the caches, later runs are fast)
    .venv/bin/python bench/phase_eval.py --refresh  # rebuild the cached gold answers (after retrieval changes)

Caches (gitignored) live under .eval-cache/phase/: passage and question vectors, an index of the corpus built by the
real pipeline (without enrichers) and the citations of the extractive answers to the gold questions. The tagger
itself is never cached: every run tags from the vectors, so changed prototypes, lexicon or weights show at once.

The figures of the trained models are grouped cross-validation by document: for each fold the classifier and the
term model are retrained (bench/train_phase_classifier.py) without any passage of the test documents, and the
combined tagger uses that fold's models. The same folds' models tag the corpus chunks for the gold-question figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest.models import Chunk, SourceDocument  # noqa: E402
from core.vocabulary import CROSS_PHASE, PHASE_KEYS, PHASES  # noqa: E402
from retriever.models import Citation  # noqa: E402
from services.benchmarks import load_gold, load_phase_passages  # noqa: E402
from core.embeddings import model_key  # noqa: E402
from services.evaluation import (  # noqa: E402 - metrics shared with `stadtretter eval` (and train_phase_classifier)
    accuracy,
    macro_f1,
)
from services.evaluation import phase_confusion as confusion  # noqa: E402

CACHE = REPO / ".eval-cache" / "phase"
ANSWERS_VERSION = 3  # bump when the cached answer fields or how answers are made change (3: evidence rerank)


# --------------------------------------------------------------------------------------------------------------
# Gold corpus and answers


def gold_services(embeddings: Any):  # noqa: ANN201
    """Services over an index of corpus/ built by the real pipeline without enrichers (phase tags are computed by
    the bench from the stored vectors, so they always reflect the current tagger)."""
    from ingest.pipeline import IngestPipeline
    from services.container import Services
    from core.settings import Settings

    settings = Settings(
        data_dir=CACHE / f"gold-{model_key(embeddings.model_name)}", corpus_dir=REPO / "corpus", chroma_url=None, collection="phase",
    )
    services = Services(settings, embeddings=embeddings)
    pipeline = IngestPipeline(
        settings, embeddings, services.store, services.registry, enrichers=[], listeners=[services.lexical]
    )
    report = pipeline.run([settings.corpus_dir], prune=True)
    if report.failed:
        for failed in report.failed:
            print(f"  nicht eingelesen: {failed.path}: {failed.reason}", file=sys.stderr)
    return services, report


def corpus_chunks(services: Any) -> dict[str, tuple[SourceDocument, list[Chunk], dict[str, np.ndarray]]]:
    """Per source: a document stub, its chunks in order and their stored vectors (what the pipeline passes)."""
    by_source: dict[str, list[tuple[str, str, dict, np.ndarray]]] = {}
    for ids, texts, metas, vectors in services.store.iter_all(include_embeddings=True):
        for cid, text, meta, vec in zip(ids, texts, metas, vectors):
            meta = dict(meta or {})
            by_source.setdefault(str(meta.get("source_id")), []).append((cid, text, meta, np.asarray(vec, np.float32)))
    out = {}
    for source_id, rows in by_source.items():
        rows.sort(key=lambda r: int(r[2].get("chunk_index", 0)))
        meta0 = rows[0][2]
        doc = SourceDocument(
            path=Path(str(meta0.get("path", ""))), source_id=source_id, title=str(meta0.get("title", "")),
            type=meta0.get("type", "article"), blocks=[],
        )
        chunks = [Chunk(cid, text, text, meta) for cid, text, meta, _ in rows]
        out[source_id] = (doc, chunks, {cid: vec for cid, _, _, vec in rows})
    return out


def gold_answers(services: Any, refresh: bool = False) -> dict[str, dict]:
    """Citations of the extractive answer to each answerable gold question (as `stadtretter eval` builds them)."""
    eval_set = load_gold()
    ids = sorted(cid for batch, *_ in services.store.iter_all() for cid in batch)
    signature = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    path = CACHE / f"answers-{model_key(services.embeddings.model_name)}.json"
    cached = json.loads(path.read_text(encoding="utf-8")) if path.exists() and not refresh else {}
    if cached.get("signature") != signature or cached.get("version") != ANSWERS_VERSION:
        cached = {"signature": signature, "version": ANSWERS_VERSION, "answers": {}}
    answers = cached["answers"]
    todo = [q for q in eval_set.questions if q.answerable and q.phase and q.question not in answers]
    for question in todo:
        hits = services.answerer.rerank(question.question, services.search.search(question.question, k=10))
        answer = services.answerer.run(question.question, hits=hits[: services.settings.top_k])
        answers[question.question] = {
            "abstained": answer.abstained,
            "citations": [{"n": c.n, "chunk_id": c.chunk_id, "score": c.score, "snippet": c.snippet} for c in answer.citations],
        }
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached, ensure_ascii=False, indent=1), encoding="utf-8")
    return {q.id: {**answers[q.question], "question": q.question, "gold": q.phase, "sources": q.sources}
            for q in eval_set.questions if q.answerable and q.phase}


# --------------------------------------------------------------------------------------------------------------
# Metrics


def print_confusion(title: str, table: dict[str, dict[str, int]]) -> None:
    short = {CROSS_PHASE: "Ü"}
    print(f"\n{title} (Zeile: Gold, Spalte: erkannt)")
    print("        " + "".join(f"{short.get(p, p):>6}" for p in PHASE_KEYS))
    for g in PHASE_KEYS:
        print(f"{short.get(g, g):>6}  " + "".join(f"{table.get(g, {}).get(p, 0):>6}" for p in PHASE_KEYS))


# --------------------------------------------------------------------------------------------------------------
# The evaluation

METHODS: dict[str, tuple[str, ...]] = {
    "Prototypen": ("proto",),
    "Lexikon": ("lexicon",),
    "Klassifikator": ("classifier",),
    "Begriffsmodell": ("terms",),
    "Ohne Klassifik.": ("proto", "lexicon", "terms"),  # what runs with an embedding model the classifier was not trained for
    "Ohne Begriffsm.": ("proto", "lexicon", "classifier"),
    "Kombiniert": ("proto", "lexicon", "classifier", "terms"),
}


def evaluate_passages(data: Any, folds: dict[str, Any], base: Any) -> dict[str, list[str]]:
    """Primary phase of every labelled passage per method; the models of each passage's fold never saw its
    document. `base` is the untrained tagger (definitions, lexicon, prototypes) the fold models are put into."""
    return {name: data.cross_validate(base.with_models, folds, methods) for name, methods in METHODS.items()}


def evaluate_answers(
    cache: Any, services: Any, answers: dict[str, dict], models: dict[str, Any], fallback: Any, base: Any,
) -> tuple[dict[str, list[str]], list[str], list[dict]]:
    """Phase of the answer to every answerable gold question, per method: chunks are tagged by the enricher
    (`run`, from the stored vectors) and the answer by `answer_tag` from the question and the cited chunks' scores.
    `models` maps a document (corpus-relative path) to the classifier used for its chunks and its questions."""
    chunks = corpus_chunks(services)
    corpus = (REPO / "corpus").resolve()
    ids = list(answers)
    vectors = cache.queries([answers[qid]["question"] for qid in ids])
    gold = [answers[qid]["gold"] for qid in ids]
    predicted: dict[str, list[str]] = {}
    errors: list[dict] = []
    for name, methods in METHODS.items():
        metadata: dict[str, dict] = {}
        for doc, doc_chunks, doc_vectors in chunks.values():
            try:
                relative = Path(doc.path).resolve().relative_to(corpus).as_posix()
            except ValueError:
                relative = str(doc.path)
            tagger = base.with_models(models.get(relative, fallback), methods)
            fresh = [Chunk(c.id, c.text, c.embed_text, dict(c.metadata)) for c in doc_chunks]
            tagger.run(doc, fresh, doc_vectors)
            metadata.update({c.id: c.metadata for c in fresh})
        out = []
        for qid, vector in zip(ids, vectors):
            answer = answers[qid]
            tagger = base.with_models(models.get(answer["sources"][0] if answer["sources"] else "", fallback), methods)
            dist, cues = tagger.question_distribution(answer["question"], vector=vector)
            citations = [_citation(c, metadata.get(c["chunk_id"], {})) for c in answer["citations"]]
            tag = tagger.answer_tag(dist, cues, citations)
            out.append(tag.phase)
            if name == "Kombiniert" and tag.phase != answer["gold"]:
                errors.append({"id": qid, "gold": answer["gold"], "tag": tag.phase, "question": answer["question"],
                               "explanation": tag.explanation,
                               "cited": [metadata.get(c["chunk_id"], {}).get("phase") for c in answer["citations"]]})
        predicted[name] = out
    return predicted, gold, errors


def _citation(cited: dict, metadata: dict) -> Citation:
    return Citation(
        n=int(cited["n"]), source_id=str(metadata.get("source_id", "")), title=str(metadata.get("title", "")),
        type=str(metadata.get("type", "")), url=None, locator="", snippet=cited.get("snippet", ""),
        score=float(cited["score"]), chunk_id=cited["chunk_id"], phase=metadata.get("phase"),
        phase_scores={p: float(metadata[f"phase_{p}"]) for p in PHASES if f"phase_{p}" in metadata},
    )


def measure_overhead(embeddings: Any, services: Any, tagger: Any, sample: int = 16) -> dict[str, float]:
    """The enricher's time per chunk (given the vectors, as at ingestion) against the embedding time per chunk."""
    chunks = corpus_chunks(services)
    total = sum(len(c) for _, c, _ in chunks.values())
    started = time.perf_counter()
    for doc, doc_chunks, doc_vectors in chunks.values():
        tagger.run(doc, [Chunk(c.id, c.text, c.embed_text, dict(c.metadata)) for c in doc_chunks], doc_vectors)
    tag_seconds = (time.perf_counter() - started) / max(total, 1)
    texts = [c.text for _, doc_chunks, _ in chunks.values() for c in doc_chunks][:: max(1, total // sample)][:sample]
    started = time.perf_counter()
    embeddings.embed_passages(texts)  # fresh, uncached: what ingestion pays per chunk
    embed_seconds = (time.perf_counter() - started) / max(len(texts), 1)
    return {"chunks": total, "tag_ms": tag_seconds * 1000, "embed_ms": embed_seconds * 1000,
            "share": tag_seconds / embed_seconds if embed_seconds else 0.0}


def _scores_line(name: str, gold: list[str], predicted: list[str]) -> str:
    return f"  {name:<16} Makro-F1 {macro_f1(gold, predicted):.3f} · Genauigkeit {accuracy(gold, predicted):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refresh", action="store_true", help="gecachte Antworten der Gold-Fragen neu erzeugen")
    parser.add_argument("--errors", type=int, default=8, help="so viele Fehlbeispiele je Teil zeigen")
    args = parser.parse_args()

    from retriever.phases import Lexicon, PhaseTagger, load_classifier, load_definitions, prompts_hash
    from core.embeddings import get_embeddings
    from core.settings import Settings
    from retriever.phase_training import TrainingData, VectorCache, cache_path

    started = time.perf_counter()
    embeddings = get_embeddings(Settings())
    cache = VectorCache(embeddings, cache_path(CACHE, embeddings))
    data = TrainingData(cache, load_phase_passages())
    folds = data.folds()
    base = PhaseTagger(embeddings, load_definitions(), Lexicon.load(), prototype_vectors=data.prototypes)
    deployed = load_classifier()
    if deployed.classifier is None or deployed.meta.get("prompts_hash") != prompts_hash():
        print("WARNUNG: retriever/calibration/phase_classifier.npz fehlt oder passt nicht zu prompts/phases – "
              "bench/train_phase_classifier.py ausführen.")

    gold = [p["primary"] for p in data.passages]
    by_method = evaluate_passages(data, folds, base)
    documents = len(folds)
    print(f"\n== Passagen: {len(gold)} handmarkierte Passagen aus {documents} Dokumenten (eval/phase) ==")
    print("Kreuzvalidierung je Dokument (leave-one-document-out): der Klassifikator jeder Passage hat keine Passage")
    print("ihres Dokuments gesehen. Prototypen und Lexikon sind nicht trainiert.")
    for name in METHODS:
        print(_scores_line(name, gold, by_method[name]))
    print_confusion("Passagen, kombiniert", confusion(gold, by_method["Kombiniert"]))
    wrong = [(p, t) for p, t in zip(data.passages, by_method["Kombiniert"]) if t != p["primary"]]
    print(f"\nFehlbeispiele ({len(wrong)} von {len(gold)}):")
    for passage, tag in wrong[: args.errors]:
        print(f"  {passage['id']} Gold {passage['primary']} ({'+'.join(passage['phases'])}) → {tag}: "
              f"{' '.join(passage['text'].split())[:110]} …")

    services, _ = gold_services(embeddings)
    answers = gold_answers(services, refresh=args.refresh)
    fold_models = dict(folds)
    print(f"\n== Gold-Fragen: {len(answers)} beantwortbare Fragen mit Phase (eval/gold), Phase der Antwort ==")
    cv_pred, q_gold, cv_errors = evaluate_answers(cache, services, answers, fold_models, deployed, base)
    print("Kreuzvalidierung je Dokument: Abschnitte eines Dokuments und Fragen zu ihm mit dem Klassifikator ohne")
    print("dessen Passagen (Dokumente ohne markierte Passagen: ausgelieferter Klassifikator).")
    for name in METHODS:
        print(f"  {name:<16} Genauigkeit {accuracy(q_gold, cv_pred[name]):.3f} · Makro-F1 {macro_f1(q_gold, cv_pred[name]):.3f}")
    print_confusion("Gold-Fragen, kombiniert, Kreuzvalidierung", confusion(q_gold, cv_pred["Kombiniert"]))
    if deployed.classifier is not None:
        dep_pred, _, _ = evaluate_answers(cache, services, answers, {}, deployed, base)
        print("\nAusgeliefert (retriever/calibration/phase_classifier.npz, trainiert auf allen Passagen – auch denen")
        print("dieser Dokumente, daher optimistisch):")
        for name in METHODS:
            print(f"  {name:<16} Genauigkeit {accuracy(q_gold, dep_pred[name]):.3f} · Makro-F1 {macro_f1(q_gold, dep_pred[name]):.3f}")
        print_confusion("Gold-Fragen, kombiniert, ausgeliefert", confusion(q_gold, dep_pred["Kombiniert"]))
    print(f"\nFehlbeispiele ({len(cv_errors)}, Kreuzvalidierung):")
    for error in cv_errors[: args.errors]:
        print(f"  {error['id']} Gold {error['gold']} → {error['tag']} (zitiert: {','.join(str(c) for c in error['cited'])}): "
              f"{error['question']}")
        print(f"      {error['explanation']}")

    tagger = PhaseTagger.load(embeddings)
    overhead = measure_overhead(embeddings, services, tagger)
    print(f"\n== Einlesen: Kosten des Taggers ({overhead['chunks']} Abschnitte, Vektoren aus der Pipeline) ==")
    print(f"  Tagger {overhead['tag_ms']:.2f} ms/Abschnitt · Embedding {overhead['embed_ms']:.1f} ms/Abschnitt · "
          f"Anteil {overhead['share'] * 100:.2f} % (Grenze 10 %)")
    print(f"\nLaufzeit {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
