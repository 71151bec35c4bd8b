"""The command line: answer sources and precedence, output formats, and one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aistarter import __version__
from aistarter.cli import main
from aistarter.questions import QUESTIONS

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


def test_interactive_prompts_grouped_by_criterion_with_why(runner: CliRunner) -> None:
    # Press enter for every question except use_case (rag) and providers (anthropic,openai).
    lines = []
    for q in _prompt_order():
        if q == "project_name":
            continue  # answered by --set, so not asked
        lines.append({"use_case": "rag", "providers": "anthropic,openai"}.get(q, ""))
    result = runner.invoke(main, ["recommend", "--format", "json", "--set", "project_name=chatty"],
                           input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "workload: AI is not CRUD" in result.output
    assert "# Decides streaming, memory and background jobs" in result.output
    payload = json.loads(result.output[result.output.index("{\n"):])
    assert payload["answers"]["use_case"] == "rag"
    assert payload["stack"]["gateway"]["fallback"] == ["anthropic", "openai"]
    assert payload["answers"]["project_name"] == "chatty"


def test_interactive_reasks_after_a_bad_answer(runner: CliRunner) -> None:
    order = _prompt_order()
    lines = ["" for _ in order]
    lines.insert(order.index("providers"), "openai,mistral")
    result = runner.invoke(main, ["recommend", "--format", "json"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "invalid value for providers: 'mistral'" in result.output


def _prompt_order() -> list[str]:
    from aistarter.questions import CRITERIA
    return [q.key for c in CRITERIA for q in QUESTIONS if q.criterion == c]


def test_interactive_cross_field_rule_is_reported_after_all_prompts(runner: CliRunner) -> None:
    answers = {"self_hosted": "small"}  # providers stays [openai]: the combination is invalid
    lines = [answers.get(q, "") for q in _prompt_order()]
    result = runner.invoke(main, ["recommend", "--format", "json"], input="\n".join(lines) + "\n")
    assert result.exit_code == 2
    assert "self_hosted needs 'local' in providers" in result.output
