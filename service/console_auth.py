"""Who may use the operator console: admins, passwords, sessions, CSRF tokens, and the
sign-in rate limit. No HTTP here: `web.console.auth` turns these into cookies and pages.

- Passwords are kept as a slow salted hash (scrypt, N=2^15, r=8, p=1), never in clear.
- A session id is 256 random bits; the store keeps only its SHA-256 digest, so a copy of
  the database signs nobody in. Sessions end `SESSION_HOURS` after sign-in, or at sign-out,
  or when the admin's password changes.
- The CSRF token of a session is an HMAC of a fixed label keyed by the session id: only the
  holder of the cookie can know it, and nothing more is stored.
- Failed sign-ins are stored (so every server process shares the limit) and counted per
  email and per client address over `WINDOW`; past `MAX_FAILURES_PER_EMAIL` or
  `MAX_FAILURES_PER_ADDRESS` sign-in is refused until the window has moved on, whatever the
  password.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from reconcile import clock
from reconcile.rules import Violation, check_email, email_key
from store import Store
from store import console as db

SESSION_HOURS = 8
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD_LENGTH = 12

_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024
_CSRF_LABEL = b"dirsync-console-csrf"


class InvalidEmail(ValueError):
    """Not an email address an admin can sign in with."""


class WeakPassword(ValueError):
    """A password too short to set."""


class SignInRefused(Exception):
    """Sign-in did not happen: a wrong email or password (one message for both, so it
    tells nobody which emails are admins), or too many failures (`retry_after` seconds)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Admin:
    id: int
    email: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: `session_id` goes into the cookie and nowhere else."""

    admin: Admin
    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AdminSet:
    email: str
    created: bool


def valid_email(raw: str) -> str:
    """The trimmed email, or `InvalidEmail` saying why it is not one (R1's rules)."""
    checked = check_email(raw)
    if isinstance(checked, Violation):
        raise InvalidEmail(checked.detail)
    return checked


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=_MAXMEM, dklen=32, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                               p=int(p), maxmem=_MAXMEM, dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the email is no admin's, so a wrong email takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def set_admin(store: Store, email: str, password: str) -> AdminSet:
    """Make `email` a console admin with `password` (or change their password, which
    signs them out everywhere)."""
    address = valid_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    hashed = hash_password(password)
    with store.session(write=True) as session:
        _, created = db.put_admin(session, address, email_key(address), hashed)
    return AdminSet(address, created)


def sign_in(store: Store, email: str, password: str, address: str, *, now: datetime | None = None) -> SignedIn:
    """A new session for the admin `email` when `password` is theirs and neither the email
    nor the client `address` is over the failure limit; else `SignInRefused`."""
    at = now or clock.now()
    keys = [f"email:{email_key(email)}", f"address:{address}"]
    with store.session() as session:
        wait = _wait(session, keys, at)
        row = db.get_admin(session, email_key(email)) if email.strip() else None
        stored = row.password_hash if row is not None else _dummy_hash()
    if wait is not None:
        raise SignInRefused(f"too many failed sign-ins; try again in {_minutes(wait)}", retry_after=wait)
    if row is None or not verify_password(password, stored):
        with store.session(write=True) as session:
            db.drop_old_failures(session, at - WINDOW)  # the table stays small
            for key in keys:
                db.add_failure(session, key, at)
        raise SignInRefused("wrong email or password")
    session_id = secrets.token_urlsafe(32)
    expires = at + timedelta(hours=SESSION_HOURS)
    with store.session(write=True) as session:
        db.clear_failures(session, keys[0])
        db.drop_expired_sessions(session, at)
        db.add_session(session, session_digest(session_id), row.id, created_at=at, expires_at=expires)
        found = db.get_admin(session, row.email_key)
        if found is not None:
            found.last_login_at = at
    return SignedIn(Admin(row.id, row.email), session_id, expires)


def _wait(session: Session, keys: list[str], at: datetime) -> int | None:
    """Seconds until every key is under its limit again; None when none is over."""
    limits = (MAX_FAILURES_PER_EMAIL, MAX_FAILURES_PER_ADDRESS)
    since = at - WINDOW
    wait: int | None = None
    for key, limit in zip(keys, limits, strict=True):
        if db.count_failures(session, key, since) >= limit:
            oldest = db.oldest_failure(session, key, since)
            seconds = int(((oldest or at) + WINDOW - at).total_seconds()) + 1
            wait = max(wait or 0, seconds)
    return wait


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def admin_for(store: Store, session_id: str, *, now: datetime | None = None) -> Admin | None:
    """The admin signed in by `session_id`, while that session has not ended."""
    if not session_id:
        return None
    with store.session() as session:
        row = db.session_admin(session, session_digest(session_id), now or clock.now())
        return Admin(row.id, row.email) if row is not None else None


def sign_out(store: Store, session_id: str) -> None:
    with store.session(write=True) as session:
        db.drop_session(session, session_digest(session_id))


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of the session `session_id` (pure: derived, never stored)."""
    return hmac.new(session_id.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_ok(session_id: str, token: str | None) -> bool:
    return bool(token) and same_secret(csrf_token(session_id), str(token))


def same_secret(expected: str, sent: str) -> bool:
    """Constant-time equality of two texts (any characters: a form may send anything)."""
    return hmac.compare_digest(expected.encode("utf-8"), sent.encode("utf-8"))
