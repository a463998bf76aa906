"""Staged plans: a halted run's plan, kept until an admin approves or rejects it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    # Matches store.models.UtcDateTime, whose storage type is a timezone-aware DateTime.
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "staged_plans",
        sa.Column("run_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("directory", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _when("created_at", nullable=False),
        sa.Column("safety_limit", sa.String(length=50), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        _json("operations"),
        _json("deactivations"),
        _json("removals"),
        _when("decided_at"),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"], name=op.f("fk_staged_plans_run_id_sync_runs")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_staged_plans")),
    )
    op.create_index(op.f("ix_staged_plans_directory_status"), "staged_plans", ["directory", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staged_plans_directory_status"), table_name="staged_plans")
    op.drop_table("staged_plans")
