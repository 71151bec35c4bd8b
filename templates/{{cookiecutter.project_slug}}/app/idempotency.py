"""Request ids as idempotency keys: one id, one answer, one bill.

A client-chosen id (`Idempotency-Key` / `X-Request-Id`) is claimed with the hash of the request body
before any model is called:
- new id: the request runs; its outcome settles the claim in the same transaction as the usage row;
- same id, same body, answered: the stored answer is replayed, the model is not called again;
- same id, different body, or same id while the first is still running or was cut short after it was
  billed: 409 with a one-line reason.
A request that failed before any provider answered releases its claim, so the client can retry it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.base import rowcount, session_scope, utcnow
from app.db.models import IdempotencyRecord
from app.gateway import GatewayError
from app.schemas import ChatRequest, ChatResult

# A claim still pending after this long belongs to a process that died mid-request (SIGKILL, OOM): its
# usage was never written, so the id may be answered (and billed) again. Longer than any stream lives.
ABANDONED_AFTER = timedelta(minutes=10)


class IdempotencyConflictError(GatewayError):
    status = 409
    code = "idempotency_conflict"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def key_for(tenant: str, request_id: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{request_id}".encode()).hexdigest()


def body_hash(request: ChatRequest) -> str:
    """The request as the model sees it; `stream` is left out so an answer can be replayed either way."""
    body = request.model_dump(mode="json", exclude={"stream", "stream_options"}, exclude_none=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(tenant: str, request_id: str, body_sha256: str) -> ChatResult | None:
    """Reserve the id for this body (None: go ahead) or return the stored answer to replay.
    Raises IdempotencyConflictError when the id cannot be used for this request."""
    key = key_for(tenant, request_id)
    now = utcnow()
    try:
        with session_scope() as session:
            session.add(IdempotencyRecord(key=key, tenant_id=tenant, request_id=request_id, body_sha256=body_sha256,
                                          state="pending", result=None, created_at=now, updated_at=now))
        return None
    except IntegrityError:
        pass  # the id was used before (or is in use right now): decide from the stored claim
    with session_scope() as session:
        row = session.get(IdempotencyRecord, key)
        if row is None:  # released between our insert and this read: the id is free again
            return claim(tenant, request_id, body_sha256)
        if row.body_sha256 != body_sha256:
            raise IdempotencyConflictError(
                f"request id {request_id!r} was already used with a different request body; "
                "send a new Idempotency-Key for a new request")
        if row.state == "done" and row.result is not None:
            return ChatResult(**row.result)
        if row.state == "spent":
            raise IdempotencyConflictError(
                f"request id {request_id!r} was already answered in part (the stream was cut short and billed); "
                "send a new Idempotency-Key to ask again")
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=now.tzinfo)
        if now - updated < ABANDONED_AFTER:
            raise IdempotencyConflictError(
                f"a request with id {request_id!r} is still in progress; retry when it has finished",
                retry_after_s=1)
        # Take over an abandoned claim; the conditional update makes exactly one taker win.
        taken = rowcount(session.execute(update(IdempotencyRecord).where(
            IdempotencyRecord.key == key, IdempotencyRecord.state == "pending",
            IdempotencyRecord.updated_at == row.updated_at).values(updated_at=now)))
        if not taken:
            raise IdempotencyConflictError(
                f"a request with id {request_id!r} is still in progress; retry when it has finished",
                retry_after_s=1)
        return None


def settle(session: Session, tenant: str, request_id: str, *, served: bool, result: ChatResult | None) -> None:
    """Record the outcome in the caller's transaction (the one that writes the usage row)."""
    key = key_for(tenant, request_id)
    pending = (IdempotencyRecord.key == key, IdempotencyRecord.state == "pending")
    if not served:
        session.execute(delete(IdempotencyRecord).where(*pending))
        return
    values: dict[str, Any] = {"state": "done" if result is not None else "spent", "updated_at": utcnow(),
                              "result": asdict(result) if result is not None else None}
    session.execute(update(IdempotencyRecord).where(*pending).values(**values))


def release(tenant: str, request_id: str) -> None:
    """Give the id back after a failure before any model was called (bad prompt name, retrieval error)."""
    with session_scope() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key == key_for(tenant, request_id),
                                                        IdempotencyRecord.state == "pending"))
