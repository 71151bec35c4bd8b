"""`aistarter check`: green on a fresh project, red and specific after an injected defect."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aistarter.answers import validate
from aistarter.check import check
from aistarter.cli import main
from aistarter.render import generate
from aistarter.update import git


def fresh(tmp_path: Path) -> Path:
    return generate(validate({}), tmp_path / "p").path


def by_step(project: Path, *steps: str) -> dict:
    return {r.step: r for r in check(project, steps)}


def test_drift_clean_on_fresh_project(tmp_path: Path) -> None:
    assert by_step(fresh(tmp_path), "drift")["drift"].ok


def test_drift_flags_a_missing_file_unless_deleted_in_a_commit(tmp_path: Path) -> None:
    project = fresh(tmp_path)
    (project / "README.md").unlink()
    result = by_step(project, "drift")["drift"]
    assert not result.ok and "README.md" in result.detail
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "we keep docs elsewhere")
    assert by_step(project, "drift")["drift"].ok


def test_drift_flags_answers_edited_without_update(tmp_path: Path) -> None:
    project = fresh(tmp_path)
    record = project / ".aistarter" / "answers.yml"
    record.write_text(record.read_text().replace("use_case: chat", "use_case: nonsense"))
    result = by_step(project, "drift")["drift"]
    assert not result.ok and "use_case" in result.detail


def test_broken_test_fails_the_tests_step_and_is_named(tmp_path: Path) -> None:
    project = fresh(tmp_path)
    (project / "tests" / "test_injected.py").write_text("def test_injected_defect():\n    assert 1 == 2\n")
    result = by_step(project, "tests")["tests"]
    assert not result.ok and "test_injected_defect" in result.detail


def test_cli_json_and_exit_code(tmp_path: Path) -> None:
    project = fresh(tmp_path)
    ok = CliRunner().invoke(main, ["check", str(project), "--step", "drift", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    (project / "app" / "bad.py").write_text("import os\n")
    bad = CliRunner().invoke(main, ["check", str(project), "--step", "lint", "--format", "json"])
    assert bad.exit_code == 1
    payload = json.loads(bad.output)
    assert payload["ok"] is False and "app/bad.py" in payload["steps"][0]["detail"]
