"""python -m app.evals run | compare | export: see `python -m app.evals --help`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from app.evals.dataset import EvalError

DEFAULT_DATASET = "evals/starter.jsonl"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m app.evals", description="Evaluate prompts and models offline "
                                   "or against real providers, through the same service path as the API.")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a dataset and score it (exit 1 if any case fails)")
    run.add_argument("--dataset", default=DEFAULT_DATASET, help=f"JSONL cases (default {DEFAULT_DATASET})")
    run.add_argument("--prompt-version", help="prompt version to test (default: PROMPT_VERSION, i.e. latest)")
    run.add_argument("--model", help="model to ask (default: the server's default model)")
    run.add_argument("--documents", help="folder of .md/.txt files ingested first (default: documents/ next to "
                     "the dataset, if present)")
    run.add_argument("--tenant", default="evals", help="tenant the cases run as (default: evals)")
    run.add_argument("--judge", metavar="MODEL", help="also grade cases that have a `rubric` with this model "
                     "(LLM-as-judge; off by default)")
    run.add_argument("--out", help="also write the run to this JSON file (default: evals/runs/<run id>.json)")
    compare = commands.add_parser("compare", help="compare two runs; exit 1 when a score drops past --threshold")
    compare.add_argument("run_a", help="baseline: a run JSON file or a run id stored in the database")
    compare.add_argument("run_b", help="candidate: a run JSON file or a run id")
    compare.add_argument("--threshold", type=float, default=0.05,
                         help="largest tolerated drop of any score, 0-1 (default 0.05)")
    export = commands.add_parser("export", help="turn rated interactions into dataset rows")
    export.add_argument("--from-feedback", action="store_true", required=True,
                        help="read interactions that have feedback (the only source so far)")
    export.add_argument("--rating", choices=("all", "up", "down"), default="all")
    export.add_argument("--tenant", help="only this tenant's interactions")
    export.add_argument("--out", help="append to this JSONL file, skipping ids it already has (default: stdout)")
    return root


def _settings() -> Any:
    from app.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EvalError(f"configuration: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def _run(args: argparse.Namespace) -> int:
    from app.evals.compare import table
    from app.evals.runner import run

    settings = _settings()
    document = anyio.run(lambda: run(settings, args.dataset, prompt_version=args.prompt_version, model=args.model,
                                     tenant=args.tenant, judge_model=args.judge, documents=args.documents))
    rows = []
    for case in document["cases"]:
        scores = " ".join(f"{k}={v:.2f}" for k, v in case["scores"].items()) or "(no expectations)"
        notes = "; ".join(case["notes"].values()) if case.get("notes") else ""
        rows.append([case["id"], "pass" if case["passed"] else "FAIL", scores,
                     f"{case['metrics'].get('latency_ms') or 0:.0f}", case["error"] or notes])
    print(table(rows, ("case", "result", "scores", "latency ms", "notes")))
    agg = document["aggregate"]
    extra = "".join(f", {k} {agg[k]:.2f}" for k in ("hit_rate", "mrr") if k in agg)
    params = document["params"]
    print(f"\n{document['run_id']}: {agg['passed']}/{agg['cases']} passed{extra}; prompt "
          f"{params['prompt']['name']} {params['prompt']['version']}, model {args.model or 'default'} "
          f"({'fake provider' if params['fake_provider'] else ', '.join(params['providers'])})")
    out = Path(args.out) if args.out else Path("evals/runs") / f"{document['run_id']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return 0 if agg["passed"] == agg["cases"] else 1


def _compare(args: argparse.Namespace) -> int:
    from app.db import base as db
    from app.evals.compare import compare, load_run, table

    if not 0 <= args.threshold <= 1:
        raise EvalError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if not (Path(args.run_a).exists() and Path(args.run_b).exists()):
        db.configure(_settings().database_url)
    a, b = load_run(args.run_a), load_run(args.run_b)
    rows, regressions = compare(a, b, args.threshold)
    print(table(rows))
    if regressions:
        print(f"\n{len(regressions)} regression(s) past threshold {args.threshold}:")
        for item in regressions:
            print(f"  - {item}")
        return 1
    print(f"\nno score dropped by more than {args.threshold}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from app.db import base as db
    from app.evals.dataset import dump
    from app.evals.export import from_feedback

    settings = _settings()
    db.configure(settings.database_url)
    rows, skipped = from_feedback(rating=args.rating, tenant=args.tenant)
    if args.out:
        path = Path(args.out)
        known: set[str] = set()
        if path.is_file():
            known = {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.lstrip().startswith("//")}
        rows = [r for r in rows if r["id"] not in known]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(dump(rows))
    else:
        sys.stdout.write(dump(rows))
    where = f" to {args.out}" if args.out else ""
    note = f"; {skipped} skipped without stored text (TRACE_CONTENT=metadata)" if skipped else ""
    print(f"exported {len(rows)} row(s){where}{note}. Add expected_facts to a row to make it a regression case.",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handlers = {"run": _run, "compare": _compare, "export": _export}
    try:
        return handlers[args.command](args)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
