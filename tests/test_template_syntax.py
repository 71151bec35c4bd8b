"""Every template file parses as Jinja: a block left open (one merge did it) fails here in a second, with the file
and line, instead of as 'generation failed' in every render test."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

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
    try:
        env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        pytest.fail(f"{path.relative_to(template_dir())}:{exc.lineno}: {exc.message}")
