"""Criterion 6, don't build what you can plug in: a thin gateway over the vendors' own HTTP APIs."""

from __future__ import annotations

from ..blueprint import Decision, GatewayPlan
from ..questions import Answers
from .latency import TimeoutPlan, timeout_plan

# use_case=agents: which agent library, measured against the lean-dependency budget (2026-12, over the
# default chat project's dependencies: `pip install --dry-run --report`, distributions added).
AGENT_LOOP = "; agents run in a small tool loop over this gateway, with MCP servers through the official mcp SDK"
WHY_AGENT_LOOP = (" Every model call of an agent goes through the same gateway, so it is routed, metered and "
                  "recorded like any request; the loop itself is about 250 lines. The mcp SDK (+16 distributions, "
                  "imported only by runs that use an MCP server) is plugged in, not rewritten: the protocol is "
                  "not ours to hand-write.")
REJECTED_AGENT_LIBRARIES = [
    "OpenAI Agents SDK: +22 distributions (the openai SDK and mcp among them), and it reaches models through "
    "an OpenAI client over HTTP, so in-process metering and provenance would need an adapter",
    "Pydantic AI (slim, openai + mcp): +42 distributions (fastmcp, tiktoken, rich, logfire-api ...) for a "
    "loop this project keeps in one file",
]


def gateway_plan(answers: Answers, timeouts: TimeoutPlan | None = None) -> GatewayPlan:
    providers = list(answers.providers)
    plan = timeouts or timeout_plan(answers)
    return GatewayPlan(
        providers=providers,
        fallback=providers if len(providers) > 1 else [],
        retries=plan.retries,
        timeout_s=plan.timeout_s,
        ttft_p95_s=plan.ttft_p95_s,
        worst_case_s=plan.worst_case_s,
    )


def decide(answers: Answers) -> Decision:
    plan = gateway_plan(answers)
    fallback = (
        f"ordered fallback {' -> '.join(plan.fallback)} on 429, 5xx and timeouts, with a circuit breaker per provider"
        if plan.fallback
        else f"a single provider ({plan.providers[0]}) with bounded retries and a circuit breaker"
    )
    agents = answers.use_case == "agents"
    return Decision(
        criterion="plug-in",
        decision=f"An in-process gateway speaking each vendor's HTTP API: {fallback}" + (AGENT_LOOP if agents else ""),
        reason="Providers fail and rate-limit; plugging several in behind one OpenAI-compatible API keeps the "
        "product up and lets you swap models. In-process costs no extra hop, unlike a proxy service."
        + (WHY_AGENT_LOOP if agents else ""),
        context=f"providers={','.join(answers.providers)}, latency_budget_ms={answers.latency_budget_ms}",
        consequences=[
            f"Worst case before the user sees an error: {plan.worst_case_s:g} s ({len(plan.providers)} provider(s) "
            f"x {1 + plan.retries} attempt(s) x {plan.timeout_s:g} s + backoff), inside the "
            f"{answers.latency_budget_ms / 1000:g} s budget.",
            "A provider that fails 5 times in a row is skipped for 30 s (circuit breaker), so an outage costs "
            "one timeout per request, not one per attempt.",
            "Adding a provider is one settings entry and its API key; removing one is deleting it from the list.",
        ],
        rejected=[
            "LiteLLM proxy: an extra network hop (measured in bench/), ~100 dependencies, and a supply-chain "
            "incident in 1.82.7/1.82.8",
            "each vendor SDK: four SDKs and their transitive dependencies for what is one HTTP call each",
            *(REJECTED_AGENT_LIBRARIES if agents else []),
        ],
    )
