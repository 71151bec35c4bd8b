"""A client that hangs up cancels the upstream call within a second, and what it consumed is recorded."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.base import session_scope
from app.db.models import Interaction{% if cookiecutter.usage_billing != 'none' %}, UsageRecord{% endif %}
from app.gateway.base import estimate_tokens
from app.settings import DEFAULT_PROVIDER_MODELS
from tests.conftest import upstream_settings, wait_for
from tests.servers import Behaviour, StubUpstream

PROVIDERS: list[str] = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}]
FIRST = PROVIDERS[0]


def assert_upstream_cut_short(upstream: StubUpstream, hung_up: float) -> None:
    call = wait_for(lambda: upstream.calls_to(FIRST)[0] if upstream.calls_to(FIRST)[0].ended else None)
    assert not call.completed
    assert call.ended - hung_up < 1.0, f"upstream kept answering {call.ended - hung_up:.2f} s after disconnect"


def stored(where: Any) -> Interaction:
    def find() -> Interaction | None:
        with session_scope() as session:
            return session.scalar(select(Interaction).where(where))

    return wait_for(find)


def assert_billed_as_recorded(row: Interaction) -> None:
{%- if cookiecutter.usage_billing != 'none' %}
    with session_scope() as session:
        usage = session.scalar(select(UsageRecord).where(UsageRecord.interaction_id == row.id))
    assert usage is not None and usage.status == "cancelled"
    assert (usage.output_tokens, usage.estimated) == (row.output_tokens, row.usage_estimated)
{%- else %}
    return None  # no usage billing in this project: the record is the whole account
{%- endif %}


def test_disconnect_cancels_upstream_and_records_usage_so_far(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    # A long, slow answer: 400 chunks, 20 ms apart (8 s in total).
    upstream.plan(FIRST, Behaviour(chunks=[f" w{i}" for i in range(400)], chunk_delay=0.02))
    # A first-token timeout well above the stub's: a tight latency budget (50 ms gives 25 ms attempts) must not
    # time the attempt out before the disconnect this test is about.
    with live(providers=[FIRST], fallback=[], timeout_s=5.0, provider_timeouts={},
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
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
        assert_upstream_cut_short(upstream, hung_up)
        row = stored(Interaction.id == interaction_id)
    texts = [json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in received
             if line.startswith("data: {")]
    assert "".join(texts).startswith(" w0")
    assert row.status == "cancelled"
    # No final usage report arrived, so what the client received is counted and the larger figure billed
    # (Gemini reports cumulative counts on every chunk, so its own figure may already be the larger).
    assert row.output_tokens is not None and row.output_tokens >= estimate_tokens("".join(texts))
    assert row.usage_estimated or FIRST == "gemini"
    assert row.input_tokens and row.input_tokens > 0
    assert_billed_as_recorded(row)


def test_disconnect_cancels_a_non_streaming_request_and_records_usage_so_far(
        live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(chunks=[f" w{i}" for i in range(400)], chunk_delay=0.02))
    with live(providers=[FIRST], fallback=[], timeout_s=5.0, provider_timeouts={},
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        request_id = f"nonstream-{time.monotonic_ns()}"
        with httpx.Client(timeout=10) as client:
            # The client gives up (a timeout, a closed tab) while the model is still answering.
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"{url}/v1/chat/completions", timeout=httpx.Timeout(10, read=0.6),
                            headers={**headers, "Idempotency-Key": request_id}, json={
                                "model": DEFAULT_PROVIDER_MODELS[FIRST],
                                "messages": [{"role": "user", "content": "tell me a long story"}]})
            hung_up = time.monotonic()
        assert_upstream_cut_short(upstream, hung_up)
        row = stored(Interaction.request_id == request_id)
    assert row.status == "cancelled" and not row.stream
    # What the model produced before the hang-up is billed, as for a stream cut short (estimated: no final report).
    assert row.output_tokens and row.output_tokens > 0
    assert row.usage_estimated or FIRST == "gemini"
    assert_billed_as_recorded(row)


def test_a_stream_dropped_before_the_response_starts_is_closed_and_recorded(
        make_settings: Any, stub: tuple[StubUpstream, str]) -> None:
    import anyio

    from app import service
    from app.db import base as db
    from app.schemas import ChatRequest

    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(chunks=[f" w{i}" for i in range(400)], chunk_delay=0.02))
    settings = make_settings(providers=[FIRST], fallback=[], timeout_s=5.0, provider_timeouts={},
                             **upstream_settings(stub_url, [FIRST]))
    db.configure(settings.database_url)
    db.upgrade(settings.database_url)
    service.configure(settings)
    request = ChatRequest.model_validate({"model": DEFAULT_PROVIDER_MODELS[FIRST], "stream": True,
                                         "messages": [{"role": "user", "content": "never read"}]})

    async def open_then_drop() -> str:
        turn, _events = await service.open_stream(request, tenant="t-drop", request_id="drop-1")
        assert turn.abandon is not None
        await turn.abandon()  # what the response does when the client left before the first byte
        await service.shutdown()
        return turn.id

    interaction_id = anyio.run(open_then_drop)
    call = wait_for(lambda: upstream.calls_to(FIRST)[0] if upstream.calls_to(FIRST)[0].ended else None)
    assert not call.completed
    row = stored(Interaction.id == interaction_id)
    assert row.status == "cancelled"
