"""Settings for vector memory, read from the environment (and `.env`).

Kept separate from `app.settings` so the memory package stays importable and testable on its own.
"""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MemorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # auto: OpenAI when OPENAI_API_KEY is set, otherwise the offline `fake` embedder (logged loudly).
    embeddings_provider: Literal["auto", "openai", "local", "fake"] = "auto"
    embeddings_model: str = "text-embedding-3-small"
    embedding_dimensions: int = Field(default=1536, ge=8, le=16000)
    embeddings_base_url: str | None = None  # OpenAI-compatible server (vLLM, Ollama, TEI) for provider=local
    embeddings_api_key: str | None = None
    embeddings_timeout_s: float = 30.0
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"

    chunk_size: int = Field(default=1200, ge=100, alias="MEMORY_CHUNK_SIZE")
    chunk_overlap: int = Field(default=150, ge=0, alias="MEMORY_CHUNK_OVERLAP")
    max_document_chars: int = Field(default=2_000_000, ge=1, alias="MEMORY_MAX_DOCUMENT_CHARS")
{%- if cookiecutter.vector_store == 'qdrant' %}

    # Embedded local mode (no server) unless QDRANT_URL points at a Qdrant server.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_path: str = ".data/qdrant"
    qdrant_collection: str = "documents"
{%- endif %}
{%- if cookiecutter.vector_store == 'pgvector' %}

    # PGVECTOR_URL, else DATABASE_URL when it is PostgreSQL, else an embedded PostgreSQL (pgserver) if installed.
    pgvector_url: str | None = None
    database_url: str | None = None
    pgvector_embedded_path: str = ".data/pgvector"
    # HNSW candidate list size; tenant filtering refills from an exact scan when it comes back short.
    pgvector_ef_search: int = Field(default=100, ge=10, le=1000)
{%- endif %}


@lru_cache
def get_memory_settings() -> MemorySettings:
    return MemorySettings()
