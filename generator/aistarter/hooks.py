"""Generation hooks: the check before a render and the finishing steps after it, for every way in.

`aistarter new` calls these functions itself (it renders in a staging folder and must decide about an existing
`.git`), cookiecutter runs them from `templates/hooks/{pre,post}_gen_project.py`, and copier from its `_tasks`
(`python -m aistarter.hooks after`; copier's validators are its before-check). One implementation, three callers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .answers import AnswerError, validate
from .questions import Answers

# The exit code of a refused answer, as for the CLI.
BAD_ANSWER = 2


def check(values: Mapping[str, Any]) -> Answers:
    """The engine's raw answers, validated exactly as the CLI validates them (AnswerError: one line)."""
    from .jinja_ext import raw_answers

    return validate(raw_answers(values))


def before(values: Mapping[str, Any]) -> int:
    """Pre-generation: 0 for good answers; else the one-line error on stderr and exit code 2."""
    try:
        check(values)
    except AnswerError as exc:
        print(f"aistarter: {exc}", file=sys.stderr)
        return BAD_ANSWER
    return 0


def resolved_answers(project: Path) -> dict[str, Any] | None:
    """The project's answers as the decision engine resolved them (no `auto`), from its answers record."""
    from .decide import decide
    from .render import ANSWERS_RECORD

    try:
        record = yaml.safe_load((project / ANSWERS_RECORD).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    answers = record.get("answers") if isinstance(record, dict) else None
    return decide(validate(answers or {})).answers.model_dump(mode="json")


def vendor_infra_library(project: Path) -> None:
    """Generated projects own their infra code: a copy, never an import of aistarter at deploy time. The copy
    holds only what the answers use (vendoring.PARTS); without an answers record, all of it."""
    from .render import infra_library_dir
    from .vendoring import unused_paths

    library = infra_library_dir()
    if not library.is_dir():
        return
    answers = resolved_answers(project)
    unused = set(unused_paths(answers)) if answers is not None else set()
    ignore_cache = shutil.ignore_patterns("__pycache__", "*.pyc")

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).relative_to(library)
        return set(ignore_cache(folder, names)) | {n for n in names if (here / n).as_posix() in unused}

    shutil.copytree(library, project / "infra" / "aistarter_infra", ignore=ignore, dirs_exist_ok=True)


def run_git(project: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "aistarter", "GIT_AUTHOR_EMAIL": "aistarter@localhost",
           "GIT_COMMITTER_NAME": "aistarter", "GIT_COMMITTER_EMAIL": "aistarter@localhost"}
    subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)


def recorded_version(project: Path) -> str:
    """The release the project was rendered as, from its answers record (one fact, written by the template)."""
    from . import __version__
    from .render import ANSWERS_RECORD

    try:
        record = yaml.safe_load((project / ANSWERS_RECORD).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return __version__
    return str(record.get("aistarter_version") or __version__) if isinstance(record, dict) else __version__


def first_commit(project: Path, version: str | None = None) -> bool:
    """The pristine render as the first commit, and the template branch at it: what `aistarter update` merges
    against later. False (nothing done) without git."""
    from .render import FIRST_COMMIT_PREFIX, TEMPLATE_BRANCH

    if shutil.which("git") is None:
        return False
    run_git(project, "init", "-q", "-b", "main")
    run_git(project, "add", "-A")
    message = f"{FIRST_COMMIT_PREFIX} {version or recorded_version(project)}"
    run_git(project, "commit", "-q", "--no-verify", "-m", message)
    run_git(project, "branch", TEMPLATE_BRANCH)
    return True


def drop_bytecode(project: Path) -> None:
    """pip byte-compiles an installed template's .py files and cookiecutter has no exclude list, so a render from
    an installed aistarter carries `__pycache__` folders the template never meant to produce."""
    for cache in list(project.rglob("__pycache__")):
        shutil.rmtree(cache)


def after(project: Path) -> int:
    """Post-generation: drop bytecode, vendor the infra library, then the first commit unless the folder already
    has git."""
    drop_bytecode(project)
    vendor_infra_library(project)
    if not (project / ".git").exists():
        first_commit(project)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m aistarter.hooks after [DIR]`: copier's `_tasks` run it in the new project."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "after":
        print("usage: python -m aistarter.hooks after [PROJECT_DIR]", file=sys.stderr)
        return BAD_ANSWER
    from .render import ANSWERS_RECORD

    project = Path(args[1] if len(args) > 1 else ".").resolve()
    # Only a freshly generated project: anywhere else `after` would create the folder, vendor into it and commit.
    if not (project / ANSWERS_RECORD).is_file():
        print(f"aistarter: {project} is not a generated project (no {ANSWERS_RECORD}); "
              "run this in the folder copier or cookiecutter just made", file=sys.stderr)
        return BAD_ANSWER
    return after(project)


if __name__ == "__main__":
    sys.exit(main())
