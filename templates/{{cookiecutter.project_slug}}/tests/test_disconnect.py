"""A client that hangs up cancels the upstream call within a second, and what it consumed is recorded."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import select

from app.db.base import session_scope
from app.db.models import Interaction{% if cookiecutter.usage_billing != 'none' %}, UsageRecord{% endif %}
from app.settings import DEFAULT_PROVIDER_MODELS
from tests.conftest import upstream_settings, wait_for
from tests.servers import Behaviour, StubUpstream

PROVIDERS: list[str] = {{ cookiecutter._blueprint.stack.gateway.providers | tojson }}
FIRST = PROVIDERS[0]


def test_disconnect_cancels_upstream_and_records_usage_so_far(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    # A long, slow answer: 400 chunks, 20 ms apart (8 s in total).
    upstream.plan(FIRST, Behaviour(chunks=[f" w{i}" for i in range(400)], chunk_delay=0.02))
    with live(providers=[FIRST], fallback=[], **upstream_settings(stub_url, [FIRST])) as (url, headers):
        with httpx.Client(timeout=10) as client:
            with client.stream("POST", f"{url}/v1/chat/completions", headers=headers, json={
                "model": DEFAULT_PROVIDER_MODELS[FIRST], "stream": True,
                "messages": [{"role": "user", "content": "tell me a long story"}],
            }) as response:
                interaction_id = response.headers["x-interaction-id"]
                lines = response.iter_lines()
                received = [next(lines) for _ in range(10)]
                hung_up = time.monotonic()
        # Leaving the `with` closed the connection mid-stream.
        call = wait_for(lambda: upstream.calls_to(FIRST)[0] if upstream.calls_to(FIRST)[0].ended else None)
        assert not call.completed
        assert call.ended - hung_up < 1.0, f"upstream kept streaming {call.ended - hung_up:.2f} s after disconnect"

        def stored() -> Interaction | None:
            with session_scope() as session:
                return session.scalar(select(Interaction).where(Interaction.id == interaction_id))

        row = wait_for(stored)
    assert any("w0" in line for line in received)
    assert row.status == "cancelled" and row.usage_estimated
    assert row.output_tokens and row.output_tokens > 0  # counted here: the provider never reported usage
    assert row.input_tokens and row.input_tokens > 0
{%- if cookiecutter.usage_billing != 'none' %}
    with session_scope() as session:
        usage = session.scalar(select(UsageRecord).where(UsageRecord.interaction_id == interaction_id))
    assert usage is not None and usage.estimated and usage.output_tokens == row.output_tokens
{%- endif %}
