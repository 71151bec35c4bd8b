"""`aistarter check`: green on a fresh project, red and specific after an injected defect."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from aistarter.answers import validate
from aistarter.check import check
from aistarter.cli import main
from aistarter.render import generate
from aistarter.update import git

from .projects import project_python


def fresh(tmp_path: Path) -> Path:
    return generate(validate({}), tmp_path / "p").path


def by_step(project: Path, *steps: str) -> dict:
    # The project's tests need its own dependencies: run them with the shared generated-project venv.
    python = str(project_python(project)) if "tests" in steps else sys.executable
    return {r.step: r for r in check(project, steps, python)}


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


def test_fresh_project_infra_step_passes_and_a_pod_without_limits_fails_it(tmp_path: Path) -> None:
    project = fresh(tmp_path)
    assert by_step(project, "infra")["infra"].ok
    config = project / "infra" / "aistarter_infra" / "config.py"
    source = config.read_text()
    with_limits = 'return {"requests": requests, "limits": limits}'
    assert with_limits in source
    config.write_text(source.replace(with_limits, 'return {"requests": requests}'))
    result = by_step(project, "infra")["infra"]
    assert not result.ok and "infra/tests/" in result.detail


def test_infra_render_command_writes_validated_manifests(tmp_path: Path) -> None:
    answers = {"use_case": "rag", "self_hosted": "small", "providers": ["openai", "local"], "cloud": "existing"}
    project = generate(validate(answers), tmp_path / "p").path
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["infra", "render", str(project), "--out", str(out), "--no-checkov"])
    assert result.exit_code == 0, result.output
    manifests = (out / "dev" / "manifests.yaml").read_text()
    assert "kind: ScaledObject" in manifests and "nvidia.com/gpu" in manifests
    assert "gpu: 0 problem(s)" in (out / "dev" / "validation.txt").read_text()


def test_infra_render_refuses_a_folder_without_infra(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["infra", "render", str(tmp_path)])
    assert result.exit_code == 2 and "has no infra/aistarter_infra" in result.output
