"""`python -m bench all|generation|gateway|upstream|footprint|report` from the repository root."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .common import RESULTS_JSON, RESULTS_MD, BenchError, load_results, log, save_results, save_section
from .report import write_markdown


def _generation(args: argparse.Namespace) -> dict[str, Any]:
    from . import generation

    return generation.run(runs=args.runs)


def _gateway(args: argparse.Namespace) -> dict[str, Any]:
    from . import gateway

    return gateway.run(quick=args.quick, contenders=args.contenders, scenario=args.scenario)


def _upstream(args: argparse.Namespace) -> dict[str, Any]:
    from . import upstream

    return upstream.run(quick=args.quick)


def _footprint(args: argparse.Namespace) -> dict[str, Any]:
    from . import footprint

    return footprint.run(runs=args.runs)


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "generation": _generation,
    "gateway": _gateway,
    "upstream": _upstream,
    "footprint": _footprint,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("part", choices=["all", *PARTS, "report"],
                        help="which benchmark to run ('report' only rewrites RESULTS.md from results.json)")
    parser.add_argument("--runs", type=int, default=7, help="subprocess runs per contender for medians (default 7)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer streams per level; for a smoke run, not for numbers")
    parser.add_argument("--contenders", default="",
                        help="gateway: comma-separated subset of direct,minimal,metered,full,litellm (default: all)")
    parser.add_argument("--scenario", default="all", choices=["all", "loopback", "tls-rtt"],
                        help="gateway: loopback stub, or HTTPS behind a 20 ms round-trip proxy (default: both)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    parts = list(PARTS) if args.part == "all" else [] if args.part == "report" else [args.part]
    started = time.perf_counter()
    failed = False
    for part in parts:
        log(f"{part}: start")
        t0 = time.perf_counter()
        load_start = os.getloadavg()
        try:
            section = PARTS[part](args)
        except BenchError as exc:
            print(f"error: {part}: {exc}", file=sys.stderr)
            failed = True
            continue
        section["duration_s"] = round(time.perf_counter() - t0, 1)
        # Other work on the machine moves every figure; the load average says how busy it was.
        section["loadavg_1m_start_end"] = [round(load_start[0], 2), round(os.getloadavg()[0], 2)]
        save_section(part, section)
        log(f"{part}: done in {section['duration_s']} s")
    results = load_results()
    if args.part == "all":
        results["total_duration_s"] = round(time.perf_counter() - started, 1)
        save_results(results)
    if results:
        write_markdown(results)
        log(f"wrote {RESULTS_JSON} and {RESULTS_MD}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
