"""/v1/documents: ingest, list and delete the calling tenant's documents."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from app.auth import current_tenant
from app.memory import get_memory
from app.memory.embedder import EmbeddingError
from app.memory.service import DocumentError
from app.memory.store import DocumentInfo

router = APIRouter(prefix="/v1/documents", tags=["documents"])

Tenant = Annotated[str, Depends(current_tenant)]


class DocumentIn(BaseModel):
    text: str = Field(description="The document content, plain text or markdown.")
    source: str | None = Field(default=None, max_length=1000, description="Where it came from: file name or URL.")
    content_type: str | None = Field(default=None, description="text/plain or text/markdown; guessed from source.")
    id: str | None = Field(default=None, description="Your id for the document; re-sending it replaces the document.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentOut(BaseModel):
    id: str
    object: str = "document"
    source: str | None
    chunks: int
    created_at: datetime
    metadata: dict[str, Any]

    @classmethod
    def of(cls, doc: DocumentInfo) -> "DocumentOut":
        return cls(id=doc.id, source=doc.source, chunks=doc.chunks, created_at=doc.created_at, metadata=doc.metadata)


class DocumentList(BaseModel):
    object: str = "list"
    data: list[DocumentOut]


class DocumentDeleted(BaseModel):
    id: str
    object: str = "document"
    deleted: bool = True


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DocumentOut)
async def create_document(body: DocumentIn, tenant: Tenant) -> DocumentOut:
    try:
        doc = await get_memory().ingest(
            tenant=tenant,
            text=body.text,
            source=body.source,
            content_type=body.content_type,
            document_id=body.id,
            metadata=body.metadata,
        )
    except DocumentError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    except EmbeddingError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"embedding failed: {exc}") from exc
    return DocumentOut.of(doc)


@router.get("", response_model=DocumentList)
async def list_documents(tenant: Tenant, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DocumentList:
    docs = await get_memory().list_documents(tenant=tenant, limit=limit)
    return DocumentList(data=[DocumentOut.of(doc) for doc in docs])


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: str, tenant: Tenant) -> DocumentOut:
    doc = await get_memory().get_document(tenant=tenant, document_id=document_id)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {document_id!r} for this API key")
    return DocumentOut.of(doc)


@router.delete("/{document_id}", response_model=DocumentDeleted)
async def delete_document(document_id: str, tenant: Tenant) -> DocumentDeleted:
    if not await get_memory().delete_document(tenant=tenant, document_id=document_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {document_id!r} for this API key")
    return DocumentDeleted(id=document_id)
