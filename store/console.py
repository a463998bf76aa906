"""Console bookkeeping: admins, their sessions and failed sign-ins. Functions work in the
caller's session and do not commit. Secrets never reach these tables: admins keep a
password hash, sessions the digest of their id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.models import ConsoleAdmin, ConsoleSession, LoginFailure


def get_admin(session: Session, email_key: str) -> ConsoleAdmin | None:
    return session.scalars(select(ConsoleAdmin).where(ConsoleAdmin.email_key == email_key)).one_or_none()


def put_admin(session: Session, email: str, email_key: str, password_hash: str) -> tuple[ConsoleAdmin, bool]:
    """Create the admin or set their password hash; `(row, created)`. A changed password
    ends the admin's sessions."""
    row = get_admin(session, email_key)
    if row is None:
        row = ConsoleAdmin(email=email, email_key=email_key, password_hash=password_hash)
        session.add(row)
        session.flush()
        return row, True
    row.password_hash = password_hash
    session.execute(delete(ConsoleSession).where(ConsoleSession.admin_id == row.id))
    session.flush()
    return row, False


def add_session(session: Session, id_hash: str, admin_id: int, *, created_at: datetime, expires_at: datetime) -> None:
    session.add(ConsoleSession(id_hash=id_hash, admin_id=admin_id, created_at=created_at, expires_at=expires_at))
    session.flush()


def session_admin(session: Session, id_hash: str, now: datetime) -> ConsoleAdmin | None:
    """The admin whose unexpired session has digest `id_hash`."""
    query = (select(ConsoleAdmin).join(ConsoleSession, ConsoleSession.admin_id == ConsoleAdmin.id)
             .where(ConsoleSession.id_hash == id_hash, ConsoleSession.expires_at > now))
    return session.scalars(query).one_or_none()


def drop_session(session: Session, id_hash: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))


def drop_expired_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))


def count_failures(session: Session, key: str, since: datetime) -> int:
    query = select(func.count()).select_from(LoginFailure).where(LoginFailure.key == key, LoginFailure.at >= since)
    return int(session.execute(query).scalar() or 0)


def oldest_failure(session: Session, key: str, since: datetime) -> datetime | None:
    query = select(func.min(LoginFailure.at)).where(LoginFailure.key == key, LoginFailure.at >= since)
    found: datetime | None = session.execute(query).scalar()
    return found


def add_failure(session: Session, key: str, at: datetime) -> None:
    session.add(LoginFailure(key=key, at=at))
    session.flush()


def clear_failures(session: Session, key: str) -> None:
    """Forget `key`'s failed sign-ins (a successful sign-in)."""
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))


def drop_old_failures(session: Session, before: datetime) -> None:
    """Forget every failed sign-in before `before` (they no longer count)."""
    session.execute(delete(LoginFailure).where(LoginFailure.at < before))
