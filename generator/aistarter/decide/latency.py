"""Criterion 2, latency is UX: stream the first token, and never let a retry blow the budget.

The gateway tries each provider in order; each provider gets 1 + retries attempts, each cut off at timeout_s
before its first chunk, with a jittered backoff of at most min(2, 0.1 x 2^k) s before retry k. So the worst case
is providers x ((1 + retries) x timeout_s + sum of backoffs), and the plan keeps it inside the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import catalog
from ..blueprint import Decision
from ..questions import Answers
from .workload import resolve_streaming

MAX_RETRIES = 2
TIMEOUT_MARGIN = 1.5  # an attempt may run 1.5x the provider's p95 first-token time before it counts as hung
LOCAL_P95_OVER_MEDIAN = 2.0  # queueing behind a full batch roughly doubles the loaded first-token time at p95


def backoff_max_s(retry: int) -> float:
    return min(2.0, 0.1 * 2**retry)


def provider_ttft_p95_s(provider: str, local_ttft_s: float | None) -> float:
    if provider == "local":
        return (local_ttft_s or 0.5) * LOCAL_P95_OVER_MEDIAN
    small = next(h for h in catalog.hosted_models() if h.provider == provider and h.size_class == "small")
    return small.ttft_p95_ms / 1000


def worst_case_s(providers: int, retries: int, timeout_s: float) -> float:
    return providers * ((1 + retries) * timeout_s + sum(backoff_max_s(k) for k in range(1, retries + 1)))


@dataclass(frozen=True)
class TimeoutPlan:
    timeout_s: float
    retries: int
    ttft_p95_s: float
    worst_case_s: float
    fits: bool  # False: the budget is shorter than one first-token p95 per provider
    per_provider: tuple[tuple[str, float], ...] = ()


def timeout_plan(answers: Answers, local_ttft_s: float | None = None) -> TimeoutPlan:
    budget = answers.latency_budget_ms / 1000
    n = len(answers.providers)
    per = tuple((p, round(provider_ttft_p95_s(p, local_ttft_s), 3)) for p in answers.providers)
    need = max(t for _, t in per)
    if n * need > budget:
        # Not even one attempt per provider fits: cut attempts so the chain still ends inside the budget.
        timeout = math.floor(budget / n * 1000) / 1000
        return TimeoutPlan(timeout, 0, round(need, 3), round(worst_case_s(n, 0, timeout), 3), False, per)
    retries = max(r for r in range(MAX_RETRIES + 1) if r == 0 or worst_case_s(n, r, need) <= budget)
    # spend what is left of the budget on patience, up to the margin over p95
    backoffs = n * sum(backoff_max_s(k) for k in range(1, retries + 1))
    stretch = (budget - backoffs) / (n * (1 + retries))
    timeout = math.floor(min(need * TIMEOUT_MARGIN, stretch) * 1000) / 1000
    return TimeoutPlan(timeout, retries, round(need, 3), round(worst_case_s(n, retries, timeout), 3), True, per)


def retries_for(latency_budget_ms: int) -> int:
    """The first engine's rule, kept for callers: the plan for one hosted provider at this budget."""
    return timeout_plan(Answers(latency_budget_ms=latency_budget_ms)).retries


def first_token_timeout_s(latency_budget_ms: int) -> float:
    return timeout_plan(Answers(latency_budget_ms=latency_budget_ms)).timeout_s


def decide(answers: Answers, plan: TimeoutPlan | None = None) -> Decision:
    streaming = resolve_streaming(answers)
    plan = plan or timeout_plan(answers)
    shown = {
        "sse": "Server-Sent Events in OpenAI chunk format, so every OpenAI SDK streams unchanged",
        "websocket": "WebSocket at /v1/chat/ws plus SSE, with identical chunk payloads",
        "none": "whole responses (no streaming)",
    }[streaming]
    budget = answers.latency_budget_ms
    n = len(answers.providers)
    backoffs = " + ".join(f"{backoff_max_s(k):g}" for k in range(1, plan.retries + 1)) or "0"
    worst = (f"worst case {n} provider(s) x ((1 + {plan.retries}) x {plan.timeout_s:g} s + backoff {backoffs} s) = "
             f"{plan.worst_case_s:g} s, inside the {budget / 1000:g} s budget")
    if not plan.fits:
        worst = (f"the slowest provider's first-token p95 is {plan.ttft_p95_s:g} s, and {n} x that exceeds the "
                 f"{budget / 1000:g} s budget: each attempt is cut at {plan.timeout_s:g} s with no retry so the "
                 f"chain still ends at {plan.worst_case_s:g} s, but expect timeouts (see the feasibility warning)")
    return Decision(
        criterion="latency",
        decision=f"{shown}; first-token timeout {plan.timeout_s:g} s per attempt, {plan.retries} retries per "
        f"provider, never after the first chunk; {worst}",
        reason=f"Users accept {budget} ms to the first token. Streaming makes the wait visible progress. The "
        f"timeout is the providers' first-token p95 ({plan.ttft_p95_s:g} s, the slowest of "
        f"{', '.join(answers.providers)}) x {TIMEOUT_MARGIN} where the budget allows, and a retry is planned only "
        "when every attempt of every provider, with its longest backoff, still fits the budget. Retrying after the "
        "first chunk would duplicate text on screen.",
        context=f"streaming={answers.streaming}, latency_budget_ms={budget}, use_case={answers.use_case}, "
        f"providers={','.join(answers.providers)}; first-token p95 per provider: "
        + ", ".join(f"{p} {t:g} s" for p, t in plan.per_provider),
        rejected=[
            "long polling: every poll adds a round trip to time-to-first-token",
            f"a timeout equal to the whole budget ({budget / 1000:g} s) per attempt: with "
            f"{n} provider(s) and retries the worst case would reach "
            f"{worst_case_s(n, MAX_RETRIES, budget / 1000):g} s, "
            f"{worst_case_s(n, MAX_RETRIES, budget / 1000) / (budget / 1000):.1f}x the budget",
            "uvicorn without uvloop and httptools, and no sniffio: 14% more CPU per stream (paired runs, 16 "
            "concurrent streams; httpcore pays a failed import of sniffio on every pool lock)",
            "one upstream connection pool per provider: httpcore's pool bookkeeping is quadratic in its size, 15 ms "
            "CPU per stream at 64 concurrent streams against 7 ms with small pools",
            "HTTP/2 to providers that speak it (httpx with h2): the client's CPU per stream over TLS 3.26 against "
            "3.12 ms at 16 streams and 2.38 against 2.67 ms at 64 (`python -m bench upstream`), for three more "
            "pure-Python distributions; pooled HTTP/1.1 already opens no new connection per request",
        ],
        consequences=[
            f"the gateway costs about {catalog.GATEWAY_CPU_MS_PER_STREAM:g} ms of CPU per stream on one core "
            "(`python -m bench gateway`, bench/RESULTS.md): streams that arrive together wait for each other on "
            "the event loop, so the scaling decision sizes replicas by it",
            "upstream connections are pooled and kept alive (below uvicorn's 5 s keep-alive), across requests and "
            "retries: a request to a provider pays no new TCP or TLS handshake",
            "three small runtime dependencies (uvloop, httptools, sniffio) buy the CPU above",
        ],
    )
