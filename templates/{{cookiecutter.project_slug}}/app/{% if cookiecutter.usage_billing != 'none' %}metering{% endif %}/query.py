"""GET /v1/usage aggregation for one tenant."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select

from app.db.base import session_scope
from app.db.models import UsageRecord

GroupBy = Literal["key", "model", "day"]


def summarize(tenant: str, start: datetime, end: datetime, group_by: GroupBy) -> list[dict[str, Any]]:
    column = {
        "key": UsageRecord.api_key_id,
        "model": UsageRecord.model,
        # date() exists in both SQLite and PostgreSQL; SQLite returns text, PostgreSQL a date.
        "day": func.date(UsageRecord.created_at),
    }[group_by]
    stmt = (
        select(column.label("group"), func.count().label("requests"),
               func.coalesce(func.sum(UsageRecord.input_tokens), 0),
               func.coalesce(func.sum(UsageRecord.output_tokens), 0),
               func.sum(UsageRecord.cost_usd), func.count(UsageRecord.cost_usd))
        .where(UsageRecord.tenant_id == tenant, UsageRecord.created_at >= start, UsageRecord.created_at < end)
        .group_by(column).order_by(column)
    )
    with session_scope() as session:
        rows = session.execute(stmt).all()
    out = []
    for group, requests, input_tokens, output_tokens, cost, priced in rows:
        out.append({
            group_by: str(group) if group is not None else None,
            "requests": requests,
            "input_tokens": int(input_tokens),
            "output_tokens": int(output_tokens),
            "cost_usd": float(Decimal(cost)) if cost is not None else None,
            # Requests whose model has no price are excluded from cost_usd; this says how many were.
            "unpriced_requests": requests - priced,
        })
    return out
