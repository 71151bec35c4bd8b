"""`compare RUN_A RUN_B`: per-case and aggregate score changes from A (the baseline) to B; a score that
drops by more than the threshold is a regression and makes the command exit 1. Latency and cost are shown
for reading, not gated: they vary with the machine and the provider's day.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import base as db
from app.evals.dataset import EvalError
from app.evals.models import EvalResult, EvalRun


def load_run(ref: str) -> dict[str, Any]:
    """A run from a JSON file (path) or from the database (run id)."""
    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise EvalError(f"run file {path} not found")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path} is not a run file (JSON: {exc.msg})") from None
        if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
            raise EvalError(f"{path} is not a run file: it needs a 'cases' list (write one with run --out)")
        return document
    with db.session_scope() as session:
        run = session.get(EvalRun, ref)
        if run is None:
            raise EvalError(f"no eval run {ref!r} in the database and no such file; list files in evals/runs/")
        rows = session.scalars(select(EvalResult).where(EvalResult.run_id == ref).order_by(EvalResult.id)).all()
        return {"run_id": run.id, "params": run.params, "aggregate": run.summary, "cases": [r.scores for r in rows]}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def compare(a: dict[str, Any], b: dict[str, Any], threshold: float) -> tuple[list[list[str]], list[str]]:
    """Table rows (case, score, A, B, delta, verdict) and the list of regressions."""
    rows: list[list[str]] = []
    regressions: list[str] = []
    b_cases = {c["id"]: c for c in b["cases"]}
    for case_a in a["cases"]:
        case_b = b_cases.get(case_a["id"])
        if case_b is None:
            rows.append([case_a["id"], "(case)", "present", "missing", "", "REGRESSION"])
            regressions.append(f"{case_a['id']}: missing from B")
            continue
        names = [n for n in sorted(set(case_a["scores"]) | set(case_b["scores"]))]
        for name in names:
            before, after = case_a["scores"].get(name), case_b["scores"].get(name)
            delta = None if before is None or after is None else after - before
            verdict = ""
            if before is not None and (after is None or before - after > threshold):
                verdict = "REGRESSION"
                regressions.append(f"{case_a['id']}: {name} {_fmt(before)} -> {_fmt(after)}")
            elif delta is not None and delta > threshold:
                verdict = "better"
            rows.append([case_a["id"], name, _fmt(before), _fmt(after),
                         "" if delta is None else f"{delta:+.2f}", verdict])
        if case_b.get("error") and not case_a.get("error"):
            rows.append([case_a["id"], "(error)", "", case_b["error"][:60], "", "REGRESSION"])
            regressions.append(f"{case_a['id']}: failed with {case_b['error'][:80]}")
        for metric in ("latency_ms", "cost_usd"):
            before, after = case_a.get("metrics", {}).get(metric), case_b.get("metrics", {}).get(metric)
            if before is not None or after is not None:
                rows.append([case_a["id"], metric, _fmt(before), _fmt(after), "", "(not gated)"])
    agg_a, agg_b = a.get("aggregate") or {}, b.get("aggregate") or {}
    for name in sorted(set(agg_a.get("scores", {})) | set(agg_b.get("scores", {}))):
        before, after = agg_a.get("scores", {}).get(name), agg_b.get("scores", {}).get(name)
        label = {"retrieval_rr": "MRR", "retrieval_hit": "hit rate"}.get(name, name)
        verdict = ""
        if before is not None and (after is None or before - after > threshold):
            verdict = "REGRESSION"
            regressions.append(f"aggregate {label}: {_fmt(before)} -> {_fmt(after)}")
        delta = "" if before is None or after is None else f"{after - before:+.2f}"
        rows.append(["ALL", f"mean {label}", _fmt(before), _fmt(after), delta, verdict])
    before, after = agg_a.get("pass_rate"), agg_b.get("pass_rate")
    if before is not None and after is not None:
        verdict = "REGRESSION" if before - after > threshold else ""
        if verdict:
            regressions.append(f"aggregate pass rate: {before:.2f} -> {after:.2f}")
        rows.append(["ALL", "pass rate", _fmt(before), _fmt(after), f"{after - before:+.2f}", verdict])
    for metric in ("latency_ms_p50", "cost_usd_total"):
        if agg_a.get(metric) is not None or agg_b.get(metric) is not None:
            rows.append(["ALL", metric, _fmt(agg_a.get(metric)), _fmt(agg_b.get(metric)), "", "(not gated)"])
    return rows, regressions


def table(rows: list[list[str]], header: tuple[str, ...] = ("case", "score", "A", "B", "delta", "")) -> str:
    """A Markdown table (readable in a terminal and in a CI log or PR comment)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
