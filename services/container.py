"""Composition root: builds the components from one Settings object. The API, the CLI, the evaluation and the
benchmarks all get their parts here, so they are wired the same way."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ingest.pipeline import IngestPipeline, IngestReport, Progress
from ingest.registry import Registry
from retriever.answer import ExtractiveAnswerer
from retriever.lexical import LexicalIndex
from retriever.phases import PhaseTagger
from retriever.search import SearchService
from core.embeddings import StadtretterEmbeddings, get_embeddings
from core.settings import Settings
from core.store import ChunkStore, make_client


@dataclass
class Services:
    settings: Settings
    embeddings_override: StadtretterEmbeddings | None = None

    @cached_property
    def embeddings(self) -> StadtretterEmbeddings:
        return self.embeddings_override or get_embeddings(self.settings)

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings, self.embeddings.model_name, self.embeddings.dimension)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.registry_path)

    @cached_property
    def lexical(self) -> LexicalIndex:
        index = LexicalIndex(self.settings.lexical_path)
        index.load()
        return index

    @cached_property
    def phase_tagger(self) -> PhaseTagger | None:
        return PhaseTagger.load(self.embeddings)

    def pipeline(self) -> IngestPipeline:
        return IngestPipeline(
            self.settings, self.embeddings, self.store, self.registry,
            enrichers=self._enrichers(), listeners=[self.lexical],
        )

    def _enrichers(self) -> list:
        return [self.phase_tagger] if self.phase_tagger is not None else []

    @cached_property
    def search(self) -> SearchService:
        return SearchService(self.embeddings, self.store, self.lexical, default_mode=self.settings.search_mode)

    @cached_property
    def answerer(self) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(
            self.search, self.embeddings, k=self.settings.top_k,
            rerank_depth=self.settings.rerank_depth, rerank_weight=self.settings.rerank_weight,
        )

    @cached_property
    def qa(self):  # noqa: ANN201 - retriever.qa.QAService, imported lazily
        """Questions and answers (extractive or LLM, streamed or not, with conversations): API and CLI use this."""
        from retriever.qa import QAService

        return QAService(self)

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Rebuild into a side collection and registry, then swap: a failed reindex leaves the old index intact."""
        paths = [Path(p) for p in sorted({r.path for r in Registry(self.settings.registry_path).all()})]
        side = self.settings.model_copy(update={"collection": f"{self.settings.collection}-reindex"})
        side_registry_path = self.settings.data_dir / "registry-reindex.sqlite"
        side_registry_path.unlink(missing_ok=True)
        client = make_client(self.settings)  # not self.store: opening the old collection is refused after a model change
        try:
            client.delete_collection(side.collection)  # left over from an interrupted reindex
        except Exception:  # none there
            pass
        side_store = ChunkStore(side, self.embeddings.model_name, self.embeddings.dimension, client=client)
        side_lexical = LexicalIndex(self.settings.data_dir / "lexical-reindex")
        pipeline = IngestPipeline(
            side, self.embeddings, side_store, Registry(side_registry_path),
            enrichers=self._enrichers(), listeners=[side_lexical],
        )
        report = pipeline.run(paths or [self.settings.corpus_dir], progress=progress)
        if report.failed and not (report.added or report.updated):
            return report  # nothing usable was built: keep the old index
        try:
            client.delete_collection(self.settings.collection)
        except Exception:  # the old collection may not exist
            pass
        side_store.collection.modify(name=self.settings.collection)
        os.replace(side_registry_path, self.settings.registry_path)
        shutil.rmtree(self.settings.lexical_path, ignore_errors=True)
        os.replace(side_lexical.path, self.settings.lexical_path)
        for name in ("store", "registry", "lexical", "search", "answerer"):
            self.__dict__.pop(name, None)
        return report
