"""POST /v1/interactions/{id}/feedback: a thumbs up/down (and an optional comment) on one answer.

Owned like the record: another tenant's interaction id gets the same 404 as a missing one. Rated
interactions become eval cases with `python -m app.evals export --from-feedback`.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.auth import current_tenant
from app.db.base import run_db, session_scope
from app.db.models import Interaction
from app.evals.models import Feedback
from app.provenance import interaction_id_from
from app.provenance.redact import TraceContent, keep

router = APIRouter(tags=["provenance"])


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["up", "down"] = Field(description="Thumbs up or down.")
    comment: str | None = Field(None, max_length=4000, description="What was right or wrong with the answer.")


def _store(public_id: str, tenant: str, api_key_id: str | None, body: FeedbackIn) -> dict[str, Any] | None:
    with session_scope() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == interaction_id_from(public_id),
                                                       Interaction.tenant_id == tenant))
        if row is None:
            return None
        # The column holds the mode the interaction was recorded under (a settings.trace_content value).
        mode = cast(TraceContent, row.trace_content)
        comment = keep(body.comment.strip(), mode) if body.comment and body.comment.strip() else None
        feedback = Feedback(interaction_id=row.id, tenant_id=tenant, api_key_id=api_key_id,
                            rating=1 if body.rating == "up" else -1, comment=comment)
        session.add(feedback)
        session.flush()
        return {"object": "interaction.feedback", "id": feedback.id, "interaction_id": row.id,
                "rating": body.rating, "comment": comment}


@router.post("/v1/interactions/{interaction_id}/feedback", status_code=201, response_model=None)
async def post_feedback(interaction_id: str, body: FeedbackIn, request: Request,
                        tenant: str = Depends(current_tenant)) -> JSONResponse:
    stored = await run_db(_store, interaction_id, tenant, getattr(request.state, "api_key_id", None), body)
    if stored is None:
        raise HTTPException(404, f"no interaction {interaction_id!r} for this API key's tenant")
    return JSONResponse(stored, status_code=201)
