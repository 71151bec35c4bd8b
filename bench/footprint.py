"""Footprint: installed distributions, import time and idle RSS per worker, generated default project vs LiteLLM.

Both run from their own virtualenv holding only what they need (bench/venvs.py): the generated project's
declared runtime dependencies (the project itself runs from its folder and is counted as one more
distribution), and `litellm[proxy]` at the pinned version.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BenchError, last_line, log, median, rnd
from .gateway import base_env, render, start_app, start_litellm
from .procs import free_port, http_json
from .venvs import LITELLM_VERSION, Venv, litellm_venv, project_venv

IDLE_SETTLE_S = 1.0


def _import_s(venv: Venv, module: str, cwd: Path, env: dict[str, str], runs: int) -> float | None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([str(venv.python), "-c", f"import {module}"], cwd=cwd, env=env, capture_output=True,
                              text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"`import {module}` failed: {last_line(proc.stderr)}")
        times.append(elapsed)
    return median(times)


def _generated(work: Path, runs: int) -> dict[str, Any]:
    project = render(work, "default", [])
    venv = project_venv(project)
    env = {**base_env(), "DATABASE_URL": f"sqlite:///{work / 'default.db'}", "LOG_LEVEL": "WARNING",
           "PYTHONDONTWRITEBYTECODE": "1"}
    row: dict[str, Any] = {
        "label": "generated backend, default answers",
        "distributions": len(venv.distributions()) + 1,  # + the project itself
        "dependency_names": venv.distributions(),
        "import_module": "app.main",
        "install_s": rnd(venv.install_s, 1),
    }
    row["import_s"] = rnd(_import_s(venv, "app.main", project, env, runs), 3)
    port = free_port()
    server = start_app(venv, project, env, port, work / "default.log")
    try:
        http_json(f"http://127.0.0.1:{port}/healthz")
        time.sleep(IDLE_SETTLE_S)
        row["idle_rss_mb"] = rnd(server.rss_bytes() / 2**20, 1)
    finally:
        server.stop()
    row["status"] = "ok"
    return row


def _litellm(work: Path, runs: int) -> dict[str, Any]:
    venv = litellm_venv()
    row: dict[str, Any] = {
        "label": f"LiteLLM proxy {LITELLM_VERSION}",
        "distributions": len(venv.distributions()),
        "import_module": "litellm.proxy.proxy_server",
        "install_s": rnd(venv.install_s, 1),
    }
    env = {**base_env(), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    # LiteLLM's import is seconds long; three interpreters are enough for a stable median.
    row["import_s"] = rnd(_import_s(venv, "litellm.proxy.proxy_server", work, env, min(runs, 3)), 3)
    server, port, key = start_litellm(venv, work, "http://127.0.0.1:9/v1")  # upstream never called here
    try:
        http_json(f"http://127.0.0.1:{port}/health/liveliness")
        time.sleep(IDLE_SETTLE_S)
        row["idle_rss_mb"] = rnd(server.rss_bytes() / 2**20, 1)
    finally:
        server.stop()
    row["status"] = "ok"
    return row


def run(runs: int = 7) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="aistarter-bench-fp-"))
    targets: dict[str, Any] = {}
    try:
        for name, fn in (("generated_default", _generated), ("litellm", _litellm)):
            log(f"footprint {name}: start")
            try:
                targets[name] = fn(work, runs)
            except BenchError as exc:
                targets[name] = {"label": name, "status": f"failed: {exc}"}
                log(f"footprint {name}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"targets": targets, "runs": runs}
