"""`python -m aistarter_infra rehearse infra/app`: run the app stack's own workloads as the manifests declare them.

Renders the app stack under mocks, then runs each workload of the project's image (API, worker, migration Job)
as a local process in a bubblewrap sandbox with the manifest's command, args, env, user, read-only root and
declared volumes; gives every Service a loopback address its DNS names resolve to; backs data Services with
this machine's PostgreSQL and Redis; checks every probe within its budget; scrapes the ServiceMonitors with a
real Prometheus; and walks a request and a job through a wake from zero of the self-hosted model, stood in for
by an OpenAI-compatible double (the only stand-in). Exit status 0 when no step failed, 1 otherwise, 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import FAILED, NOT_REHEARSED, OK, Report, Step
from .run import rehearse

__all__ = ["FAILED", "NOT_REHEARSED", "OK", "Report", "Step", "main", "rehearse"]

# Debian package names for the tools the rehearsal needs on this machine.
TOOLS = {"bwrap": "bubblewrap", "setpriv": "util-linux", "nsenter": "util-linux", "nft": "nftables",
         "prometheus": "prometheus", "psql": "postgresql-client"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aistarter_infra rehearse", description=__doc__.split("\n")[0])
    parser.add_argument("program_dir", type=Path, help="the app stack's Pulumi program, e.g. infra/app")
    parser.add_argument("--stack", help="stack name (default: dev, else the first Pulumi.<stack>.yaml)")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (pod logs) for debugging")
    args = parser.parse_args(argv)
    missing = [f"{tool} (apt-get install -y {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        print(f"error: the rehearsal needs {', '.join(missing)}", file=sys.stderr)
        return 2
    if not (args.program_dir / "Pulumi.yaml").is_file():
        print(f"error: {args.program_dir} has no Pulumi.yaml: point at a generated project's infra/app",
              file=sys.stderr)
        return 2
    try:
        report = rehearse(args.program_dir, args.stack, keep=args.keep)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.as_json() if args.format == "json" else report.as_table())
    return 0 if report.ok else 1
