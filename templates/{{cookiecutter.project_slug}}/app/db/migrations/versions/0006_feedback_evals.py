"""The iteration loop: feedback on interactions, eval runs and results, and two provenance columns
(the trace id and the retrieved chunks' text) that the playground shows under each answer.

Revision ID: 0006_feedback_evals
Revises: 0001_initial
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_feedback_evals"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("iteration",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "interaction_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("interaction_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_interaction_feedback_interaction_id", "interaction_feedback", ["interaction_id"])
    op.create_index("ix_feedback_tenant_created", "interaction_feedback", ["tenant_id", "created_at"])
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("dataset", sa.String(512), nullable=False),
        sa.Column("dataset_sha256", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )
    op.create_table(
        "eval_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("interaction_id", sa.String(32)),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_eval_results_run_id", "eval_results", ["run_id"])
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(32)))
        batch.add_column(sa.Column("retrieved_chunks", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("retrieved_chunks")
        batch.drop_column("trace_id")
    op.drop_index("ix_eval_results_run_id", table_name="eval_results")
    op.drop_table("eval_results")
    op.drop_table("eval_runs")
    op.drop_index("ix_feedback_tenant_created", table_name="interaction_feedback")
    op.drop_index("ix_interaction_feedback_interaction_id", table_name="interaction_feedback")
    op.drop_table("interaction_feedback")
