"""Load client, run in its own process: opens C OpenAI streaming requests at once and times every chunk.

`python -m bench.loadclient --url URL --concurrency C --rounds R --tokens N` prints one JSON object on stdout:
per-stream TTFT (request sent -> first content token), inter-chunk gaps, chunk count and whether the text
arrived complete and in order. `--warmup-rounds` runs untimed rounds first on the same pooled
connections; `--cafile` trusts the benchmark's self-signed certificate for an https URL;
`--proxy-stats-port` reports what bench/tlsproxy.py saw upstream during the timed rounds. With `--hold`, it
opens the streams, prints `{"ready": n}` once each has its first token, waits for a line on stdin, then reads
them to the end (the parent samples server memory in between).
aiohttp because its per-chunk cost is lower than httpx's; the client's own cost is the same for every contender.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from typing import Any

import aiohttp

from .stub_upstream import expected_text
from .tlsproxy import read_stats


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], tokens: int,
               first: asyncio.Event | None, timeout_s: float) -> dict[str, Any]:
    text_parts: list[str] = []
    stamps: list[float] = []
    result: dict[str, Any] = {"ok": False}
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    result["error"] = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                    return result
                done = False
                async for raw in resp.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    event = json.loads(data)
                    for choice in event.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            stamps.append(time.perf_counter())
                            text_parts.append(content)
                            if first is not None and len(stamps) == 1:
                                first.set()
                text = "".join(text_parts)
                result["done_marker"] = done
                result["complete"] = text == expected_text(tokens)
                result["missing_tokens"] = max(0, tokens - len(text.split()))
                result["ok"] = bool(result["complete"])
                if not result["complete"]:
                    result["error"] = f"incomplete: {len(text.split())}/{tokens} tokens, [DONE]={done}"
    except TimeoutError:
        result["error"] = f"timeout after {timeout_s} s with {len(stamps)} chunks"
    except (aiohttp.ClientError, json.JSONDecodeError, ConnectionError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        if first is not None:
            first.set()  # never leave the hold barrier waiting on a failed stream
    result["chunks"] = len(stamps)
    result["ttft_ms"] = (stamps[0] - start) * 1000 if stamps else None
    result["gaps_ms"] = [round((b - a) * 1000, 3) for a, b in zip(stamps, stamps[1:], strict=False)]
    if result.get("missing_tokens") is None:
        result["missing_tokens"] = tokens - len("".join(text_parts).split())
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    payload = {"model": args.model, "stream": True, "max_tokens": args.tokens,
               "messages": [{"role": "user", "content": "benchmark prompt: say the tokens"}]}
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if args.api_key:
        headers["authorization"] = f"Bearer {args.api_key}"
    ssl_context: ssl.SSLContext | bool = True
    if args.cafile:
        ssl_context = ssl.create_default_context(cafile=args.cafile)
    connector = aiohttp.TCPConnector(limit=0, force_close=False, ssl=ssl_context)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    streams: list[dict[str, Any]] = []
    upstream: dict[str, int] | None = None
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.hold:
            firsts = [asyncio.Event() for _ in range(args.concurrency)]
            tasks = [asyncio.create_task(_one(session, args.url, body, headers, args.tokens, ev, args.timeout))
                     for ev in firsts]
            try:
                async with asyncio.timeout(args.timeout):
                    await asyncio.gather(*(ev.wait() for ev in firsts))
            except TimeoutError:
                pass
            opened = sum(1 for t, ev in zip(tasks, firsts, strict=True) if ev.is_set() and not t.done())
            print(json.dumps({"ready": opened}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            streams = list(await asyncio.gather(*tasks))
        else:
            # Untimed rounds first, so a pooled client starts with warm connections (the tls-rtt baseline).
            for _ in range(args.warmup_rounds):
                await asyncio.gather(*(_one(session, args.url, body, headers, args.tokens, None, args.timeout)
                                       for _ in range(args.concurrency)))
            before = read_stats(args.proxy_stats_port) if args.proxy_stats_port else None
            for _ in range(args.rounds):
                streams += await asyncio.gather(*(_one(session, args.url, body, headers, args.tokens, None,
                                                       args.timeout) for _ in range(args.concurrency)))
            if before is not None:
                after = read_stats(args.proxy_stats_port)
                upstream = {key: after[key] - before[key] for key in before}
    return {"concurrency": args.concurrency, "rounds": args.rounds, "streams": streams, "upstream": upstream}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadclient")
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="stub")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tokens", type=int, required=True, help="tokens the stub sends (to check completeness)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per stream before it counts as lost")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--cafile", default="", help="CA bundle for an https URL (the benchmark's own certificate)")
    parser.add_argument("--proxy-stats-port", type=int, default=0,
                        help="bench.tlsproxy stats port: report the connections and TLS handshakes it saw during "
                             "the timed rounds only")
    parser.add_argument("--warmup-rounds", type=int, default=0, help="untimed rounds before the timed ones")
    args = parser.parse_args(argv)
    try:
        import uvloop  # a cheaper event loop keeps the client's own share of the 2 cores small

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    # uvloop leaves stdout non-blocking; a large result would then be cut at the pipe's 64 KB.
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
