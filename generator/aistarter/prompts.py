"""The guided questionnaire (questionary): asks in dependency order, skips what doesn't apply, re-asks on the spot.

Every check is the one `--set` and answers files go through (answers.py); this module only decides what to ask,
when, and how a terminal shows it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from .answers import AnswerError, broken_rules, check_one, coerce_text, parsed
from .questions import CRITERIA, QUESTION_BY_KEY, QUESTIONS, Question, applies

# Extra checks for one answer, run right after it (for example: `new` checks the destination of a project name).
Checks = Mapping[str, Callable[[Any], None]]


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _names(expression: str | None) -> set[str]:
    if not expression:
        return set()
    return {node.id for node in ast.walk(ast.parse(expression, mode="eval")) if isinstance(node, ast.Name)}


def asking_order() -> tuple[Question, ...]:
    """Field order, except that a question comes after every question its `when` reads (providers before
    self_hosted), so a skip is always decided by answers already given."""
    order: list[Question] = []
    placed: set[str] = set()

    def place(question: Question, path: frozenset[str]) -> None:
        if question.key in placed:
            return
        for name in sorted(_names(question.when)):
            if name in QUESTION_BY_KEY and name not in path:
                place(QUESTION_BY_KEY[name], path | {question.key})
        placed.add(question.key)
        order.append(question)

    for question in QUESTIONS:
        place(question, frozenset())
    return tuple(order)


def _one_error(question: Question, value: Any, checks: Checks) -> str | None:
    try:
        check_one(question.key, value)
        if question.key in checks:
            checks[question.key](value)
    except AnswerError as exc:
        return str(exc)
    return None


def _prompt(question: Question, current: Any, checks: Checks) -> Any:
    import questionary

    label = question.key
    if question.kind == "bool":
        return questionary.confirm(label, default=bool(current)).unsafe_ask()
    if question.kind == "choice":
        default = current if current in question.choices else None
        return questionary.select(label, choices=list(question.choices), default=default).unsafe_ask()
    if question.kind == "multi":
        chosen = questionary.checkbox(
            f"{label} (a list: space toggles, enter accepts)",
            choices=[questionary.Choice(c, checked=c in current) for c in question.choices],
            validate=lambda picked: bool(picked) or f"{label}: choose at least one of {question.allowed()}",
        ).unsafe_ask()
        if len(chosen) < 2:
            return chosen
        kept = [c for c in current if c in chosen] + [c for c in chosen if c not in current]

        def same_set(raw: str) -> bool | str:
            order = coerce_text(question, raw)
            if sorted(order) != sorted(chosen):
                return f"{label}: list exactly {', '.join(chosen)}, in the order to try them"
            return _one_error(question, order, checks) or True

        raw = questionary.text(f"{label}: fallback order (first is tried first)", default=",".join(kept),
                               validate=same_set).unsafe_ask()
        return coerce_text(question, raw)
    shown = ",".join(current) if isinstance(current, list) else str(current)
    raw = questionary.text(f"{label} ({question.allowed()})", default=shown,
                           validate=lambda text: _one_error(question, coerce_text(question, text), checks) or True,
                           ).unsafe_ask()
    return parsed(question.key, coerce_text(question, raw))


def ask(given: Mapping[str, Any], defaults: Mapping[str, Any], checks: Checks | None = None) -> dict[str, Any]:
    """Ask every question `given` leaves open and whose `when` holds; returns the answers (skipped ones excluded).

    A cross-field rule is checked as soon as every key it reads is answered, and the question that completed it
    is asked again with the rule's message. Without a terminal nothing is asked: a missing answer is an error.
    """
    checks = checks or {}
    known = dict(given)
    broken = broken_rules({q.key: known.get(q.key, q.default) for q in QUESTIONS}, set(known))
    if broken:
        raise AnswerError("; ".join(broken))
    pending = [q for q in asking_order() if q.key not in known]
    if not pending:
        return {}
    if not is_interactive():
        first = pending[0]
        raise AnswerError(f"no terminal to ask {first.key} ({first.allowed()}): pass --set {first.key}=VALUE or "
                          "--answers FILE, or --no-input to take the defaults")
    answers: dict[str, Any] = {}
    criterion = None
    for q in pending:
        values = {k.key: known.get(k.key, defaults.get(k.key, k.default)) for k in QUESTIONS}
        if not applies(q, values):
            continue
        if q.criterion != criterion:
            criterion = q.criterion
            click.secho(f"\n{criterion}: {CRITERIA[criterion]}", bold=True)
        click.echo(f"  # {q.why}")
        while True:
            value = _prompt(q, values[q.key], checks)
            error = _one_error(q, value, checks)
            if error is None:
                broken = broken_rules({**values, q.key: value}, set(known) | {q.key})
                error = "; ".join(broken) or None
            if error is None:
                break
            click.echo(f"  {error}")
        known[q.key] = answers[q.key] = value
    return answers
