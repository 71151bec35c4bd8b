"""Shared setup for this project's infra tests: the vendored library on sys.path, and checkov.

checkov pins an old `packaging` that conflicts with pulumi, so it lives in its own virtualenv:
    python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov
    export AISTARTER_CHECKOV=$PWD/.venv-checkov/bin/checkov
Without it the checkov tests skip with that hint (and fail when AISTARTER_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1]
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


def require(condition: bool, message: str) -> None:
    """Skip with a reason, or fail when every tool is required (AISTARTER_REQUIRE_SERVICES=1)."""
    if condition:
        return
    if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def checkov_exe() -> str:
    from aistarter_infra.validate import find_checkov

    exe = find_checkov()
    require(exe is not None, "checkov not found: python3 -m venv .venv-checkov && .venv-checkov/bin/pip install "
            "checkov, then export AISTARTER_CHECKOV=$PWD/.venv-checkov/bin/checkov")
    assert exe is not None
    return exe
