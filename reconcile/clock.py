"""The one clock: every "now" outside the pure core comes from here (freezegun patches it)."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
