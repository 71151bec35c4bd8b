"""Locked dependencies for generated projects, computed offline.

aistarter ships master locks (`lock/requirements*.lock`): exact pins, for Python 3.11 on Linux, of every
dependency any generated project can declare (the template pyproject's dependencies under every answer, plus
all its extras), split only where two choices cannot share one resolution (MASTER_LOCKS). A maintainer
refreshes them with `python -m aistarter.deps` (needs uv and PyPI). At generation time a project receives
`requirements.lock`: the transitive closure of just the dependencies its own pyproject declares for the image
(its dependencies plus the `postgres` extra), so `aistarter new` needs no network and a project pins only what
its answers use.

The closures are resolved by the refresh too, one declared requirement at a time against the master's pins, and kept
at the end of the master lock as `# closure <requirement>: <packages>` lines. The `# via` annotations alone would
over-include: they do not say which extra of a parent pulled a package in (`httpx` would bring `h2`, which only
qdrant-client's `httpx[http2]` needs).
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

LOCK_DIR = Path(__file__).resolve().parent / "lock"
MASTER_LOCK = LOCK_DIR / "requirements.lock"
# Choices whose libraries cannot share one resolution get a master lock each, without the other's requirement:
# arq caps redis below 6, and the celery worker's Redis transport options (unacked restore) need kombu >= 5.7,
# which needs redis >= 6.4. A project's lock is cut from the first master that pins all it declares.
MASTER_LOCKS: dict[Path, frozenset[str]] = {
    MASTER_LOCK: frozenset({"celery"}),
    LOCK_DIR / "requirements-celery.lock": frozenset({"arq"}),
}
REFRESH_COMMAND = "python -m aistarter.deps"
# What the image installs besides the dependencies: the Dockerfile's build stage (DATABASE_URL=postgresql://...).
IMAGE_EXTRAS = ("postgres",)
_INPUT_NAME = "template-dependencies.in"  # the name `# via -r ...` shows for a top-level requirement
_CLOSURE = "# closure "
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


def requirement_key(requirement: str) -> str:
    """A requirement's name and extras, the unit a closure is resolved for: `psycopg[binary]>=3.2` gives
    `psycopg[binary]`."""
    name = requirement_name(requirement)
    match = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]", requirement)
    extras = sorted(canonical(e.strip()) for e in match.group(1).split(",") if e.strip()) if match else []
    return f"{name}[{','.join(extras)}]" if extras else name


def template_pyproject(template: Path | None = None) -> Path:
    from .render import template_dir

    return (template or template_dir()) / "{{cookiecutter.project_slug}}" / "pyproject.toml"


def union_requirements(template: Path | None = None, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Every requirement the template's pyproject can declare, under any answers, extras included (but `exclude`).

    Each dependency sits on its own line inside `{% if %}` blocks, so dropping the statement lines (and blanking
    the expressions) leaves valid TOML that lists all of them at once.
    """
    text = template_pyproject(template).read_text(encoding="utf-8")
    lines = [_JINJA_EXPRESSION.sub("x", line) for line in text.splitlines() if not _JINJA_STATEMENT.match(line)]
    project = tomllib.loads("\n".join(lines))["project"]
    found = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        found += extra
    return [r for r in dict.fromkeys(found) if requirement_name(r) not in exclude]


def image_requirements(pyproject_text: str) -> list[str]:
    """What a rendered project's image installs: its dependencies plus the image's extras."""
    project = tomllib.loads(pyproject_text)["project"]
    extras = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *(r for extra in IMAGE_EXTRAS for r in extras.get(extra, []))]


def read_closures(path: Path = MASTER_LOCK) -> dict[str, set[str]]:
    """The packages each declared requirement (by `requirement_key`) installs, itself included."""
    closures: dict[str, set[str]] = {}
    for line in _master_text(path).splitlines():
        if line.startswith(_CLOSURE):
            key, _, names = line.removeprefix(_CLOSURE).partition(":")
            closures[key.strip()] = set(names.split())
    return closures


def _master_text(path: Path) -> str:
    if not path.is_file():
        raise LockError(f"{path.name} is missing from aistarter; a maintainer runs `{REFRESH_COMMAND}`")
    return path.read_text(encoding="utf-8")


def read_master(path: Path = MASTER_LOCK) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(pinned line by package, packages each package may pull in), from the `# via` annotations."""
    pins: dict[str, str] = {}
    children: dict[str, set[str]] = {}
    current: str | None = None
    for line in _master_text(path).splitlines():
        stripped = line.strip()
        if not stripped or line.startswith(_CLOSURE):
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


def master_for(keys: Iterable[str]) -> Path:
    """The first master lock that pins every one of these requirement keys."""
    wanted = set(keys)
    for path in MASTER_LOCKS:
        if wanted <= set(read_closures(path)):
            return path
    known = set().union(*(read_closures(path) for path in MASTER_LOCKS))
    missing = sorted(wanted - known) or sorted(wanted)
    raise LockError(f"the master lock has no pin for {', '.join(missing)}; a maintainer runs `{REFRESH_COMMAND}`")


def project_lock(requirements: Iterable[str], path: Path | None = None) -> str:
    """A project's requirements.lock: the master's pins of these requirements and everything they install."""
    keys = [requirement_key(r) for r in requirements]
    path = path or master_for(keys)
    pins, _ = read_master(path)
    closures = read_closures(path)
    missing = sorted(set(keys) - set(closures))
    if missing:
        raise LockError(f"the master lock has no pin for {', '.join(missing)}; a maintainer runs `{REFRESH_COMMAND}`")
    names = set().union(*(closures[key] for key in keys))
    header = ("# Exact versions of every package the image installs (Dockerfile: pip install --no-deps -r "
              "requirements.lock).\n# Cut by aistarter from its tested lock for this project's dependencies; "
              "refresh: see README.md.\n")
    return header + "".join(f"{pins[name]}\n" for name in sorted(names))


def render_lock(context: dict[str, Any], template: Path | None = None) -> str:
    """The requirements.lock of the project this cookiecutter context renders (its pyproject rendered alone)."""
    import jinja2

    source = template_pyproject(template).read_text(encoding="utf-8")
    text = jinja2.Environment(keep_trailing_newline=True).from_string(source).render(cookiecutter=context)
    return project_lock(image_requirements(text))


def _compile(command: list[str], cwd: Path, source: str, out: str, *extra: str) -> None:
    done = subprocess.run([*command, "pip", "compile", source, "--python-version", "3.11", "--python-platform",
                           "x86_64-unknown-linux-gnu", "--no-config", "-o", out, "-q", *extra],
                          cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise LockError(f"uv pip compile {source} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def refresh(template: Path | None = None) -> None:
    """Re-resolve every master lock with uv (needs PyPI): the maintainer command after any dependency change."""
    for out, exclude in MASTER_LOCKS.items():
        refresh_one(out, union_requirements(template, exclude))


def refresh_one(out: Path, requirements: list[str]) -> None:
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    with tempfile.TemporaryDirectory(prefix="aistarter-lock-") as name:
        tmp = Path(name)
        (tmp / _INPUT_NAME).write_text("\n".join(requirements) + "\n", encoding="utf-8")
        _compile(command, tmp, _INPUT_NAME, "master.lock", "--annotation-style", "split",
                 "--custom-compile-command", REFRESH_COMMAND)
        master = (tmp / "master.lock").read_text(encoding="utf-8")
        closures = []
        # Each declared requirement alone, held to the master's versions: exactly what it installs, extras included.
        for key in dict.fromkeys(requirement_key(r) for r in requirements):
            (tmp / "one.in").write_text(key + "\n", encoding="utf-8")
            _compile(command, tmp, "one.in", "one.lock", "-c", "master.lock", "--no-header", "--no-annotate")
            names = sorted(requirement_name(line) for line in (tmp / "one.lock").read_text().splitlines()
                           if line.strip() and not line.startswith("#"))
            closures.append(f"{_CLOSURE}{key}: {' '.join(names)}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(master + "\n# What each declared requirement installs, resolved alone against the pins above:\n"
                   + "".join(closures), encoding="utf-8")


if __name__ == "__main__":
    try:
        refresh()
    except (LockError, OSError) as exc:
        sys.exit(f"error: {exc}")
    for path in MASTER_LOCKS:
        print(f"wrote {path.name} ({len(read_master(path)[0])} pins)")
