"""Embedders: OpenAI embeddings and local OpenAI-compatible servers over httpx, plus an offline `fake`.

`fake` is a deterministic feature-hashing embedder: it needs no network or model, and texts that share words
land near each other, so dev and tests can ingest and retrieve for real. It is not a semantic model, so it is
never chosen silently when credentials exist, and it logs a WARNING whenever it is built.
"""

import asyncio
import hashlib
import logging
import math
import random
import re
from typing import Protocol

import httpx

from app.memory.config import MemorySettings

log = logging.getLogger("app.memory")

_WORD = re.compile(r"\w+", re.UNICODE)
# Function words carry no topic; dropping them keeps the fake embedder's neighbours about content.
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "has", "have", "how", "i",
        "in", "is", "it", "its", "of", "on", "or", "our", "that", "the", "their", "this", "to", "was", "we", "were",
        "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
    }
)


class EmbeddingError(RuntimeError):
    """The embedding provider failed or answered something unusable."""


class Embedder(Protocol):
    provider: str
    model: str
    dimensions: int

    @property
    def id(self) -> str:
        """Identifies the vector space; vectors from different ids must never be compared."""
        ...

    async def embed(self, texts: list[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


class FakeEmbedder:
    provider = "fake"

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.model = f"fake-hashing-{dimensions}"

    @property
    def id(self) -> str:
        return self.model

    def embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        counts: dict[str, int] = {}
        for word in _WORD.findall(text.lower()):
            if word not in _STOPWORDS:
                counts[word] = counts.get(word, 0) + 1
        for word, count in counts.items():
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[index] += sign * (1.0 + math.log(count))
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0.0:  # no content words: a fixed unit vector keeps cosine distance defined
            vector[0] = 1.0
            return vector
        return [v / norm for v in vector]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(text) for text in texts]

    async def aclose(self) -> None:
        return None


class OpenAICompatibleEmbedder:
    """POST {base_url}/embeddings, batched, with bounded jittered retries on 429/5xx/transport errors."""

    batch_size = 128
    retries = 2

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        api_key: str | None,
        model: str,
        dimensions: int,
        timeout_s: float,
        send_dimensions: bool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.dimensions = dimensions
        self._send_dimensions = send_dimensions
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.model}-{self.dimensions}"

    async def _post(self, batch: list[str]) -> list[list[float]]:
        body: dict[str, object] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self._send_dimensions:
            body["dimensions"] = self.dimensions
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.post("/embeddings", json=body)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise EmbeddingError(f"{self.provider} embeddings unreachable: {exc!r}") from exc
            else:
                if response.status_code == 200:
                    break
                if response.status_code != 429 and response.status_code < 500 or attempt == self.retries:
                    raise EmbeddingError(
                        f"{self.provider} embeddings answered {response.status_code}: {response.text[:200]}"
                    )
            await asyncio.sleep(random.uniform(0, 0.25 * 2**attempt))
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        vectors = [item["embedding"] for item in data]
        if len(vectors) != len(batch):
            raise EmbeddingError(f"{self.provider} returned {len(vectors)} embeddings for {len(batch)} inputs")
        for vector in vectors:
            if len(vector) != self.dimensions:
                raise EmbeddingError(
                    f"model {self.model} returned {len(vector)}-dimensional vectors but EMBEDDING_DIMENSIONS="
                    f"{self.dimensions}; set EMBEDDING_DIMENSIONS={len(vector)}"
                )
        return vectors

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._post(texts[start : start + self.batch_size]))
        return vectors

    async def aclose(self) -> None:
        await self._client.aclose()


def build_embedder(settings: MemorySettings, transport: httpx.AsyncBaseTransport | None = None) -> Embedder:
    provider = settings.embeddings_provider
    if provider == "auto":
        provider = "openai" if settings.openai_api_key else "fake"
    if provider == "fake":
        log.warning(
            "EMBEDDINGS: the offline `fake` hashing embedder is active (no OPENAI_API_KEY and no "
            "EMBEDDINGS_PROVIDER). Retrieval is lexical only; set OPENAI_API_KEY or EMBEDDINGS_PROVIDER=local "
            "with EMBEDDINGS_BASE_URL for real embeddings."
        )
        return FakeEmbedder(settings.embedding_dimensions)
    if provider == "openai":
        api_key = settings.embeddings_api_key or settings.openai_api_key
        if not api_key:
            raise ValueError("EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY (or EMBEDDINGS_API_KEY) to be set")
        return OpenAICompatibleEmbedder(
            provider="openai",
            base_url=settings.embeddings_base_url or settings.openai_base_url,
            api_key=api_key,
            model=settings.embeddings_model,
            dimensions=settings.embedding_dimensions,
            timeout_s=settings.embeddings_timeout_s,
            # Only the text-embedding-3 family accepts a `dimensions` parameter.
            send_dimensions=settings.embeddings_model.startswith("text-embedding-3"),
            transport=transport,
        )
    if not settings.embeddings_base_url:
        raise ValueError(
            "EMBEDDINGS_PROVIDER=local needs EMBEDDINGS_BASE_URL, e.g. http://localhost:8001/v1 "
            "(an OpenAI-compatible server)"
        )
    return OpenAICompatibleEmbedder(
        provider="local",
        base_url=settings.embeddings_base_url,
        api_key=settings.embeddings_api_key,
        model=settings.embeddings_model,
        dimensions=settings.embedding_dimensions,
        timeout_s=settings.embeddings_timeout_s,
        send_dimensions=False,
        transport=transport,
    )
