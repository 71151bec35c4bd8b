"""Gateway streaming overhead: the generated backend and LiteLLM proxy against the stub upstream they both call.

One stub upstream (bench/stub_upstream.py) runs for the whole part. Each contender is started as a uvicorn
subprocess on 127.0.0.1, warmed up, then:
1. memory: RSS of the contender's process tree idle, then with HOLD_STREAMS streams open and parked by the stub
   (first token delivered, the rest held back); the difference per stream is "RSS per idle stream";
2. load: for each concurrency level, a load client process (bench/loadclient.py) opens that many streams at once,
   ROUNDS_PER_PASS[level] times, and records TTFT, every inter-chunk gap and completeness; PASSES[level] passes
   rotate through the contenders, which all stay up for the whole part.
"Added" figures are the contender's percentile minus the direct stub's percentile at the same level.

Two scenarios (`--scenario loopback|tls-rtt|all`):
- `loopback`: the stub over plain HTTP on loopback; the floor is as low as it gets, so CPU and queueing show.
- `tls-rtt`: the stub serves HTTPS with a certificate the benchmark makes, behind bench/tlsproxy.py, which adds a
  round trip (default 20 ms) like a remote provider. The direct baseline is a pooled client with warm TLS
  connections, so a gateway that opens a new connection per request pays the TCP and TLS round trips on every
  first token and the figures show it. New connections and TLS handshakes are counted at the proxy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, BenchError, last_line, log, percentile, rnd
from .procs import Server, free_port, http_json
from .venvs import LITELLM_VERSION, Venv, litellm_venv, project_venv

LEVELS = (1, 16, 64, 128, 256)
# Streams per level = passes x rounds per pass x level. Passes interleave the contenders.
PASSES = {1: 4, 16: 4, 64: 4, 128: 2, 256: 2}
ROUNDS_PER_PASS = {1: 10, 16: 5, 64: 1, 128: 1, 256: 1}
QUICK_PASSES = {1: 1, 16: 1, 64: 1, 128: 1, 256: 1}
QUICK_ROUNDS_PER_PASS = {1: 5, 16: 2, 64: 1, 128: 1, 256: 1}
# Streams per core at saturation: the most streams arriving at once with zero loss and p99 TTFT within the
# generated backend's default latency budget (which is also its first-chunk timeout).
BURST_TTFT_BUDGET_MS = 1000.0
HOLD_STREAMS = 256
# 20 tokens, one every 20 ms (50 tokens/s, a typical hosted-model pace), the first after 20 ms.
STUB = {"tokens": 20, "pace_ms": 20.0, "first_token_ms": 20.0}
STREAM_TIMEOUT_S = 60.0
IDLE_CPU_WINDOW_S = 3.0
TLS_RTT_MS = 20.0
TLS_LEVELS = (1, 16)
TLS_PASSES = {1: 3, 16: 3}
TLS_ROUNDS_PER_PASS = {1: 10, 16: 3}
TLS_QUICK_PASSES = {1: 1, 16: 1}
TLS_QUICK_ROUNDS_PER_PASS = {1: 5, 16: 1}
SCENARIOS = ("loopback", "tls-rtt")
MODEL = "local-model"  # the generated backend maps this name to its `local` provider (no model server chosen)

GOALS = {
    "ttft_p50_c1": ("added TTFT p50 <= 3 ms at c=1", 3.0),
    "ttft_p99_c16": ("added TTFT p99 <= 15 ms at c=16", 15.0),
    "zero_loss_256": ("zero dropped chunks up to 256 streams", 256),
    "rss_per_stream": ("<= 100 KB RSS per open stream", 100.0),
}
TLS_GOALS = {
    "tls_ttft_p50_c1": ("tls-rtt: added TTFT p50 <= 3 ms at c=1 over a warm direct client", 3.0),
    "tls_new_conns_c1": ("tls-rtt: <= 0.05 new upstream connections per stream at c=1", 0.05),
    "tls_new_conns_c16": ("tls-rtt: <= 0.05 new upstream connections per stream at c=16", 0.05),
}

MINIMAL_SETS = ["providers=local", "auth=none", "usage_billing=none", "observability=none"]
METERED_SETS = ["providers=local", "auth=api_key", "usage_billing=metering", "observability=none"]
FULL_SETS = ["providers=local", "auth=api_key", "usage_billing=metering", "observability=otel",
             "trace_content=redacted"]


@dataclass
class Running:
    server: Server | None
    url: str
    api_key: str = ""
    model: str = MODEL
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    work: Path
    stub_url: str  # base, no /v1; the benchmark's own control channel to the stub
    stub: Server
    quick: bool
    upstream_url: str = ""  # what contenders call (the stub, or the delaying proxy in front of it); no /v1
    cafile: str = ""  # the benchmark's self-signed certificate when the upstream speaks HTTPS
    stats_port: int = 0  # bench/tlsproxy.py's stats port in tls-rtt
    scenario: str = "loopback"

    def tls_env(self) -> dict[str, str]:
        """Make a contender trust the benchmark's certificate (httpx, requests, LiteLLM)."""
        if not self.cafile:
            return {}
        # Not SSL_CERTIFICATE: LiteLLM reads it as a client certificate, and its proxy then fails to start.
        return {"SSL_CERT_FILE": self.cafile, "REQUESTS_CA_BUNDLE": self.cafile, "SSL_VERIFY": self.cafile}


# --------------------------------------------------------------------------------------------- contenders


def _direct(ctx: Ctx) -> Running:
    note = "a pooled aiohttp client with warm TLS connections to the proxy" if ctx.cafile else ""
    return Running(server=ctx.stub, url=f"{ctx.upstream_url}/v1/chat/completions", note=note)


def write_litellm_config(path: Path, api_base: str) -> None:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {api_base}\n"
        "      api_key: sk-stub\n"
        "litellm_settings:\n"
        "  telemetry: false\n", encoding="utf-8")


def start_litellm(venv: Venv, work: Path, api_base: str, extra_env: dict[str, str] | None = None,
                  ) -> tuple[Server, int, str]:
    port = free_port()
    key = f"sk-bench-{secrets.token_hex(24)}"  # LiteLLM refuses to start without a strong master key
    config = work / "litellm.yaml"
    write_litellm_config(config, api_base)
    env = {**base_env(), "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", **(extra_env or {})}
    # LiteLLM's own CLI starts uvicorn (its documented way to run the proxy), one worker like the others.
    server = Server("litellm", [str(venv.bin("litellm")), "--config", str(config), "--host", "127.0.0.1",
                                "--port", str(port), "--num_workers", "1"],
                    cwd=work, env=env, log_path=work / "litellm.log")
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
    except BenchError:
        server.stop()
        raise
    return server, port, key


def _litellm(ctx: Ctx) -> Running:
    venv = litellm_venv()
    server, port, key = start_litellm(venv, ctx.work, f"{ctx.upstream_url}/v1", ctx.tls_env())
    return Running(server=server, url=f"http://127.0.0.1:{port}/v1/chat/completions", api_key=key,
                   note=f"LiteLLM proxy {LITELLM_VERSION}: default settings, master key, no database.",
                   extra={"venv": venv.path.name})


def base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def render(work: Path, name: str, sets: list[str]) -> Path:
    dest = work / name
    aistarter = Path(sys.executable).parent / "aistarter"
    argv = [str(aistarter)] if aistarter.exists() else [sys.executable, "-m", "aistarter"]
    argv += ["new", str(dest), "--no-input", "--force", *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"aistarter new {' '.join(sets)} failed: {last_line(proc.stderr or proc.stdout)}")
    return dest


def _has_streaming_route(project: Path) -> bool:
    api = project / "app" / "api"
    if not api.is_dir():
        return False
    return any("chat/completions" in p.read_text(encoding="utf-8", errors="ignore") for p in api.glob("*.py"))


def _create_api_key(venv: Venv, project: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([str(venv.python), "-m", "app.cli", "keys", "create", "--tenant", "bench"], cwd=project,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"`python -m app.cli keys create` failed: {last_line(proc.stderr or proc.stdout)}")
    # The CLI prints a note, then the secret alone on the last line.
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    key = lines[-1] if lines else ""
    if len(key) < 16 or " " in key:
        raise BenchError(f"could not find the API key in `app.cli keys create` output: {proc.stdout.strip()[:200]}")
    return key


def start_app(venv: Venv, project: Path, env: dict[str, str], port: int, log_path: Path) -> Server:
    """The generated app as its README runs it in production terms: uvicorn, one worker, no reload."""
    server = Server(project.name, [str(venv.python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-access-log", "--log-level", "warning"],
                    cwd=project, env=env, log_path=log_path)
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=60)
    except BenchError:
        server.stop()
        raise
    return server


def _generated(name: str, sets: list[str], keyed: bool, traced: bool) -> Callable[[Ctx], Running]:
    def start(ctx: Ctx) -> Running:
        project = render(ctx.work, name, sets)
        if not _has_streaming_route(project):
            raise BenchError("skipped: the generated backend has no POST /v1/chat/completions route yet")
        venv = project_venv(project)
        env = {**base_env(), **ctx.tls_env(), "LOCAL_BASE_URL": f"{ctx.upstream_url}/v1", "LOG_LEVEL": "WARNING",
               "DATABASE_URL": f"sqlite:///{ctx.work / (name + '.db')}", "PYTHONDONTWRITEBYTECODE": "1"}
        api_key = ""
        if traced:
            env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": ctx.stub_url,  # the stub answers OTLP/HTTP exports
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        if keyed:
            # The token bucket still runs on every request; its limits are raised so one benchmark key
            # can open 256 streams at once.
            env.update({"RATE_LIMIT_RPS": "100000", "RATE_LIMIT_BURST": "100000"})
        port = free_port()
        if keyed:
            # Keys live in the database: migrate first (the app would at startup), then create one.
            api_key = _create_api_key(venv, project, env)
        server = start_app(venv, project, env, port, ctx.work / f"{name}.log")
        note = (f"generated backend `{' '.join('--set ' + s for s in sets)}`: uvicorn, 1 worker, SQLite"
                + (", OTLP/HTTP exporter to a local receiver" if traced else "") + ".")
        return Running(server=server, url=f"http://127.0.0.1:{port}/v1/chat/completions", api_key=api_key,
                       note=note, extra={"venv": venv.path.name, "dependencies": len(venv.distributions())})

    return start


CONTENDERS: dict[str, tuple[str, Callable[[Ctx], Running]]] = {
    "direct": ("stub upstream, direct (floor)", _direct),
    "minimal": ("generated backend, minimal (provenance records only)",
                _generated("minimal", MINIMAL_SETS, keyed=False, traced=False)),
    "metered": ("generated backend, + API keys + metering", _generated("metered", METERED_SETS, keyed=True,
                                                                       traced=False)),
    "full": ("generated backend, + API keys + metering + tracing", _generated("full", FULL_SETS, keyed=True,
                                                                              traced=True)),
    "litellm": (f"LiteLLM proxy {LITELLM_VERSION}", _litellm),
}


# --------------------------------------------------------------------------------------------- measuring


def _control(ctx: Ctx, **values: Any) -> None:
    status, body = http_json(f"{ctx.stub_url}/control", json.dumps(values).encode(), cafile=ctx.cafile)
    if status != 200:
        raise BenchError(f"stub /control answered {status}: {body[:200]!r}")


def _stub_connections(ctx: Ctx) -> int:
    status, body = http_json(f"{ctx.stub_url}/control", cafile=ctx.cafile)
    return int(json.loads(body).get("connections", 0)) if status == 200 else 0


def _client_argv(run: Running, concurrency: int, rounds: int, hold: bool = False, warmup_rounds: int = 0,
                 cafile: str = "", stats_port: int = 0) -> list[str]:
    argv = [sys.executable, "-m", "bench.loadclient", "--url", run.url, "--model", run.model, "--concurrency",
            str(concurrency), "--rounds", str(rounds), "--tokens", str(STUB["tokens"]), "--timeout",
            str(STREAM_TIMEOUT_S)]
    if run.api_key:
        argv += ["--api-key", run.api_key]
    if warmup_rounds:
        argv += ["--warmup-rounds", str(warmup_rounds)]
    if cafile and run.url.startswith("https:"):
        argv += ["--cafile", cafile]
    if stats_port:
        argv += ["--proxy-stats-port", str(stats_port)]
    return argv + (["--hold"] if hold else [])


def _load_counted(run: Running, concurrency: int, rounds: int, warmup_rounds: int = 0, cafile: str = "",
                  stats_port: int = 0) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """The streams, and with stats_port what the proxy saw upstream during the timed rounds."""
    budget = (rounds + warmup_rounds) * (STREAM_TIMEOUT_S + 5) + 30
    argv = _client_argv(run, concurrency, rounds, warmup_rounds=warmup_rounds, cafile=cafile, stats_port=stats_port)
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=budget)
    if proc.returncode != 0:
        raise BenchError(f"load client failed at c={concurrency}: {last_line(proc.stderr)}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return list(result["streams"]), result.get("upstream")


def _load(run: Running, concurrency: int, rounds: int, cafile: str = "") -> list[dict[str, Any]]:
    return _load_counted(run, concurrency, rounds, cafile=cafile)[0]


def _summarise(streams: list[dict[str, Any]]) -> dict[str, Any]:
    ttft = [s["ttft_ms"] for s in streams if s.get("ttft_ms") is not None]
    gaps = [g for s in streams for g in s.get("gaps_ms", [])]
    errors = sorted({s["error"] for s in streams if s.get("error")})
    return {
        "streams": len(streams),
        "complete": sum(1 for s in streams if s.get("ok")),
        "lost_chunks": sum(int(s.get("missing_tokens") or 0) for s in streams),
        "ttft_p50_ms": rnd(percentile(ttft, 50), 3),
        "ttft_p99_ms": rnd(percentile(ttft, 99), 3),
        "gap_p50_ms": rnd(percentile(gaps, 50), 3),
        "gap_p99_ms": rnd(percentile(gaps, 99), 3),
        "gap_mean_ms": rnd(sum(gaps) / len(gaps), 3) if gaps else None,
        "errors": errors[:3],
    }


def _rss_per_stream(ctx: Ctx, run: Running) -> dict[str, Any]:
    assert run.server is not None
    time.sleep(0.5)
    idle = run.server.rss_bytes()
    _control(ctx, hold=True)
    client = subprocess.Popen(_client_argv(run, HOLD_STREAMS, 1, hold=True), cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: ready.update(json.loads(client.stdout.readline() or "{}")), daemon=True)
    reader.start()
    reader.join(STREAM_TIMEOUT_S + 10)
    time.sleep(0.5)  # let the last parked streams settle before sampling
    opened = run.server.rss_bytes()
    _control(ctx, hold=False, release=True)
    out, err = client.communicate(input="\n", timeout=STREAM_TIMEOUT_S + 30)
    streams = json.loads(out.strip().splitlines()[-1])["streams"] if out.strip() else []
    n = int(ready.get("ready", 0))
    return {
        "idle_rss_mb": rnd(idle / 2**20, 1),
        "open_rss_mb": rnd(opened / 2**20, 1),
        "open_streams": n,
        "per_stream_kb": rnd((opened - idle) / n / 1024, 1) if n else None,
        "completed_after_release": sum(1 for s in streams if s.get("ok")),
        "client_error": err.strip()[-200:] if client.returncode else "",
    }


def _plan(scenario: str, quick: bool) -> tuple[tuple[int, ...], dict[int, int], dict[int, int]]:
    """Levels, passes per level and rounds per pass for a scenario."""
    if scenario == "tls-rtt":
        return TLS_LEVELS, *((TLS_QUICK_PASSES, TLS_QUICK_ROUNDS_PER_PASS) if quick
                             else (TLS_PASSES, TLS_ROUNDS_PER_PASS))
    return LEVELS, *((QUICK_PASSES, QUICK_ROUNDS_PER_PASS) if quick else (PASSES, ROUNDS_PER_PASS))


def _start(ctx: Ctx, name: str, label: str, start: Callable[[Ctx], Running]) -> tuple[dict[str, Any], Running | None]:
    t0 = time.perf_counter()
    try:
        run = start(ctx)
    except BenchError as exc:
        message = str(exc)
        status = message if message.startswith("skipped") else f"failed to start: {message}"
        log(f"gateway {name}: {status}")
        return {"label": label, "status": status}, None
    result: dict[str, Any] = {"label": label, "status": "ok", "note": run.note,
                              "startup_s": rnd(time.perf_counter() - t0, 1), **run.extra}
    try:
        _load(run, 1, 5, cafile=ctx.cafile)  # warm-up: connection pools, lazy imports, first DB writes
        _load(run, 16, 1, cafile=ctx.cafile)
    except (BenchError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        result["status"] = f"failed during warm-up: {exc}"
    return result, run


def _stop(ctx: Ctx, result: dict[str, Any], run: Running | None) -> None:
    if run is not None and run.server is not None and run.server is not ctx.stub:
        result["log_tail"] = run.server.tail(3)
        run.server.stop()


def _measure_all(ctx: Ctx, wanted: list[str]) -> dict[str, Any]:
    """Start every contender, then measure them interleaved: for each level, passes rotate through the
    contenders, so load from anything else on the machine lands on all of them alike."""
    results: dict[str, Any] = {}
    runs: dict[str, Running] = {}
    try:
        for name in wanted:
            label, start = CONTENDERS[name]
            log(f"gateway {name}: starting")
            results[name], run = _start(ctx, name, label, start)
            if run is not None:
                runs[name] = run
        active = [n for n in wanted if results[n]["status"] == "ok"]
        idle_rate: dict[str, float] = {}
        for name in active:
            # uvicorn and friends tick even when idle; that CPU is per second, not per stream, so it is
            # measured here and subtracted from every load run.
            server = runs[name].server
            assert server is not None
            before, t0 = server.cpu_seconds(), time.perf_counter()
            time.sleep(IDLE_CPU_WINDOW_S)
            idle_rate[name] = (server.cpu_seconds() - before) / (time.perf_counter() - t0)
            results[name]["idle_cpu_percent"] = rnd(idle_rate[name] * 100, 2)
        tls = ctx.scenario == "tls-rtt"
        for name in active if not tls else []:  # memory per stream does not depend on the path upstream
            try:
                results[name]["rss"] = _rss_per_stream(ctx, runs[name])
            except (BenchError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                results[name]["rss"] = {"error": str(exc)}
        levels, passes, per_pass = _plan(ctx.scenario, ctx.quick)
        # In tls-rtt every timed load starts on warm connections (one untimed round first, same process), so
        # a new connection is one the contender chose to open, not one a fresh load client had to.
        warmup = 1 if tls else 0
        for level in levels:
            streams: dict[str, list[dict[str, Any]]] = {n: [] for n in active}
            cpu: dict[str, float] = {n: 0.0 for n in active}
            conns: dict[str, int] = {n: 0 for n in active}
            hellos: dict[str, int] = {n: 0 for n in active}
            for i in range(passes[level]):
                order = active[i % len(active):] + active[:i % len(active)] if active else []
                for name in order:
                    if results[name]["status"] != "ok":
                        continue
                    server = runs[name].server
                    assert server is not None
                    try:
                        before, t0, opened = server.cpu_seconds(), time.perf_counter(), _stub_connections(ctx)
                        got, upstream = _load_counted(runs[name], level, per_pass[level], warmup_rounds=warmup,
                                                      cafile=ctx.cafile, stats_port=ctx.stats_port)
                        streams[name] += got
                        cpu[name] += (server.cpu_seconds() - before) - idle_rate[name] * (time.perf_counter() - t0)
                        if upstream is not None:
                            conns[name] += upstream["connections"]
                            hellos[name] += upstream["tls_handshakes"]
                        else:
                            conns[name] += _stub_connections(ctx) - opened
                    except (BenchError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                        results[name]["status"] = f"failed during the run at c={level}: {exc}"
                        log(f"gateway {name}: {results[name]['status']}")
            for name in active:
                if streams[name]:
                    summary = _summarise(streams[name])
                    # CPU the contender itself burnt per stream: steadier than latency on a busy machine, and
                    # what sets queueing at high concurrency (at c=16 the last stream waits for 15 others).
                    summary["cpu_ms_per_stream"] = rnd(cpu[name] * 1000 / len(streams[name]), 3)
                    # New TCP connections the stub accepted per stream (from the load client for the direct
                    # contender, from the gateway otherwise): 1.0 means no connection reuse at all.
                    summary["upstream_connections_per_stream"] = rnd(conns[name] / len(streams[name]), 3)
                    if tls:
                        # Counted at the delaying proxy during the timed rounds only (after the load process's
                        # own warm-up round), so a warm pool shows 0 and a new connection per request shows 1.
                        summary["tls_handshakes_per_stream"] = rnd(hellos[name] / len(streams[name]), 3)
                    results[name].setdefault("levels", {})[str(level)] = summary
                    log(f"gateway {name} c={level}: TTFT p50 {summary['ttft_p50_ms']} ms p99 "
                        f"{summary['ttft_p99_ms']} ms, gap p99 {summary['gap_p99_ms']} ms, "
                        f"CPU {summary['cpu_ms_per_stream']} ms/stream, "
                        f"{summary['complete']}/{summary['streams']} complete")
    finally:
        for name, run in runs.items():
            _stop(ctx, results[name], run)
    return results


def _added(results: dict[str, Any]) -> None:
    floor = results.get("direct", {}).get("levels", {})
    for c in results.values():
        for level, s in c.get("levels", {}).items():
            base = floor.get(level, {})
            for metric in ("ttft_p50", "ttft_p99", "gap_p50", "gap_p99"):
                ours, ref = s.get(f"{metric}_ms"), base.get(f"{metric}_ms")
                s[f"added_{metric}_ms"] = rnd(ours - ref, 3) if ours is not None and ref is not None else None
        levels = c.get("levels", {})
        ok = [int(lv) for lv, s in levels.items() if s["complete"] == s["streams"] and s["lost_chunks"] == 0]
        zero_loss = 0
        for level in LEVELS:
            if level in ok:
                zero_loss = level
            else:
                break
        c["max_zero_loss"] = zero_loss if levels else None
        within = 0
        for level in LEVELS:
            s = levels.get(str(level))
            if s is None or level not in ok or (s.get("ttft_p99_ms") or 0) > BURST_TTFT_BUDGET_MS:
                break
            within = level
        c["streams_per_core"] = within if levels else None


def _loopback_checks(c: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    lv = c.get("levels", {})
    return {
        "ttft_p50_c1": (lv.get("1", {}).get("added_ttft_p50_ms"), " ms"),
        "ttft_p99_c16": (lv.get("16", {}).get("added_ttft_p99_ms"), " ms"),
        "zero_loss_256": (c.get("max_zero_loss"), " streams"),
        "rss_per_stream": (c.get("rss", {}).get("per_stream_kb"), " KB"),
    }


def _tls_checks(c: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    lv = c.get("levels", {})
    return {
        "tls_ttft_p50_c1": (lv.get("1", {}).get("added_ttft_p50_ms"), " ms"),
        "tls_new_conns_c1": (lv.get("1", {}).get("upstream_connections_per_stream"), " per stream"),
        "tls_new_conns_c16": (lv.get("16", {}).get("upstream_connections_per_stream"), " per stream"),
    }


AT_LEAST = {"zero_loss_256"}  # every other goal is a ceiling


def _goals(results: dict[str, Any], spec: dict[str, tuple[str, float]],
           checks: Callable[[dict[str, Any]], dict[str, tuple[Any, str]]]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for name in ("minimal", "metered", "full"):
        c = results.get(name, {})
        if c.get("status") != "ok":
            continue
        for key, (value, unit) in checks(c).items():
            text, limit = spec[key]
            met = None if value is None else (value >= limit if key in AT_LEAST else value <= limit)
            goals[f"{name}.{key}"] = {"text": f"{name}: {text}", "met": met, "value": value,
                                      "detail": f"measured {value}{unit}"}
    return goals


def make_certificate(work: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made by the benchmark (never shipped)."""
    key, cert = work / "stub-key.pem", work / "stub-cert.pem"
    proc = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                           "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"openssl could not make the benchmark certificate: {last_line(proc.stderr)}")
    return key, cert


def _scenario(scenario: str, quick: bool, wanted: list[str]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"aistarter-bench-{scenario}-"))
    stub_port = free_port()
    tls = scenario == "tls-rtt"
    argv = [sys.executable, "-m", "uvicorn", "bench.stub_upstream:app", "--host", "127.0.0.1", "--port",
            str(stub_port), "--no-access-log", "--log-level", "warning"]
    cafile = ""
    if tls:
        if shutil.which("openssl") is None:
            raise BenchError("the tls-rtt scenario needs the openssl command (apt-get install openssl)")
        key, cert = make_certificate(work)
        argv += ["--ssl-keyfile", str(key), "--ssl-certfile", str(cert)]
        cafile = str(cert)
    scheme = "https" if tls else "http"
    stub = Server("stub", argv, cwd=REPO_ROOT, log_path=work / "stub.log")
    proxy: Server | None = None
    results: dict[str, Any] = {}
    try:
        stub.wait_ready(f"{scheme}://localhost:{stub_port}/healthz", timeout=30, cafile=cafile)
        ctx = Ctx(work=work, stub_url=f"{scheme}://localhost:{stub_port}", stub=stub, quick=quick,
                  upstream_url=f"{scheme}://localhost:{stub_port}", cafile=cafile, scenario=scenario)
        if tls:
            proxy_port, stats_port = free_port(), free_port()
            proxy = Server("tlsproxy", [sys.executable, "-m", "bench.tlsproxy", "--port", str(proxy_port),
                                        "--target-port", str(stub_port), "--rtt-ms", str(TLS_RTT_MS),
                                        "--stats-port", str(stats_port)],
                           cwd=REPO_ROOT, log_path=work / "tlsproxy.log")
            proxy.wait_ready(f"https://localhost:{proxy_port}/healthz", timeout=30, cafile=cafile)
            ctx.upstream_url, ctx.stats_port = f"https://localhost:{proxy_port}", stats_port
        _control(ctx, **STUB, hold=False)
        results = _measure_all(ctx, wanted)
    finally:
        if proxy is not None:
            proxy.stop()
        stub.stop()
        if os.environ.get("AISTARTER_BENCH_KEEP"):
            log(f"gateway work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _added(results)
    levels, passes, per_pass = _plan(scenario, quick)
    return {
        "scenario": scenario,
        "rtt_ms": TLS_RTT_MS if tls else None,
        "levels": list(levels),
        "burst_ttft_budget_ms": BURST_TTFT_BUDGET_MS,
        "streams_per_level": {lv: passes[lv] * per_pass[lv] * lv for lv in levels},
        "contenders": results,
        "goals": _goals(results, TLS_GOALS, _tls_checks) if tls else _goals(results, GOALS, _loopback_checks),
    }


def run(quick: bool = False, contenders: str = "", scenario: str = "all") -> dict[str, Any]:
    wanted = [c.strip() for c in contenders.split(",") if c.strip()] or list(CONTENDERS)
    unknown = [c for c in wanted if c not in CONTENDERS]
    if unknown:
        raise BenchError(f"unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}")
    if "direct" not in wanted:
        wanted.insert(0, "direct")  # every other figure is relative to it
    try:
        import aiohttp  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"{exc.name} is missing; run `pip install -r bench/requirements.txt`") from exc

    scenarios = list(SCENARIOS) if scenario == "all" else [scenario]
    if any(sc not in SCENARIOS for sc in scenarios):
        raise BenchError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)} or all")
    section: dict[str, Any] = {"stub": STUB, "hold_streams": HOLD_STREAMS, "quick": quick,
                               "litellm_version": LITELLM_VERSION, "client": "aiohttp (own process)"}
    for sc in scenarios:
        log(f"gateway: scenario {sc}")
        part = _scenario(sc, quick, wanted)
        if sc == "loopback":
            # The loopback figures stay at the top level: README and earlier results read them there.
            section.update({k: v for k, v in part.items() if k != "scenario"})
        else:
            section["tls_rtt"] = part
    return section

