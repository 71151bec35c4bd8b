"""Every option proven: cheap checks on all pairs of values, the generated test suites on a heavy set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from aistarter.answers import validate
from aistarter.questions import QUESTIONS

from .conftest import baked_project
from .matrix import HEAVY, case_id, pairwise_cases, values_of
from .projects import assert_passed, render, run_project_tests

PAIRWISE = pairwise_cases()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_pairwise_cases_cover_every_pair() -> None:
    assert 15 <= len(PAIRWISE) <= 80
    for q in QUESTIONS:
        seen = {json.dumps(case[q.key]) for case in PAIRWISE}
        assert seen == {json.dumps(v) for v in values_of(q.key)}, q.key


@pytest.mark.parametrize("answers", PAIRWISE, ids=case_id)
def test_cheap_checks(tmp_path: Path, bake, answers: dict) -> None:
    project = render(tmp_path, "copier", **answers)
    files = tree(project)
    # cookiecutter through pytest-cookies, with its hooks
    assert files == tree(baked_project(bake(answers))), "engines disagree"
    for name, content in files.items():
        text = content.decode("utf-8")
        assert "{{ cookiecutter" not in text and "{%" not in text.replace("{% raw %}", ""), f"leftover Jinja in {name}"
        if name.endswith((".yaml", ".yml")):
            list(yaml.safe_load_all(text))
        elif name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith(".json"):
            json.loads(text)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
    compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", "."], cwd=project, capture_output=True,
                              text=True)
    assert compiled.returncode == 0, compiled.stdout[-3000:]


def test_heavy_set_covers_every_value() -> None:
    for q in QUESTIONS:
        used = {json.dumps(validate(case).model_dump(mode="json")[q.key]) for case in HEAVY}
        missing = {json.dumps(v) for v in values_of(q.key)} - used
        if q.key in {"project_name", "description", "latency_budget_ms", "peak_rps", "providers"}:
            continue  # free values: representative ones are covered by the pairwise set
        assert not missing, f"heavy set never uses {q.key}={missing}"
    providers_used = {p for case in HEAVY for p in validate(case).providers}
    assert providers_used == {"openai", "anthropic", "gemini", "local"}


@pytest.mark.slow
@pytest.mark.parametrize("answers", HEAVY, ids=case_id)
def test_heavy_generated_project_passes_its_own_tests(tmp_path: Path, answers: dict) -> None:
    project = render(tmp_path, "copier", **answers)
    assert_passed(run_project_tests(project))


POSTGRES_URL = os.environ.get("AISTARTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_generated_backend_passes_its_tests_on_real_postgresql(tmp_path: Path) -> None:
    # The generated conftest creates a uniquely named database from this URL and drops it afterwards.
    if not postgres_reachable():
        message = f"PostgreSQL not reachable for {POSTGRES_URL}"
        if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (AISTARTER_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip(message)
    project = render(tmp_path, "copier", providers=["openai", "anthropic"], usage_billing="metering")
    assert_passed(run_project_tests(project, "tests", env={"DATABASE_URL": POSTGRES_URL}))
