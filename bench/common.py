"""Shared helpers: machine description, percentiles, the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_JSON = BENCH_DIR / "results.json"
RESULTS_MD = BENCH_DIR / "RESULTS.md"


class BenchError(RuntimeError):
    """A benchmark could not run; the message says what is missing and how to fix it."""


def cache_dir() -> Path:
    # Virtualenvs for LiteLLM and the generated projects are slow to build; keep them between runs.
    root = Path(os.environ.get("AISTARTER_BENCH_CACHE", Path.home() / ".cache" / "aistarter-bench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "executable": Path(sys.executable).name,  # the name only: results never carry machine paths
    }


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank-with-interpolation percentile (same as numpy's default 'linear')."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_results() -> dict[str, Any]:
    if RESULTS_JSON.exists():
        try:
            return json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}
    return {}


def save_results(results: dict[str, Any]) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def save_section(name: str, section: dict[str, Any]) -> dict[str, Any]:
    """Merge one part's results into results.json so each part can also run alone."""
    results = load_results()
    results["machine"] = machine()
    section["finished_at"] = now_iso()
    results[name] = section
    save_results(results)
    return results


def last_line(text: str, limit: int = 300) -> str:
    """The line of a subprocess's output that says what went wrong (tracebacks end with it)."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "(no output)")[:limit]


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
