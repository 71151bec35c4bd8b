"""Names and summaries: the project is named after DIR, `new` ends with decisions and next commands, and
`recommend --save` writes an answers file `new --answers` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aistarter.answers import AnswerError, validate
from aistarter.cli import main


def test_project_name_defaults_to_dir_and_new_ends_with_decisions_and_next_commands(tmp_path: Path,
                                                                                   runner: CliRunner) -> None:
    result = runner.invoke(main, ["new", str(tmp_path / "chatbot"), "--no-input"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "chatbot"
    assert 'name = "chatbot"' in (project / "pyproject.toml").read_text()
    assert (project / "infra" / "app" / "Pulumi.yaml").read_text().startswith("name: chatbot-app")
    assert (project / "README.md").read_text().startswith("# chatbot")
    out = result.output[result.output.index("next:"):]
    assert "Why (one decision per article criterion)" in result.output and "Stack" in result.output
    # Run, test, then the platform stack before the app stack.
    assert out.index("python -m app") < out.index("test:") < out.index("aistarter check")
    assert out.index("infra/platform") < out.index("infra/app") and out.count("pulumi up") == 2


def test_explicit_project_name_wins_over_dir(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(main, ["new", str(tmp_path / "chatbot"), "--no-input", "--dry-run",
                                  "--set", "project_name=Support Bot"])
    assert result.exit_code == 0, result.output


def test_dir_name_that_is_no_valid_project_name_is_a_one_line_error(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(main, ["new", str(tmp_path / "9 lives!"), "--no-input"])
    assert result.exit_code == 2
    assert "project_name: '9 lives!'" in result.output and "--set project_name=" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "9 lives!").exists()


@pytest.mark.parametrize("name", ["1app", "a" * 41, "---", "ab/c", "a..b", "x!"])
def test_project_names_that_break_a_target_format_are_refused(name: str) -> None:
    with pytest.raises(AnswerError, match="project_name"):
        validate({"project_name": name})


def test_longest_allowed_name_is_a_valid_kubernetes_name() -> None:
    import re

    slug = validate({"project_name": "A" * 40}).project_slug
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", slug + "-platform") and len(slug + "-platform") <= 53


def test_recommend_save_writes_answers_that_new_accepts(tmp_path: Path, runner: CliRunner) -> None:
    saved = tmp_path / "answers.yml"
    shown = runner.invoke(main, ["recommend", "--no-input", "--format", "json", "--set", "use_case=rag",
                                 "--set", "providers=anthropic,openai", "--save", str(saved)])
    assert shown.exit_code == 0, shown.output
    assert saved.is_file()
    again = runner.invoke(main, ["recommend", "--no-input", "--format", "json", "--answers", str(saved)])
    assert json.loads(again.stdout)["answers"] == json.loads(shown.stdout)["answers"]
    made = runner.invoke(main, ["new", str(tmp_path / "bot"), "--no-input", "--dry-run", "--answers", str(saved)])
    assert made.exit_code == 0, made.output


def test_recommend_save_to_an_unwritable_path_is_one_line(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(main, ["recommend", "--no-input", "--save", str(tmp_path / "missing" / "a.yml")])
    assert result.exit_code == 2 and "--save" in result.output and "Traceback" not in result.output
