"""What every vector store backend provides, and the records it trades in."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class RetrievedChunk:
    """One retrieval hit. `score` is cosine similarity (higher is closer)."""

    document_id: str
    chunk_index: int
    text: str
    score: float
    source: str | None = None


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    source: str | None
    chunks: int
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    # Names the collection/table that grounds answers; goes into retrieval spans as gen_ai.data_source.id.
    data_source_id: str

    async def upsert_document(
        self,
        *,
        tenant: str,
        document: DocumentInfo,
        chunks: list[str],
        vectors: list[list[float]],
    ) -> None:
        """Store the document's chunks, replacing whatever was stored under the same id for this tenant."""
        ...

    async def search(self, *, tenant: str, vector: list[float], k: int) -> list[RetrievedChunk]:
        """The k nearest chunks of this tenant; k of them whenever the tenant has at least k."""
        ...

    async def list_documents(self, *, tenant: str, limit: int) -> list[DocumentInfo]: ...

    async def get_document(self, *, tenant: str, document_id: str) -> DocumentInfo | None: ...

    async def delete_document(self, *, tenant: str, document_id: str) -> bool: ...

    async def aclose(self) -> None: ...
