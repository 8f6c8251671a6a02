"""The search service as a langchain `BaseRetriever`, for use in langchain chains."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retriever.models import SearchFilters, SearchHit
from retriever.search import SearchService


def hit_to_document(hit: SearchHit) -> Document:
    return Document(page_content=hit.text, metadata={**hit.metadata, "score": hit.score, "chunk_id": hit.chunk_id}, id=hit.chunk_id)


class StadtretterRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    service: SearchService
    k: int = 8
    filters: SearchFilters | None = None
    mode: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.service.search(query, k=self.k, filters=self.filters, mode=self.mode)  # type: ignore[arg-type]
        return [hit_to_document(hit) for hit in hits]
