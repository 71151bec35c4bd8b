"""Idempotency keys: a request id bound to its body hash and its stored answer; seeded key prefixes trimmed.

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
    # Keys seeded from AISTARTER_API_KEYS used to keep 12 of their (at least 16) characters in `prefix`:
    # trim them to what app.auth.keys.seeded_prefix shows now.
    op.execute("UPDATE api_keys SET prefix = substr(prefix, 1, 3) || '...' WHERE name = 'from AISTARTER_API_KEYS'")


def downgrade() -> None:
    op.drop_table("idempotency_keys")
