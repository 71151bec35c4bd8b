"""The blueprint inside the engines: a Jinja extension that turns the engine's answers into aistarter's context.

copier (`_jinja_extensions` in copier.yml) and cookiecutter (`_extensions` in cookiecutter.json) load it, so
`copier copy` and `cookiecutter` on the template need aistarter installed and nothing precomputed. The template
reads `{{ cookiecutter.x }}` everywhere (Backstage's cookiecutterCompat renders the same tree); the extension
makes that one name resolve to `render.template_context(decide(answers), answers)`, with the answers read from
the engine's own context: copier's top-level answers, or cookiecutter's `cookiecutter` mapping.
`aistarter new` renders through the engines too, so this is the only place the context is built for a render.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context, missing

from .answers import AnswerError, broken_rules, check_one, coerce_value, parsed, validate
from .questions import QUESTIONS, _slugify

# Set by `aistarter new`/`update` (and tests reproducing an earlier release); empty means the installed aistarter.
VERSION_KEY = "_aistarter_version"
NAME = "cookiecutter"


def raw_answers(source: Mapping[str, Any]) -> dict[str, Any]:
    """The question keys an engine holds, coerced like the CLI coerces a file; defaults stand for absent keys.

    A value equal to the question's default is left out, so the model's own default applies: copier casts
    `peak_rps: 10` to 10.0 and cookiecutter keeps 10, and both must give the project `aistarter new` gives.
    """
    values: dict[str, Any] = {}
    for q in QUESTIONS:
        if q.key in source and (value := coerce_value(q, source[q.key])) != q.default:
            values[q.key] = value
    return values


class InvalidAnswers(Mapping[str, Any]):
    """What `cookiecutter` is when the answers are invalid: the folder name still renders (so cookiecutter reaches
    its pre-generation hook, which reports the one-line error), any other value raises that error."""

    def __init__(self, message: str, slug: str) -> None:
        self.message, self.slug = message, slug

    def __getitem__(self, key: str) -> Any:
        if key == "project_slug":
            return self.slug
        raise AnswerError(self.message)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AnswerError(self.message)

    def __len__(self) -> int:
        raise AnswerError(self.message)


def context_for(source: Mapping[str, Any], cache: dict[str, Any]) -> Any:
    """The template context for the answers in `source` (memoised: every file and path asks for it)."""
    from . import __version__
    from .decide import decide
    from .render import template_context

    values = raw_answers(source)
    version = str(source.get(VERSION_KEY) or "") or __version__
    key = json.dumps([values, version], sort_keys=True, default=str)
    if key not in cache:
        try:
            given = validate(values)
        except AnswerError as exc:
            cache[key] = InvalidAnswers(str(exc), _slugify(str(source.get("project_name", ""))) or "invalid")
        else:
            cache[key] = template_context(decide(given), given, version)
    return cache[key]


class _BlueprintContext(Context):
    def resolve_or_missing(self, key: str) -> Any:
        found = super().resolve_or_missing(key)
        if key != NAME:
            return found
        if isinstance(found, Mapping):
            if "_blueprint" in found:
                return found  # already aistarter's context (a caller that built it)
            source = found  # cookiecutter: the answers are the `cookiecutter` mapping
        else:
            # copier: the answers are top-level names
            lookup = super().resolve_or_missing
            source = {k: v for k in (*(q.key for q in QUESTIONS), VERSION_KEY) if (v := lookup(k)) is not missing}
        return context_for(source, self.environment.aistarter_cache)  # type: ignore[attr-defined]


@pass_context
def _check(context: Context, key: str) -> str:
    """copier's validator for one question: '' when fine, else the CLI's one-line message.

    Cross-field rules are checked as soon as every key they read is answered, as the CLI's prompts do."""
    known = {q.key: coerce_value(q, context.get(q.key)) for q in QUESTIONS if context.get(q.key) is not None}
    if key in known:
        try:
            check_one(key, known[key])
        except AnswerError as exc:
            return str(exc)
    full = {q.key: parsed(q.key, known.get(q.key, q.default)) for q in QUESTIONS}
    return "; ".join(broken_rules(full, set(known)))


@pass_context
def _answers(context: Context) -> str:
    """The raw answers as a Python literal, for cookiecutter's hook scripts (rendered before they run)."""
    source = context.parent.get(NAME)
    source = source if isinstance(source, Mapping) else context.parent
    return repr({k: source[k] for k in (*(q.key for q in QUESTIONS), VERSION_KEY) if k in source})


class BlueprintExtension(Extension):
    """Load with copier's `_jinja_extensions` or cookiecutter's `_extensions`."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.context_class = _BlueprintContext
        environment.extend(aistarter_cache={})
        environment.globals["aistarter_check"] = _check
        environment.globals["aistarter_answers"] = _answers
        # cookiecutter and Backstage's cookiecutterCompat have `jsonify`; copier's answers file uses it too.
        environment.filters.setdefault("jsonify", json.dumps)
