"""The operator console: its admins (password hashes only), their sessions (digests of
the session ids only), failed sign-ins (the shared rate limit), and who asked for a run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        _when("last_login_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_admins")),
        sa.UniqueConstraint("email_key", name=op.f("uq_console_admins_email_key")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        sa.ForeignKeyConstraint(["admin_id"], ["console_admins.id"],
                                name=op.f("fk_console_sessions_admin_id_console_admins")),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_admin_id"), "console_sessions", ["admin_id"])
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])
    op.create_table(
        "console_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        _when("at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_failures")),
    )
    op.create_index(op.f("ix_console_login_failures_key_at"), "console_login_failures", ["key", "at"])
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("actor")
    op.drop_index(op.f("ix_console_login_failures_key_at"), table_name="console_login_failures")
    op.drop_table("console_login_failures")
    op.drop_index(op.f("ix_console_sessions_expires_at"), table_name="console_sessions")
    op.drop_index(op.f("ix_console_sessions_admin_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_admins")
