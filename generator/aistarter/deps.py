"""Locked dependencies for generated projects, computed offline.

aistarter ships one master lock (`lock/requirements.lock`): exact pins, for Python 3.11 on Linux, of every
dependency any generated project can declare (the template pyproject's dependencies under every answer, plus
all its extras). A maintainer refreshes it with `python -m aistarter.deps` (needs uv and PyPI). At generation
time a project receives `requirements.lock`: the transitive closure of just the dependencies its own pyproject
declares for the image (its dependencies plus the `postgres` extra), read from the master lock's `# via`
annotations, so `aistarter new` needs no network and a project pins only what its answers use.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MASTER_LOCK = Path(__file__).resolve().parent / "lock" / "requirements.lock"
REFRESH_COMMAND = "python -m aistarter.deps"
# What the image installs besides the dependencies: the Dockerfile's build stage (DATABASE_URL=postgresql://...).
IMAGE_EXTRAS = ("postgres",)
_INPUT_NAME = "template-dependencies.in"  # the name `# via -r ...` shows for a top-level requirement
_JINJA_STATEMENT = re.compile(r"^\s*\{%-?.*?-?%\}\s*$")
_JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}")


class LockError(RuntimeError):
    """The master lock cannot serve a project (stale or missing): the message names the refresh command."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise LockError(f"cannot read a package name from requirement {requirement!r}")
    return canonical(match.group(1))


def template_pyproject(template: Path | None = None) -> Path:
    from .render import template_dir

    return (template or template_dir()) / "{{cookiecutter.project_slug}}" / "pyproject.toml"


def union_requirements(template: Path | None = None) -> list[str]:
    """Every requirement the template's pyproject can declare, under any answers, extras included.

    Each dependency sits on its own line inside `{% if %}` blocks, so dropping the statement lines (and blanking
    the expressions) leaves valid TOML that lists all of them at once.
    """
    text = template_pyproject(template).read_text(encoding="utf-8")
    lines = [_JINJA_EXPRESSION.sub("x", line) for line in text.splitlines() if not _JINJA_STATEMENT.match(line)]
    project = tomllib.loads("\n".join(lines))["project"]
    found = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        found += extra
    return list(dict.fromkeys(found))


def image_requirements(pyproject_text: str) -> list[str]:
    """What a rendered project's image installs: its dependencies plus the image's extras."""
    project = tomllib.loads(pyproject_text)["project"]
    extras = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *(r for extra in IMAGE_EXTRAS for r in extras.get(extra, []))]


def read_master(path: Path = MASTER_LOCK) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(pinned line by package, packages each package pulls in), from the `# via` annotations."""
    if not path.is_file():
        raise LockError(f"{path.name} is missing from aistarter; a maintainer runs `{REFRESH_COMMAND}`")
    pins: dict[str, str] = {}
    children: dict[str, set[str]] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line.startswith((" ", "#")):
            current = requirement_name(stripped)
            pins[current] = stripped
            continue
        via = stripped.removeprefix("#").strip()
        if current is None or via in ("", "via") or via.startswith("-r "):
            continue
        # `# via parent` on one line, or `# via` then one `#   parent` per line.
        for parent in via.removeprefix("via ").split(","):
            parent = parent.strip()
            if parent and not parent.startswith("-r "):
                children.setdefault(requirement_name(parent), set()).add(current)
    return pins, children


def project_lock(requirements: Iterable[str], path: Path = MASTER_LOCK) -> str:
    """The lines of a project's requirements.lock: the master's pins of these requirements and all they pull in.

    The graph comes from `# via` annotations, which do not say which extra of a parent pulled a package in, so a
    closure may hold a few packages of an extra the project does not use (never fewer than it needs).
    """
    pins, children = read_master(path)
    roots = [requirement_name(r) for r in requirements]
    missing = sorted(set(roots) - set(pins))
    if missing:
        raise LockError(f"the master lock has no pin for {', '.join(missing)}; a maintainer runs `{REFRESH_COMMAND}`")
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(children.get(name, ()))
    header = ("# Exact versions of every package the image installs (Dockerfile: pip install --no-deps -r "
              "requirements.lock).\n# Cut by aistarter from its tested lock for this project's dependencies; "
              "refresh: see README.md.\n")
    return header + "".join(f"{pins[name]}\n" for name in sorted(seen))


def render_lock(context: dict[str, Any], template: Path | None = None) -> str:
    """The requirements.lock of the project this cookiecutter context renders (its pyproject rendered alone)."""
    import jinja2

    source = template_pyproject(template).read_text(encoding="utf-8")
    text = jinja2.Environment(keep_trailing_newline=True).from_string(source).render(cookiecutter=context)
    return project_lock(image_requirements(text))


def refresh(out: Path = MASTER_LOCK, template: Path | None = None) -> None:
    """Re-resolve the master lock with uv (needs PyPI): the maintainer command after any dependency change."""
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    with tempfile.TemporaryDirectory(prefix="aistarter-lock-") as tmp:
        (Path(tmp) / _INPUT_NAME).write_text("\n".join(union_requirements(template)) + "\n", encoding="utf-8")
        done = subprocess.run([*command, "pip", "compile", _INPUT_NAME, "--python-version", "3.11",
                               "--python-platform", "x86_64-unknown-linux-gnu", "--annotation-style", "split",
                               "--custom-compile-command", REFRESH_COMMAND, "--no-config", "-o", "out.lock", "-q"],
                              cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise LockError(f"uv pip compile failed: {(done.stderr or done.stdout).strip()[-500:]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text((Path(tmp) / "out.lock").read_text(encoding="utf-8"), encoding="utf-8")


if __name__ == "__main__":
    try:
        refresh()
    except (LockError, OSError) as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {MASTER_LOCK.name} ({len(read_master()[0])} pins)")
