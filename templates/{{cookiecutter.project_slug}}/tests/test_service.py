"""`app.service.complete`: the non-streaming path other entry points (job workers) call directly."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from sqlalchemy import select

from app import service
from app.db import base as db
from app.db.models import Interaction
from app.schemas import ChatRequest, ChatResult


def test_complete_returns_a_result_and_records_provenance(make_settings: Any) -> None:
    settings = make_settings()
    db.configure(settings.database_url)
    db.upgrade(settings.database_url)
    service.configure(settings)
    request_id = uuid.uuid4().hex
    request = ChatRequest.model_validate({"messages": [{"role": "user", "content": "from a worker"}]})

    result = anyio.run(lambda: service.complete(request, tenant="worker-tenant", request_id=request_id))

    assert isinstance(result, ChatResult)
    assert result.provider == "fake" and result.model == "fake-1"
    assert "from a worker" in result.text and result.output_tokens == len(result.text.split())
    with db.session_scope() as session:
        row = session.scalar(select(Interaction).where(Interaction.request_id == request_id))
    assert row is not None and row.id == result.interaction_id and row.tenant_id == "worker-tenant"
    assert result.to_openai()["id"] == f"chatcmpl-{row.id}"
    anyio.run(service.shutdown)
