"""Usage metering: one row per request and tenant, written in the same transaction as the interaction
record (and, with Stripe, the outbox event), before the client sees the end of the answer.

Idempotency: the row's key is derived from (tenant, request id). A client that retries with the same
`X-Request-Id` (or `Idempotency-Key`) header hits the unique constraint and is never counted twice.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert as generic_insert
from sqlalchemy.orm import Session

from app.db.models import OutboxEvent, {% if cookiecutter.usage_billing == 'stripe' %}Tenant, {% endif %}UsageRecord

MILLION = Decimal(1_000_000)


def idempotency_key(tenant: str, request_id: str) -> str:
    return "usage_" + hashlib.sha256(f"{tenant}\x00{request_id}".encode()).hexdigest()[:40]


def price(prices: dict[str, tuple[float, float]], model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    """Estimated cost in USD, or None when the model has no price (unknown is not free)."""
    rates = prices.get(model)
    if rates is None:
        rates = next((r for pattern, r in prices.items() if fnmatch.fnmatchcase(model, pattern)), None)
    if rates is None:
        return None
    return (Decimal(str(rates[0])) * input_tokens + Decimal(str(rates[1])) * output_tokens) / MILLION


@dataclass(frozen=True)
class Usage:
    request_id: str
    interaction_id: str
    tenant: str
    api_key_id: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    status: str
    created_at: datetime


def _insert_ignoring_duplicates(session: Session, table: Any, values: dict[str, Any], key: list[str]) -> bool:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - other databases fall back to the constraint error
        return bool(session.execute(generic_insert(table).values(**values)).rowcount)
    result = session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=key))
    return bool(result.rowcount)


def record(session: Session, usage: Usage, prices: dict[str, tuple[float, float]]{% if cookiecutter.usage_billing == 'stripe' %}, *, meter_event_name: str{% endif %}) -> bool:
    """Add the usage row (and its outbox event) to the caller's transaction; False if already recorded."""
    key = idempotency_key(usage.tenant, usage.request_id)
    cost = price(prices, usage.model, usage.input_tokens, usage.output_tokens)
    inserted = _insert_ignoring_duplicates(session, UsageRecord, {
        "idempotency_key": key, "request_id": usage.request_id, "interaction_id": usage.interaction_id,
        "tenant_id": usage.tenant, "api_key_id": usage.api_key_id, "provider": usage.provider, "model": usage.model,
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "estimated": usage.estimated,
        "cost_usd": cost, "status": usage.status, "created_at": usage.created_at,
    }, ["idempotency_key"])
{%- if cookiecutter.usage_billing == 'stripe' %}
    if inserted:
        tenant = session.get(Tenant, usage.tenant)
        _insert_ignoring_duplicates(session, OutboxEvent, {
            "kind": "stripe.meter_event", "idempotency_key": key, "tenant_id": usage.tenant,
            "payload": {
                "event_name": meter_event_name,
                # Resolved at delivery if the tenant gets a Stripe customer later.
                "stripe_customer_id": tenant.stripe_customer_id if tenant else None,
                "value": usage.input_tokens + usage.output_tokens,
                "timestamp": int(usage.created_at.timestamp()),
            },
            "created_at": usage.created_at, "attempts": 0,
        }, ["kind", "idempotency_key"])
{%- else %}
    _ = OutboxEvent  # the outbox table exists for exporters (usage_billing=stripe generates one)
{%- endif %}
    return inserted
