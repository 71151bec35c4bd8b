"""Backstage: a Software Template built from the questionnaire, and the context service it calls.

Backstage's `fetch:template` with `cookiecutterCompat: true` renders the same template tree as the CLI,
but it can only use values it is given, and part of aistarter's template context (the blueprint, the
ADRs, the answers record) comes from the decision engine. So a portal team runs this small service next
to Backstage: the template POSTs the form's answers to it through the Backstage proxy and passes the
returned `values` to `fetch:template`. The form is generated from `QUESTIONS`, so it cannot drift from
the CLI, and the service validates with the CLI's own code, so a bad answer fails with the CLI's message.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from annotated_types import MinLen

from . import __version__
from .answers import AnswerError, coerce_text, validate
from .decide import decide
from .questions import CRITERIA, QUESTION_BY_KEY, QUESTIONS, Answers, Question
from .render import FIRST_COMMIT_PREFIX, data_dir, template_dir
from .vendoring import PARTS

TEMPLATE_FILE = data_dir("backstage") / "template.yaml"
# Backstage resolves relative `url`s against the location the template was registered from, so the
# template tree and the infra library are always taken from the same git revision as this file.
TEMPLATE_TREE_URL = "../templates"
INFRA_LIBRARY_URL = "../infra/aistarter_infra"
# What the Backstage proxy forwards to the service: `proxy/aistarter/context` -> http://SERVICE/context.
PROXY_PATH = "proxy/aistarter/context"
CONTEXT_ROUTE = "/context"
HEALTH_ROUTE = "/healthz"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# A questionnaire is well under 2 KiB; anything far larger is not a real request.
MAX_BODY_BYTES = 64 * 1024
# Files at the template root that configure the engines (and cookiecutter's hooks, which call aistarter
# functions nunjucks lacks); they are not part of any generated project and land outside its folder.
ENGINE_FILES = ("cookiecutter.json", "copier.yml", "hooks/pre_gen_project.py", "hooks/post_gen_project.py")

# The context service's answer: the template context, whose answer keys are resolved (no `auto`).
VALUES = "steps['blueprint'].output.body.values"
_SLUG = "${{ " + VALUES + ".project_slug }}"


class ContextError(ValueError):
    """A request the service refuses; `status` is the HTTP status, the message is one line."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- the form, derived from QUESTIONS

def _required(question: Question) -> bool:
    # The form's `required` must not be stricter than the CLI: free text that may be empty stays optional.
    if question.kind != "str":
        return True
    return any(isinstance(m, MinLen) and m.min_length > 0 for m in Answers.model_fields[question.key].metadata)


def parameter_schema(question: Question) -> dict[str, Any]:
    """The JSON Schema property for one question, with its bounds, choices and default."""
    schema: dict[str, Any] = {"title": question.key, "description": question.why}
    if question.kind == "str":
        schema["type"] = "string"
    elif question.kind == "int":
        schema.update(type="integer", minimum=question.minimum, maximum=question.maximum)
    elif question.kind == "float":
        schema.update(type="number", minimum=question.minimum, maximum=question.maximum)
    elif question.kind in ("auto_int", "auto_float"):
        # "auto" or a number: a text field the service validates like the CLI (one-line error naming the bounds)
        number = r"[0-9]+" if question.kind == "auto_int" else r"[0-9]+(\.[0-9]+)?"
        schema.update(type="string", pattern=f"^(auto|{number})$")
    elif question.kind == "bool":
        schema["type"] = "boolean"
    elif question.kind == "choice":
        schema.update(type="string", enum=list(question.choices))
    else:
        # No uniqueItems: it would turn the field into an unordered multi-select, and the order here is
        # the fallback order. The service rejects duplicates with the CLI's message instead.
        schema.update(type="array", minItems=1, items={"type": "string", "enum": list(question.choices)},
                      **{"ui:options": {"orderable": True}})
    schema["default"] = list(question.default) if question.kind == "multi" else question.default
    return schema


def parameter_pages() -> list[dict[str, Any]]:
    """One form page per article criterion, in the CLI's prompt order."""
    pages = []
    for criterion, title in CRITERIA.items():
        rows = [q for q in QUESTIONS if q.criterion == criterion]
        if not rows:
            continue
        pages.append({
            "title": f"{criterion}: {title}",
            "required": [q.key for q in rows if _required(q)],
            "properties": {q.key: parameter_schema(q) for q in rows},
        })
    return pages


def _repository_page() -> dict[str, Any]:
    return {
        "title": "Repository",
        "required": ["repoUrl", "owner"],
        "properties": {
            "repoUrl": {
                "title": "Repository location",
                "type": "string",
                "ui:field": "RepoUrlPicker",
                "ui:options": {"allowedHosts": ["github.com"]},
            },
            "owner": {
                "title": "Owner",
                "description": "Team that owns the new service in the catalog.",
                "type": "string",
                "ui:field": "OwnerPicker",
                "ui:options": {"catalogFilter": {"kind": "Group"}},
            },
        },
    }


def _needs_catalog_write() -> bool:
    # If the template ever ships its own catalog-info.yaml, Backstage must not write a second one.
    return not (template_dir() / "{{cookiecutter.project_slug}}" / "catalog-info.yaml").exists()


def _trim_steps() -> list[dict[str, Any]]:
    """fetch:plain copies the whole library; these delete what the answers do not use, as the CLI's hooks leave it
    out (vendoring.PARTS, each row's condition on the resolved answers the context service returned)."""
    return [{
        "id": f"infra-drop-{part.name}",
        "name": f"Drop the infra library's unused {part.name} files",
        "if": "${{ " + part.unused_expression(VALUES) + " }}",
        "action": "fs:delete",
        "input": {"files": [f"{_SLUG}/infra/aistarter_infra/{path}" for path in part.paths]},
    } for part in PARTS]


def _steps() -> list[dict[str, Any]]:
    answers = {q.key: "${{ parameters." + q.key + " }}" for q in QUESTIONS}
    steps: list[dict[str, Any]] = [
        {
            "id": "blueprint",
            "name": "Decide the stack (aistarter context service)",
            "action": "http:backstage:request",
            "input": {
                "method": "POST",
                "path": PROXY_PATH,
                "headers": {"content-type": "application/json"},
                # The service refuses a version other than its own, so the form, the template tree
                # and the decision engine always come from the same aistarter release.
                "body": {"aistarter_version": __version__, "answers": answers},
            },
        },
        {
            "id": "render",
            "name": "Render the aistarter template",
            "action": "fetch:template",
            "input": {
                "url": TEMPLATE_TREE_URL,
                "cookiecutterCompat": True,
                "copyWithoutTemplating": list(ENGINE_FILES),
                "values": "${{ " + VALUES + " }}",
            },
        },
        {
            "id": "infra-library",
            "name": "Vendor the infra component library",
            "action": "fetch:plain",
            "input": {"url": INFRA_LIBRARY_URL, "targetPath": f"{_SLUG}/infra/aistarter_infra"},
        },
        *_trim_steps(),
    ]
    if _needs_catalog_write():
        steps.append({
            "id": "catalog-info",
            "name": "Describe the service for the catalog",
            "action": "catalog:write",
            "input": {
                "filePath": f"{_SLUG}/catalog-info.yaml",
                "entity": {
                    "apiVersion": "backstage.io/v1alpha1",
                    "kind": "Component",
                    "metadata": {
                        "name": _SLUG,
                        "description": "${{ parameters.description }}",
                        "annotations": {"aistarter.dev/version": __version__},
                        "tags": ["aistarter", "fastapi", "ai"],
                    },
                    "spec": {"type": "service", "lifecycle": "experimental", "owner": "${{ parameters.owner }}"},
                },
            },
        })
    steps += [
        {
            "id": "publish",
            "name": "Publish to GitHub",
            "action": "publish:github",
            "input": {
                "repoUrl": "${{ parameters.repoUrl }}",
                "description": "${{ parameters.description }}",
                "sourcePath": _SLUG,
                "defaultBranch": "main",
                "repoVisibility": "private",
                # `aistarter update` merges against the commit with this subject (the pristine render).
                "gitCommitMessage": f"{FIRST_COMMIT_PREFIX} {__version__}",
            },
        },
        {
            "id": "register",
            "name": "Register in the catalog",
            "action": "catalog:register",
            "input": {
                "repoContentsUrl": "${{ steps['publish'].output.repoContentsUrl }}",
                "catalogInfoPath": "/catalog-info.yaml",
            },
        },
    ]
    return steps


def template_yaml() -> dict[str, Any]:
    """The Backstage Software Template (scaffolder.backstage.io/v1beta3) for this aistarter release."""
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {
            "name": "aistarter",
            "title": "AI backend (aistarter)",
            "description": "A FastAPI AI backend and its Pulumi Kubernetes infra, decided from a questionnaire "
                           "about streaming, scaling, providers and observability.",
            "tags": ["python", "fastapi", "ai", "kubernetes", "pulumi"],
            "annotations": {"aistarter.dev/version": __version__},
        },
        "spec": {
            "owner": "group:default/platform",
            "type": "service",
            "parameters": [*parameter_pages(), _repository_page()],
            "steps": _steps(),
            "output": {
                "links": [
                    {"title": "Repository", "url": "${{ steps['publish'].output.remoteUrl }}"},
                    {"title": "Open in catalog", "icon": "catalog",
                     "entityRef": "${{ steps['register'].output.entityRef }}"},
                ],
            },
        },
    }


HEADER = (
    "# Generated by `aistarter backstage --write` from the questionnaire; do not edit by hand\n"
    "# (tests/test_backstage.py fails when this file and the questionnaire disagree).\n"
    "# Needs the aistarter context service behind the Backstage proxy: see backstage/README.md.\n"
)


def template_text() -> str:
    return HEADER + yaml.safe_dump(template_yaml(), sort_keys=False, allow_unicode=True, width=120)


def write_template(path: Path = TEMPLATE_FILE) -> Path:
    """Refresh backstage/template.yaml; only meaningful in an aistarter source checkout."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent} does not exist: --write refreshes backstage/template.yaml in an "
                                "aistarter source checkout; redirect the printed template to a file instead")
    path.write_text(template_text(), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the context service

def context_for(payload: Any) -> dict[str, Any]:
    """The service's answer to one request body: {"values": template context} or a ContextError."""
    from .render import template_context

    if not isinstance(payload, dict) or not isinstance(payload.get("answers"), dict):
        raise ContextError(HTTPStatus.BAD_REQUEST,
                           'request body must be a JSON object like {"answers": {"use_case": "rag", ...}}')
    wanted = payload.get("aistarter_version")
    if wanted is not None and str(wanted) != __version__:
        raise ContextError(HTTPStatus.CONFLICT,
                           f"template.yaml is from aistarter {wanted} but this service runs {__version__}: register "
                           f"the template from the aistarter release that matches the service (or upgrade the service)")
    raw: dict[str, Any] = {}
    for key, value in payload["answers"].items():
        # null is how a form sends an untouched optional field: the question's default applies, as in the CLI.
        if value is None:
            continue
        question = QUESTION_BY_KEY.get(key)
        raw[key] = coerce_text(question, value) if question is not None and isinstance(value, str) else value
    try:
        answers = validate(raw)
    except AnswerError as exc:
        raise ContextError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    return {"values": template_context(decide(answers), answers)}


class ContextHandler(BaseHTTPRequestHandler):
    server_version = f"aistarter-context/{__version__}"

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == HEALTH_ROUTE:
            self._reply(HTTPStatus.OK, {"status": "ok", "aistarter_version": __version__})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}; POST {CONTEXT_ROUTE}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != CONTEXT_ROUTE:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}; POST {CONTEXT_ROUTE}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        {"error": f"request body must be 0..{MAX_BODY_BYTES} bytes with a Content-Length header"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"request body is not JSON: {exc}"})
            return
        try:
            self._reply(HTTPStatus.OK, context_for(payload))
        except ContextError as exc:
            self._reply(exc.status, {"error": str(exc)})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        sys.stderr.write(f"aistarter-context {self.address_string()} {format % args}\n")


def make_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A bound server (port 0 picks a free one); call serve_forever() on it, shutdown() to stop."""
    return ThreadingHTTPServer((host, port), ContextHandler)
