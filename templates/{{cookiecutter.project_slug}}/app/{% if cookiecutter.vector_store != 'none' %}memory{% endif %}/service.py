"""Vector memory: ingestion (chunk, embed, store), tenant-scoped retrieval, listing and deletion."""

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from app.memory.chunking import chunk_text
from app.memory.config import MemorySettings
from app.memory.embedder import Embedder
from app.memory.store import DocumentInfo, RetrievedChunk, VectorStore
{%- if cookiecutter.observability != 'none' %}
from app.telemetry import retrieval_span
{%- endif %}

DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
MAX_K = 100


class DocumentError(ValueError):
    """Bad ingestion input; the message says what is wrong and how to fix it."""


def _is_markdown(source: str | None, content_type: str | None) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower() in {"text/markdown", "text/x-markdown"}
    return bool(source) and source.lower().endswith((".md", ".markdown"))


class Memory:
    def __init__(self, *, settings: MemorySettings, embedder: Embedder, store: VectorStore) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store

    async def ingest(
        self,
        *,
        tenant: str,
        text: str,
        source: str | None = None,
        content_type: str | None = None,
        document_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> DocumentInfo:
        if not text.strip():
            raise DocumentError("document text is empty; send the document's content in `text`")
        if len(text) > self.settings.max_document_chars:
            raise DocumentError(
                f"document has {len(text)} characters, more than MEMORY_MAX_DOCUMENT_CHARS="
                f"{self.settings.max_document_chars}; split it or raise the limit"
            )
        if document_id is not None and not DOCUMENT_ID.match(document_id):
            raise DocumentError(
                f"document id {document_id[:50]!r} is invalid: use 1-200 of A-Z a-z 0-9 . _ : - "
                "starting with a letter or digit"
            )
        chunks = chunk_text(
            text,
            size=self.settings.chunk_size,
            overlap=self.settings.chunk_overlap,
            markdown=_is_markdown(source, content_type),
        )
        document = DocumentInfo(
            id=document_id or f"doc_{uuid.uuid4().hex}",
            source=source,
            chunks=len(chunks),
            created_at=datetime.now(UTC),
            metadata=metadata or {},
        )
        vectors = await self.embedder.embed(chunks)
        await self.store.upsert_document(tenant=tenant, document=document, chunks=chunks, vectors=vectors)
        return document

    async def retrieve(self, *, tenant: str, query: str, k: int) -> list[RetrievedChunk]:
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
{%- if cookiecutter.observability != 'none' %}
        with retrieval_span(data_source_id=self.store.data_source_id, query=query, top_k=k) as span:
            [vector] = await self.embedder.embed([query])
            chunks = await self.store.search(tenant=tenant, vector=vector, k=k)
            span.record_results(chunks)
        return chunks
{%- else %}
        [vector] = await self.embedder.embed([query])
        return await self.store.search(tenant=tenant, vector=vector, k=k)
{%- endif %}

    async def list_documents(self, *, tenant: str, limit: int = 100) -> list[DocumentInfo]:
        return await self.store.list_documents(tenant=tenant, limit=limit)

    async def get_document(self, *, tenant: str, document_id: str) -> DocumentInfo | None:
        return await self.store.get_document(tenant=tenant, document_id=document_id)

    async def delete_document(self, *, tenant: str, document_id: str) -> bool:
        return await self.store.delete_document(tenant=tenant, document_id=document_id)

    async def aclose(self) -> None:
        await self.embedder.aclose()
        await self.store.aclose()
