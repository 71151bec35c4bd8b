"""Shared setup for aistarter's infra tests: import paths and the checkov executable."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
for path in (INFRA, INFRA / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def require(condition: bool, message: str) -> None:
    """Skip with a reason, or fail when CI demands every service (AISTARTER_REQUIRE_SERVICES=1)."""
    if condition:
        return
    if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def checkov_exe() -> str:
    from aistarter_infra.validate import CHECKOV_HINT, find_checkov

    exe = find_checkov()
    require(exe is not None, CHECKOV_HINT)
    assert exe is not None
    return exe


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`rendered(name)`: the MATRIX stack `name` rendered under mocks once per session (treat it as read-only)."""
    from aistarter_infra.render import RenderResult, render_program
    from stacks import MATRIX, write_program

    cache: dict[str, RenderResult] = {}

    def get(name: str) -> RenderResult:
        if name not in cache:
            cache[name] = render_program(write_program(tmp_path_factory.mktemp(name), MATRIX[name]))
        return cache[name]

    return get
