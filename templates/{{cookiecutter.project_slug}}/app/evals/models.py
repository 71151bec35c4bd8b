"""Tables of the iteration loop: feedback on answers, and eval runs with their per-case results.

Created by migration `0006_feedback_evals` (a branch off `0001_initial`, label `iteration`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class Feedback(Base):
    """A thumbs up (+1) or down (-1) on one interaction, owned by the interaction's tenant."""

    __tablename__ = "interaction_feedback"
    __table_args__ = (Index("ix_feedback_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interaction_id: Mapped[str] = mapped_column(String(32), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    rating: Mapped[int] = mapped_column(Integer)
    # Kept per TRACE_CONTENT like the answer it comments on (None in metadata mode).
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvalRun(Base):
    """One `python -m app.evals run`: its parameters, so two runs can be told apart and reproduced."""

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    dataset: Mapped[str] = mapped_column(String(512))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class EvalResult(Base):
    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    case_id: Mapped[str] = mapped_column(String(200))
    interaction_id: Mapped[str | None] = mapped_column(String(32))
    passed: Mapped[bool] = mapped_column(default=False)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
