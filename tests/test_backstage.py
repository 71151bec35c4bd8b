"""Backstage: the form is the questionnaire, the context service is the CLI's validation and decision
engine over HTTP, and real nunjucks (what `fetch:template` runs) renders the template tree to the same
bytes as the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jinja2 import Environment

from aistarter import __version__, hooks
from aistarter.answers import AnswerError, validate
from aistarter.backstage import (
    ENGINE_FILES,
    MAX_BODY_BYTES,
    TEMPLATE_FILE,
    make_server,
    template_text,
    template_yaml,
)
from aistarter.cli import main
from aistarter.decide import decide
from aistarter.questions import CRITERIA, QUESTIONS
from aistarter.render import ANSWERS_RECORD, infra_library_dir, render_project, template_context, template_dir

from .locks import exclusive
from .matrix import HEAVY

REQUIRE_SERVICES = os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1"
NUNJUCKS_DIR = Path(os.environ.get("AISTARTER_NUNJUCKS_DIR", Path.home() / ".cache" / "aistarter-tests" / "nunjucks"))
PREVIEW_JS = TEMPLATE_FILE.parent / "preview.js"
NPM_PACKAGES = ("nunjucks@3", "isbinaryfile@5")
SLUG_EXPR = "${{ steps['blueprint'].output.body.values.project_slug }}"

JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "choice": "string", "multi": "array",
              "float": "number", "auto_int": "string", "auto_float": "string"}


def _template() -> dict[str, Any]:
    return template_yaml()


def _question_pages(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [page for page in template["spec"]["parameters"] if page["title"] != "Repository"]


def _step(template: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in template["spec"]["steps"] if s["id"] == step_id)


# ---------------------------------------------------------------- the form is the questionnaire

def test_every_question_is_one_form_field_with_its_type_choices_default_and_bounds() -> None:
    pages = _question_pages(_template())
    fields = {key: (page, prop) for page in pages for key, prop in page["properties"].items()}
    assert sorted(fields) == sorted(q.key for q in QUESTIONS)
    assert sum(len(page["properties"]) for page in pages) == len(QUESTIONS), "a question appears twice"
    for q in QUESTIONS:
        page, prop = fields[q.key]
        assert page["title"] == f"{q.criterion}: {CRITERIA[q.criterion]}", q.key
        assert prop["type"] == JSON_TYPES[q.kind], q.key
        assert prop["description"] == q.why, q.key
        if q.kind == "choice":
            assert prop["enum"] == list(q.choices) and prop["default"] in q.choices, q.key
        if q.kind == "multi":
            assert prop["items"]["enum"] == list(q.choices), q.key
            assert prop["minItems"] == 1 and "uniqueItems" not in prop, "uniqueItems would lose fallback order"
        if q.kind in ("int", "float"):
            assert (prop["minimum"], prop["maximum"]) == (q.minimum, q.maximum), q.key
        assert prop["default"] == (list(q.default) if q.kind == "multi" else q.default), q.key


def test_required_fields_are_exactly_the_answers_that_cannot_be_empty() -> None:
    for page in _question_pages(_template()):
        for key in page["properties"]:
            cannot_be_empty = True
            try:
                validate({key: [] if isinstance(page["properties"][key]["default"], list) else ""})
                cannot_be_empty = False
            except AnswerError:
                pass
            assert (key in page["required"]) == cannot_be_empty, key


def test_form_pages_follow_the_article_criteria_order() -> None:
    titles = [page["title"].split(":")[0] for page in _question_pages(_template())]
    assert titles == [c for c in CRITERIA if any(q.criterion == c for q in QUESTIONS)]


def test_request_body_sends_every_question_and_only_questions() -> None:
    template = _template()
    body = _step(template, "blueprint")["input"]["body"]
    assert body["aistarter_version"] == __version__
    assert body["answers"] == {q.key: f"${{{{ parameters.{q.key} }}}}" for q in QUESTIONS}


def test_every_expression_names_a_real_parameter_or_an_earlier_step() -> None:
    template = _template()
    params = {key for page in template["spec"]["parameters"] for key in page["properties"]}
    text = json.dumps(template["spec"]["steps"])
    assert set(re.findall(r"parameters\.(\w+)", text)) <= params
    seen: set[str] = set()
    for step in template["spec"]["steps"]:
        refs = set(re.findall(r"steps\['([\w-]+)'\]", json.dumps(step)))
        assert refs <= seen, f"step {step['id']} uses a later or unknown step: {refs - seen}"
        seen.add(step["id"])
    assert set(re.findall(r"steps\['([\w-]+)'\]", json.dumps(template["spec"]["output"]))) <= seen


def test_fetch_steps_point_at_the_template_tree_and_infra_library_next_to_this_file() -> None:
    template = _template()
    render_step = _step(template, "render")["input"]
    assert render_step["cookiecutterCompat"] is True
    assert render_step["values"] == "${{ steps['blueprint'].output.body.values }}"
    # Backstage resolves relative urls against the registered template.yaml's location.
    assert (TEMPLATE_FILE.parent / render_step["url"]).resolve() == template_dir().resolve()
    assert sorted(render_step["copyWithoutTemplating"]) == sorted(ENGINE_FILES)
    assert all((template_dir() / name).is_file() for name in ENGINE_FILES)
    infra = _step(template, "infra-library")["input"]
    assert (TEMPLATE_FILE.parent / infra["url"]).resolve() == infra_library_dir().resolve()
    assert infra["targetPath"] == f"{SLUG_EXPR}/infra/aistarter_infra"
    publish = _step(template, "publish")["input"]
    assert publish["sourcePath"] == SLUG_EXPR
    assert publish["gitCommitMessage"].startswith("Generated by aistarter ")


def test_committed_template_yaml_is_the_generated_one() -> None:
    committed = TEMPLATE_FILE.read_text(encoding="utf-8")
    assert committed == template_text(), (
        "backstage/template.yaml is stale: run `aistarter backstage --write backstage/`")
    assert yaml.safe_load(committed) == _template()


def test_cli_prints_the_template_and_refuses_a_busy_port(runner: CliRunner) -> None:
    printed = runner.invoke(main, ["backstage"])
    assert printed.exit_code == 0 and printed.output == template_text()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = runner.invoke(main, ["serve-context", "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1:" in result.output


def test_write_without_a_path_writes_into_the_current_directory_not_the_package(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # After a non-editable install the package's own backstage/ lies in site-packages (issue 16, finding 8).
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["backstage", "--write"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "template.yaml").read_text(encoding="utf-8") == template_text()
    assert result.output == "wrote template.yaml\n"


# ---------------------------------------------------------------- the context service

@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def call(url: str, body: bytes | None = None, method: str = "POST") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_answers(service: str, answers: dict[str, Any], **extra: Any) -> tuple[int, dict[str, Any]]:
    return call(f"{service}/context", json.dumps({"answers": answers, **extra}).encode())


GOOD = [
    {},
    {"use_case": "rag", "providers": ["openai", "anthropic", "local"], "self_hosted": "small", "cloud": "gcp"},
    {"use_case": "batch", "cloud": "existing", "observability": "none", "usage_billing": "none", "auth": "none",
     "prompt_versioning": False, "project_name": "Agent Smith 2.0",
     "description": "Quotes \"and\" a backslash \\\\ here"},
    {"use_case": "agents", "providers": ["local"], "self_hosted": "large", "task_queue": "celery",
     "vector_store": "pgvector", "streaming": "websocket", "cloud": "azure", "observability": "langfuse",
     "usage_billing": "stripe", "traffic": "spiky", "cost_priority": "cost", "peak_rps": 400},
]


def case_id(answers: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in answers.items() if k != "project_name") or "defaults"


@pytest.mark.parametrize("answers", GOOD, ids=case_id)
def test_service_returns_the_clis_template_context(service: str, answers: dict[str, Any]) -> None:
    status, body = post_answers(service, answers, aistarter_version=__version__)
    assert status == 200, body
    given = validate(answers)
    expected = json.loads(json.dumps(template_context(decide(given), given)))
    assert body == {"values": expected}
    assert {"_blueprint", "_adrs", "_answers_record", "project_slug"} <= body["values"].keys()


def test_service_accepts_what_the_form_sends_by_default(service: str) -> None:
    pages = _question_pages(_template())
    defaults = {key: prop["default"] for page in pages for key, prop in page["properties"].items()}
    status, body = post_answers(service, defaults)
    assert status == 200, body
    assert body["values"]["_blueprint"] == json.loads(json.dumps(decide(validate({})).model_dump(mode="json")))


def test_service_takes_null_as_unanswered_and_text_like_the_cli(service: str) -> None:
    status, body = post_answers(service, {"description": None, "providers": "openai, anthropic", "peak_rps": "40"})
    assert status == 200, body
    assert body["values"]["providers"] == "openai,anthropic"
    assert body["values"]["peak_rps"] == 40
    assert body["values"]["description"] == validate({}).description


BAD = [
    {"use_case": "crud"},
    {"use_cas": "rag"},
    {"self_hosted": "small"},
    {"usage_billing": "stripe", "auth": "none"},
    {"providers": ["openai", "openai"]},
    {"providers": []},
    {"latency_budget_ms": 10},
    {"project_name": "../escape"},
]


@pytest.mark.parametrize("answers", BAD, ids=case_id)
def test_service_rejects_bad_answers_with_the_clis_one_line_message(service: str, answers: dict[str, Any]) -> None:
    with pytest.raises(AnswerError) as cli_error:
        validate(answers)
    status, body = post_answers(service, answers)
    assert status == 400
    assert body == {"error": str(cli_error.value)}
    assert "\n" not in body["error"]


def test_service_refuses_a_template_from_another_release(service: str) -> None:
    status, body = post_answers(service, {}, aistarter_version="0.0.1")
    assert status == 409
    assert "0.0.1" in body["error"] and __version__ in body["error"]


@pytest.mark.parametrize(("payload", "status", "fragment"), [
    (b"{not json", 400, "not JSON"),
    (b"[]", 400, '{"answers"'),
    (b'{"answers": "use_case=rag"}', 400, '{"answers"'),
    (b"x" * (MAX_BODY_BYTES + 1), 413, "bytes"),
], ids=["invalid-json", "not-an-object", "answers-not-a-mapping", "too-large"])
def test_service_rejects_malformed_requests(service: str, payload: bytes, status: int, fragment: str) -> None:
    code, body = call(f"{service}/context", payload)
    assert code == status and fragment in body["error"]


def test_service_health_and_unknown_paths(service: str) -> None:
    assert call(f"{service}/healthz", method="GET") == (200, {"status": "ok", "aistarter_version": __version__})
    code, body = call(f"{service}/answers", b"{}")
    assert code == 404 and "/context" in body["error"]


# ---------------------------------------------------------------- nunjucks parity

@pytest.fixture(scope="module")
def nunjucks() -> Path:
    """node_modules with nunjucks and isbinaryfile as Backstage uses them, installed once into a cache folder."""
    with exclusive(NUNJUCKS_DIR):  # pytest-xdist workers share the cache folder
        return _install_nunjucks()


def _install_nunjucks() -> Path:
    modules = NUNJUCKS_DIR / "node_modules"
    installed = all((modules / spec.split("@")[0] / "package.json").is_file() for spec in NPM_PACKAGES)
    if installed and shutil.which("node"):
        return modules
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed: the nunjucks parity test needs Node.js with npm"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    NUNJUCKS_DIR.mkdir(parents=True, exist_ok=True)
    # Backstage's scaffolder bundles nunjucks 3 and decides what is binary with isbinaryfile 5.
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NUNJUCKS_DIR), *NPM_PACKAGES],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not (modules / "nunjucks").is_dir():
        reason = f"npm install {' '.join(NPM_PACKAGES)} failed: {(done.stderr or done.stdout).strip()[-500:]}"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return modules


def tree(root: Path) -> dict[str, bytes]:
    # pip byte-compiles the installed template; the git checkout Backstage reads has no __pycache__.
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


class ObjectLookup(Environment):
    """`a.b` as JavaScript reads it, the key first: Jinja would give a dict's method for `body.values`."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def step_runs(step: dict[str, Any], values: dict[str, Any]) -> bool:
    """A step's `if:` against the context service's values. The expressions are comparisons joined by `and`,
    read alike by nunjucks and Jinja; Backstage renders the `${{ }}` and skips the step when it is false."""
    if "if" not in step:
        return True
    expression = step["if"].strip()
    assert expression.startswith("${{") and expression.endswith("}}"), step["if"]
    compiled = ObjectLookup().compile_expression(expression[3:-2])
    return bool(compiled(steps={"blueprint": {"output": {"body": {"values": values}}}}))


# A step's `if:` the way Backstage's scaffolder evaluates it: `${{ }}` delimiters, the expression's value through
# `dump` and back, and JavaScript truthiness.
NUNJUCKS_IF_JS = r"""
const nunjucks = require('nunjucks');
const [conditions, context] = JSON.parse(require('fs').readFileSync(0, 'utf-8'));
const env = new nunjucks.Environment(null, { autoescape: false, tags: { variableStart: '${{', variableEnd: '}}' } });
const results = conditions.map(c => !!JSON.parse(env.renderString(c.replace(/\$\{\{(.+?)\}\}/gs, '${{ ($1) | dump }}'),
                                                                  context)));
process.stdout.write(JSON.stringify(results));
"""


def deleting_steps(template: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in template["spec"]["steps"] if s["action"] == "fs:delete" and step_runs(s, values)]


def vendor_like_backstage(template: dict[str, Any], values: dict[str, Any], workspace: Path) -> None:
    # fetch:plain copies the infra library from git, where caches and bytecode never are.
    infra = _step(template, "infra-library")["input"]
    shutil.copytree((TEMPLATE_FILE.parent / infra["url"]).resolve(),
                    workspace / infra["targetPath"].replace(SLUG_EXPR, values["project_slug"]),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # fs:delete, on the steps whose `if:` holds, drops what the answers do not use.
    for step in deleting_steps(template, values):
        for name in step["input"]["files"]:
            target = workspace / name.replace(SLUG_EXPR, values["project_slug"])
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()


def render_like_backstage(values: dict[str, Any], workspace: Path, modules: Path) -> Path:
    """Run the template's steps the way the scaffolder would, up to (not including) publishing."""
    template = _template()
    values_file = workspace.parent / "values.json"
    values_file.write_text(json.dumps(values), encoding="utf-8")
    step = _step(template, "render")["input"]
    cmd = ["node", str(PREVIEW_JS), str((TEMPLATE_FILE.parent / step["url"]).resolve()), str(values_file),
           str(workspace)]
    for pattern in step["copyWithoutTemplating"]:
        cmd += ["--copy-without-templating", pattern]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NODE_PATH": str(modules)},
                          timeout=300)
    assert done.returncode == 0, f"nunjucks could not render the template: {done.stderr.strip()}"
    vendor_like_backstage(template, values, workspace)
    # The fs:delete steps' conditions as nunjucks itself evaluates them must agree with the ones applied above.
    conditional = [s for s in template["spec"]["steps"] if "if" in s]
    checked = subprocess.run(["node", "-e", NUNJUCKS_IF_JS], input=json.dumps([[s["if"] for s in conditional], {
        "steps": {"blueprint": {"output": {"body": {"values": values}}}}}]), capture_output=True, text=True,
        env={**os.environ, "NODE_PATH": str(modules)}, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == [step_runs(s, values) for s in conditional]
    return workspace / _step(template, "publish")["input"]["sourcePath"].replace(SLUG_EXPR, values["project_slug"])


def test_preview_follows_fetch_template_rules(nunjucks: Path, tmp_path: Path) -> None:
    """The harness itself: the rules Backstage's own fetch:template tests pin down, on a tiny template."""
    src = tmp_path / "template"
    files = {
        "{{ cookiecutter.name }}.txt": "{{ cookiecutter.count }}",
        "{% if cookiecutter.show %}dummy.txt{% endif %}": "skipped file",
        "{% if cookiecutter.show %}dir{% endif %}/inside.txt": "skipped folder",
        "sub/{% if cookiecutter.show %}x.txt{% endif %}": "skipped file in a kept folder",
        "sub/kept.txt": "{% for k, v in cookiecutter.d.items() %}{{ k }}={{ v }};{% endfor %}",
        "list.json": "{{ cookiecutter.names | jsonify }}",
        "verbatim.txt": "{{ not rendered }}",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    (src / "blob.bin").write_bytes(b"\x00\x01{{ cookiecutter.name }}\x00")
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"name": "proj", "count": 3, "show": False, "d": {"a": 1}, "names": ["a", "b"]}))
    out = tmp_path / "out"
    done = subprocess.run(["node", str(PREVIEW_JS), str(src), str(values), str(out),
                           "--copy-without-templating", "verbatim.txt"],
                          capture_output=True, text=True, env={**os.environ, "NODE_PATH": str(nunjucks)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert tree(out) == {
        "proj.txt": b"3",
        "sub/kept.txt": b"a=1;",
        "list.json": b'["a","b"]',
        "verbatim.txt": b"{{ not rendered }}",
        "blob.bin": b"\x00\x01{{ cookiecutter.name }}\x00",
    }
    assert (out / "sub").is_dir() and not (out / "dir").exists()


def first_difference(a: bytes, b: bytes) -> str:
    for number, (left, right) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), start=1):
        if left != right:
            return f"line {number}: CLI {left[:120]!r} vs nunjucks {right[:120]!r}"
    return f"lengths {len(a)} vs {len(b)} (trailing content differs)"


# Special characters (GOOD) plus the heavy set, which uses every value of every question at least once.
PARITY = GOOD + [case for case in HEAVY if case not in GOOD]


@pytest.mark.parametrize("answers", PARITY, ids=case_id)
def test_fs_delete_steps_leave_the_infra_library_the_cli_vendors(tmp_path: Path, answers: dict[str, Any]) -> None:
    given = validate(answers)
    values = json.loads(json.dumps(template_context(decide(given), given)))
    # The CLI's copy: the after-hook on a folder that holds only the answers record.
    cli = tmp_path / "cli"
    (cli / ANSWERS_RECORD).parent.mkdir(parents=True)
    (cli / ANSWERS_RECORD).write_text(values["_answers_record"], encoding="utf-8")
    hooks.vendor_infra_library(cli)
    vendor_like_backstage(_template(), values, tmp_path / "workspace")
    portal = tmp_path / "workspace" / values["project_slug"]
    assert tree(portal / "infra") == tree(cli / "infra")
    assert not (portal / "infra" / "aistarter_infra" / "platform" / "gcp.py").exists() or given.cloud == "gcp"


@pytest.mark.parametrize("answers", PARITY, ids=case_id)
def test_nunjucks_renders_the_same_bytes_as_the_cli(service: str, nunjucks: Path, tmp_path: Path,
                                                         answers: dict[str, Any]) -> None:
    status, body = post_answers(service, answers, aistarter_version=__version__)
    assert status == 200, body
    published = render_like_backstage(body["values"], tmp_path / "workspace", nunjucks)
    # Compared with copier, the engine `aistarter new` uses; test_render pins cookiecutter to the same bytes, so a
    # failure here is a nunjucks difference, not an engine one.
    expected = tree(render_project(validate(answers), tmp_path / "cli", "copier"))
    got = tree(published)
    assert sorted(got) == sorted(expected), (f"only in the CLI's render: {sorted(set(expected) - set(got))[:10]}; "
                                             f"only in nunjucks: {sorted(set(got) - set(expected))[:10]}")
    different = {name: first_difference(expected[name], got[name]) for name in expected if expected[name] != got[name]}
    assert not different, "nunjucks renders differently:\n" + "\n".join(f"{k}: {v}" for k, v in different.items())
    # The engines' own config files land next to the project, outside what publish:github pushes.
    top = {name.split("/")[0] for name in ENGINE_FILES}
    assert sorted(p.name for p in (tmp_path / "workspace").iterdir()) == sorted([*top, published.name])


# ---------------------------------------------------------------- constructs nunjucks lacks (every branch)

# Block tags nunjucks parses; include/import/extends/from need a loader, which Backstage's renderString lacks.
NUNJUCKS_TAGS = {"if", "elif", "else", "endif", "for", "endfor", "set", "endset", "macro", "endmacro", "call",
                 "endcall", "filter", "endfilter", "raw", "endraw"}
# Python methods nunjucks answers: installJinjaCompat's list and dict members, and JS split (same with an argument).
NUNJUCKS_METHODS = {"append", "pop", "remove", "count", "index", "find", "insert", "items", "values", "keys", "get",
                    "has_key", "popitem", "setdefault", "update", "iteritems", "itervalues", "iterkeys", "split"}


def nunjucks_names(modules: Path) -> tuple[set[str], set[str]]:
    """The filters and tests of nunjucks configured as Backstage's cookiecutterCompat mode configures it."""
    script = ("const n = require('nunjucks'); const env = n.configure({autoescape: false}); n.installJinjaCompat();"
              "env.addFilter('jsonify', env.getFilter('dump'));"
              "console.log(JSON.stringify([Object.keys(env.filters), Object.keys(env.tests)]));")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "NODE_PATH": str(modules)}, timeout=60)
    filters, tests = json.loads(done.stdout)
    return set(filters), set(tests)


def _has_else_before_block_end(tokens: list[tuple[int, str, str]], start: int) -> bool:
    for _, kind, value in tokens[start:]:
        if kind == "block_end":
            return False
        if value == "else":
            return True
    return False


def nunjucks_gaps(source: str, filters: set[str], tests: set[str]) -> list[str]:
    """Jinja constructs in one template source that nunjucks lacks or reads differently, as 'line N: what'."""
    tokens = [t for t in Environment(keep_trailing_newline=True).lex(source) if t[1] != "whitespace"]
    none = (0, "", "")
    gaps: list[str] = []
    tag = ""
    for i, (line, kind, value) in enumerate(tokens):
        prev, prev2 = (tokens[i - 1] if i > 0 else none), (tokens[i - 2] if i > 1 else none)
        nxt, nxt2 = (tokens[i + 1] if i + 1 < len(tokens) else none), (tokens[i + 2] if i + 2 < len(tokens) else none)
        if kind == "block_begin":
            tag = nxt[2] if nxt[1] == "name" else ""
            if tag not in NUNJUCKS_TAGS:
                gaps.append(f"line {line}: {{% {tag} %}} tag")
        elif kind == "block_end":
            tag = ""
        elif kind == "name" and prev[2] == "|" and value not in filters:
            gaps.append(f"line {line}: filter '{value}'")
        elif kind == "name" and (prev[2] == "is" or (prev[2] == "not" and prev2[2] == "is")) and value not in tests:
            gaps.append(f"line {line}: test 'is {value}'")
        elif kind == "name" and prev[2] == "." and nxt[2] == "(" and (
                value not in NUNJUCKS_METHODS or (value == "split" and nxt2[2] == ")")):
            gaps.append(f"line {line}: Python method '.{value}()'")
        elif kind == "name" and value == "if" and tag == "for" and not _has_else_before_block_end(tokens, i):
            gaps.append(f"line {line}: loop filter '{{% for ... if ... %}}' (nunjucks reads it as an inline if)")
        elif kind == "operator" and value == "%" and prev[1] == "string":
            gaps.append(f"line {line}: string formatting with '%' (modulo in nunjucks)")
    return gaps


def test_gap_finder_flags_what_nunjucks_lacks() -> None:
    source = ("{% for p in xs if p != 1 %}{{ p | tojson }}{{ '%.1f' % p }}{% endfor %}{% raw %}{{ a.lower() }}"
              "{% endraw %}{{ n.lower() }}{% if x is none %}{% endif %}{% for y in (a if b else c) %}{% endfor %}"
              "{{ s.split() }}{{ s.split(',') }}{{ d.items() }}{{ v | default('x') }}{% include 'f' %}")
    assert nunjucks_gaps(source, {"default"}, {"defined"}) == [
        "line 1: loop filter '{% for ... if ... %}' (nunjucks reads it as an inline if)",
        "line 1: filter 'tojson'",
        "line 1: string formatting with '%' (modulo in nunjucks)",
        "line 1: Python method '.lower()'",
        "line 1: test 'is none'",
        "line 1: Python method '.split()'",
        "line 1: {% include %} tag",
    ]


def test_template_uses_only_constructs_nunjucks_has(nunjucks: Path) -> None:
    """Every file and path, including branches no answer set above renders, parses the same in nunjucks."""
    filters, tests = nunjucks_names(nunjucks)
    root = template_dir()
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in ENGINE_FILES or "__pycache__" in rel:
            continue
        found += [f"{rel} (path): {gap}" for gap in nunjucks_gaps(path.name, filters, tests)]
        if path.is_file() and b"\0" not in path.read_bytes():
            found += [f"{rel}: {gap}" for gap in nunjucks_gaps(path.read_text(encoding="utf-8"), filters, tests)]
    assert not found, "Backstage's nunjucks cannot render these (see backstage/README.md):\n" + "\n".join(found)
