"""Criterion 2, latency is UX: stream the first token, and never let a retry blow the budget."""

from __future__ import annotations

from ..blueprint import Decision
from ..questions import Answers
from .workload import resolve_streaming


def retries_for(latency_budget_ms: int) -> int:
    # A second retry only fits when the budget can absorb a failed attempt plus backoff.
    return 1 if latency_budget_ms <= 2000 else 2


def first_token_timeout_s(latency_budget_ms: int) -> float:
    return float(min(120.0, max(1.0, round(latency_budget_ms / 1000, 1))))


def decide(answers: Answers) -> Decision:
    streaming = resolve_streaming(answers)
    shown = {
        "sse": "Server-Sent Events in OpenAI chunk format, so every OpenAI SDK streams unchanged",
        "websocket": "WebSocket at /v1/chat/ws plus SSE, with identical chunk payloads",
        "none": "whole responses (no streaming)",
    }[streaming]
    budget = answers.latency_budget_ms
    return Decision(
        criterion="latency",
        decision=f"{shown}; first-token timeout {first_token_timeout_s(budget)} s per attempt, "
        f"{retries_for(budget)} retries, never after the first chunk",
        reason=f"Users accept {budget} ms to the first token. Streaming makes the wait visible progress; "
        "a timeout sized to the budget moves to the next provider before the user gives up, and retrying after "
        "the first chunk would duplicate text on screen.",
        context=f"streaming={answers.streaming}, latency_budget_ms={budget}, use_case={answers.use_case}",
        rejected=[
            "long polling: every poll adds a round trip to time-to-first-token",
            "unbounded retries: a slow provider would be retried past the budget",
        ],
    )
