"""Events name the user and group they are about (by key), indexed for per-object history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Earlier events get keys from their target where the target is the object itself (user,
group and invite events; the group of a membership event), lower-cased by the database
(the product's key also folds width and compatibility forms, which older ASCII targets
do not need); a membership event's user is in its JSON values only, so such older events
are found by their group.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_events") as batch:
        batch.add_column(sa.Column("user_key", sa.String(), nullable=True))
        batch.add_column(sa.Column("group_key", sa.String(), nullable=True))
    op.execute("UPDATE sync_events SET user_key = lower(trim(target)) WHERE kind IN ('user', 'invite')")
    op.execute("UPDATE sync_events SET group_key = lower(trim(target)) WHERE kind IN ('group', 'membership')")
    op.create_index(op.f("ix_sync_events_user_key_id"), "sync_events", ["user_key", "id"])
    op.create_index(op.f("ix_sync_events_group_key_id"), "sync_events", ["group_key", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_events_group_key_id"), table_name="sync_events")
    op.drop_index(op.f("ix_sync_events_user_key_id"), table_name="sync_events")
    with op.batch_alter_table("sync_events") as batch:
        batch.drop_column("group_key")
        batch.drop_column("user_key")
