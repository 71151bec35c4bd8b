"""Criterion 7, ecosystem: vector memory, usage tracking for billing and tenant identity, ready to use."""

from __future__ import annotations

from .. import catalog
from ..blueprint import Decision
from ..questions import Answers
from .workload import resolve_vector_store

STORES = {
    "qdrant": "Qdrant (embedded local mode in dev, a Qdrant server through QDRANT_URL in production)",
    "pgvector": "PostgreSQL with pgvector, next to the app's own tables",
    "none": "no vector store",
}
BILLING = {
    "metering": "usage rows per key with idempotency keys, written through a transactional outbox",
    "stripe": "usage rows per key, drained from the outbox to Stripe meter events",
    "none": "no usage metering",
}


def decide(answers: Answers) -> Decision:
    store = resolve_vector_store(answers)
    auth = "hashed per-tenant API keys with a token-bucket rate limit" if answers.auth == "api_key" else "no auth"
    return Decision(
        criterion="ecosystem",
        decision=f"{STORES[store]}; {BILLING[answers.usage_billing]}; {auth}",
        reason="Memory, billing and identity are what every AI product needs on day one; shipping them wired "
        "and tested means launching in weeks, and billing on exact token counts is money, so it is never lost "
        "or double-counted.",
        context=f"use_case={answers.use_case}, vector_store={answers.vector_store}, "
        f"usage_billing={answers.usage_billing}, auth={answers.auth}, cloud={answers.cloud}",
        consequences=_consequences(answers, store),
        rejected=[
            "pgvector" if store == "qdrant" else "Qdrant: a second stateful service next to PostgreSQL",
            "a hosted vector DB: a network hop and a vendor before the first prototype",
            "counting tokens in logs: logs drop lines; billing needs transactional records",
        ],
    )


def _consequences(answers: Answers, store: str) -> list[str]:
    out = []
    db = catalog.services()["database"].get(answers.cloud)
    if db:
        holds = ", ".join(["interaction records", *(["usage"] if answers.usage_billing != "none" else []),
                           *(["vectors"] if store == "pgvector" else [])])
        out.append(f"A managed PostgreSQL ({db['tier']}, ${db['hourly_usd']}/h = ~${db['hourly_usd'] * 730:,.0f}/month "
                   f"compute, {db['as_of']}) holds {holds}; storage and backups are billed on top.")
    if answers.usage_billing != "none":
        out.append("Every request writes one usage row in the same transaction as its record: a crash never bills "
                   "twice or loses a billable call.")
    if store == "qdrant":
        out.append("Qdrant is a second stateful service: back up its volume alongside the database.")
    if answers.auth == "api_key":
        out.append("Keys are stored hashed: a lost key is revoked and reissued, never recovered.")
    return out or ["Nothing stateful beyond the app's own database."]
