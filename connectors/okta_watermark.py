"""Where an Okta read left off: the watermark the engine stores for an `okta` directory.

It is this module's JSON: the connector's scope, when the last full read happened (our
clock), the server's time at the start of the last read (Okta's clock), the System Log
cursor, and the latest membership event any poll has returned (`connectors.okta_log`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Watermark", "okta_time"]

# 2: the log cursor follows membership events too; a version-1 cursor does not, so its
# watermark is unreadable and the next read is a full one.
WATERMARK_VERSION = 2


def okta_time(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Watermark:
    """Where the last read left off. `since` is Okta's clock; `full_at` is ours."""

    scope: str
    full_at: datetime
    since: datetime
    log_cursor: str  # path and query of the System Log `next` link
    # The latest `published` of a membership event any poll has returned (`okta_log`).
    seen: datetime | None = None

    def dump(self) -> str:
        return json.dumps({
            "v": WATERMARK_VERSION,
            "scope": self.scope,
            "full_at": self.full_at.isoformat(),
            "since": okta_time(self.since),
            "log": self.log_cursor,
            "seen": okta_time(self.seen) if self.seen is not None else None,
        }, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Watermark | None:
        """The watermark in `text`, or None when it is missing or not one of ours."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if data.get("v") != WATERMARK_VERSION or not str(data["log"]).startswith("/api/v1/logs"):
                return None
            full_at, since = datetime.fromisoformat(data["full_at"]), _parse_time(data["since"])
            seen = _parse_time(data["seen"]) if data.get("seen") is not None else None
            if full_at.tzinfo is None or since.tzinfo is None or (seen is not None and seen.tzinfo is None):
                return None
            return cls(str(data["scope"]), full_at, since, str(data["log"]), seen)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
