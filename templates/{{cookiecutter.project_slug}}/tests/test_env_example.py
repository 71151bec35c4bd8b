"""`.env.example` lists every setting: the same names as `python -m app.settings --env-example`. A provider's
<NAME>_API_KEY and <NAME>_BASE_URL are the exception: the file names them as a pattern, so a provider added to
PROVIDERS in app/settings.py needs no edit here (docs/extending.md)."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import PROVIDERS, _settings_classes, env_example, env_names

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def every_setting() -> set[str]:
    return {env for cls in _settings_classes() for env in env_names(cls).values()}


def provider_settings() -> set[str]:
    return {f"{name}_{what}".upper() for name in PROVIDERS for what in ("api_key", "base_url")}


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(NAME.findall(text))
    missing, extra = every_setting() - listed - provider_settings(), listed - every_setting()
    assert "<NAME>_API_KEY" in text and "<NAME>_BASE_URL" in text
    assert not missing, f"missing from .env.example (see python -m app.settings --env-example): {sorted(missing)}"
    assert not extra, f"in .env.example but not a setting: {sorted(extra)}"


def test_the_generator_lists_every_setting_with_its_default() -> None:
    generated = env_example()
    assert set(NAME.findall(generated)) == every_setting()
    assert "DATABASE_URL=sqlite:///./app.db" in generated
