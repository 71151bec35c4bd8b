"""Upstream connection pools that stay cheap with hundreds of open streams.

httpcore's pool re-scans every connection it holds whenever it admits or releases a request, and for each idle
connection it counts the whole pool again: quadratic in the pool's size. With one pool per provider, 64
concurrent streams cost 15 ms of CPU each and 256 pushed first tokens past the first-chunk timeout
(bench/README.md). Here a provider's client spreads its requests over many small pools: a request goes to the
first pool with room (so light traffic keeps reusing the same warm connections), or, when all are full, to the
least busy one. Every scan stays short, and connections are still kept alive and reused across requests and
retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

# Requests in flight per pool before the next pool takes the overflow. Measured at 16, 64 and 256 concurrent
# streams (bench/README.md): 4 per pool beat 8 and 32; past POOLS * STREAMS_PER_POOL streams, pools grow evenly.
STREAMS_PER_POOL = 4
POOLS = 64
# Below uvicorn's 5 s keep-alive (vLLM's server and most Python model servers), so a connection the server is
# about to close is never picked for a new request.
KEEPALIVE_EXPIRY_S = 4.0


class _Pool:
    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.transport = transport
        self.in_flight = 0


class _Body(httpx.AsyncByteStream):
    """A response body that gives its pool's slot back once it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, pool: _Pool) -> None:
        self._stream, self._pool, self._open = stream, pool, True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()  # no generator of our own: it would run on every chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._pool.in_flight -= 1


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 1000, pools: int = POOLS) -> None:
        # Each pool keeps as many idle connections as it carries streams: a steady load never reconnects.
        limits = httpx.Limits(max_connections=max(STREAMS_PER_POOL, max_connections // pools),
                              max_keepalive_connections=STREAMS_PER_POOL, keepalive_expiry=KEEPALIVE_EXPIRY_S)
        self.pools = [_Pool(httpx.AsyncHTTPTransport(limits=limits)) for _ in range(pools)]

    def _pick(self) -> _Pool:
        for pool in self.pools:
            if pool.in_flight < STREAMS_PER_POOL:
                return pool
        return min(self.pools, key=lambda p: p.in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pick()
        pool.in_flight += 1
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            pool.in_flight -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream, pool)
        return response

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.transport.aclose()
