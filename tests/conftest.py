from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aistarter.render import template_dir


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def answers_file(tmp_path: Path):
    def write(text: str, name: str = "answers.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def text_values(answers: dict[str, Any]) -> dict[str, Any]:
    """Answers as the engines' command lines take them: a list (providers) is comma-separated in both."""
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in answers.items()}


@pytest.fixture
def bake(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Any]:
    """pytest-cookies' `cookies.bake` on templates/ with its hooks, as `cookiecutter --no-input -f templates k=v`.

    Every cookiecutter render in the suite goes through here. -f (overwrite_if_exists) because a folder whose
    name renders empty maps onto its parent, which exists; pytest-cookies has no option for it, so its call to
    cookiecutter gets it here.
    """
    import pytest_cookies.plugin
    from cookiecutter.main import cookiecutter

    forced = functools.partial(cookiecutter, overwrite_if_exists=True)
    monkeypatch.setattr(pytest_cookies.plugin, "cookiecutter", forced)
    return lambda answers: cookies.bake(extra_context=text_values(answers), template=str(template_dir()))


def baked_project(result: Any) -> Path:
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)
