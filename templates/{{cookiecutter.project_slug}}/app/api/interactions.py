"""GET /v1/interactions/{id}: the provenance record of one answer, to its owner only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from app import provenance
from app.auth import current_tenant
from app.db.base import run_db

router = APIRouter(tags=["provenance"])


@router.get("/v1/interactions/{interaction_id}")
async def get_interaction(interaction_id: str, tenant: str = Depends(current_tenant)) -> dict[str, Any]:
    record = await run_db(provenance.load, interaction_id, tenant)
    if record is None:
        # Same answer for "not yours" and "does not exist": ids must not leak across tenants.
        raise HTTPException(404, f"no interaction {interaction_id!r} for this API key's tenant")
    return record
