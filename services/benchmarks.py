"""Evaluation sets: the project's gold questions and the public German benchmarks in ../shared/bench.

Each set becomes a small corpus of files (ingested by the real pipeline into a cached data dir) plus questions
with their gold documents. The benchmarks are read from ../shared, never copied into the repository. All of this is
development data beside the source tree (eval/, corpus/, ../shared): an installed package has none of it, and the
loaders say so in German.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = REPO.parent / "shared" / "bench"
GOLD_DIR = REPO / "eval" / "gold"
PHASE_DIR = REPO / "eval" / "phase"
PARAPHRASE_DIR = REPO / "eval" / "paraphrase"


@dataclass
class Question:
    id: str
    question: str
    sources: list[str]  # corpus-relative paths (gold) or document ids (benchmarks)
    answer_phrase: str | None = None
    phase: str | None = None
    locator: dict = field(default_factory=dict)
    answerable: bool = True


@dataclass
class EvalSet:
    name: str
    corpus_dir: Path  # what is ingested
    questions: list[Question]
    source_key: str = "relpath"  # how a retrieved chunk maps to a gold source: "relpath" or "stem"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} nicht gefunden: {path} (Auswertungsdaten liegen nur im Quell-Repository)")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: ungültiges JSON ({exc.msg})") from exc
    return rows


def _gold_questions(files: list[Path]) -> list[Question]:
    """Questions in the gold format; files whose name ends in "unanswerable" hold unanswerables."""
    questions: list[Question] = []
    for path in files:
        for row in _read_jsonl(path):
            answerable = not path.stem.endswith("unanswerable") and bool(row.get("sources"))
            questions.append(
                Question(
                    id=row["id"], question=row["question"], sources=row.get("sources", []),
                    answer_phrase=row.get("answer_phrase"), phase=row.get("phase"),
                    locator=row.get("locator") or {}, answerable=answerable,
                )
            )
    return questions


def load_gold(gold: Path | None = None, corpus_dir: Path = REPO / "corpus") -> EvalSet:
    """Gold questions from eval/gold/*.jsonl (or one file); files ending in -unanswerable hold unanswerables."""
    files = [gold] if gold else sorted(_require(GOLD_DIR, "Ordner der Gold-Fragen").glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"Keine Gold-Fragen (*.jsonl) in {GOLD_DIR}")
    _require(corpus_dir, "Korpus-Ordner")
    return EvalSet("gold", corpus_dir, _gold_questions(files))


def load_paraphrase(directory: Path = PARAPHRASE_DIR, corpus_dir: Path = REPO / "corpus") -> EvalSet | None:
    """The paraphrase set (questions written from summaries of the sources, in the participants' own words) over
    the gold corpus: questions.jsonl and unanswerable.jsonl in the gold format. None while it does not exist.
    For measurement only: no model or threshold is fitted on it."""
    questions_file = directory / "questions.jsonl"
    if not questions_file.is_file():
        return None
    files = [questions_file] + [p for p in (directory / "unanswerable.jsonl",) if p.is_file()]
    return EvalSet("paraphrase", _require(corpus_dir, "Korpus-Ordner"), _gold_questions(files))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def load_xquad(cache: Path) -> EvalSet:
    """XQuAD-de: each paragraph one document (a Markdown file titled by its article); answer spans kept."""
    data = json.loads(_require(SHARED_BENCH / "xquad_de" / "xquad.de.json", "XQuAD-de").read_text(encoding="utf-8"))
    corpus = cache / "xquad-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    for a_index, article in enumerate(data["data"]):
        title = article["title"].replace("_", " ")
        for p_index, paragraph in enumerate(article["paragraphs"]):
            stem = f"x{a_index:02d}-{p_index:02d}"
            _write_if_changed(corpus / f"{stem}.md", f"---\ntitle: \"{title}\"\ntype: article\n---\n\n{paragraph['context']}\n")
            for qa in paragraph["qas"]:
                questions.append(Question(qa["id"], qa["question"], [stem], answer_phrase=qa["answers"][0]["text"]))
    return EvalSet("xquad", corpus, questions, source_key="stem")


def load_germanquad(cache: Path) -> EvalSet:
    """GermanQuAD retrieval (BEIR): 474 passages as text files, 2,204 questions, one relevant passage each."""
    base = _require(SHARED_BENCH / "germanquad_retrieval", "GermanQuAD")
    corpus = cache / "germanquad-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for row in _read_jsonl(base / "corpus.jsonl"):
        _write_if_changed(corpus / f"{row['_id']}.txt", row["text"].strip() + "\n")
    queries = {row["_id"]: row["text"] for row in _read_jsonl(base / "queries.jsonl")}
    relevant: dict[str, list[str]] = {}
    for line in (base / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, corpus_id, score = line.split("\t")
        if int(score) > 0:
            relevant.setdefault(query_id, []).append(corpus_id)
    questions = [Question(qid, queries[qid], docs) for qid, docs in relevant.items() if qid in queries]
    return EvalSet("germanquad", corpus, questions, source_key="stem")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def load_phase_passages(corpus_dir: Path = REPO / "corpus") -> list[dict]:
    """The hand-labelled passages, each with the title and section of the place it stands in its source document
    (`title`, `section`): the tagger sees a chunk with its heading, so it is measured and trained that way."""
    rows: list[dict] = []
    for path in sorted(PHASE_DIR.glob("*.jsonl")):
        rows.extend(_read_jsonl(path))
    from ingest.loaders import LoaderError, load_file
    from core.settings import Settings

    settings = Settings()
    documents: dict[str, object] = {}
    for row in rows:
        source = row["source"]
        if source not in documents:
            try:
                documents[source] = load_file(corpus_dir / source, settings, corpus_dir)
            except LoaderError:
                documents[source] = None
        doc = documents[source]
        row["title"] = getattr(doc, "title", "") or ""
        row["section"] = _section_of(row["text"], getattr(doc, "blocks", []))
    return rows


def _section_of(text: str, blocks: list) -> str | None:
    """Section of the block the passage starts in (passages begin at a block, may span several)."""
    def flat(value: str) -> str:  # the loaders drop Markdown emphasis, the labelled passages may keep it
        return " ".join(value.replace("*", "").split())

    passage = flat(text)
    block_texts = [(flat(block.text), block.section) for block in blocks]
    for length in (80, 40, 20):
        for block_text, section in block_texts:
            if passage[:length] in block_text:
                return section
    for block_text, section in block_texts:  # a short block (a bold lead-in line) that opens the passage
        if block_text and passage.startswith(block_text):
            return section
    return None
