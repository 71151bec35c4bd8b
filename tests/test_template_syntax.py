"""Every template file parses as Jinja: a block left open (one merge did it) fails here in a second, with the file
and line, instead of as 'generation failed' in every render test."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from aistarter.render import template_dir

TEMPLATES = sorted(p for p in template_dir().rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.relative_to(template_dir()).as_posix())
def test_template_file_parses(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        pytest.skip("binary file: copied as is")
    env = jinja2.Environment()
    env.parse(path.relative_to(template_dir()).as_posix())  # the path is a template too (conditional names)
    # copier.yml is YAML whose string values copier renders one by one (when, validator, _subdirectory).
    sources = list(_strings(yaml.safe_load(text))) if path.name == "copier.yml" else [text]
    for source in sources:
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            pytest.fail(f"{path.relative_to(template_dir())}:{exc.lineno}: {exc.message} in {source[:80]!r}")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []
