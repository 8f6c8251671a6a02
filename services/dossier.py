"""Material dossiers (Materialmappen) for trainers: everything the archive holds on a topic, phase by phase.

Per EKT phase: the best sources (one entry per document, ranked by their best chunk), 2–4 key excerpts each, quoted
verbatim from the stored chunk with their locator (page, section, transcript time and speaker) and a link; WebTalk
moments as time links; course pages; related terms; a German note when a phase is thin. With a language model each
phase also gets a short briefing and discussion questions whose every sentence cites a source of that phase; the
markers are checked like an answer's (retriever.generation.verify_citations), uncited sentences are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from core.prompts import render
from core.sentences import split_sentences
from core.vocabulary import PHASE_DATIVE, PHASE_LABELS, PHASES
from ingest.registry import Registry
from retriever.answer import ExtractiveAnswerer, format_time, locator_for
from retriever.evidence import Sentence, chunk_sentences, in_context
from retriever.generation import describe_error, message_text, neutralise, verify_citations
from retriever.models import SearchFilters, SearchHit
from retriever.text import analyze
from services.dossier_terms import characteristic_terms

logger = logging.getLogger("stadtretter.dossier")

CANDIDATES_PER_SOURCE = 4  # chunks searched per wanted source: documents repeat in the hit list
MAX_EXCERPTS = 4
# Excerpts come from a document's best chunks only: embedding their sentences is most of a cold dossier's time
# (bench/dossier.py).
EXCERPT_CHUNKS = 2
MIN_EXCERPTS = 2
EXCERPT_MARGIN = 0.08  # excerpts beyond the second must score within this of the best sentence
THIN_SHARE = 0.5  # fewer sources than this share of the wanted size: the phase is called thin
_MARKER = re.compile(r"\[(\d{1,3})\]")


@dataclass
class DossierRequest:
    topic: str
    phases: list[str] = field(default_factory=lambda: list(PHASES))
    types: list[str] = field(default_factory=list)
    date_from: str | None = None
    date_to: str | None = None
    size: int = 5  # sources per phase


@dataclass
class Excerpt:
    text: str  # verbatim from the chunk
    locator: str  # German: "Seite 2", "01:30–01:58 · Petra Lang", "Abschnitt „Vorbereitung“"
    link: str | None
    chunk_id: str
    page: int | None = None
    section: str | None = None
    start: float | None = None
    end: float | None = None
    speaker: str | None = None


@dataclass
class DossierSource:
    n: int
    source_id: str
    title: str
    type: str
    url: str | None
    link: str
    date: str | None
    score: float
    excerpts: list[Excerpt]


@dataclass
class Moment:
    """A WebTalk passage as a time link."""

    n: int  # number of its source in the phase
    title: str
    time: str  # "01:30"
    speaker: str | None
    text: str
    link: str


@dataclass
class Briefing:
    text: str  # sentences with [n] markers (n = source number in the phase)
    questions: list[str]
    verification: dict[str, Any]


@dataclass
class PhaseSection:
    phase: str
    label: str
    sources: list[DossierSource]
    moments: list[Moment]
    course_pages: list[Excerpt]
    related_terms: list[str]
    note: str | None
    briefing: Briefing | None = None


@dataclass
class Dossier:
    topic: str
    created_at: str  # UTC, ISO 8601
    archive_date: str | None  # date of the newest ingestion (YYYY-MM-DD)
    mode: str  # "extractive" | "llm"
    notice: str  # German: what the dossier is and is not
    filters: dict[str, Any]
    phases: list[PhaseSection]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def all_sources(self) -> list[tuple[str, DossierSource]]:
        return [(section.phase, source) for section in self.phases for source in section.sources]


def source_link(base: str, meta: dict[str, Any], start: float | None = None) -> str:
    """Where an excerpt leads, as in the chat (api/static/format.js citationLinks): PDF page, transcript time, or the
    original article, else the app's source view."""
    source = str(meta.get("source_id", ""))
    if meta.get("page") is not None:
        return f"{base}/quellen/{source}/datei#page={meta['page']}"
    if start is not None and meta.get("type") == "webtalk":
        return f"{base}/quellen/{source}?t={int(start)}"
    url = meta.get("url")
    if url and str(url).startswith(("http://", "https://")):
        return str(url)
    return f"{base}/quellen/{source}"


def thin_note(phase: str, found: int, wanted: int) -> str | None:
    """German note for a phase with little material on the topic."""
    where = PHASE_DATIVE[phase][:1].upper() + PHASE_DATIVE[phase][1:]
    if found == 0:
        return f"{where} gibt es zu diesem Thema keine Quelle im Archiv."
    if found == 1:
        return f"{where} gibt es zu diesem Thema nur eine Quelle."
    if found < max(2, round(wanted * THIN_SHARE)):
        return f"{where} gibt es zu diesem Thema nur {found} Quellen."
    return None


class DossierBuilder:
    """Builds a dossier from the search and the sentence embeddings of the extractive answerer."""

    def __init__(self, answerer: ExtractiveAnswerer, registry: Registry,
                 chat_model: Callable[[], Any] | None = None) -> None:
        self.answerer = answerer
        self.search = answerer.search
        self.registry = registry
        self.chat_model = chat_model  # returns the model or None; None: purely extractive

    def build(self, request: DossierRequest, base_url: str = "") -> Dossier:
        topic = request.topic.strip()
        model = self.chat_model() if self.chat_model is not None else None
        sections = [self._section(topic, phase, request, base_url) for phase in request.phases]
        texts = [[excerpt.text for source in s.sources for excerpt in source.excerpts] for s in sections]
        for section, terms in zip(sections, characteristic_terms(texts, top=8, exclude=[topic])):
            section.related_terms = terms
        mode = "extractive"
        if model is not None:
            for section in sections:
                if section.sources:
                    section.briefing = self._briefing(model, topic, section)
            if any(section.briefing for section in sections):
                mode = "llm"
        return Dossier(
            topic=topic,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            archive_date=self.archive_date(),
            mode=mode,
            notice=render("dossier_llm_notice.txt" if mode == "llm" else "dossier_extractive_notice.txt"),
            filters={"types": request.types, "date_from": request.date_from, "date_to": request.date_to,
                     "size": request.size},
            phases=sections,
        )

    def archive_date(self) -> str | None:
        stamps = [record.updated_at for record in self.registry.ingested() if record.updated_at]
        return date.fromtimestamp(max(stamps)).isoformat() if stamps else None

    # --- one phase ------------------------------------------------------------------------------------------

    def _section(self, topic: str, phase: str, request: DossierRequest, base: str) -> PhaseSection:
        filters = SearchFilters(types=list(request.types), phases=[phase], date_from=request.date_from,
                                date_to=request.date_to)
        vector = self.answerer.query_vector(topic)
        hits = self.search.search(topic, k=request.size * CANDIDATES_PER_SOURCE, filters=filters, vector=vector)
        by_source: dict[str, list[SearchHit]] = {}
        topic_terms = set(analyze(topic, getattr(self.search.lexical, "decompounder", None)))
        for hit in hits:
            if self._relevant(hit, topic_terms):
                by_source.setdefault(hit.source_id, []).append(hit)
        sources: list[DossierSource] = []
        for source_hits in list(by_source.values())[: request.size]:
            sources.append(self._source(len(sources) + 1, topic, source_hits, base))
        moments = [
            Moment(source.n, source.title, format_time(excerpt.start), excerpt.speaker, excerpt.text, excerpt.link)
            for source in sources if source.type == "webtalk"
            for excerpt in source.excerpts if excerpt.start is not None and excerpt.link
        ]
        course_pages = [excerpt for source in sources if source.type == "course" for excerpt in source.excerpts]
        return PhaseSection(phase, PHASE_LABELS[phase], sources, moments, course_pages, [],
                            thin_note(phase, len(sources), request.size))

    def _relevant(self, hit: SearchHit, topic_terms: set[str]) -> bool:
        """A chunk belongs in the dossier when it shares a content term with the topic (stems, compounds split:
        "Befragung" finds "Passantenbefragung"). Dense search always returns neighbours, also for topics the
        archive lacks; without this a thin phase would be filled with unrelated sources instead of named thin."""
        decompounder = getattr(self.search.lexical, "decompounder", None)
        return not topic_terms or bool(topic_terms & set(analyze(hit.text, decompounder)))

    def _source(self, n: int, topic: str, hits: list[SearchHit], base: str) -> DossierSource:
        first = hits[0].metadata
        return DossierSource(
            n=n, source_id=hits[0].source_id, title=str(first.get("title", "")), type=str(first.get("type", "")),
            url=first.get("url") or None, link=source_link(base, {**first, "page": None, "type": None}),
            date=first.get("date"),
            score=round(float(hits[0].score), 4), excerpts=self._excerpts(topic, hits, base),
        )

    def _excerpts(self, topic: str, hits: list[SearchHit], base: str) -> list[Excerpt]:
        """The 2–4 sentences of the document's retrieved chunks closest to the topic, in document order."""
        hits = hits[:EXCERPT_CHUNKS]
        candidates = [(hit, sentence) for rank, hit in enumerate(hits) for sentence in chunk_sentences(hit, rank)]
        if not candidates:
            return [self._excerpt(hits[0], Sentence(0, 0, hits[0].text.strip()[:300]), base)]
        contexts = [in_context(hit, sentence.text) for hit, sentence in candidates]
        cosines = self.answerer.sentence_vectors(contexts) @ self.answerer.query_vector(topic)
        order = sorted(range(len(candidates)), key=lambda i: -float(cosines[i]))
        best = float(cosines[order[0]])
        chosen = [i for rank, i in enumerate(order[:MAX_EXCERPTS])
                  if rank < MIN_EXCERPTS or float(cosines[i]) >= best - EXCERPT_MARGIN]
        chosen.sort(key=lambda i: (candidates[i][1].hit_rank, candidates[i][1].position))
        return [self._excerpt(*candidates[i], base) for i in chosen]

    @staticmethod
    def _excerpt(hit: SearchHit, sentence: Sentence, base: str) -> Excerpt:
        meta = hit.metadata
        cue = sentence.cue if meta.get("type") == "webtalk" else None
        locator = locator_for(meta, cue)
        if sentence.speaker:
            locator = f"{locator} · {sentence.speaker}"
        start = cue[0] if cue else meta.get("start")
        return Excerpt(
            text=sentence.text, locator=locator, link=source_link(base, meta, start), chunk_id=hit.chunk_id,
            page=meta.get("page"), section=meta.get("section"), start=start,
            end=cue[1] if cue else meta.get("end"), speaker=sentence.speaker,
        )

    # --- language model -------------------------------------------------------------------------------------

    def _briefing(self, model: Any, topic: str, section: PhaseSection) -> Briefing | None:
        sources = "\n\n".join(
            f'<quelle nr="{source.n}" titel="{neutralise(source.title)}">\n'
            + "\n".join(neutralise(excerpt.text) for excerpt in source.excerpts) + "\n</quelle>"
            for source in section.sources
        )
        prompt = render("dossier_briefing.txt", topic=topic, phase=section.label, sources=sources)
        try:
            reply = message_text(model.invoke(prompt))
        except Exception as exc:  # noqa: BLE001 - the extractive dossier stands without a briefing
            logger.warning("Briefing für Phase %s nicht erstellt: %s", section.phase, describe_error(exc))
            return None
        return parse_briefing(reply, {source.n for source in section.sources})


def parse_briefing(reply: str, valid: set[int]) -> Briefing | None:
    """The model's reply ("BRIEFING:" text, then "FRAGEN:" one per line) with its markers checked: unknown source
    numbers are removed, sentences and questions left without a valid marker are dropped."""
    head, _, tail = reply.partition("FRAGEN:")
    briefing_text = head.replace("BRIEFING:", "").strip()
    questions_raw = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in tail.splitlines()]
    checked_text, rewriter = verify_citations(briefing_text, valid)
    kept = [s for s in split_sentences(_original_numbers(checked_text, rewriter.mapping)) if _MARKER.search(s)]
    questions: list[str] = []
    for question in filter(None, questions_raw):
        checked, question_rewriter = verify_citations(question, valid)
        checked = _original_numbers(checked, question_rewriter.mapping)
        if _MARKER.search(checked):
            questions.append(checked)
    verification = {**rewriter.verification(), "sentences_dropped": len(split_sentences(briefing_text)) - len(kept),
                    "questions_dropped": len([q for q in questions_raw if q]) - len(questions)}
    if not kept and not questions:
        return None
    return Briefing(" ".join(kept), questions[:5], verification)


def _original_numbers(text: str, mapping: dict[int, int]) -> str:
    """verify_citations renumbers markers in order of first use; the dossier keeps its own source numbers."""
    back = {new: old for old, new in mapping.items()}
    return _MARKER.sub(lambda m: f"[{back.get(int(m.group(1)), int(m.group(1)))}]", text)
