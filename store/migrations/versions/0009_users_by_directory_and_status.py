"""Count a directory's users and active ones from an index: `users (managed_by, active)`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

The safety guard (S2) counts the directory's bound users and the active ones before it
judges a plan that deactivates or removes anything: most cycles that change something.
With only the `(managed_by, external_id)` index that count reads every row of the
directory's users for their `active` flag (0.16 s of a 1 % change cycle at 100,000 users
on SQLite, a sixth of the cycle); this index answers it without reading a row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_users_managed_by_active"


def upgrade() -> None:
    op.create_index(op.f(_NAME), "users", ["managed_by", "active"])


def downgrade() -> None:
    op.drop_index(op.f(_NAME), table_name="users")
