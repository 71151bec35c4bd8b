"""The command line: answer sources and precedence, output formats, and one-line errors with exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from aistarter import __version__, prompts
from aistarter.cli import main
from aistarter.questions import QUESTION_BY_KEY, QUESTIONS, applies

STACK_KEYS = {"framework", "streaming", "gateway", "vector_store", "task_queue", "observability", "usage_billing",
              "cloud", "api", "gpu", "model_server"}


def recommend_json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(main, ["recommend", "--no-input", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_recommend_json_follows_the_contract(runner: CliRunner, answers_file) -> None:
    path = answers_file("use_case: rag\nproviders: [openai, local]\nself_hosted: small\n")
    data = recommend_json(runner, "--answers", str(path))
    stack = data["stack"]
    assert set(stack) >= STACK_KEYS
    assert set(stack["gateway"]) >= {"providers", "fallback", "retries", "timeout_s"}
    assert set(stack["api"]) >= {"min_replicas", "max_replicas", "autoscaler", "metric"}
    assert set(stack["gpu"]) >= {"accelerator", "gpus_per_node", "min_nodes", "max_nodes", "spot"}
    assert set(stack["model_server"]) >= {"engine", "min_replicas", "max_replicas", "tensor_parallel",
                                          "scale_to_zero", "autoscaler", "metric"}
    assert {r["criterion"] for r in data["rationale"]} == {
        "workload", "latency", "iteration", "scaling", "observability", "plug-in", "ecosystem"}
    assert all(set(r) >= {"criterion", "decision", "reason"} for r in data["rationale"])
    assert data["answers"]["vector_store"] == "qdrant"


def test_set_beats_file_beats_defaults(runner: CliRunner, answers_file) -> None:
    path = answers_file("use_case: rag\npeak_rps: 50\n")
    data = recommend_json(runner, "--answers", str(path), "--set", "use_case=batch")
    assert data["answers"]["use_case"] == "batch"
    assert data["answers"]["peak_rps"] == 50
    assert data["answers"]["cloud"] == "aws"


def test_recommend_table_and_markdown(runner: CliRunner) -> None:
    table = runner.invoke(main, ["recommend", "--no-input"])
    assert table.exit_code == 0 and "scaling" in table.output
    markdown = runner.invoke(main, ["recommend", "--no-input", "--format", "markdown"])
    assert markdown.exit_code == 0 and markdown.output.startswith("# aistarter recommendation")


def test_options_lists_every_question(runner: CliRunner) -> None:
    result = runner.invoke(main, ["options", "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["key"] for r in rows] == [q.key for q in QUESTIONS]
    assert all(r["criterion"] and r["why"] for r in rows)
    assert runner.invoke(main, ["options"]).exit_code == 0


def test_bad_value_is_one_line_exit_2_and_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    result = runner.invoke(main, ["new", str(dest), "--no-input", "--set", "use_case=crud"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: invalid value for use_case: 'crud' (allowed: chat, rag, agents, batch)"
    assert not dest.exists()


def test_unknown_key_in_file_suggests(runner: CliRunner, answers_file, tmp_path: Path) -> None:
    result = runner.invoke(main, ["new", str(tmp_path / "p"), "--no-input", "--answers",
                                  str(answers_file("cloude: gcp\n"))])
    assert result.exit_code == 2 and "did you mean 'cloud'" in result.output
    assert not (tmp_path / "p").exists()


def test_malformed_yaml_exit_2_with_line(runner: CliRunner, answers_file) -> None:
    result = runner.invoke(main, ["recommend", "--no-input", "--answers", str(answers_file("a: [\nb: 1\n"))])
    assert result.exit_code == 2 and "invalid YAML at line" in result.output
    assert "Traceback" not in result.output


ENTER, DOWN, TOGGLE, CLEAR, CTRL_C = "\r", "j", " ", "\x15", "\x03"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """A fake terminal: questionary reads the keys from a prompt_toolkit pipe, as it would from a TTY."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    monkeypatch.setattr(prompts, "is_interactive", lambda: True)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        def type_keys(*keys: str) -> str:
            pipe.send_text("".join(keys))
            pipe.close()  # input ends after these keys: a test that needs more fails instead of hanging
            return ""

        yield type_keys


def asked(output: str) -> list[str]:
    whys = {f"  # {q.why}": q.key for q in QUESTIONS}
    return [whys[line] for line in output.splitlines() if line in whys]


def test_interactive_asks_in_dependency_order_and_skips_what_does_not_apply(runner: CliRunner, terminal) -> None:
    # Enter everywhere: providers stays [openai], so self_hosted does not apply and is not asked.
    terminal(ENTER * 40)
    result = runner.invoke(main, ["recommend", "--format", "json"])
    assert result.exit_code == 0, result.output
    order = asked(result.output)
    assert "providers" in order and "self_hosted" not in order
    assert "workload: AI is not CRUD" in result.output


def test_interactive_multi_select_providers_then_self_hosted(runner: CliRunner, terminal) -> None:
    order = [q.key for q in prompts.asking_order()]
    assert order.index("providers") < order.index("self_hosted")
    keys = []
    for key in order:
        if key == "project_name":
            continue  # answered by --set, so not asked
        if key == "use_case":
            keys.append(DOWN + ENTER)  # chat -> rag
        elif key == "providers":
            # openai is ticked; tick anthropic and local, then give the fallback order
            keys.append(DOWN + TOGGLE + DOWN + DOWN + TOGGLE + ENTER + CLEAR + "local,anthropic,openai" + ENTER)
        elif key == "self_hosted":
            keys.append(DOWN + ENTER)  # none -> small
        else:
            keys.append(ENTER)
    terminal(*keys)
    result = runner.invoke(main, ["recommend", "--format", "json", "--set", "project_name=chatty"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output[result.output.index("{\n"):])["answers"]
    assert answers["use_case"] == "rag" and answers["self_hosted"] == "small"
    assert answers["providers"] == ["local", "anthropic", "openai"]
    assert asked(result.output).index("providers") < asked(result.output).index("self_hosted")
    assert "project_name" not in asked(result.output)  # answered by --set


def test_interactive_bad_text_is_refused_in_place(runner: CliRunner, terminal) -> None:
    keys = [CLEAR + "fast" + ENTER + CLEAR + "900" + ENTER if key == "latency_budget_ms" else ENTER
            for key in [q.key for q in prompts.asking_order()] if key != "self_hosted"]
    terminal(*keys, ENTER * 5)
    result = runner.invoke(main, ["recommend", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{\n"):])["answers"]["latency_budget_ms"] == 900


def test_interactive_cross_field_rule_is_checked_on_the_spot(runner: CliRunner, terminal) -> None:
    # usage_billing=metering is given; answering auth=none breaks the rule, so auth is asked again at once.
    # usage_billing is given; questions whose `when` is false with the defaults (self_hosted without a 'local'
    # provider, and the self-hosting keys after it) are skipped, so they take no keystrokes.
    keys = [DOWN + ENTER + ENTER if q.key == "auth" else ENTER for q in prompts.asking_order()
            if q.key != "usage_billing" and applies(q, {})]
    terminal(*keys, ENTER * 5)
    result = runner.invoke(main, ["recommend", "--format", "json", "--set", "usage_billing=metering"])
    assert result.exit_code == 0, result.output
    assert "usage_billing needs auth=api_key" in result.output
    assert asked(result.output).count("auth") == 1  # the why once, the question twice
    assert json.loads(result.output[result.output.index("{\n"):])["answers"]["auth"] == "api_key"


def test_interactive_new_checks_the_destination_before_the_first_prompt(runner: CliRunner, terminal,
                                                                        tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    terminal(ENTER * 40)
    result = runner.invoke(main, ["new", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "not empty" in result.output and asked(result.output) == []


def test_ctrl_c_exits_130_and_writes_nothing(runner: CliRunner, terminal, tmp_path: Path) -> None:
    terminal(ENTER, CTRL_C)
    result = runner.invoke(main, ["new", str(tmp_path / "demo")])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and not (tmp_path / "demo").exists()


def test_no_terminal_and_a_missing_answer_is_one_line_naming_the_key(runner: CliRunner, answers_file) -> None:
    path = answers_file("use_case: rag\n")
    result = runner.invoke(main, ["recommend", "--answers", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "project_name" in lines[0] and "--no-input" in lines[0]
    assert "Aborted" not in result.output


def test_choices_are_case_insensitive(runner: CliRunner, answers_file) -> None:
    payload = recommend_json(runner, "--set", "use_case=RAG", "--answers",
                             str(answers_file("providers: [OpenAI, Local]\nself_hosted: Small\n")))
    assert payload["answers"]["use_case"] == "rag"
    assert payload["answers"]["providers"] == ["openai", "local"] and payload["answers"]["self_hosted"] == "small"


def test_every_broken_rule_is_named_at_once(runner: CliRunner) -> None:
    result = runner.invoke(main, ["recommend", "--no-input", "--set", "self_hosted=small", "--set", "auth=none"])
    assert result.exit_code == 2
    assert "self_hosted needs 'local'" in result.output and "usage_billing needs auth=api_key" in result.output


def test_when_expressions_name_only_questions() -> None:
    for q in QUESTIONS:
        assert prompts._names(q.when) <= set(QUESTION_BY_KEY), q.key
