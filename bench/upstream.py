"""Upstream clients: which HTTP client and pool the gateway streams from, chosen by measurement.

A third of the gateway's CPU per request is its upstream request (bench/README.md, "What the profiles said"). This
part measures the candidate clients alone, without the gateway around them: each runs in its own process (uvloop,
as in the generated app) and streams from the same HTTPS stub, served by hypercorn because it speaks both
HTTP/1.1 and HTTP/2 (ALPN picks). Per candidate and level it reports the client process's CPU time per stream over
the timed rounds (warm-up rounds first, on the same pooled connections), TTFT, and the connections the stub
accepted per stream during the timed rounds. Candidates run interleaved, `REPEATS` times; CPU is the median.

`python -m bench upstream` runs it; `python -m bench.upstream client ...` is the per-candidate process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, BenchError, last_line, log, percentile, rnd
from .procs import Server, free_port, http_json

CANDIDATES: dict[str, str] = {
    "httpx-one-pool": "httpx, HTTP/1.1, one pool per provider (what the small pools replaced)",
    "httpx-sharded": "httpx, HTTP/1.1, small pools (the generated gateway, app/gateway/pool.py)",
    "httpx-http2": "httpx, HTTP/2 (h2, hpack, hyperframe: +3 distributions)",
    "aiohttp": "aiohttp's connector, HTTP/1.1 (aiohttp and 7 dependencies: +8 distributions)",
}
# Streams of 20 tokens, as in the gateway part; a short pace keeps the run short (CPU per stream does not depend on
# it, only on how many chunks arrive).
STUB = {"tokens": 20, "pace_ms": 5.0, "first_token_ms": 5.0}
LEVELS = {16: (2, 10), 64: (1, 4)}  # concurrency -> (warm-up rounds, timed rounds)
REPEATS = 3
TEMPLATE_POOL = REPO_ROOT / "templates" / "{{cookiecutter.project_slug}}" / "app" / "gateway" / "pool.py"
BODY = {"model": "stub", "stream": True, "messages": [{"role": "user", "content": "hello there"}]}


# --- the client process -------------------------------------------------------------------------------------------

Stream = Callable[[], Awaitable[float | None]]  # one request: TTFT in ms, None when it did not complete


def _sharded_transport() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("aistarter_template_pool", TEMPLATE_POOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ShardedTransport()


async def _count_tokens(chunks: AsyncIterator[bytes], start: float) -> float | None:
    ttft, tokens, done = None, 0, False
    async for chunk in chunks:
        if ttft is None and b'"content"' in chunk:
            ttft = (time.perf_counter() - start) * 1000
        tokens += chunk.count(b'"content"')
        done = done or b"[DONE]" in chunk
    return ttft if done and tokens == STUB["tokens"] else None


def _httpx_stream(url: str, candidate: str) -> tuple[Stream, Callable[[], Awaitable[None]]]:
    import httpx

    if candidate == "httpx-sharded":
        client = httpx.AsyncClient(transport=_sharded_transport(), timeout=30)
    else:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=4.0)
        client = httpx.AsyncClient(limits=limits, timeout=30, http2=candidate == "httpx-http2")
    body = json.dumps(BODY).encode()
    headers = {"content-type": "application/json"}

    async def one() -> float | None:
        start = time.perf_counter()
        async with client.stream("POST", url, content=body, headers=headers) as response:
            if response.status_code != 200:
                return None
            return await _count_tokens(response.aiter_bytes(), start)

    return one, client.aclose


def _aiohttp_stream(url: str) -> tuple[Stream, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0),
                                    timeout=aiohttp.ClientTimeout(total=30))
    body = json.dumps(BODY).encode()
    headers = {"content-type": "application/json"}

    async def one() -> float | None:
        start = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                return None
            return await _count_tokens(response.content.iter_any(), start)

    return one, session.close


async def _client(candidate: str, url: str, cafile: str, concurrency: int, warmup: int, rounds: int) -> dict[str, Any]:
    # Every candidate trusts the benchmark's certificate through SSL_CERT_FILE (set by the driver), as the
    # generated app would trust a provider's through the system store: no candidate builds its own SSL context.
    one, close = _aiohttp_stream(url) if candidate == "aiohttp" else _httpx_stream(url, candidate)

    async def round_() -> list[float | None]:
        return list(await asyncio.gather(*(one() for _ in range(concurrency))))

    for _ in range(warmup):
        await round_()
    control = url.rsplit("/v1/", 1)[0] + "/control"
    before = json.loads(http_json(control, cafile=cafile)[1])["connections"]
    cpu0 = time.process_time()
    ttfts: list[float | None] = []
    for _ in range(rounds):
        ttfts += await round_()
    cpu = time.process_time() - cpu0
    after = json.loads(http_json(control, cafile=cafile)[1])["connections"]
    await close()
    return {"cpu_s": cpu, "ttft_ms": [t for t in ttfts if t is not None], "streams": len(ttfts),
            "new_connections": after - before}


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream client")
    parser.add_argument("--candidate", choices=list(CANDIDATES), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup-rounds", type=int, default=1)
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(_client(args.candidate, args.url, args.cafile, args.concurrency, args.warmup_rounds, args.rounds))
    print(json.dumps(result))
    return 0


# --- the driver -----------------------------------------------------------------------------------------------------

MASTER_LOCK = REPO_ROOT / "generator" / "aistarter" / "lock" / "requirements.lock"
# The generated gateway's HTTP stack: measured at the versions its projects lock, or the figures say nothing about it.
LOCKED = ("httpx", "httpcore", "h11", "h2", "anyio", "uvloop")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    locked = dict(line.split("==", 1) for line in MASTER_LOCK.read_text().splitlines() if "==" in line
                  and not line.startswith((" ", "#")))
    wrong = []
    for name in LOCKED:
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if name in locked and installed != locked[name]:
            wrong.append(f"{name}=={locked[name]} (installed: {installed})")
    for name in ("hypercorn", "aiohttp"):
        try:
            version(name)
        except PackageNotFoundError:
            wrong.append(name)
    if wrong:
        raise BenchError(f"the upstream part measures the generated gateway's locked HTTP stack; install "
                         f"{', '.join(wrong)}: pip install -r bench/requirements.txt")
    return {name: version(name) for name in (*LOCKED, "hypercorn", "aiohttp")}


def _run_client(candidate: str, url: str, cafile: str, concurrency: int) -> dict[str, Any]:
    warmup, rounds = LEVELS[concurrency]
    argv = [sys.executable, "-m", "bench.upstream", "client", "--candidate", candidate, "--url", url, "--cafile",
            cafile, "--concurrency", str(concurrency), "--warmup-rounds", str(warmup), "--rounds", str(rounds)]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SSL_CERT_FILE": cafile})
    if proc.returncode != 0:
        raise BenchError(f"upstream client {candidate} failed at c={concurrency}: {last_line(proc.stderr)}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ttft = [t for r in runs for t in r["ttft_ms"]]
    streams = sum(r["streams"] for r in runs)
    return {
        "cpu_ms_per_stream": rnd(statistics.median(r["cpu_s"] * 1000 / r["streams"] for r in runs), 3),
        "cpu_ms_per_stream_runs": [rnd(r["cpu_s"] * 1000 / r["streams"], 3) for r in runs],
        "ttft_p50_ms": rnd(percentile(ttft, 50), 2),
        "ttft_p99_ms": rnd(percentile(ttft, 99), 2),
        "new_connections_per_stream": rnd(sum(r["new_connections"] for r in runs) / streams, 3),
        "complete": len(ttft),
        "streams": streams,
    }


def run(quick: bool = False) -> dict[str, Any]:
    from .gateway import make_certificate

    versions = _versions()
    if shutil.which("openssl") is None:
        raise BenchError("the upstream part needs the openssl command (apt-get install openssl)")
    work = Path(tempfile.mkdtemp(prefix="aistarter-bench-upstream-"))
    key, cert = make_certificate(work)
    port = free_port()
    stub = Server("stub (hypercorn)", [sys.executable, "-m", "hypercorn", "bench.stub_upstream:app", "--bind",
                                       f"127.0.0.1:{port}", "--keyfile", str(key), "--certfile", str(cert),
                                       "--worker-class", "uvloop", "--log-level", "warning"],
                  cwd=REPO_ROOT, log_path=work / "stub.log")
    base, cafile = f"https://localhost:{port}", str(cert)
    repeats = 1 if quick else REPEATS
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {c: {lv: [] for lv in LEVELS} for c in CANDIDATES}
    try:
        stub.wait_ready(f"{base}/healthz", timeout=30, cafile=cafile)
        http_json(f"{base}/control", json.dumps(STUB).encode(), cafile=cafile)
        names = list(CANDIDATES)
        for repeat in range(repeats):
            for level in LEVELS:
                # Rotate the order each repeat, so no candidate always runs right after the same neighbour.
                for candidate in names[repeat % len(names):] + names[:repeat % len(names)]:
                    runs[candidate][level].append(_run_client(candidate, f"{base}/v1/chat/completions", cafile,
                                                              level))
                    log(f"upstream: {candidate} c={level} run {repeat + 1}/{repeats}")
    finally:
        stub.stop()
        if os.environ.get("AISTARTER_BENCH_KEEP"):
            log(f"upstream work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "stub": {**STUB, "server": "hypercorn (HTTP/1.1 and HTTP/2 over TLS)"},
        "versions": versions,
        "repeats": repeats,
        "streams_per_run": {lv: LEVELS[lv][1] * lv for lv in LEVELS},
        "candidates": {c: {"label": CANDIDATES[c],
                           "levels": {str(lv): _summarise(r) for lv, r in levels.items()}}
                       for c, levels in runs.items()},
    }


if __name__ == "__main__":
    if sys.argv[1:2] != ["client"]:
        sys.exit("usage: python -m bench.upstream client --candidate NAME ... "
                 "(the benchmark itself: python -m bench upstream)")
    sys.exit(client_main(sys.argv[2:]))
