"""`run`: every case of a dataset through `app.service.complete` (the API's own path: prompt file, retrieval,
gateway, metering, provenance record), then scored. Results are stored in the database with the run's
parameters and written as JSON, the format `compare` reads and `evals/baseline.json` is committed in.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import {% if cookiecutter.vector_store != 'none' %}memory, {% endif %}prompts, provenance, service
{%- if cookiecutter.use_case == 'agents' %}
from app.agents.config import AgentsFile
{%- endif %}
from app.db import base as db
{%- if cookiecutter.use_case == 'agents' %}
from app.evals import agents as agent_cases
{%- endif %}
from app.evals import scorers
from app.evals.dataset import Case, EvalError, load
from app.evals.models import EvalResult, EvalRun
from app.gateway import GatewayError
from app.provenance.redact import keep
from app.schemas import ChatRequest
from app.settings import Settings

# Scores that must all be 1.0 for a case to pass. The reciprocal rank is reported (its mean is MRR) but a
# relevant document at rank 2 is still a hit, so it does not fail a case on its own.
GATED = ("facts", "regex", "json_schema", "tools", "retrieval_hit", "judge")
# What a case can fail with and still be recorded (as its error) while the other cases run.
FAILURES: tuple[type[Exception], ...] = (GatewayError,{% if cookiecutter.use_case == 'agents' %} agent_cases.RunFailed{% endif %})
JUDGE_SYSTEM = ("You grade an assistant's answer against a rubric. Reply with PASS or FAIL as the first word, "
                "then one short sentence saying why.")


def _request(case: Case, model: str | None, prompt_version: str | None) -> ChatRequest:
    metadata = {"prompt_version": prompt_version} if prompt_version else None
    return ChatRequest.model_validate({"model": model, "metadata": metadata,
                                       "messages": [m.model_dump() for m in case.messages]})


async def _judge(case: Case, answer: str, judge_model: str, tenant: str, run_id: str) -> tuple[float, str]:
    conversation = "\n".join(f"{m.role}: {m.content}" for m in case.messages)
    request = ChatRequest.model_validate({"model": judge_model, "temperature": 0, "messages": [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Rubric: {case.rubric}\n\nConversation:\n{conversation}\n\nAnswer:\n{answer}"},
    ]})
    verdict = await service.complete(request, tenant=tenant, request_id=f"eval-{run_id}-{case.id}-judge")
    words = verdict.text.split()
    return (1.0 if words and words[0].strip(".:*").upper() == "PASS" else 0.0), verdict.text.strip()[:300]


async def _answer(case: Case, *, model: str | None, prompt_version: str | None, tenant: str,
                  run_id: str{% if cookiecutter.use_case == 'agents' %}, agents: AgentsFile | None{% endif %}) -> tuple[Any, dict[str, Any]]:
    """The answer to a case and its interaction record, through the API's own path."""
{%- if cookiecutter.use_case == 'agents' %}
    if case.agent:
        assert agents is not None  # agents_for() checked the case's agent before the run started
        return await agent_cases.answer(case, agents, model=model, tenant=tenant, run_id=run_id)
{%- endif %}
    result = await service.complete(_request(case, model, prompt_version), tenant=tenant,
                                    request_id=f"eval-{run_id}-{case.id}")
    return result, await db.run_db(provenance.load, result.interaction_id, tenant) or {}


async def _one(case: Case, *, settings: Settings, model: str | None, prompt_version: str | None, tenant: str,
               run_id: str, judge_model: str | None{% if cookiecutter.use_case == 'agents' %}, agents: AgentsFile | None{% endif %}) -> dict[str, Any]:
    out: dict[str, Any] = {"id": case.id, "passed": False, "scored": case.scored(), "scores": {}, "metrics": {},
                           "notes": {}, "interaction_id": None, "error": None}
    try:
        result, record = await _answer(case, model=model, prompt_version=prompt_version, tenant=tenant,
                                       run_id=run_id{% if cookiecutter.use_case == 'agents' %}, agents=agents{% endif %})
    except FAILURES as exc:
        out["error"] = str(exc)
        return out
    text = result.text
    scores: dict[str, float] = {}
    notes: dict[str, str] = {}
    if case.expected_facts:
        scores["facts"] = scorers.contains(text, case.expected_facts)
        missing = [f for f in case.expected_facts if scorers.contains(text, [f]) < 1]
        if missing:
            notes["facts"] = "missing: " + ", ".join(missing)
    if case.regex:
        scores["regex"] = scorers.regex(text, case.regex)
    if case.json_schema is not None:
        scores["json_schema"], why = scorers.json_schema(text, case.json_schema)
        if why:
            notes["json_schema"] = why
    if case.expected_tool_calls:
        called = scorers.tool_names(result, record)
        scores["tools"] = scorers.tools_called(called, case.expected_tool_calls)
        notes["tools"] = "called: " + (", ".join(called) or "none")
    if case.expected_document_ids:
        scores["retrieval_hit"], scores["retrieval_rr"] = scorers.retrieval(result.retrieved_document_ids,
                                                                            case.expected_document_ids)
    if judge_model and case.rubric:
        scores["judge"], notes["judge"] = await _judge(case, text, judge_model, tenant, run_id)
    usage = record.get("usage") or {}
    out.update(
        passed=all(scores.get(name, 1.0) == 1.0 for name in GATED),
        scores=scores, notes=notes, interaction_id=result.interaction_id,
        metrics={"latency_ms": record.get("latency_ms"), "ttft_ms": record.get("ttft_ms"),
                 "cost_usd": record.get("cost_usd"), "input_tokens": usage.get("input_tokens"),
                 "output_tokens": usage.get("output_tokens")},
        prompt=record.get("prompt"), provider=result.provider, model=result.model,
        retrieved_document_ids=result.retrieved_document_ids,
        answer=keep(text, settings.trace_content),
    )
{%- if cookiecutter.use_case == 'agents' %}
    if record.get("agent_run_id"):
        out["agent_run_id"] = record["agent_run_id"]  # GET /v1/agents/runs/{id}: every step of the case
{%- endif %}
    return out


def aggregate(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of each score over the cases that have it, plus pass rate, MRR, latency and cost."""
    names = sorted({name for case in cases for name in case["scores"]})
    latencies = [c["metrics"]["latency_ms"] for c in cases if c["metrics"].get("latency_ms") is not None]
    costs = [c["metrics"]["cost_usd"] for c in cases if c["metrics"].get("cost_usd") is not None]
    summary: dict[str, Any] = {
        "cases": len(cases),
        "passed": sum(c["passed"] for c in cases),
        "errors": sum(c["error"] is not None for c in cases),
        "pass_rate": sum(c["passed"] for c in cases) / len(cases) if cases else 0.0,
        "scores": {n: statistics.fmean(c["scores"][n] for c in cases if n in c["scores"]) for n in names},
        "latency_ms_p50": statistics.median(latencies) if latencies else None,
        "latency_ms_max": max(latencies) if latencies else None,
        "cost_usd_total": sum(costs) if costs else None,
    }
    if "retrieval_hit" in summary["scores"]:
        summary["hit_rate"] = summary["scores"]["retrieval_hit"]
        summary["mrr"] = summary["scores"]["retrieval_rr"]
    return summary
{%- if cookiecutter.vector_store != 'none' %}


async def ingest_documents(folder: Path, tenant: str) -> list[str]:
    """Put the dataset's corpus (every .md/.txt file; the id is the file name without extension) into the
    eval tenant's memory. Re-sending an id replaces the document, so repeated runs see the same corpus."""
    files = await db.run_db(_corpus, folder)
    for name, text in files:
        await memory.get_memory().ingest(tenant=tenant, text=text, source=name, document_id=Path(name).stem)
    return [Path(name).stem for name, _ in files]


def _documents_folder(dataset_path: str | Path, documents: str | Path | None) -> Path | None:
    folder = Path(documents) if documents else Path(dataset_path).with_name("documents")
    if documents and not folder.is_dir():
        raise EvalError(f"--documents {folder} is not a folder of .md/.txt files")
    return folder if folder.is_dir() else None


def _corpus(folder: Path) -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.iterdir())
            if p.suffix in {".md", ".txt"} and p.is_file()]
{%- endif %}


async def run(settings: Settings, dataset_path: str | Path, *, prompt_version: str | None = None,
              model: str | None = None, tenant: str = "evals", judge_model: str | None = None,
              documents: str | Path | None = None) -> dict[str, Any]:
    cases, digest = load(dataset_path)
{%- if cookiecutter.use_case == 'agents' %}
    agents = agent_cases.agents_for(cases)
{%- endif %}
{%- if not cookiecutter.prompt_versioning %}
    if prompt_version:
        raise EvalError("--prompt-version does not apply: this project keeps one prompt file per name "
                        "(prompt_versioning=false); point PROMPTS_DIR at another folder to compare prompts")
{%- endif %}
    try:
        prompt = prompts.load(settings.prompts_dir, settings.prompt_name, prompt_version or settings.prompt_version)
    except prompts.PromptError as exc:
        raise EvalError(str(exc)) from None
    db.configure(settings.database_url)
    if settings.auto_migrate:
        await db.run_db(db.upgrade, settings.database_url)
    rt = service.configure(settings)
    run_id = f"run_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    corpus: list[str] = []
    try:
{%- if cookiecutter.vector_store != 'none' %}
        folder = _documents_folder(dataset_path, documents)
        if folder is not None:
            corpus = await ingest_documents(folder, tenant)
{%- else %}
        if documents:
            raise EvalError("--documents needs vector memory, which this project was generated without")
{%- endif %}
        results = [await _one(case, settings=settings, model=model, prompt_version=prompt_version, tenant=tenant,
                              run_id=run_id, judge_model=judge_model{% if cookiecutter.use_case == 'agents' %},
                              agents=agents{% endif %}) for case in cases]
    finally:
        await service.shutdown()
{%- if cookiecutter.vector_store != 'none' %}
        await memory.close_memory()
{%- endif %}
    params = {
        "dataset": str(dataset_path), "dataset_sha256": digest, "tenant": tenant, "model": model,
        "prompt": {"name": prompt.name, "version": prompt.version, "sha256": prompt.sha256},
        "prompt_version_requested": prompt_version, "judge_model": judge_model, "documents": corpus,
        "providers": list(rt.gateway.providers), "fake_provider": rt.gateway.fake_active,
    }
    document = {"run_id": run_id, "created_at": datetime.now(UTC).isoformat(), "params": params,
                "aggregate": aggregate(results), "cases": results}
    await db.run_db(store, document)
    return document


def store(document: dict[str, Any]) -> None:
    with db.session_scope() as session:
        session.add(EvalRun(id=document["run_id"], dataset=document["params"]["dataset"][:512],
                            dataset_sha256=document["params"]["dataset_sha256"], params=document["params"],
                            summary=document["aggregate"]))
        for case in document["cases"]:
            # `scores` keeps the whole case result (scores, metrics, notes) so a stored run can be compared.
            session.add(EvalResult(run_id=document["run_id"], case_id=case["id"], passed=case["passed"],
                                   interaction_id=case["interaction_id"], scores=case,
                                   latency_ms=case["metrics"].get("latency_ms"), error=case["error"]))
