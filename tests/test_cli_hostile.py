"""No input of any kind ends in a traceback: every command, fed hostile arguments, exits with a one-line error."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aistarter.cli import main


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += commands(command, path)
    return found


def hostile(tmp: Path) -> list[list[str]]:
    (tmp / "garbage.yml").write_bytes(b"\xff\xfe\x00binary: [\n")
    (tmp / "list.yml").write_text("- a\n- b\n")
    (tmp / "deep.yml").write_text("use_case: {a: {b: [1, 2]}}\nproviders: 7\nlatency_budget_ms: [1]\n")
    (tmp / "a-file").write_text("x")
    (tmp / "empty-dir").mkdir()
    return [
        ["--set", "nokey"], ["--set", "=rag"], ["--set", "use_case=\x00"], ["--set", "latency_budget_ms=1e999"],
        ["--set", "providers=,,,"], ["--set", "project_name=../../etc"], ["--set", "project_name=" + "x" * 5000],
        ["--answers", str(tmp / "garbage.yml")], ["--answers", str(tmp / "list.yml")],
        ["--answers", str(tmp / "deep.yml")], ["--answers", str(tmp / "missing.yml")], ["--answers", str(tmp)],
        ["--format", "nope"], ["--engine", "nope"], ["--step", "nope"], ["--port", "-1"], ["--out", "\x00"],
        [str(tmp / "a-file")], [str(tmp / "missing-dir")], [str(tmp / "empty-dir")], ["--bogus-flag"],
        ["bad\x00dir"], ["--write", "\x00"], ["--write", str(tmp / "missing-dir" / "t.yaml")],
    ]


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_hostile_input_never_ends_in_a_traceback(command: tuple[str, ...], tmp_path: Path) -> None:
    runner = CliRunner()
    for args in hostile(tmp_path):
        result = runner.invoke(main, [*command, *args, "--no-input"] if command in {("new",), ("recommend",)}
                               else [*command, *args])
        shown = f"aistarter {' '.join(command)} {args!r}: exit {result.exit_code}\n{result.output}"
        assert "Traceback" not in result.output, shown
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            shown + f"\n{type(result.exception).__name__}: {result.exception}")
        if result.exit_code != 0:
            assert result.output.strip(), shown
            # One line a person can read: a 5000-character value is named, not echoed.
            assert max(len(line) for line in result.output.splitlines()) < 400, shown[:500]


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_has_h_and_examples(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "-h"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and "aistarter " + " ".join(command) in result.output, result.output


@pytest.mark.parametrize("name", ["new", "recommend", "options", "check", "update"])
def test_every_reporting_command_has_format_json(name: str) -> None:
    formats = [p for p in main.commands[name].params if p.name == "fmt"]
    assert formats and "json" in formats[0].type.choices  # type: ignore[attr-defined]


def test_new_format_json_reports_files_and_next_commands(tmp_path: Path) -> None:
    import json

    result = CliRunner().invoke(main, ["new", str(tmp_path / "bot"), "--no-input", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == str((tmp_path / "bot").resolve()) and "pyproject.toml" in payload["files"]
    assert [step["purpose"] for step in payload["next"]][:3] == ["enter", "run", "test"] or payload["next"][0][
        "purpose"] == "run"
    assert payload["blueprint"]["answers"]["project_name"] == "bot"
