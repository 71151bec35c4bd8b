{%- if cookiecutter.vector_store == 'pgvector' -%}
"""SQL tables of vector memory (pgvector).

The table is declared on the app's `Base` so Alembic knows it (autogenerate would otherwise propose dropping
it). The vector width is fixed when the table is created, from EMBEDDING_DIMENSIONS.
"""

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.memory.config import get_memory_settings

EMBEDDING_DIMENSIONS = get_memory_settings().embedding_dimensions


class MemoryChunk(Base):
    __tablename__ = "memory_chunks"
    __table_args__ = (
        UniqueConstraint("tenant", "embedding_model", "document_id", "chunk_index", name="uq_memory_chunks_doc_chunk"),
        # The tenant index is what makes the exact per-tenant refill scan cheap (see pgvector_store.search).
        Index("ix_memory_chunks_tenant_model", "tenant", "embedding_model"),
        Index(
            "ix_memory_chunks_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    embedding_model: Mapped[str] = mapped_column(String(200))
    document_id: Mapped[str] = mapped_column(String(200))
    chunk_index: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
{%- else -%}
"""Vector memory keeps no SQL tables with Qdrant: chunks, vectors and document metadata live in Qdrant.

This module exists so the Alembic environment can import `app.memory.models` for every vector store.
"""
{%- endif %}
