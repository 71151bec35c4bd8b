"""The questionnaire table: exact keys, types and defaults, and everything derived from it agrees."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import yaml

from aistarter.answers import AnswerError, added_keys, load_answers_file, parse_set_options, validate
from aistarter.questions import CRITERIA, INVALID_COMBINATIONS, QUESTIONS, Answers, applies
from aistarter.render import cookiecutter_json, copier_yml_text

EXPECTED_KEYS = [
    "project_name", "description", "use_case", "prompt_tokens_p50", "output_tokens_p50", "streaming",
    "latency_budget_ms", "providers", "prompt_versioning", "peak_rps", "avg_rps", "traffic", "self_hosted", "model",
    "precision", "max_context_tokens", "cost_priority", "cloud", "region", "existing_gpus", "observability",
    "trace_content", "vector_store", "usage_billing", "task_queue", "auth",
]
FIRST_ENGINE_KEYS = [
    "project_name", "description", "use_case", "streaming", "latency_budget_ms", "providers", "prompt_versioning",
    "peak_rps", "traffic", "self_hosted", "cost_priority", "cloud", "observability", "trace_content", "vector_store",
    "usage_billing", "task_queue", "auth",
]
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def test_keys_are_exactly_the_contract() -> None:
    assert [q.key for q in QUESTIONS] == EXPECTED_KEYS


def test_every_question_serves_a_criterion_and_says_why() -> None:
    for q in QUESTIONS:
        assert q.criterion in CRITERIA
        assert len(q.why) > 20, q.key


def test_defaults_match_the_issue() -> None:
    a = Answers()
    assert (a.project_name, a.use_case, a.streaming, a.latency_budget_ms, a.providers) == (
        "my-ai-app", "chat", "auto", 1000, ["openai"])
    assert (a.prompt_versioning, a.peak_rps, a.traffic, a.self_hosted, a.cost_priority, a.cloud) == (
        True, 10, "steady", "none", "balanced", "aws")
    assert (a.observability, a.trace_content, a.vector_store, a.usage_billing, a.task_queue, a.auth) == (
        "otel", "redacted", "auto", "metering", "auto", "api_key")
    assert (a.prompt_tokens_p50, a.output_tokens_p50, a.avg_rps, a.model, a.precision, a.max_context_tokens,
            a.region, a.existing_gpus) == ("auto",) * 8


def test_new_keys_are_asked_only_when_they_matter() -> None:
    when = {q.key: q.when for q in QUESTIONS}
    # self_hosted's own when (issue 16: only asked with a local provider) came with the guided questionnaire.
    assert {k for k, v in when.items() if v} == {"self_hosted", "model", "precision", "max_context_tokens",
                                                  "region", "existing_gpus"}
    by_key = {q.key: q for q in QUESTIONS}
    assert not applies(by_key["self_hosted"], {}) and applies(by_key["self_hosted"], {"providers": ["local"]})
    assert not applies(by_key["model"], {}) and applies(by_key["model"], {"self_hosted": "small"})
    assert applies(by_key["region"], {}) and not applies(by_key["region"], {"cloud": "existing"})
    assert not applies(by_key["existing_gpus"], {"cloud": "existing"})
    assert applies(by_key["existing_gpus"], {"cloud": "existing", "self_hosted": "large"})


def test_first_engine_answers_still_load_and_the_added_keys_are_listed(answers_file) -> None:
    old = {"use_case": "rag", "peak_rps": 3, "self_hosted": "small", "providers": ["openai", "local"]}
    path = answers_file("aistarter_version: 0.1.0\nanswers:\n" + "".join(
        f"  {k}: {v if not isinstance(v, list) else '[' + ', '.join(v) + ']'}\n" for k, v in old.items()),
        "answers.yml")
    values = load_answers_file(path)
    answers = validate(values)
    assert answers.peak_rps == 3 and answers.model == "auto"
    full = {k: Answers.model_fields[k].default for k in FIRST_ENGINE_KEYS}
    assert added_keys(full) == [k for k in EXPECTED_KEYS if k not in FIRST_ENGINE_KEYS]


def test_fractional_rates_are_accepted() -> None:
    assert validate({"peak_rps": "0.1", "avg_rps": "0.02"}).peak_rps == 0.1


def test_cookiecutter_json_is_generated_from_the_table() -> None:
    on_disk = json.loads((TEMPLATES / "cookiecutter.json").read_text())
    assert on_disk == cookiecutter_json(), "run `python -m aistarter.render` to regenerate templates/cookiecutter.json"


def test_copier_yml_is_generated_from_the_table() -> None:
    on_disk = (TEMPLATES / "copier.yml").read_text()
    assert on_disk == copier_yml_text(), "run `python -m aistarter.render` to regenerate templates/copier.yml"
    # the repository root's copy, for `copier copy <repository>`: the same questionnaire, the template one folder down
    at_root = (TEMPLATES.parent / "copier.yml").read_text()
    assert at_root == copier_yml_text("templates/"), "run `python -m aistarter.render` to regenerate copier.yml"
    assert at_root.replace("templates/{{cookiecutter", "{{cookiecutter") == on_disk


def _field_choices(key: str) -> list[str]:
    """The allowed values read straight off the pydantic annotation (not through QUESTIONS)."""
    annotation = Answers.model_fields[key].annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else []


def test_engine_questionnaires_match_the_answers_model() -> None:
    """Both files on disk ask exactly Answers' fields, with its defaults, choices, why-lines and `when`s."""
    copier = yaml.safe_load((TEMPLATES / "copier.yml").read_text())
    cookie = json.loads((TEMPLATES / "cookiecutter.json").read_text())
    fields = Answers.model_fields
    assert [k for k in copier if not k.startswith("_")] == list(fields)
    assert [k for k in cookie if not k.startswith("_")] == list(fields)
    assert copier["_jinja_extensions"] == cookie["_extensions"] == ["aistarter.jinja_ext.BlueprintExtension"]
    for key, field in fields.items():
        question, default, choices = copier[key], field.default, _field_choices(key)
        # a list (providers) is asked as comma-separated text in both engines: neither keeps a list's order
        text_default = ",".join(default) if isinstance(default, list) else default
        assert question["default"] == text_default and question["help"] == field.description, key
        assert question.get("choices", []) == ([] if isinstance(default, list) else choices), key
        when = (field.json_schema_extra or {}).get("when")
        assert question.get("when") == (f"{{{{ {when} }}}}" if when else None), key
        assert question["validator"] == f"{{{{ aistarter_check('{key}') }}}}", key
        assert cookie["__prompts__"][key] == f"{key}: {field.description}"
        if choices and not isinstance(default, list):
            assert cookie[key][0] == default and sorted(cookie[key]) == sorted(choices), key
        else:
            assert cookie[key] == text_default, key


def test_cookiecutter_json_offers_every_choice() -> None:
    data = cookiecutter_json()
    for q in QUESTIONS:
        if q.kind == "choice":
            assert set(data[q.key]) == set(q.choices) and data[q.key][0] == q.default


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"use_cse": "rag"}, "unknown key 'use_cse' (did you mean 'use_case'?)", id="unknown-key"),
        pytest.param({"use_case": "crud"}, "invalid value for use_case: 'crud' (allowed: chat, rag, agents, batch)",
                     id="bad-choice"),
        pytest.param({"peak_rps": "many"},
                     "invalid value for peak_rps: 'many' (allowed: a number from 0.001 to 100000)", id="bad-type"),
        pytest.param({"prompt_tokens_p50": "long"},
                     "invalid value for prompt_tokens_p50: 'long' (allowed: auto or an integer from 1 to 2000000)",
                     id="bad-auto-int"),
        pytest.param({"model": "gpt-5"}, "invalid value for model: 'gpt-5' (allowed: auto, qwen2.5-7b", id="bad-model"),
        pytest.param({"latency_budget_ms": 10}, "invalid value for latency_budget_ms: 10 (allowed: an integer from 50",
                     id="out-of-range"),
        pytest.param({"providers": []}, "invalid value for providers: [] (give at least one of: openai, anthropic",
                     id="empty-providers"),
        pytest.param({"providers": ["openai", "mistral"]}, "invalid value for providers: 'mistral'", id="bad-provider"),
        pytest.param({"providers": ["openai", "openai"]}, "lists a provider twice", id="duplicate-provider"),
        pytest.param({"project_name": "../escape"}, "invalid value for project_name: '../escape'", id="path-escape"),
        pytest.param({"project_name": "a/b"}, "use letters, digits, spaces", id="path-separator"),
        pytest.param({"project_name": "!!!"}, "starting with a letter", id="empty-slug"),
        pytest.param({"project_name": 'say "hi": now'}, "use letters, digits, spaces", id="quotes-and-colons"),
        pytest.param({"prompt_versioning": "perhaps"},
                     "invalid value for prompt_versioning: 'perhaps' (allowed: true or", id="bad-bool"),
    ],
)
def test_bad_values_name_key_value_and_allowed(values: dict, message: str) -> None:
    with pytest.raises(AnswerError) as exc:
        validate(values)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("combo", INVALID_COMBINATIONS, ids=lambda c: c.name)
def test_declared_invalid_combinations_are_rejected(combo) -> None:
    examples = {
        "self_hosted-needs-local": {"self_hosted": "small", "providers": ["openai"]},
        "billing-needs-api-keys": {"usage_billing": "stripe", "auth": "none"},
        "avg-above-peak": {"avg_rps": 20, "peak_rps": 10},
        "region-not-in-cloud": {"cloud": "aws", "region": "europe-west4"},
        "precision-not-published": {"self_hosted": "small", "providers": ["local"], "model": "qwen2.5-7b",
                                    "precision": "fp8"},
        "context-below-typical-request": {"max_context_tokens": 1000, "prompt_tokens_p50": 900,
                                          "output_tokens_p50": 200},
    }
    with pytest.raises(AnswerError) as exc:
        validate(examples[combo.name])
    assert str(exc.value) == combo.message


def test_valid_neighbours_of_invalid_combinations_pass() -> None:
    validate({"self_hosted": "small", "providers": ["openai", "local"]})
    validate({"usage_billing": "none", "auth": "none"})


def test_set_options_parse_lists_and_reject_malformed() -> None:
    assert parse_set_options(["providers=openai, anthropic", "peak_rps=20"]) == {
        "providers": ["openai", "anthropic"], "peak_rps": "20"}
    with pytest.raises(AnswerError, match="is not key=value"):
        parse_set_options(["use_case"])
    with pytest.raises(AnswerError, match="did you mean 'cloud'"):
        parse_set_options(["clod=aws"])


def test_malformed_yaml_reports_its_line(answers_file) -> None:
    path = answers_file("use_case: rag\ncloud: [aws\npeak_rps: 3\n")
    with pytest.raises(AnswerError) as exc:
        load_answers_file(path)
    assert "invalid YAML at line" in str(exc.value) and str(path) in str(exc.value)


def test_answers_file_accepts_json_and_a_generated_record(answers_file) -> None:
    assert load_answers_file(answers_file('{"use_case": "rag"}', "a.json")) == {"use_case": "rag"}
    record = answers_file("aistarter_version: 0.1.0\nanswers:\n  use_case: batch\n", "answers.yml")
    assert load_answers_file(record) == {"use_case": "batch"}


def test_answers_file_must_be_a_mapping(answers_file) -> None:
    with pytest.raises(AnswerError, match="expected a mapping"):
        load_answers_file(answers_file("- rag\n"))
