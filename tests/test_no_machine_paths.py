"""No committed or generated file names a path of the machine it was written on (a venv, a home folder)."""

from __future__ import annotations

import re
from pathlib import Path

from aistarter.answers import validate
from aistarter.render import SOURCE_ROOT, render_project

# Container paths like /tmp or /app are fine; these are what a developer's machine leaks.
MACHINE_PATH = re.compile(r"(?<![\w.$}])/(?:work|root|home/\w+|Users/\w+|opt/homebrew|var/folders)/")
SHIPPED = ["generator/aistarter", "infra", "templates", "backstage", "README.md", "docs"]


def offenders(root: Path, names: list[str]) -> list[str]:
    found = []
    for name in names:
        base = root / name
        for path in [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.suffix in {".pyc", ".png", ".jpg"}:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if MACHINE_PATH.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return found


def test_the_package_names_no_absolute_machine_path() -> None:
    assert not offenders(SOURCE_ROOT, SHIPPED), "\n".join(offenders(SOURCE_ROOT, SHIPPED))


def test_a_generated_project_names_no_absolute_machine_path(tmp_path: Path) -> None:
    project = render_project(validate({"use_case": "rag", "self_hosted": "small", "providers": ["openai", "local"]}),
                             tmp_path / "out")
    found = offenders(project, ["."])
    assert not found, "\n".join(found)
    assert str(tmp_path) not in "".join(p.read_text(errors="ignore") for p in project.rglob("*") if p.is_file())
