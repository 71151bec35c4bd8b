"""A loopback TCP proxy that adds a round-trip delay, so the `tls-rtt` scenario looks like a remote provider.

`python -m bench.tlsproxy --port P --target-port T --rtt-ms 20 --stats-port S` accepts connections on
127.0.0.1:P and forwards the bytes, untouched, to 127.0.0.1:T (the stub upstream serving HTTPS). Every byte
waits half the round trip in each direction, and a new connection waits one full round trip before its first
byte moves, which is what the TCP handshake costs against a real server. TLS is end to end (client and stub);
the proxy only counts connections and TLS ClientHello records, so connection reuse and handshakes per stream
are measured where a provider would see them.

Connecting to the stats port returns one JSON line: {"connections": n, "tls_handshakes": m}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

# A TLS record of type handshake (0x16) from the client side opens every new TLS session (full or resumed).
TLS_HANDSHAKE_RECORD = b"\x16\x03"

STATS = {"connections": 0, "tls_handshakes": 0}


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float,
                count_hello: bool) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    first = True
    try:
        while data := await reader.read(65536):
            if first and count_hello and data.startswith(TLS_HANDSHAKE_RECORD):
                STATS["tls_handshakes"] += 1
            first = False
            queue.put_nowait((loop.time() + delay_s, data))
    except OSError:
        pass
    queue.put_nowait((loop.time() + delay_s, b""))
    with contextlib.suppress(OSError):
        await sender


def _handler(target_port: int, rtt_s: float):  # noqa: ANN202 (asyncio callback)
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        STATS["connections"] += 1
        await asyncio.sleep(rtt_s)  # the TCP handshake's round trip
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pump(client_r, upstream_w, rtt_s / 2, True),
                                 _pump(upstream_r, client_w, rtt_s / 2, False))
        finally:
            for w in (client_w, upstream_w):
                w.close()

    return handle


async def _stats(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((json.dumps(STATS) + "\n").encode())
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()


async def serve(port: int, target_port: int, rtt_ms: float, stats_port: int) -> None:
    proxy = await asyncio.start_server(_handler(target_port, rtt_ms / 1000.0), "127.0.0.1", port)
    stats = await asyncio.start_server(_stats, "127.0.0.1", stats_port)
    async with proxy, stats:
        await asyncio.gather(proxy.serve_forever(), stats.serve_forever())


def read_stats(stats_port: int) -> dict[str, int]:
    import socket

    with socket.create_connection(("127.0.0.1", stats_port), timeout=5) as sock:
        return dict(json.loads(sock.makefile().readline()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tlsproxy")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--stats-port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.target_port, args.rtt_ms, args.stats_port))


if __name__ == "__main__":
    main()
