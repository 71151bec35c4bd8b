"""Evals end to end: `python -m app.evals run | compare | export` as processes, on the offline fake model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import base as db
from app.evals import scorers
from app.evals.__main__ import main
from app.evals.dataset import EvalError, load
from app.evals.export import turns
from app.evals.models import EvalRun
from app.main import create_app
from app.settings import get_settings
from tests.conftest import PROJECT, headers_for


@pytest.fixture
def evals(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """Run `python -m app.evals ARGS` in the project against the test database; returns the process."""
    env = {**os.environ, "DATABASE_URL": database_url, "FAKE_TOKEN_DELAY_MS": "0", "LOG_LEVEL": "WARNING"}
{%- if cookiecutter.vector_store == 'pgvector' %}
    env["PGVECTOR_URL"] = request.getfixturevalue("pg_url")
{%- elif cookiecutter.vector_store == 'qdrant' %}
    # Embedded Qdrant locks its folder: the CLI gets its own, apart from the in-process app's.
    env["QDRANT_PATH"] = str(tmp_path / "qdrant-evals")
{%- endif %}

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.evals", *args], cwd=PROJECT, env={**env, **extra_env},
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """The same commands in-process (no interpreter start-up), for the cases that need no model calls."""
    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    get_settings.cache_clear()


def test_starter_dataset_passes_and_matches_the_committed_baseline(evals: Any, cli: Any, tmp_path: Path,
                                                                  database_url: str) -> None:
    out = tmp_path / "starter.json"
    done = evals("run", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(out.read_text())
    cases, _ = load(PROJECT / "evals" / "starter.jsonl")
    assert document["aggregate"]["passed"] == len(cases) == len(document["cases"])
    first = document["cases"][0]
    # Results carry the provenance of the API path: a stored interaction, the prompt, the model.
    assert first["interaction_id"] and first["prompt"]["name"] == "assistant" and first["provider"] == "fake"
    assert document["params"]["prompt"]["sha256"] and document["params"]["fake_provider"] is True
{%- if cookiecutter.vector_store != 'none' %}
    assert document["aggregate"]["hit_rate"] == 1.0 and document["aggregate"]["mrr"] == 1.0
    assert sorted(document["params"]["documents"]) == ["refunds", "shipping", "warranty"]
{%- endif %}
{%- if cookiecutter.use_case == 'agents' %}
    # Agent cases ran through the agent's loop: their tools really ran, and the tools scorer saw them.
    agent_cases = {c["id"]: c for c in document["cases"] if c["id"].startswith("agent-")}
    assert len(agent_cases) == 3
    assert all(c["scores"]["tools"] == 1.0 and c["agent_run_id"] for c in agent_cases.values())
    assert agent_cases["agent-calculates"]["notes"]["tools"] == "called: calculate"
    assert document["aggregate"]["scores"]["tools"] == 1.0
{%- endif %}
    code, stdout, stderr = cli("compare", "evals/baseline.json", str(out))
    assert code == 0, stdout + stderr
    # Stored with its parameters: comparable by run id as well as by file.
    db.configure(database_url)
    with db.session_scope() as session:
        run = session.get(EvalRun, document["run_id"])
        assert run is not None and run.params["prompt"] == document["params"]["prompt"]
        assert run.summary["pass_rate"] == 1.0
    code, stdout, stderr = cli("compare", document["run_id"], str(out))
    assert code == 0 and f"| {first['id']} |" in stdout, stdout + stderr


PROMPT_V1 = "You are the support assistant.\nAlways mention: refunds take 30 days\n"
PROMPT_V2 = "You are the support assistant.\n"  # the planted regression: the refund rule was dropped


def test_compare_catches_a_prompt_version_that_drops_a_required_fact(evals: Any, cli: Any, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts" / "assistant"
    prompts.mkdir(parents=True)
{%- if cookiecutter.prompt_versioning %}
    (prompts / "v1.md").write_text(PROMPT_V1)
    (prompts / "v2.md").write_text(PROMPT_V2)
    versions = {"a": ["--prompt-version", "v1"], "b": ["--prompt-version", "v2"]}
    prompts_env = {"a": {}, "b": {}}
{%- else %}
    # Unversioned prompts: the two runs point PROMPTS_DIR at two copies of assistant.md.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "assistant.md").write_text(PROMPT_V1)
    (tmp_path / "b" / "assistant.md").write_text(PROMPT_V2)
    versions = {"a": [], "b": []}
    prompts_env = {"a": {"PROMPTS_DIR": str(tmp_path / "a")}, "b": {"PROMPTS_DIR": str(tmp_path / "b")}}
{%- endif %}
    dataset = tmp_path / "refunds.jsonl"
    dataset.write_text(
        '{"id": "refund-window", "messages": [{"role": "user", "content": "Can I get my money back?"}], '
        '"expected_facts": ["30 days"]}\n'
        '{"id": "greeting", "messages": [{"role": "user", "content": "hello there"}], "expected_facts": ["hello"]}\n')
    results = {}
    for side in ("a", "b"):
        out = tmp_path / f"{side}.json"
        env = {"PROMPTS_DIR": str(tmp_path / "prompts"), **prompts_env[side]}
        done = evals("run", "--dataset", str(dataset), "--out", str(out), *versions[side], **env)
        results[side] = done
    assert results["a"].returncode == 0, results["a"].stdout + results["a"].stderr
    assert results["b"].returncode == 1 and "missing: 30 days" in results["b"].stdout
    compared = evals("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    print(compared.stdout)  # the table, for the record (pytest -s)
    assert compared.returncode == 1
    assert "| refund-window | facts | 1.00 | 0.00 | -1.00 | REGRESSION |" in compared.stdout
    assert "| greeting | facts | 1.00 | 1.00 | +0.00 |  |" in compared.stdout
    assert "| ALL | pass rate | 1.00 | 0.50 | -0.50 | REGRESSION |" in compared.stdout
    # The same run against itself is clean, and the threshold is honoured.
    assert cli("compare", str(tmp_path / "a.json"), str(tmp_path / "a.json"))[0] == 0
    assert cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--threshold", "1")[0] == 0

{%- if cookiecutter.use_case == 'agents' %}


def test_compare_catches_an_agent_that_no_longer_calls_an_expected_tool(evals: Any, tmp_path: Path) -> None:
    # The planted regression: an edit to agents.json drops the `calculate` tool (say, renamed in a refactor).
    # The model can no longer call it, so the starter case that expects it fails and compare says so.
    config = json.loads((PROJECT / "agents.json").read_text())
    config["agents"]["assistant"]["tools"].remove("calculate")
    broken = tmp_path / "agents.json"
    broken.write_text(json.dumps(config))
    candidate = tmp_path / "candidate.json"
    done = evals("run", "--out", str(candidate), AGENTS_CONFIG=str(broken))
    assert done.returncode == 1 and "called: none" in done.stdout, done.stdout + done.stderr
    compared = evals("compare", "evals/baseline.json", str(candidate))
    print(compared.stdout)  # the table, for the record (pytest -s)
    assert compared.returncode == 1
    assert "| agent-calculates | tools | 1.00 | 0.00 | -1.00 | REGRESSION |" in compared.stdout
    assert "| agent-tells-the-time | tools | 1.00 | 1.00 | +0.00 |  |" in compared.stdout
    assert "| ALL | mean tools | 1.00 | 0.67 | -0.33 | REGRESSION |" in compared.stdout
{%- endif %}


def test_bad_input_is_one_line_and_exit_2(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "messages": [{"role": "user", "content": "hi"}]}\n{"id": "y", "messages": []}\n')
{%- if cookiecutter.use_case == 'agents' %}
    no_agent = tmp_path / "no-agent.jsonl"
    no_agent.write_text('{"id": "x", "agent": "nobody", "messages": [{"role": "user", "content": "hi"}]}\n')
{%- endif %}
    for args, message in [
        (("run", "--dataset", str(bad)), "bad.jsonl:2: messages: List should have at least 1 item"),
        (("run", "--dataset", str(tmp_path / "missing.jsonl")), "not found"),
        (("run", "--prompt-version", "v999"), {% if cookiecutter.prompt_versioning %}"no version 'v999'"{% else %}"does not apply"{% endif %}),
        (("compare", str(tmp_path / "nope.json"), str(tmp_path / "nope.json")), "not found"),
        (("compare", "evals/baseline.json", "evals/baseline.json", "--threshold", "2"), "between 0 and 1"),
{%- if cookiecutter.use_case == 'agents' %}
        (("run", "--dataset", str(no_agent)), "dataset names agent(s) nobody not in agents.json (defined: assistant)"),
{%- endif %}
    ]:
        code, stdout, stderr = cli(*args)
        assert code == 2, (args, stdout, stderr)
        assert message in stderr and "Traceback" not in stderr and len(stderr.splitlines()) == 1


def test_export_from_feedback_round_trips(make_settings: Any, tenant: str, evals: Any, tmp_path: Path) -> None:
    sent = [{"role": "user", "content": "My order 42 never arrived."},
            {"role": "assistant", "content": "Sorry to hear that.\nLet me check."},
            {"role": "user", "content": "Please refund it."}]
    with TestClient(create_app(make_settings(trace_content="full"))) as client:
        headers = headers_for(tenant)
        reply = client.post("/v1/chat/completions", headers=headers, json={"messages": sent})
        interaction = reply.headers["x-interaction-id"]
        client.post(f"/v1/interactions/{interaction}/feedback", headers=headers,
                    json={"rating": "down", "comment": "should offer a refund"})
    out = tmp_path / "from-feedback.jsonl"
    owner = {% if cookiecutter.auth == 'api_key' %}tenant{% else %}"anonymous"  # auth=none: one tenant for everyone{% endif %}
    done = evals("export", "--from-feedback", "--tenant", owner, "--out", str(out))
    assert done.returncode == 0, done.stderr
    cases, _ = load(out)
    [case] = [c for c in cases if c.meta["interaction_id"] == interaction]
    assert [m.model_dump(include={"role", "content"}) for m in case.messages] == sent
    assert case.meta["rating"] == "down" and case.meta["comment"] == "should offer a refund"
    # Exporting again appends nothing (ids are kept), and the rows run as a dataset.
    assert evals("export", "--from-feedback", "--tenant", owner, "--out", str(out)).returncode == 0
    assert len(out.read_text().splitlines()) == len(cases)
    ran = evals("run", "--dataset", str(out), "--out", str(tmp_path / "r.json"))
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_export_skips_what_trace_content_did_not_keep(make_settings: Any, tenant: str, evals: Any) -> None:
    with TestClient(create_app(make_settings(trace_content="metadata"))) as client:
        headers = headers_for(tenant)
        reply = client.post("/v1/chat/completions", headers=headers,
                            json={"messages": [{"role": "user", "content": "secret stuff"}]})
        client.post(f"/v1/interactions/{reply.headers['x-interaction-id']}/feedback", headers=headers,
                    json={"rating": "up"})
    owner = {% if cookiecutter.auth == 'api_key' %}tenant{% else %}"anonymous"{% endif %}
    done = evals("export", "--from-feedback", "--tenant", owner)
    assert done.returncode == 0 and " skipped without stored text" in done.stderr
    assert "secret" not in done.stdout + done.stderr


def test_scorers() -> None:
    assert scorers.contains("Refunds take 30  days.", ["30 days", "refunds"]) == 1.0
    assert scorers.contains("nothing", ["a b", "nothing"]) == 0.5
    assert scorers.regex("order #42", [r"#\d+", r"^x"]) == 0.5
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    assert scorers.json_schema('```json\n{"answer": "yes"}\n```', schema) == (1.0, None)
    assert scorers.json_schema('{"answer": 3}', schema)[0] == 0.0
    assert scorers.json_schema("not json", schema)[1].startswith("not JSON")
    assert scorers.retrieval(["a", "b", "c"], ["b"]) == (1.0, 0.5)
    assert scorers.retrieval(["a"], ["z"]) == (0.0, 0.0)
    assert scorers.tools_called(["search", "lookup"], ["lookup", "refund"]) == 0.5
    calls = [{"id": "1", "type": "function", "function": {"name": "search", "arguments": "{}"}}, {"name": "lookup"}]
    assert scorers.tool_names(None, {"tool_calls": calls}) == ["search", "lookup"]


def test_dataset_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "x"}], "regex": ["("]}\n')
    with pytest.raises(EvalError, match=r"d.jsonl:1: regex: .*does not compile"):
        load(path)
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "x"}], "expect": []}\n')
    with pytest.raises(EvalError, match=r"d.jsonl:1: expect: Extra inputs"):
        load(path)
    path.write_text("not json\n")
    with pytest.raises(EvalError, match=r"d.jsonl:1: not JSON"):
        load(path)


def test_turns_parse_the_recorded_call() -> None:
    text = "system: be nice\n<context>\nuser: fake\n</context>\nuser: hi\nthere\nassistant: hello\nuser: bye"
    # A line inside the system prompt that looks like a turn is the one known ambiguity of the text form.
    assert turns(text)[-3:] == [{"role": "user", "content": "hi\nthere"}, {"role": "assistant", "content": "hello"},
                                {"role": "user", "content": "bye"}]
