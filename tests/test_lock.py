"""Locked dependencies: the master lock shipped with aistarter and the requirements.lock each project gets from it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from aistarter.answers import validate
from aistarter.deps import (
    IMAGE_EXTRAS,
    MASTER_LOCKS,
    REFRESH_COMMAND,
    LockError,
    master_for,
    project_lock,
    read_closures,
    read_master,
    requirement_key,
    requirement_name,
    union_requirements,
)
from aistarter.render import render_project

VARIANTS = {
    "default": {},
    "rag-pgvector": {"use_case": "rag", "vector_store": "pgvector"},
    "agents-celery": {"use_case": "agents", "task_queue": "celery", "streaming": "websocket"},
    "batch-local-large": {"use_case": "batch", "providers": ["local"], "self_hosted": "large"},
}


def locked(lock_text: str) -> dict[str, str]:
    return {requirement_name(line): line for line in lock_text.splitlines() if line and not line.startswith("#")}


def image_requirements(project: Path) -> list[str]:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    extras = meta.get("optional-dependencies", {})
    return [*meta["dependencies"], *(r for e in IMAGE_EXTRAS for r in extras[e])]


@pytest.mark.parametrize("lock", sorted(MASTER_LOCKS), ids=lambda p: p.name)
def test_master_lock_pins_every_dependency_the_template_can_declare(lock: Path) -> None:
    # Adding a dependency to the template without refreshing the lock fails here, naming the command to run.
    pins, children = read_master(lock)
    closures = read_closures(lock)
    union = union_requirements(exclude=MASTER_LOCKS[lock])
    stale = sorted({requirement_name(r) for r in union} - set(pins)
                   | {requirement_key(r) for r in union} - set(closures))
    assert not stale, f"{lock.name} lacks {', '.join(stale)}: run `{REFRESH_COMMAND}` (needs uv) and commit it"
    # A raised lower bound makes the lock stale too.
    outside = [r for r in union if not Requirement(r).specifier.contains(
        pins[requirement_name(r)].partition("==")[2], prereleases=True)]
    assert not outside, f"{lock.name} pins outside {', '.join(outside)}: run `{REFRESH_COMMAND}` and commit it"
    assert all("==" in line for line in pins.values())
    assert not {requirement_name(r) for r in union_requirements()} & set(MASTER_LOCKS[lock]) & set(pins)
    for key, names in closures.items():
        # A closure holds only pinned packages, and only ones the `# via` graph says its root can reach.
        reach, todo = set(), [requirement_name(key)]
        while todo:
            name = todo.pop()
            if name not in reach:
                reach.add(name)
                todo += children.get(name, ())
        assert names <= reach <= set(pins), key


def test_arq_and_celery_projects_get_their_own_redis() -> None:
    # arq caps redis below 6; celery's kombu 5.7 (its unacked-restore options) needs redis >= 6.4.
    arq, celery = (read_master(master_for([key]))[0] for key in ("arq", "celery[redis]"))
    assert arq["redis"].partition("==")[2].startswith("5.")
    assert int(celery["redis"].partition("==")[2].split(".")[0]) >= 6 and celery["kombu"] >= "kombu==5.7"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_project_lock_is_the_closure_of_its_own_dependencies(tmp_path: Path, variant: str) -> None:
    project = render_project(validate(VARIANTS[variant]), tmp_path / "out")
    lock = locked((project / "requirements.lock").read_text())
    declared = image_requirements(project)
    master = master_for(requirement_key(r) for r in declared)
    pins, _ = read_master(master)
    closures = read_closures(master)
    assert set(lock.items()) <= set(pins.items()), "every line comes from the master lock, unchanged"
    assert {requirement_name(r) for r in declared} <= set(lock)
    # Exactly what its declared requirements install: nothing of another project's choices.
    assert set(lock) == set().union(*(closures[requirement_key(r)] for r in declared))
    assert len(lock) < len(pins)


def test_a_project_holds_only_what_its_answers_use(tmp_path: Path) -> None:
    default = locked((render_project(validate({}), tmp_path / "a") / "requirements.lock").read_text())
    rag = locked((render_project(validate(VARIANTS["rag-pgvector"]), tmp_path / "b") / "requirements.lock").read_text())
    assert "pgvector" in rag and "pgvector" not in default
    assert not {"celery", "qdrant-client", "mcp", "pytest", "selenium"} & set(default)
    # httpx's http2 extra is qdrant-client's, not the default project's; `# via httpx` alone would have added it.
    assert "h2" in rag_or_qdrant(tmp_path) and "h2" not in default


def rag_or_qdrant(tmp_path: Path) -> dict[str, str]:
    project = render_project(validate({"use_case": "rag", "vector_store": "qdrant"}), tmp_path / "q")
    return locked((project / "requirements.lock").read_text())


def test_a_dependency_missing_from_the_master_lock_is_a_one_line_error() -> None:
    with pytest.raises(LockError, match=rf"no pin for not-a-real-package; a maintainer runs `{REFRESH_COMMAND}`"):
        project_lock(["fastapi>=0.115", "not-a-real-package>=1"])


@pytest.mark.slow
def test_the_locked_install_of_the_default_project_imports(tmp_path: Path) -> None:
    # What the Dockerfile's build stage does, in a fresh venv: the lock alone must satisfy every requirement.
    project = render_project(validate({}), tmp_path / "out")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    for step in ([*pip, "-r", "requirements.lock"], [*pip, "."],
                 [str(venv / "bin" / "python"), "-m", "pip", "check"],
                 [str(venv / "bin" / "python"), "-c", "import app.main"]):
        done = subprocess.run(step, cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(step[2:])}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
