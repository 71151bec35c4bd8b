"""What `new` prints when it is done, and what `recommend --save` writes: pure functions of the answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .answers import recorded
from .questions import QUESTION_BY_KEY, Answers


def next_commands(answers: Answers, project: Path, cwd: Path) -> list[tuple[str, str]]:
    """(purpose, shell command) in the order a newcomer runs them: run, test, check, then deploy platform -> app."""
    try:
        where = os.path.relpath(project, cwd)
    except ValueError:  # another drive on Windows
        where = str(project)
    steps: list[tuple[str, str]] = []
    if where != ".":
        steps.append(("enter", f"cd {where}"))
    steps += [
        ("run", "python -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m app"),
        ("test", "pytest"),
        ("check", "aistarter check"),
    ]
    if answers.cloud != "existing":
        steps.append(("deploy 1/2",
                      "(cd infra/platform && pulumi stack init dev && pulumi up)  # the cluster; see its README.md"))
    steps.append(("deploy 2/2" if answers.cloud != "existing" else "deploy",
                  "(cd infra/app && pulumi stack init dev && pulumi up)  # set secrets first: infra/app/README.md"))
    return steps


def answers_file_text(answers: Answers) -> str:
    """An answers file `new --answers` accepts. The default project name is left out, so `new DIR` names the
    project after DIR."""
    values: dict[str, Any] = recorded(answers)
    for key in ("project_name", "description"):
        if values[key] == QUESTION_BY_KEY[key].default:
            del values[key]
    header = f"# aistarter {__version__} answers: aistarter new DIR --answers THIS_FILE\n"
    return header + yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
