"""Interaction provenance: for every answer, which prompt version, data, provider and model produced it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.db.base import session_scope
from app.db.models import Interaction, UsageRecord
from app.evals.models import Feedback


def interaction_id_from(public_id: str) -> str:
    """Accept both the record id and the chat completion id (`chatcmpl-<record id>`)."""
    return public_id.removeprefix("chatcmpl-")


def load(public_id: str, tenant: str) -> dict[str, Any] | None:
    """The record, only for its owning tenant (others get None, indistinguishable from a missing id)."""
    with session_scope() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == interaction_id_from(public_id),
                                                       Interaction.tenant_id == tenant))
        if row is None:
            return None
        record = to_dict(row)
        # The iteration loop's additions (issue 19): billed cost and feedback, read from their own tables.
        cost = session.scalar(select(UsageRecord.cost_usd).where(UsageRecord.interaction_id == row.id))
        record["cost_usd"] = float(cost) if cost is not None else None
        record["feedback"] = [{"rating": "up" if f.rating > 0 else "down", "comment": f.comment,
                               "created_at": _iso(f.created_at)}
                              for f in session.scalars(select(Feedback).where(Feedback.interaction_id == row.id)
                                                       .order_by(Feedback.id))]
        return record


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands datetimes back without their zone; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def to_dict(row: Interaction) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "interaction",
        "request_id": row.request_id,
        "tenant": row.tenant_id,
        "api_key_id": row.api_key_id,
        "created_at": _iso(row.created_at),
        "finished_at": _iso(row.finished_at),
        "ttft_ms": row.ttft_ms,
        "latency_ms": row.latency_ms,
        "stream": row.stream,
        "prompt": {"name": row.prompt_name, "version": row.prompt_version, "sha256": row.prompt_sha256},
        "requested_model": row.requested_model,
        "provider": row.provider,
        "model": row.model,
        "response_model": row.response_model,
        "response_id": row.response_id,
        "retrieved_document_ids": row.retrieved_document_ids or [],
        "attempts": row.attempts or [],
        "usage": {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
                  "estimated": row.usage_estimated},
        "finish_reason": row.finish_reason,
        "status": row.status,
        "error": row.error,
        "trace_content": row.trace_content,
        "input_text": row.input_text,
        "output_text": row.output_text,
        "trace_id": row.trace_id,
        "retrieved_chunks": row.retrieved_chunks or [],
    }
