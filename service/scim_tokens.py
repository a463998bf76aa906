"""The bearer token of a `kind = "scim"` directory: issued once, stored as a hash.

A token is `dsync_scim_` + 256 random bits (base64url). Only its SHA-256 digest is
stored; a request's token is looked up by digest and compared in constant time. A token
is valid `token_days` after it is issued; regenerating replaces it (the old one is
refused at once). Issuing the first token enables the directory, which revokes open
invites (R8).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from config import ConfigError, ScimDirectorySettings, Settings
from reconcile import clock
from reconcile.admin import Refused
from reconcile.apply import apply
from reconcile.model import Plan
from reconcile.plan import revoke_invites
from service.audit import Audit, record
from store import Store, ensure_directory, load_local_state, set_enabled
from store.push import reading, token_holder
from store.scim import get_token, replace_token

TOKEN_PREFIX = "dsync_scim_"
# `status` warns this many days before a token expires.
WARN_DAYS = (30, 7, 1)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as shown once to the admin who created it."""

    directory: str
    base_url: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What `status` says about a directory's token (never the token)."""

    directory: str
    created_at: datetime | None
    expires_at: datetime | None
    warning: str | None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scim_directory(settings: Settings, name: str) -> ScimDirectorySettings:
    """The settings of scim directory `name`; `ConfigError` for any other name."""
    directory = settings.directory(name)
    if not isinstance(directory, ScimDirectorySettings):
        raise ConfigError(f"directories.{name}: kind {directory.kind!r} has no SCIM token (only kind \"scim\")")
    return directory


def issue_token(settings: Settings, store: Store, name: str, *, regenerate: bool = False,
                audit: Audit | None = None) -> IssuedToken:
    """Create `name`'s token (or with `regenerate` replace it) and return it, the only time
    it is ever visible. Refused (`token-exists`) when one exists and `regenerate` is not
    set. Enables the directory when it was not (R8: open invites are revoked). Recorded
    for `audit` (`service.audit`; the token never is)."""
    directory = scim_directory(settings, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + timedelta(days=directory.token_days)
    with store.session(write=True) as session:
        if get_token(session, name) is not None and not regenerate:
            raise Refused("token-exists", "a token exists; use --regenerate (the old one cannot be shown again)")
        row = ensure_directory(session, name, directory.kind)
        enabling = not row.enabled or get_token(session, name) is None
        if enabling and not row.enabled:
            set_enabled(session, name, True)
        replaced = get_token(session, name) is not None
        replace_token(session, name, token_digest(token), created_at=now, expires_at=expires)
        local = load_local_state(session) if enabling else None
    revoked = revoke_invites(local) if local is not None else []
    run_id = record(store, audit, name, "regenerate-scim-token" if replaced else "issue-scim-token",
                    f"{'new SCIM token; the previous one is refused from now on' if replaced else 'SCIM token issued'};"
                    f" expires {expires:%Y-%m-%d %H:%M} UTC" + (f"; {len(revoked)} open invites revoked" if revoked else ""))
    if revoked:
        apply(store, Plan(name, tuple(revoked)), run_id=run_id, directory=name)
    return IssuedToken(name, settings.web.scim_base_url(name), token, expires)


def authenticate(store: Store, name: str, token: str, now: datetime | None = None) -> bool:
    """Whether `token` opens directory `name` now: it is that directory's current token,
    not expired, and the directory is enabled (`dirsync disable` refuses its token)."""
    if not token.startswith(TOKEN_PREFIX):
        return False
    digest = token_digest(token)
    with reading(store) as conn:
        found = token_holder(conn, digest)
    if found is None:
        return False
    stored, directory, expires_at, enabled = found
    return hmac.compare_digest(stored, digest) and directory == name and expires_at > (now or clock.now()) and enabled


def token_status(store: Store, name: str, now: datetime | None = None) -> TokenStatus:
    """`name`'s token dates and the warning `status` shows (expired, or 30, 7, 1 days left)."""
    with store.session() as session:
        row = get_token(session, name)
    if row is None:
        return TokenStatus(name, None, None, f"no SCIM token: run `dirsync scim token {name}`")
    return TokenStatus(name, row.created_at, row.expires_at, expiry_warning(name, row.expires_at, now or clock.now()))


def expiry_warning(name: str, expires_at: datetime, now: datetime) -> str | None:
    """Pure: the warning for a token expiring at `expires_at`, seen at `now`."""
    left = expires_at - now
    if left <= timedelta(0):
        return f"SCIM token expired {expires_at:%Y-%m-%d}: run `dirsync scim token {name} --regenerate`"
    for days in sorted(WARN_DAYS):
        if left <= timedelta(days=days):
            return (f"SCIM token expires within {days} day{'s' if days > 1 else ''} ({expires_at:%Y-%m-%d %H:%M} UTC):"
                    f" run `dirsync scim token {name} --regenerate` and paste the new token into the IdP")
    return None
