"""Vector memory for retrieval-augmented answers.

The chat path calls `await retrieve(tenant=..., query=..., k=...)` and gets `RetrievedChunk`s (`.document_id`,
`.chunk_index`, `.text`, `.score`); `router` serves /v1/documents. One `Memory` per process, built on first use.
"""

from app.memory.config import MemorySettings, get_memory_settings
from app.memory.embedder import build_embedder
from app.memory.service import Memory
from app.memory.store import DocumentInfo, RetrievedChunk

__all__ = ["DocumentInfo", "Memory", "RetrievedChunk", "build_memory", "close_memory", "get_memory", "retrieve"]

_memory: Memory | None = None


def build_memory(settings: MemorySettings | None = None) -> Memory:
    settings = settings or get_memory_settings()
    embedder = build_embedder(settings)
{%- if cookiecutter.vector_store == 'qdrant' %}
    from app.memory.qdrant_store import QdrantStore

    store = QdrantStore(settings, embedder_id=embedder.id, dimensions=embedder.dimensions)
{%- else %}
    from app.memory.pgvector_store import PgvectorStore

    store = PgvectorStore(settings, embedder_id=embedder.id, dimensions=embedder.dimensions)
{%- endif %}
    return Memory(settings=settings, embedder=embedder, store=store)


def get_memory() -> Memory:
    global _memory
    if _memory is None:
        _memory = build_memory()
    return _memory


async def close_memory() -> None:
    global _memory
    if _memory is not None:
        memory, _memory = _memory, None
        await memory.aclose()


async def retrieve(*, tenant: str, query: str, k: int) -> list[RetrievedChunk]:
    """Top-k chunks of `tenant`'s documents for `query` (k of them whenever the tenant has k)."""
    return await get_memory().retrieve(tenant=tenant, query=query, k=k)
