"""SCIM bookkeeping that is not users, groups or memberships: the directories' bearer
tokens (hashes only). Functions work in the caller's session and do not commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.models import ScimToken


def get_token(session: Session, directory: str) -> ScimToken | None:
    """The current token row of `directory`, if it has one."""
    return session.get(ScimToken, directory)


def find_token(session: Session, token_hash: str) -> ScimToken | None:
    """The token row whose digest is `token_hash` (an indexed lookup by digest)."""
    return session.scalars(select(ScimToken).where(ScimToken.token_hash == token_hash)).one_or_none()


def replace_token(session: Session, directory: str, token_hash: str, *, created_at: datetime,
                  expires_at: datetime) -> ScimToken:
    """Make `token_hash` the only token of `directory`: the previous one stops working
    when this commits."""
    session.execute(delete(ScimToken).where(ScimToken.directory == directory))
    row = ScimToken(directory=directory, token_hash=token_hash, created_at=created_at, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row
