"""Rendering: one template tree, two engines, one atomic move into place.

Both engines render `templates/` with the same context. The result is finished in a temporary folder
next to the destination (vendored infra library, first git commit) and only then renamed into place,
so a failure at any step leaves nothing at DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from . import __version__
from .answers import AnswerError, recorded
from .blueprint import Blueprint
from .decide import decide
from .questions import QUESTIONS, Answers
from .report import adr_files

Engine = Literal["copier", "cookiecutter"]
ENGINES: tuple[Engine, ...] = ("copier", "cookiecutter")
SOURCE_ROOT = Path(__file__).resolve().parents[2]
ANSWERS_RECORD = Path(".aistarter/answers.yml")


class RenderError(RuntimeError):
    """Generation could not finish; nothing was written at the destination."""


def _data_dir(name: str) -> Path:
    packaged = Path(__file__).resolve().parent / "_data" / name
    return packaged if packaged.exists() else SOURCE_ROOT / name


def template_dir() -> Path:
    return _data_dir("templates")


def infra_library_dir() -> Path:
    packaged = Path(__file__).resolve().parent / "_data" / "infra" / "aistarter_infra"
    return packaged if packaged.exists() else SOURCE_ROOT / "infra" / "aistarter_infra"


def _scalar(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


def template_context(blueprint: Blueprint, given: Answers) -> dict[str, Any]:
    """Flat scalars for file names and simple conditions; the whole blueprint for structured values."""
    resolved = blueprint.answers
    context: dict[str, Any] = {key: _scalar(value) for key, value in resolved.model_dump(mode="json").items()}
    context.update(
        project_slug=resolved.project_slug,
        aistarter_version=__version__,
        _blueprint=blueprint.model_dump(mode="json"),
        _adrs=adr_files(blueprint),
        _answers_record=yaml.safe_dump(
            {"aistarter_version": __version__, "answers": recorded(given)}, sort_keys=False, allow_unicode=True
        ),
    )
    return context


def cookiecutter_json() -> dict[str, Any]:
    """The template's cookiecutter.json, derived from the questionnaire (a test keeps the file in sync)."""
    defaults: dict[str, Any] = {}
    for q in QUESTIONS:
        if q.kind == "choice":
            default = str(q.default)
            defaults[q.key] = [default, *[c for c in q.choices if c != default]]
        elif q.kind == "multi":
            defaults[q.key] = ",".join(q.default)
        else:
            defaults[q.key] = q.default
    defaults["project_slug"] = "{{ cookiecutter.project_name.lower().replace(' ', '-') }}"
    defaults["aistarter_version"] = __version__
    defaults["_blueprint"] = {}
    defaults["_adrs"] = {}
    defaults["_answers_record"] = ""
    return defaults


def run_engine(engine: Engine, context: dict[str, Any], out_dir: Path) -> Path:
    """Render the template with one engine into out_dir; returns the project folder inside it."""
    src = str(template_dir())
    if engine == "copier":
        import copier

        copier.run_copy(src, str(out_dir), data={"cookiecutter": context}, defaults=True, unsafe=True, quiet=True,
                        overwrite=True)
    elif engine == "cookiecutter":
        from cookiecutter.main import cookiecutter

        cookiecutter(src, no_input=True, extra_context=context, output_dir=str(out_dir), accept_hooks=False)
    else:
        raise RenderError(f"unknown engine '{engine}' (use one of: {', '.join(ENGINES)})")
    project = out_dir / context["project_slug"]
    if not project.is_dir():
        raise RenderError(f"{engine} did not produce {project.name}/")
    return project


def _vendor_infra_library(project: Path) -> None:
    # Generated projects own their infra code: a copy, never an import of aistarter at deploy time.
    library = infra_library_dir()
    if library.is_dir():
        shutil.copytree(library, project / "infra" / "aistarter_infra",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)


def _git(project: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "aistarter", "GIT_AUTHOR_EMAIL": "aistarter@localhost",
           "GIT_COMMITTER_NAME": "aistarter", "GIT_COMMITTER_EMAIL": "aistarter@localhost"}
    subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)


def _first_commit(project: Path) -> bool:
    # The pristine render as the first commit is what `aistarter update` merges against later.
    if shutil.which("git") is None:
        return False
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "--no-verify", "-m", f"Generated by aistarter {__version__}")
    return True


def render_project(answers: Answers, out_dir: Path, engine: Engine = "copier") -> Path:
    """Render a complete project (template + vendored infra) into out_dir; no git, no move."""
    blueprint = decide(answers)
    project = run_engine(engine, template_context(blueprint, answers), out_dir)
    _vendor_infra_library(project)
    return project


@dataclass(frozen=True)
class Generated:
    path: Path
    files: list[str]
    committed: bool


def list_files(project: Path) -> list[str]:
    return sorted(p.relative_to(project).as_posix() for p in project.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(project).parts)


def check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise AnswerError(f"destination {dest} is a file; choose a folder path")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise AnswerError(f"destination {dest} is not empty; choose an empty folder or pass --force to replace it")


@contextmanager
def _staging(near: Path) -> Iterator[Path]:
    # Same filesystem as the destination, so the final rename is atomic.
    near.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".aistarter-", dir=near))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def plan(answers: Answers, engine: Engine = "copier") -> list[str]:
    """The file list `new` would write, rendered in a throwaway folder."""
    with tempfile.TemporaryDirectory(prefix="aistarter-plan-") as tmp:
        return list_files(render_project(answers, Path(tmp), engine))


def generate(answers: Answers, dest: Path, engine: Engine = "copier", force: bool = False) -> Generated:
    dest = dest.resolve()
    check_destination(dest, force)
    with _staging(dest.parent) as staging:
        try:
            project = render_project(answers, staging / "out", engine)
            committed = _first_commit(project)
        except (OSError, subprocess.CalledProcessError, RenderError) as exc:
            raise RenderError(f"generation failed, nothing written to {dest}: {exc}") from exc
        except Exception as exc:  # engine errors (Jinja, copier, cookiecutter) have no common base class
            raise RenderError(f"generation failed, nothing written to {dest}: {type(exc).__name__}: {exc}") from exc
        files = list_files(project)
        old = staging / "replaced"
        if dest.exists():
            dest.rename(old)  # kept until the new project is in place, so --force never loses both
        try:
            project.rename(dest)
        except OSError:
            if old.exists():
                old.rename(dest)
            raise
    return Generated(path=dest, files=files, committed=committed)


def write_template_metadata() -> None:
    """Regenerate templates/cookiecutter.json from the questionnaire (run after changing a question)."""
    path = SOURCE_ROOT / "templates" / "cookiecutter.json"
    path.write_text(json.dumps(cookiecutter_json(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_template_metadata()
