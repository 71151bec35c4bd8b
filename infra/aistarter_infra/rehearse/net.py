"""Host side of the rehearsal's network: Service and pod addresses, relays, and the model-server double.

Every relay runs on one asyncio loop in a background thread. A Service listens (on its loopback address and on
the unix socket the pods' proxies use) only while it has an endpoint, so a Service without ready pods refuses
connections the way kube-proxy's REJECT rule does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _relay(connect: Connect) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await connect()
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


def tcp(host: str, port: int) -> Connect:
    return lambda: asyncio.open_connection(host, port)


def unix(path: str) -> Connect:
    return lambda: asyncio.open_unix_connection(path)


class Router:
    """Loopback addresses 127.<a>.<b>.x for this run, and the relays behind them."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.svc_dir = run_dir / "svc"
        self.svc_dir.mkdir(parents=True)
        self.svc_dir.chmod(0o755)
        # A /24 of its own per run (127/8 is all loopback on Linux), so parallel rehearsals never collide.
        rnd = uuid.uuid4().int
        self.prefix = f"127.{10 + rnd % 240}.{rnd // 240 % 250 + 1}"
        self._next = 10
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: dict[tuple[str, int], list[asyncio.AbstractServer]] = {}

    def address(self) -> str:
        self._next += 1
        return f"{self.prefix}.{self._next}"

    def _run(self, coro: Awaitable[Any]) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout=30)

    def svc_socket(self, host: str, port: int) -> str:
        return str(self.svc_dir / f"{host}_{port}.sock")

    def serve(self, host: str, port: int, connect: Connect | None, egress: bool = True) -> None:
        """(Re)point host:port at `connect`; None closes it (connections refused)."""
        async def apply() -> None:
            for server in self._servers.pop((host, port), []):
                server.close()
            path = self.svc_socket(host, port)
            if os.path.exists(path):
                os.unlink(path)
            if connect is None:
                return
            servers = [await asyncio.start_server(_relay(connect), host, port, reuse_address=True)]
            if egress:
                servers.append(await asyncio.start_unix_server(_relay(connect), path))
                os.chmod(path, 0o777)
            self._servers[(host, port)] = servers
        self._run(apply())

    def close(self) -> None:
        for key in list(self._servers):
            with contextlib.suppress(Exception):  # best-effort teardown
                self.serve(key[0], key[1], None)

        async def cancel_relays() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self._run(cancel_relays())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


# --------------------------------------------------------------------------------------------- model-server double


class ModelDouble:
    """An OpenAI-compatible stand-in for the model server: /health, /v1/models, /v1/chat/completions (streaming
    and not), /metrics. The only stand-in of the rehearsal; it answers with a fixed sentence."""

    REPLY = "Rehearsal reply from the model-server double."

    def __init__(self, router: Router, model: str) -> None:
        self.router = router
        self.model = model
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.requests = 0

    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self) -> None:
        async def go() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
        self.router._run(go())

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def connect(self) -> Connect:
        return tcp("127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                await self._respond(method, path.split("?")[0], body, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, status: str, body: bytes,
                    ctype: str = "application/json") -> None:
        writer.write(f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                     + body)
        await writer.drain()

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        if path == "/health":
            await self._send(writer, "200 OK", b"")
        elif path == "/metrics":
            await self._send(writer, "200 OK", f"vllm:num_requests_running 0\nrehearsal_double_requests "
                             f"{self.requests}\n".encode(), "text/plain; version=0.0.4")
        elif path == "/v1/models":
            await self._send(writer, "200 OK", json.dumps(
                {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "rehearsal"}]}
            ).encode())
        elif path == "/v1/chat/completions" and method == "POST":
            self.requests += 1
            req = json.loads(body or b"{}")
            words = self.REPLY.split(" ")
            usage = {"prompt_tokens": 12, "completion_tokens": len(words), "total_tokens": 12 + len(words)}
            ident = f"chatcmpl-rehearsal-{self.requests}"
            created = int(time.time())
            if not req.get("stream"):
                await self._send(writer, "200 OK", json.dumps({
                    "id": ident, "object": "chat.completion", "created": created, "model": self.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": self.REPLY}}],
                    "usage": usage}).encode())
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

            def chunk(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
                event = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": self.model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
                return f"data: {json.dumps(event)}\n\n".encode()

            events = [chunk({"role": "assistant", "content": ""})]
            events += [chunk({"content": (" " if i else "") + w}) for i, w in enumerate(words)]
            events.append(chunk({}, "stop"))
            if (req.get("stream_options") or {}).get("include_usage"):
                events.append(f"data: {json.dumps({'id': ident, 'object': 'chat.completion.chunk', 'created': created, 'model': self.model, 'choices': [], 'usage': usage})}\n\n".encode())  # noqa: E501
            events.append(b"data: [DONE]\n\n")
            for e in events:
                writer.write(f"{len(e):x}\r\n".encode() + e + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        else:
            await self._send(writer, "404 Not Found", b'{"error": "not served by the rehearsal double"}')
