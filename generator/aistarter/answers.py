"""Where answers come from (file, --set, prompts) and how bad ones become one-line errors."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .questions import INVALID_COMBINATIONS, QUESTION_BY_KEY, QUESTIONS, Answers, Question, missing_keys


class AnswerError(ValueError):
    """A bad answer; the message is one line that names the problem and the fix."""


def _unknown_key(key: str) -> AnswerError:
    close = difflib.get_close_matches(key, QUESTION_BY_KEY, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else " (see `aistarter options`)"
    return AnswerError(f"unknown key '{key}'{hint}")


def _canonical(question: Question, value: Any) -> Any:
    # Choices match case-insensitively (`RAG` is `rag`); anything else is left for pydantic to refuse by name.
    if isinstance(value, str) and question.choices:
        by_lower = {choice.lower(): choice for choice in question.choices}
        return by_lower.get(value.strip().lower(), value)
    return value


def coerce_text(question: Question, raw: str) -> Any:
    """Turn text from --set or a prompt into the shape the model validates; pydantic does the rest."""
    if question.kind == "multi":
        return [_canonical(question, part.strip()) for part in raw.split(",") if part.strip()]
    return _canonical(question, raw)


def coerce_value(question: Question, value: Any) -> Any:
    """The same for a value from a YAML/JSON file, which may already be a list, number or bool."""
    if isinstance(value, str):
        return coerce_text(question, value)
    if isinstance(value, list):
        return [_canonical(question, item) for item in value]
    return value


def parse_set_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AnswerError(f"--set '{item}' is not key=value (for example --set use_case=rag)")
        if key not in QUESTION_BY_KEY:
            raise _unknown_key(key)
        values[key] = coerce_text(QUESTION_BY_KEY[key], raw.strip())
    return values


def load_answers_file(path: Path) -> dict[str, Any]:
    """Read YAML or JSON answers; a generated project's `.aistarter/answers.yml` works too."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnswerError(f"answers file {path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise AnswerError(f"answers file {path}: not UTF-8 text; give a YAML or JSON file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AnswerError(f"answers file {path}: invalid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise AnswerError(f"answers file {path}: expected a mapping of key: value, got {type(data).__name__}")
    if "answers" in data and "aistarter_version" in data:
        data = data["answers"]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in QUESTION_BY_KEY:
            raise _unknown_key(str(key))
        values[key] = coerce_value(QUESTION_BY_KEY[key], value)
    return values


SHOWN_CHARS = 60  # of a rejected value in an error line: enough to recognise it, never a screenful


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _describe(error: Mapping[str, Any]) -> str:
    if not error["loc"]:
        return str(error["msg"]).removeprefix("Value error, ")
    key = str(error["loc"][0])
    question = QUESTION_BY_KEY.get(key)
    if question is None:
        return str(_unknown_key(key))
    value = _shown(error.get("input"))
    detail = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"literal_error", "int_parsing", "bool_parsing", "greater_than_equal", "less_than_equal",
                         "int_from_float", "int_type", "bool_type", "float_parsing", "float_type"}:
        return f"invalid value for {key}: {value} (allowed: {question.allowed()})"
    if error["type"] == "too_short" and question.kind == "multi":
        return f"invalid value for {key}: {value} (give at least one of: {question.allowed()})"
    return f"invalid value for {key}: {value} ({detail})"


def validate(values: Mapping[str, Any]) -> Answers:
    for key in values:
        if key not in QUESTION_BY_KEY:
            raise _unknown_key(key)
    try:
        return Answers.model_validate(dict(values))
    except ValidationError as exc:
        errors = exc.errors()
        if all(not error["loc"] for error in errors):
            # Cross-field rules: name every broken one, so one run shows all that needs fixing.
            broken = broken_rules({q.key: values.get(q.key, q.default) for q in QUESTIONS}, set(QUESTION_BY_KEY))
            if broken:
                raise AnswerError("; ".join(broken)) from None
        raise AnswerError("; ".join(dict.fromkeys(_describe(error) for error in errors))) from None


class _Reading:
    """Answer values read by attribute, remembering which keys a rule looked at."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._values:
            raise AttributeError(name)
        self.read.add(name)
        return self._values[name]


def broken_rules(values: Mapping[str, Any], known: set[str]) -> list[str]:
    """Messages of the cross-field rules these values break, counting only rules decided by `known` keys alone.

    `values` holds every key (unknown ones at their defaults). A rule is decided when every key it read is known:
    a rule is a pure function of what it reads, so the unknown keys cannot change its outcome. That lets the
    questionnaire check each rule as soon as its inputs are answered, whatever keys future rules use.
    """
    broken = []
    for combo in INVALID_COMBINATIONS:
        reading = _Reading(values)
        try:
            applies = combo.applies(reading)  # type: ignore[arg-type]
        except (AttributeError, TypeError, ValueError):
            continue  # a value of the wrong type: the per-key check reports it
        if applies and reading.read <= known:
            broken.append(combo.message)
    return broken


def check_one(key: str, value: Any) -> None:
    """Validate one answer on its own (prompts re-ask on these); cross-field rules wait for the full set."""
    try:
        Answers.model_validate({key: value})
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] and error["loc"][0] == key:
                raise AnswerError(_describe(error)) from None


def added_keys(values: Mapping[str, Any]) -> list[str]:
    """Keys an older answers file lacks (they take their defaults); `aistarter update` reports them."""
    return missing_keys(dict(values))


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win: pass defaults/prompts first, then the answers file, then --set."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def recorded(answers: Answers) -> dict[str, Any]:
    """Answers as written into a generated project, so `update` can replay them."""
    return answers.model_dump(mode="json")


def parsed(key: str, value: Any) -> Any:
    """A checked answer in the type the model holds (prompt text "1000" -> 1000), for rules that compare values."""
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(Answers.model_fields[key].annotation).validate_python(value)
    except ValidationError:
        return value
