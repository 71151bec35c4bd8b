"""`.env.example` lists every setting: the same names as `python -m app.settings --env-example`."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import _settings_classes, env_example, env_names

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def every_setting() -> set[str]:
    return {env for cls in _settings_classes() for env in env_names(cls).values()}


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(NAME.findall((ROOT / ".env.example").read_text(encoding="utf-8")))
    missing, extra = every_setting() - listed, listed - every_setting()
    assert not missing, f"missing from .env.example (see python -m app.settings --env-example): {sorted(missing)}"
    assert not extra, f"in .env.example but not a setting: {sorted(extra)}"


def test_the_generator_lists_every_setting_with_its_default() -> None:
    generated = env_example()
    assert set(NAME.findall(generated)) == every_setting()
    assert "DATABASE_URL=sqlite:///./app.db" in generated
