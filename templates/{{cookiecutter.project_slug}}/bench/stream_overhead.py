"""What does the app add to a stream? Side by side: a loopback stub upstream called directly, and the same
upstream called through the app (auth, gateway, metering and provenance all on, SQLite).

Reports added time to first token (p50/p99) and added time per chunk at concurrency 1 and 16. The stub,
the app and this client run as three processes, so the app's numbers are not shared with the client's CPU.

    python bench/stream_overhead.py [--requests 200] [--chunks 40] [--chunk-delay-ms 5] [--ttft-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # run as a script from a checkout, installed or not
# The adapter the bench goes through: the first provider of the blueprint, as the app would use it.
PROVIDER = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}][0]


def stub_app() -> Any:
    """The upstream: tests/servers.py's stub, pacing set by BENCH_* variables (run by uvicorn --factory)."""
    from tests.servers import Behaviour, StubUpstream

    stub = StubUpstream()
    chunks = [f" tok{i}" for i in range(int(os.environ["BENCH_CHUNKS"]))]
    behaviour = Behaviour(chunks=chunks, first_delay=float(os.environ["BENCH_TTFT_MS"]) / 1000,
                          chunk_delay=float(os.environ["BENCH_CHUNK_DELAY_MS"]) / 1000)
    # Every call gets the same behaviour.
    stub.scripts = _Always(behaviour)  # type: ignore[assignment]
    return stub.app


class _Always(dict):  # type: ignore[type-arg]
    def __init__(self, behaviour: Any) -> None:
        super().__init__()
        self.behaviour = behaviour

    def get(self, _key: str, _default: Any = None) -> list[Any]:  # type: ignore[override]
        return [self.behaviour]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, cwd=PROJECT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                output = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"{args} exited: {output}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{args} did not start")


def content_of(data: dict[str, Any]) -> str:
    """Text in one streamed event, whatever the wire format (OpenAI, Anthropic, Gemini)."""
    if data.get("choices"):
        return data["choices"][0].get("delta", {}).get("content") or ""
    if data.get("type") == "content_block_delta":
        return data.get("delta", {}).get("text", "")
    if data.get("candidates"):
        return "".join(p.get("text", "") for p in data["candidates"][0].get("content", {}).get("parts", []))
    return ""


async def one(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any],
              params: dict[str, str]) -> tuple[float, list[float]]:
    started = time.perf_counter()
    first: float | None = None
    last = started
    gaps: list[float] = []
    async with client.stream("POST", url, json=body, headers=headers, params=params) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            if not content_of(json.loads(line[6:])):
                continue
            now = time.perf_counter()
            if first is None:
                first = now - started
            else:
                gaps.append(now - last)
            last = now
    if first is None:
        raise RuntimeError(f"no content streamed from {url}")
    return first, gaps


async def measure(url: str, headers: dict[str, str], body: dict[str, Any], params: dict[str, str],
                  concurrency: int, total: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(min(concurrency, 8)):  # warm up connections and code paths
            await one(client, url, headers, body, params)
        gate = asyncio.Semaphore(concurrency)

        async def run() -> tuple[float, list[float]]:
            async with gate:
                return await one(client, url, headers, body, params)

        results = await asyncio.gather(*(run() for _ in range(total)))
    ttfts = sorted(r[0] for r in results)
    gaps = [g for r in results for g in r[1]]
    return {"ttft_p50": statistics.median(ttfts), "ttft_p99": ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.99))],
            "gap_mean": statistics.fmean(gaps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="streams per concurrency level")
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-delay-ms", type=float, default=5.0)
    parser.add_argument("--ttft-ms", type=float, default=20.0, help="the stub's own time to first token")
    args = parser.parse_args()

    stub_port, app_port = free_port(), free_port()
    stub_url, app_url = f"http://127.0.0.1:{stub_port}", f"http://127.0.0.1:{app_port}"
    bench_env = {"BENCH_CHUNKS": str(args.chunks), "BENCH_TTFT_MS": str(args.ttft_ms),
                 "BENCH_CHUNK_DELAY_MS": str(args.chunk_delay_ms)}
    with tempfile.TemporaryDirectory() as tmp:
        app_env = {
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db", "LOG_LEVEL": "WARNING", "PROVIDERS": json.dumps([PROVIDER]),
            "FALLBACK": "[]", "TIMEOUT_S": "30", "RATE_LIMIT_RPS": "1000000", "RATE_LIMIT_BURST": "1000000",
            "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"{stub_url}/v1",
            "ANTHROPIC_API_KEY": "sk-bench", "ANTHROPIC_BASE_URL": stub_url,
            "GEMINI_API_KEY": "bench", "GEMINI_BASE_URL": stub_url, "LOCAL_BASE_URL": f"{stub_url}/local/v1",
        }
        python = sys.executable
        stub = start([python, "-m", "uvicorn", "--factory", "bench.stream_overhead:stub_app", "--port",
                      str(stub_port), "--log-level", "warning", "--no-access-log"], bench_env, f"{stub_url}/docs")
        headers: dict[str, str] = {}
{%- if cookiecutter.auth == 'api_key' %}
        created = subprocess.run([python, "-m", "app.cli", "keys", "create", "--tenant", "bench"], cwd=PROJECT,
                                 env={**os.environ, **app_env}, capture_output=True, text=True, check=True)
        headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
{%- endif %}
        app = start([python, "-m", "uvicorn", "app.main:app", "--port", str(app_port), "--log-level", "warning",
                     "--no-access-log"], app_env, f"{app_url}/healthz")
        try:
            from app.settings import DEFAULT_PROVIDER_MODELS

            model = DEFAULT_PROVIDER_MODELS[PROVIDER]
            body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "benchmark"}]}
            direct_url, direct_params = {
                "openai": (f"{stub_url}/v1/chat/completions", {}),
                "local": (f"{stub_url}/local/v1/chat/completions", {}),
                "anthropic": (f"{stub_url}/v1/messages", {}),
                "gemini": (f"{stub_url}/v1beta/models/{model}:streamGenerateContent", {"alt": "sse"}),
            }[PROVIDER]
            print(f"provider adapter: {PROVIDER}; stub: ttft {args.ttft_ms} ms, {args.chunks} chunks "
                  f"{args.chunk_delay_ms} ms apart; {args.requests} streams per row")
            print(f"{'concurrency':>11} {'path':>7} {'TTFT p50':>10} {'TTFT p99':>10} {'chunk gap':>10}")
            for concurrency in (1, 16):
                direct = asyncio.run(measure(direct_url, {}, body, direct_params, concurrency, args.requests))
                via = asyncio.run(measure(f"{app_url}/v1/chat/completions", headers, body, {}, concurrency,
                                          args.requests))
                for name, row in (("direct", direct), ("app", via)):
                    print(f"{concurrency:>11} {name:>7} {row['ttft_p50'] * 1000:>8.2f}ms "
                          f"{row['ttft_p99'] * 1000:>8.2f}ms {row['gap_mean'] * 1000:>8.3f}ms")
                print(f"{concurrency:>11} {'added':>7} {(via['ttft_p50'] - direct['ttft_p50']) * 1000:>8.2f}ms "
                      f"{(via['ttft_p99'] - direct['ttft_p99']) * 1000:>8.2f}ms "
                      f"{(via['gap_mean'] - direct['gap_mean']) * 1000:>8.3f}ms")
        finally:
            for proc in (app, stub):
                proc.terminate()
                proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
