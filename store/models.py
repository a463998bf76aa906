"""The tables, as SQLAlchemy 2.0 typed declarative models.

Alembic owns the schema (`store/migrations`); these models describe the newest revision
and `tests/store/test_migrations.py` proves the two agree on SQLite and PostgreSQL.

Every datetime column is a `UtcDateTime`: callers write timezone-aware datetimes and always
read back timezone-aware UTC, on SQLite (which has no time zones) as on PostgreSQL.
Python-side defaults come from `reconcile.clock.now`, so frozen time reaches the store.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from reconcile import clock

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Naive datetimes are refused on the way in: a naive value has no defined instant, and
    storing it as if it were UTC hides bugs. SQLite keeps the UTC wall time; PostgreSQL a
    `timestamptz`. Reads are always `tzinfo=UTC`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonType}


class InviteStatus(str, enum.Enum):
    OPEN = "open"
    REVOKED = "revoked"
    ACCEPTED = "accepted"


class RunStatus(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HALTED = "halted"
    SKIPPED = "skipped"
    # Some operations failed or met a conflicting change: the rest applied, the next cycle
    # plans again.
    PARTIAL = "partial"
    # The directory was disabled (or re-enabled) while the cycle ran: it stopped writing.
    ABORTED = "aborted"


class RunMode(str, enum.Enum):
    FULL = "full"
    INCREMENTAL = "incremental"
    # Not a cycle: one action a person took on the directory (resume, reject a staged plan,
    # enable, disable, a new SCIM token), recorded as a run so the log shows it with its actor.
    ADMIN = "admin"


class Outcome(str, enum.Enum):
    """What happened to one operation (or rejection) of a plan."""

    APPLIED = "applied"
    NOOP = "noop"
    FAILED = "failed"
    STAGED = "staged"
    REJECTED = "rejected"
    # The row was not as the operation expected at write time (changed since planned,
    # owned by another directory, directory disabled, the admin group would be empty).
    CONFLICT = "conflict"


class StagedStatus(str, enum.Enum):
    """Where a staged plan stands: open until approved, rejected or superseded."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class Directory(Base):
    """One configured directory: its sync switch, watermark and health."""

    __tablename__ = "directories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    watermark: Mapped[str | None] = mapped_column(String, default=None)
    watermark_at: Mapped[datetime | None] = mapped_column(default=None)
    last_full_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String, default=None)
    auth_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by every enable and disable: a writer that started under another generation
    # stops writing (DESIGN §2a).
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class User(Base):
    """A local user. `email_key` (`reconcile.rules.email_key` of the email) makes email
    unique case-insensitively on every backend; `(managed_by, external_id)` binds it to an IdP."""

    __tablename__ = "users"
    # external_id alone: apply looks a new row's binding up by it (a SCIM request's one
    # create must not scan every user). (managed_by, active): the safety guard counts a
    # directory's users and active ones from the index (SQLite alone; PostgreSQL where it
    # can scan only the index), not from every row (0009).
    __table_args__ = (UniqueConstraint("managed_by", "external_id"), Index(None, "external_id"),
                      Index(None, "managed_by", "active"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String)
    email_key: Mapped[str] = mapped_column(String, unique=True)
    given_name: Mapped[str | None] = mapped_column(String, default=None)
    family_name: Mapped[str | None] = mapped_column(String, default=None)
    display_name: Mapped[str | None] = mapped_column(String, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    managed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    external_id: Mapped[str | None] = mapped_column(String, default=None)
    # The id a SCIM client knows the row by while a `kind = "scim"` directory binds it
    # (`external_id` is the client's own `externalId` when it sends one, so it cannot be
    # the SCIM id too); cleared with the binding, never reused.
    scim_id: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class Group(Base):
    """A local group; `name_key` (`reconcile.rules.name_key` of the name) makes names
    unique case-insensitively."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("managed_by", "external_id"), Index(None, "external_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    name_key: Mapped[str] = mapped_column(String, unique=True)
    managed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    external_id: Mapped[str | None] = mapped_column(String, default=None)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    scim_id: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)  # as on users
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class Membership(Base):
    __tablename__ = "memberships"
    # The primary key serves lookups by group; this index serves "groups of a user".
    __table_args__ = (Index(None, "user_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Invite(Base):
    __tablename__ = "invites"
    __table_args__ = (Index(None, "email_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String)
    email_key: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(20), default=InviteStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class SyncRun(Base):
    """One cycle (or dry run, or skipped attempt) of one directory."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index(None, "directory", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directory: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value)
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(String, default=None)
    allow_deactivations: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who asked for it, when a person did (a console admin's email); None for beat, tasks, SCIM.
    actor: Mapped[str | None] = mapped_column(String(320), default=None)


def _where_set(column: str) -> dict[str, Any]:
    """A partial index's condition: only rows where `column` is set (both backends)."""
    return {"sqlite_where": text(f"{column} IS NOT NULL"), "postgresql_where": text(f"{column} IS NOT NULL")}


class SyncEvent(Base):
    """One operation's or rejection's outcome. Local admin actions have no run."""

    __tablename__ = "sync_events"
    # The log is read newest first by `(at, id)` (the console's pages, `dirsync events`,
    # explain), whole or by object, action, outcome or reason: each in that order, so a
    # page neither sorts the table nor scans it for a rare value (migration 0008). Columns
    # most events leave empty are indexed only where set: cheaper to write.
    __table_args__ = (Index(None, "run_id", "seq"), Index(None, "at", "id"),
                      *(Index(None, column, "at", "id", **_where_set(column))
                        for column in ("user_key", "group_key", "reason")),
                      Index(None, "action", "at", "id"), Index(None, "outcome", "at", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"), default=None)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String, default=None)
    detail: Mapped[str | None] = mapped_column(String, default=None)
    old: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    new: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    # The email key of the user and the name key of the group the event is about.
    user_key: Mapped[str | None] = mapped_column(String, default=None)
    group_key: Mapped[str | None] = mapped_column(String, default=None)


class Lease(Base):
    """A named, expiring lock held by one holder (see `store.lease`)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


class StagedPlan(Base):
    """The plan of a run a safety limit halted (S2), kept until someone decides.

    `operations` are the serialised operations (see `store.staged`); `deactivations`
    (emails) and `removals` ({"group", "email"}) are what a person reads before deciding.
    `decided_run_id` is the run that applied it (approved) or replaced it (superseded).
    """

    __tablename__ = "staged_plans"
    __table_args__ = (Index(None, "directory", "status"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), primary_key=True, autoincrement=False)
    directory: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=StagedStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    safety_limit: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(String)
    operations: Mapped[list[Any]] = mapped_column(JsonType)
    deactivations: Mapped[list[Any]] = mapped_column(JsonType)
    removals: Mapped[list[Any]] = mapped_column(JsonType)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_run_id: Mapped[int | None] = mapped_column(Integer, default=None)


class ScimToken(Base):
    """The bearer token of a `kind = "scim"` directory: one at a time, stored as the
    SHA-256 digest of a 256-bit random token (the token itself is shown once, never kept).
    Regenerating replaces the row, so the old token stops working at once."""

    __tablename__ = "scim_tokens"

    directory: Mapped[str] = mapped_column(String(100), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsoleAdmin(Base):
    """Who may sign in to the operator console: an email (unique by `email_key`) and a
    slow salted password hash (`service.console_auth`); never the password."""

    __tablename__ = "console_admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsoleSession(Base):
    """A signed-in console session, stored server-side by the SHA-256 digest of its id
    (the id itself lives only in the admin's cookie)."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index(None, "admin_id"), Index(None, "expires_at"))

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("console_admins.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column()


class LoginFailure(Base):
    """One failed console sign-in, counted per email and per client address (`key`), so
    that every server process shares the rate limit."""

    __tablename__ = "console_login_failures"
    __table_args__ = (Index(None, "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(default=clock.now)


users = cast(Table, User.__table__)
groups = cast(Table, Group.__table__)
memberships = cast(Table, Membership.__table__)
invites = cast(Table, Invite.__table__)
directories = cast(Table, Directory.__table__)
sync_runs = cast(Table, SyncRun.__table__)
sync_events = cast(Table, SyncEvent.__table__)
leases = cast(Table, Lease.__table__)
staged_plans = cast(Table, StagedPlan.__table__)
scim_tokens = cast(Table, ScimToken.__table__)
