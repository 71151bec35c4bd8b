"""Fixtures for the fault suite and its report table (printed at the end of the run; also written as
JSON to $AISTARTER_FAULT_REPORT when set, for aistarter's own matrix)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import _DATABASE_URL
from tests.faults.harness import REPORT, Ledger


@pytest.fixture
def keys() -> dict[str, str]:
    """Three tenants, each with its own key (seeded into the server through AISTARTER_API_KEYS)."""
    return {f"fault-{i}-{secrets.token_hex(3)}": "sk-ais-" + secrets.token_urlsafe(24) for i in range(3)}


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    reader = Ledger(database_url)
    yield reader
    reader.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    # tests/conftest.py took DATABASE_URL out of the environment (so the app sees none) and kept it here.
    database = "postgresql" if (_DATABASE_URL or "").startswith("postgres") else "sqlite"
    write = terminalreporter.write_line
    write("")
    write(f"fault report ({database}): scenario | faults | requests | usage expected/found | lost | "
          "double-billed | stalls")
    for row in REPORT:
        write(f"  {row.scenario:<28} {row.faults:>6} {row.requests:>8} {row.usage_expected:>8}/{row.usage_found:<8}"
              f" {row.lost:>4} {row.double_billed:>6} {row.stalls:>6}  {'; '.join(row.notes)}")
    total = [sum(getattr(r, f) for r in REPORT) for f in ("faults", "requests", "usage_expected", "usage_found",
                                                           "lost", "double_billed", "stalls")]
    write(f"  {'TOTAL':<28} {total[0]:>6} {total[1]:>8} {total[2]:>8}/{total[3]:<8} {total[4]:>4} {total[5]:>6}"
          f" {total[6]:>6}")
    path = os.environ.get("AISTARTER_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for row in REPORT:
                out.write(json.dumps({"database": database, **row.__dict__, "lost": row.lost}) + "\n")
