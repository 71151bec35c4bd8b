"""The gateway's HTTP to providers: connections pooled and reused, and the SSE parser on raw reads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.gateway.base import sse_events
from app.gateway.pool import POOLS, STREAMS_PER_POOL, ShardedTransport
from tests.servers import serve


async def parse(reads: list[bytes]) -> list[tuple[str | None, str]]:
    async def body() -> AsyncIterator[bytes]:
        for read in reads:
            yield read

    return [event async for event in sse_events(httpx.Response(200, content=body()))]


@pytest.mark.parametrize(("reads", "expected"), [
    ([b"data: a\n\ndata: b\n\n"], [(None, "a"), (None, "b")]),
    ([b"data: a\r", b"\n\r\n", b"event: x\r\ndata: 1\r\ndata: 2\r\n\r\n"], [(None, "a"), ("x", "1\n2")]),
    ([b"da", b"ta: h\xc3", b"\xa9llo\n", b"\n: a comment\n\ndata:[DONE]\n\n"],
     [(None, "h\u00e9llo"), (None, "[DONE]")]),
    ([b"data: a\r\rdata: b\r\r"], [(None, "a"), (None, "b")]),
    ([b"data: {\"k\": 1}\n\ndata: last, unterminated"], [(None, '{"k": 1}'), (None, "last, unterminated")]),
    ([b"\n\n\n", b"data:  two spaces\n\n"], [(None, " two spaces")]),
], ids=["lf", "crlf-split-across-reads", "utf8-split-across-reads", "cr-only", "unterminated-end",
        "blank-lines-and-one-space-stripped"])
def test_sse_events_parse_any_line_ending_and_read_boundary(reads: list[bytes],
                                                            expected: list[tuple[str | None, str]]) -> None:
    assert asyncio.run(parse(reads)) == expected


class Upstream:
    """Answers once `released` is set, and remembers the client port of every request (one per connection)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.released = threading.Event()  # the server runs in its own thread and loop
        self.released.set()
        self.app = Starlette(routes=[Route("/", self.answer)])

    async def answer(self, request: Request) -> PlainTextResponse:
        assert request.client is not None
        self.ports.append(request.client.port)
        await asyncio.to_thread(self.released.wait, 10)
        return PlainTextResponse("ok")

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ports) < count and time.monotonic() < deadline:
            time.sleep(0.005)


@pytest.fixture
def upstream() -> Any:
    server = Upstream()
    with serve(server.app) as url:
        yield server, url


def test_sequential_requests_reuse_one_connection(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream

    async def run() -> None:
        async with httpx.AsyncClient(transport=ShardedTransport()) as client:
            for _ in range(20):
                assert (await client.get(url)).text == "ok"

    asyncio.run(run())
    assert len(server.ports) == 20 and len(set(server.ports)) == 1


def test_concurrent_requests_fill_small_pools_and_reuse_them_next_time(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    streams = 3 * STREAMS_PER_POOL + 1
    seen: list[list[int]] = []

    async def run() -> None:
        transport = ShardedTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):
                server.released.clear()
                wave = [asyncio.create_task(client.get(url)) for _ in range(streams)]
                await asyncio.to_thread(server.wait_for_requests, streams * (len(seen) + 1))
                seen.append([p.in_flight for p in transport.pools])
                server.released.set()
                assert all(r.text == "ok" for r in await asyncio.gather(*wave))
            assert sum(p.in_flight for p in transport.pools) == 0

    asyncio.run(run())
    # Each of the first pools carried at most its share; the rest stayed empty.
    assert seen[0][:4] == [STREAMS_PER_POOL] * 3 + [1] and not any(seen[0][4:]) and len(seen[0]) == POOLS
    first, second = server.ports[:streams], server.ports[streams:]
    assert len(set(first)) == streams
    assert set(second) == set(first), "the second wave opened new connections instead of reusing the first's"
