"""docs/extending.md, followed literally: a copy of this project gets the guide's adapter module and its one
`PROVIDERS` entry, and nothing else. In the copy, the guide's own test streams a chat completion from the new
provider through the app, the app still type-checks, and production refuses to start without the provider's key.
The code that runs is the guide's, so the guide cannot drift from the app."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT, _unavailable
from tests.test_production import assert_refused, production_env

# What a project copy leaves out: the infra program, and caches or databases of earlier runs.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", "infra", "__pycache__", ".mypy_cache", ".pytest_cache",
                                   ".ruff_cache", ".data", "*.db", "node_modules")


def guide_code() -> tuple[str, str, str]:
    """The adapter module, the PROVIDERS entry and the test, as "Add a model provider" shows them."""
    guide = (PROJECT / "docs" / "extending.md").read_text(encoding="utf-8")
    section = guide.split("## Add a model provider", 1)[1].split("\n## ", 1)[0]
    adapter, entry, test = (textwrap.dedent(code) for code in re.findall(r"```python\n(.*?)```", section, re.S))
    return adapter, entry, test


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this project with the guide's provider `acme` added as the guide says."""
    adapter, entry, test = guide_code()
    copy = tmp_path_factory.mktemp("extended") / "project"
    shutil.copytree(PROJECT, copy, ignore=NOT_COPIED)
    (copy / "app" / "gateway" / "providers" / "acme.py").write_text(adapter, encoding="utf-8")
    settings = copy / "app" / "settings.py"
    opening = "\nPROVIDERS: dict[str, ProviderEntry] = {\n"
    head, table = settings.read_text(encoding="utf-8").split(opening, 1)
    entries, tail = table.split("\n}\n", 1)  # the table ends at the first unindented closing brace
    settings.write_text(head + opening + entries + "\n" + textwrap.indent(entry.strip(), "    ") + "\n}\n" + tail,
                        encoding="utf-8")
    (copy / "tests" / "test_acme.py").write_text(test, encoding="utf-8")
    return copy


def run(copy: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_the_guides_provider_streams_through_the_app(extended: Path) -> None:
    done = run(extended, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_acme.py")
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_production_requires_the_guides_provider_key(extended: Path) -> None:
    assert_refused(run(extended, "-c", "import app.main", env=production_env()), "ACME_API_KEY is empty")


def test_the_guides_provider_type_checks(extended: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        _unavailable("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    done = run(extended, "-m", "mypy")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
