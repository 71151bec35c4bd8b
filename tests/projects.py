"""Helpers that generate throwaway projects and run their own test suites in a shared virtualenv (one per worker).

The shared venv holds the union of what generated projects declare (installed from each project's own
pyproject, so a missing dependency there fails here), which keeps the option matrix fast.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
import venv
from pathlib import Path
from typing import Any

from aistarter.answers import validate
from aistarter.render import Engine, render_project

from .locks import exclusive

# One venv per pytest-xdist worker: projects pin different versions (arq's redis 5, celery's redis 8), and a
# worker reinstalling one must never swap a package under the other worker's running suite.
VENV = Path(os.environ.get("AISTARTER_PROJECT_VENV", str(Path.home() / ".cache" / "aistarter-tests" / "project-venv"))
            + os.environ.get("PYTEST_XDIST_WORKER", "").replace("gw", "-gw"))


def render(tmp_path: Path, engine: Engine = "copier", **answers: Any) -> Path:
    return render_project(validate(answers), tmp_path / engine, engine)


def declared_requirements(project: Path) -> list[str]:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    reqs = list(meta.get("dependencies", []))
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return sorted(set(reqs))


def pinned_by(project: Path) -> list[str]:
    lock = project / "requirements.lock"  # projects from before the lock have none
    return ["-c", str(lock)] if lock.is_file() else []


def project_python(project: Path, venv_dir: Path = VENV) -> Path:
    """A venv holding what the project declares; pass a new venv_dir to prove the declaration alone suffices."""
    python = venv_dir / "bin" / "python"
    reqs = declared_requirements(project)
    with exclusive(venv_dir):  # pytest-xdist workers share this venv; one installs at a time
        if not python.exists():
            venv.EnvBuilder(with_pip=True).create(venv_dir)
        if reqs:
            # Held to the project's own requirements.lock, so its suite tests the versions its image installs.
            installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                        *pinned_by(project), *reqs],
                                       capture_output=True, text=True)
            assert installed.returncode == 0, (
                f"installing the project's declared deps failed:\n{installed.stderr[-3000:]}")
    return python


def run_project_tests(project: Path, *pytest_args: str, env: dict[str, str] | None = None,
                      venv_dir: Path = VENV) -> subprocess.CompletedProcess[str]:
    python = project_python(project, venv_dir)
    # The projects' tests/test_types.py runs mypy. One cache per venv and xdist worker (one project at a time)
    # reuses the analysis of the installed libraries across projects; mypy rechecks the app files that differ.
    cache = venv_dir / "mypy-cache" / os.environ.get("PYTEST_XDIST_WORKER", "main")
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                          cwd=project, capture_output=True, text=True,
                          env={"MYPY_CACHE_DIR": str(cache), **os.environ, **(env or {})}, timeout=1800)


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, f"generated project's tests failed:\n{tail}"
    assert " passed" in result.stdout, f"generated project ran no tests:\n{tail}"

