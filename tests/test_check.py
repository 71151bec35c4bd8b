"""`aistarter check`: green on a fresh project, red and specific after an injected defect."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
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
    bad = CliRunner().invoke(main, ["check", str(project), "--step", "lint", "--format", "json",
                                    "--python", sys.executable])
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


def _mini_project(root: Path, test_source: str) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_x.py").write_text(test_source)
    return root


def test_skipped_tests_make_the_step_skipped_with_the_reason_never_ok(tmp_path: Path) -> None:
    project = _mini_project(tmp_path / "p", "import pytest\n\ndef test_a():\n    pass\n\n"
                            "def test_b():\n    pytest.skip('checkov not found: pip install checkov')\n")
    result = check(project, ("tests",), sys.executable)[0]
    assert result.status == "skipped" and result.ok
    assert "1 passed" in result.detail and "checkov not found: pip install checkov" in result.detail


def test_failures_are_read_from_junit_xml(tmp_path: Path) -> None:
    project = _mini_project(tmp_path / "p", "def test_fine():\n    pass\n\ndef test_broken():\n    assert 0\n")
    result = check(project, ("tests",), sys.executable)[0]
    assert result.status == "failed" and "tests/test_x.py::test_broken" in result.detail
    assert "1 passed" in result.detail and "1 failed" in result.detail


def test_a_missing_tests_folder_is_skipped_not_ok(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    result = check(tmp_path / "p", ("infra",), sys.executable)[0]
    assert result.status == "skipped" and "no infra/tests/" in result.detail


def test_check_makes_and_reuses_the_projects_own_environment(tmp_path: Path) -> None:
    from aistarter.check import ENV_DIR, project_environment

    project = tmp_path / "p"
    (project / "mini").mkdir(parents=True)
    (project / "mini" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "mini"\nversion = "0"\n\n[project.optional-dependencies]\ndev = []\n'
        '\n[tool.hatch.build.targets.wheel]\npackages = ["mini"]\n')
    steps: list[str] = []
    python = project_environment(project, steps.append)
    assert python.is_relative_to(project / ENV_DIR) and any("installing" in s for s in steps)
    steps.clear()
    assert project_environment(project, steps.append) == python and steps == [], "reused, not reinstalled"
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + "\n# changed\n")
    project_environment(project, steps.append)
    assert any("installing" in s for s in steps), "a changed requirement file refreshes the environment"


@pytest.mark.slow
def test_check_passes_on_a_fresh_project_with_nothing_but_aistarter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's install gives aistarter only: check must make the project's environment itself. Such a
    # user has no checkov and no CI switch that turns its absence into a failure.
    monkeypatch.delenv("AISTARTER_CHECKOV", raising=False)
    monkeypatch.delenv("AISTARTER_REQUIRE_SERVICES", raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent.parent / "nonexistent") + ":/usr/bin:/bin")
    project = fresh(tmp_path)
    result = CliRunner().invoke(main, ["check", str(project), "--format", "json"])
    assert result.exit_code == 0, result.output
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["tests"]["status"] in {"ok", "skipped"} and steps["lint"]["status"] == "ok"
    assert steps["infra"]["status"] == "skipped" and "pip install checkov" in steps["infra"]["detail"]


def test_infra_render_says_why_it_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aistarter.infra import why_failed

    assert "cannot import pulumi" in why_failed("", "ModuleNotFoundError: No module named 'pulumi'\n", "py")
    monkeypatch.setenv("AISTARTER_CHECKOV", str(tmp_path / "no-checkov-here"))
    project = generate(validate({"cloud": "existing"}), tmp_path / "p").path
    result = CliRunner().invoke(main, ["infra", "render", str(project), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "infra render failed: checkov is not installed" in result.output and "pipx install checkov" in result.output
