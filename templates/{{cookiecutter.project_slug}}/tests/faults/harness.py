"""The fault harness: the app as a real server process (the Dockerfile's own uvicorn command) on a
loopback port, stub upstreams that fail on command, and counters read straight from the database.

Every scenario reports what it injected, how many requests it sent, how many usage rows it expected and
found, how many it found twice, and whether the server stalled; `conftest.py` prints the table and each
test asserts its own row (0 lost, 0 double-billed, 0 stalls).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from app.db.models import Interaction{% if cookiecutter.usage_billing != 'none' %}, UsageRecord{% endif %}
from app.settings import DEFAULT_PROVIDER_MODELS, Settings
from tests.conftest import upstream_settings
from tests.servers import free_port

PROJECT = Path(__file__).resolve().parents[2]
PROVIDERS: list[str] = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}]
FIRST = PROVIDERS[0]
MODEL = DEFAULT_PROVIDER_MODELS[FIRST]


def dockerfile_command() -> list[str]:
    """The container's CMD: the fault suite runs exactly what production runs."""
    line = next(ln for ln in (PROJECT / "Dockerfile").read_text().splitlines() if ln.startswith("CMD "))
    return json.loads(line[4:])


def graceful_timeout_s() -> int:
    command = dockerfile_command()
    return int(command[command.index("--timeout-graceful-shutdown") + 1])


@dataclass
class Row:
    """One line of the fault report."""

    scenario: str
    faults: int = 0
    requests: int = 0
    usage_expected: int = 0
    usage_found: int = 0
    double_billed: int = 0
    stalls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.usage_expected - self.usage_found)


REPORT: list[Row] = []


class Server:
    """`python -m uvicorn app.main:app ...` with the Dockerfile's flags, pointed at `env`."""

    def __init__(self, env: dict[str, str], graceful_s: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = dockerfile_command()
        args = command[command.index("app.main:app") + 1:]
        overrides = [("--host", "127.0.0.1"), ("--port", str(self.port))]
        if graceful_s is not None:
            overrides.append(("--timeout-graceful-shutdown", str(graceful_s)))
        for flag, value in overrides:
            args[args.index(flag) + 1] = value
        clean = {k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in Settings.model_fields}}
        # A file, not a pipe: nobody reads a pipe while the scenario runs, and a full one blocks the server.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", *args], cwd=PROJECT,
                                        env={**clean, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # imports alone take seconds on a busy CI runner
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at startup:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def term(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@contextmanager
def server(env: dict[str, str], graceful_s: int | None = None) -> Iterator[Server]:
    running = Server(env, graceful_s)
    try:
        yield running
    finally:
        running.kill()


def server_env(database_url: str, stub_url: str, keys: dict[str, str], **extra: Any) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "PROMPTS_DIR": str(PROJECT / "prompts"), "LOG_LEVEL": "WARNING",
           "PROVIDERS": json.dumps(PROVIDERS), "FALLBACK": json.dumps(PROVIDERS), "RETRIES": "1",
           "TRACE_CONTENT": "redacted"}
    # The same provider wiring the in-process tests use, as the environment a server process reads.
    env.update({key.upper(): value for key, value in upstream_settings(stub_url, PROVIDERS).items()})
{%- if cookiecutter.auth == 'api_key' %}
    env["AISTARTER_API_KEYS"] = ",".join(f"{tenant}:{secret}" for tenant, secret in keys.items())
    # Scenarios send bursts from one key (20 concurrent requests, then 5 replays): the default bucket
    # (20, 5/s) answered a replay 429 whenever the burst finished fast. The limiter has its own tests.
    env.update(RATE_LIMIT_RPS="1000", RATE_LIMIT_BURST="1000")
{%- endif %}
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return env


def auth(secret: str) -> dict[str, str]:
{%- if cookiecutter.auth == 'api_key' %}
    return {"Authorization": f"Bearer {secret}"}
{%- else %}
    return {}
{%- endif %}


class Ledger:
    """Reads what the server wrote, from its database."""

    def __init__(self, database_url: str) -> None:
        # pre_ping: the database-outage scenario terminates every connection, this one's included.
        self.engine: Engine = create_engine(Settings(_env_file=None, database_url=database_url).database_url,
                                            pool_pre_ping=True)

    def close(self) -> None:
        self.engine.dispose()

    def interactions(self, request_ids: list[str]) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Interaction.request_id, Interaction.status)
                                .where(Interaction.request_id.in_(request_ids))).all()
        out: dict[str, list[str]] = {}
        for request_id, status in rows:
            out.setdefault(request_id, []).append(status)
        return out

    def usage(self, request_ids: list[str]) -> dict[str, int]:
        """Usage rows per request id (a request billed twice shows 2)."""
{%- if cookiecutter.usage_billing != 'none' %}
        with self.engine.connect() as conn:
            rows = conn.execute(select(UsageRecord.request_id, func.count()).where(
                UsageRecord.request_id.in_(request_ids)).group_by(UsageRecord.request_id)).all()
        return {request_id: count for request_id, count in rows}
{%- else %}
        # usage_billing=none: the interaction record is the only account of the tokens.
        with self.engine.connect() as conn:
            rows = conn.execute(select(Interaction.request_id, func.count()).where(
                Interaction.request_id.in_(request_ids), Interaction.output_tokens.is_not(None))
                .group_by(Interaction.request_id)).all()
        return {request_id: count for request_id, count in rows}
{%- endif %}

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql))


def billed_tally(row: Row, ledger: Ledger, expected: list[str], unexpected: list[str] = ()) -> Row:  # type: ignore[assignment]
    """Fill the usage columns: every id in `expected` needs exactly one row, `unexpected` none."""
    counts = ledger.usage([*expected, *unexpected])
    row.usage_expected = len(expected)
    row.usage_found = sum(1 for rid in expected if counts.get(rid, 0) >= 1)
    row.double_billed = sum(c - 1 for c in counts.values() if c > 1) + sum(1 for rid in unexpected if counts.get(rid))
    return row


def healthz_latency(url: str) -> float:
    started = time.monotonic()
    httpx.get(f"{url}/healthz", timeout=30)
    return time.monotonic() - started

