"""SCIM push: each scim directory's bearer token (a hash only), and the SCIM id of the
users and groups a scim directory binds.

`scim_id` is a column of its own because `external_id` (the binding) holds the IdP's own
`externalId` when it sends one (so that `export` shows the IdP's identifier), while the
SCIM protocol needs an id that dirsync issues, never changes and never reuses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("directory", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("last_used_at"),
        sa.PrimaryKeyConstraint("directory", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    for table in ("users", "groups"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("scim_id", sa.String(length=64), nullable=True))
            batch.create_unique_constraint(op.f(f"uq_{table}_scim_id"), ["scim_id"])
        op.create_index(op.f(f"ix_{table}_external_id"), table, ["external_id"])


def downgrade() -> None:
    for table in ("users", "groups"):
        op.drop_index(op.f(f"ix_{table}_external_id"), table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"uq_{table}_scim_id"), type_="unique")
            batch.drop_column("scim_id")
    op.drop_table("scim_tokens")
