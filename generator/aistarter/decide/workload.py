"""Criterion 1, workload: AI is not CRUD. Streaming shape, memory and background jobs follow the use case."""

from __future__ import annotations

from typing import Literal

from ..blueprint import Decision
from ..questions import Answers

STREAMING_USE_CASES = frozenset({"chat", "rag", "agents"})
MEMORY_USE_CASES = frozenset({"rag", "agents"})
QUEUE_USE_CASES = frozenset({"batch", "agents"})
# use_case=agents means tools: what the generated project starts with (app/agents/, agents.json).
AGENT_TOOLS = ("; agents call tools: Python functions (calculate, current_time) and MCP servers (a bundled "
               "read-only `files` server over stdio)")
WHY_AGENT_TOOLS = (" An agent is a model that acts: it needs tools from the start, so it has two safe Python tools "
                   "that need no keys or network and one MCP server shipped with the app, which proves the whole MCP "
                   "path offline; any MCP server (stdio or streamable HTTP) is one entry in agents.json.")


def resolve_streaming(answers: Answers) -> Literal["sse", "websocket", "none"]:
    if answers.streaming != "auto":
        return answers.streaming
    return "sse" if answers.use_case in STREAMING_USE_CASES else "none"


def resolve_vector_store(answers: Answers) -> Literal["none", "qdrant", "pgvector"]:
    if answers.vector_store != "auto":
        return answers.vector_store
    return "qdrant" if answers.use_case in MEMORY_USE_CASES else "none"


def resolve_task_queue(answers: Answers) -> Literal["none", "arq", "celery"]:
    if answers.task_queue != "auto":
        return answers.task_queue
    return "arq" if answers.use_case in QUEUE_USE_CASES else "none"


def decide(answers: Answers) -> Decision:
    queue = resolve_task_queue(answers)
    jobs = f"; long-running work goes to a {queue} worker" if queue != "none" else ""
    why_queue = (
        f" {answers.use_case} work outlives an HTTP request, so it runs in a worker with retries and a "
        "dead-letter state."
        if queue != "none" else f" {answers.use_case} requests finish inside the request, so no queue is added."
    )
    tools = AGENT_TOOLS if answers.use_case == "agents" else ""
    return Decision(
        criterion="workload",
        decision=f"FastAPI (async) serving the OpenAI wire format{jobs}{tools}",
        reason="AI requests stream, wait on slow upstreams and spike; an async framework holds thousands of open "
        "streams per process where a thread-per-request stack holds dozens." + why_queue
        + (WHY_AGENT_TOOLS if tools else ""),
        context=f"use_case={answers.use_case}, task_queue={answers.task_queue}, " + _shape(answers),
        consequences=_consequences(answers, queue),
        rejected=[
            "Django/DRF: sync-first request model, streaming is an afterthought",
            "Flask: no native async, so every open stream pins a worker thread",
            "Node.js: async is fine, but the model, eval and data tooling is Python",
            "arq" if queue == "celery" else "Celery: heavier broker setup than this workload needs",
        ],
    )


HOSTED_TPOT_S = 0.02  # planning figure: a hosted model streams ~50 tokens/s
TOKENS_BY_USE_CASE = {"chat": (800, 300), "rag": (3000, 300), "agents": (4000, 500), "batch": (1500, 500)}


def _tokens(answers: Answers) -> tuple[int, int]:
    prompt, output = TOKENS_BY_USE_CASE[answers.use_case]
    return (prompt if answers.prompt_tokens_p50 == "auto" else int(answers.prompt_tokens_p50),
            output if answers.output_tokens_p50 == "auto" else int(answers.output_tokens_p50))


def _shape(answers: Answers) -> str:
    prompt, output = _tokens(answers)
    auto = " (auto for this use case)" if answers.prompt_tokens_p50 == "auto" else ""
    return f"typical request {prompt} prompt + {output} output tokens{auto}, peak {answers.peak_rps:g} rps"


def _consequences(answers: Answers, queue: str) -> list[str]:
    prompt, output = _tokens(answers)
    seconds = 1.0 + output * HOSTED_TPOT_S
    streams = answers.peak_rps * seconds
    out = [f"Open streams at peak (Little's law): {answers.peak_rps:g} rps x ~{seconds:.0f} s per answer "
           f"(first token + {output} tokens at ~{HOSTED_TPOT_S * 1000:.0f} ms each) = ~{streams:,.0f} concurrent "
           "connections; the async API holds them without a thread each."]
    if queue != "none":
        out.append(f"Jobs outlive requests: the {queue} worker retries with backoff and dead-letters after the "
                   "configured attempts; callers poll or get a webhook instead of holding a connection.")
    else:
        out.append("No worker to operate; a long job added later needs task_queue=arq or celery.")
    return out
