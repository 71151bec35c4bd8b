"""The generated projects' heavy suites (real server processes), each run only on the projects that need it.

A plain `pytest` in a generated project leaves out its `faults` and `browser` suites; these tests run them where
they prove something: the fault suite on the variants whose billing and transport it attacks, on SQLite and
PostgreSQL, and the playground's browser test on a RAG project (the one whose provenance panel shows documents).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .projects import assert_passed, render, run_project_tests
from .test_matrix import POSTGRES_URL, postgres_reachable

FAULT_PROJECTS: dict[str, dict[str, object]] = {
    "default": {},
    "stripe": {"usage_billing": "stripe", "providers": ["openai", "anthropic"]},
    "websocket": {"streaming": "websocket"},
}


# Server processes under load: one worker runs these in order, so two fault suites never race for the cores.
pytestmark = pytest.mark.xdist_group("heavy-suites")


def _require_postgres() -> None:
    if postgres_reachable():
        return
    message = f"PostgreSQL not reachable for {POSTGRES_URL}"
    if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (AISTARTER_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", sorted(FAULT_PROJECTS))
def test_fault_suite(tmp_path: Path, name: str, database: str) -> None:
    env = {}
    if database == "postgresql":
        _require_postgres()
        env["DATABASE_URL"] = POSTGRES_URL
    project = render(tmp_path, "copier", **FAULT_PROJECTS[name])
    result = run_project_tests(project, "-m", "faults", "tests/faults", "-s", env=env)
    assert_passed(result)


@pytest.mark.slow
def test_playground_in_a_real_browser(tmp_path: Path) -> None:
    project = render(tmp_path, "copier", use_case="rag")
    assert_passed(run_project_tests(project, "-m", "browser", env={"AISTARTER_REQUIRE_SERVICES": "1"}))
