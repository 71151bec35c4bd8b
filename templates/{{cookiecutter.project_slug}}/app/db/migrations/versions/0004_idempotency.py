"""Idempotency keys (a request id bound to its body hash and stored answer), the outbox's retry schedule,
lease and dead letter, and seeded key prefixes trimmed.

Revision ID: 0004_idempotency
Revises: 0001_initial
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_idempotency"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("idempotency",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    # The outbox's retry schedule, delivery lease (one replica delivers an event at a time) and dead letter.
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("next_attempt_at", TS))
        batch.add_column(sa.Column("lease_until", TS))
        batch.add_column(sa.Column("dead_at", TS))
    # Keys seeded from AISTARTER_API_KEYS used to keep 12 of their (at least 16) characters in `prefix`:
    # trim them to what app.auth.keys.seeded_prefix shows now.
    op.execute("UPDATE api_keys SET prefix = substr(prefix, 1, 3) || '...' WHERE name = 'from AISTARTER_API_KEYS'")


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        for column in ("dead_at", "lease_until", "next_attempt_at"):
            batch.drop_column(column)
    op.drop_table("idempotency_keys")
