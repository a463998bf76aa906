"""The Entra connector's watermark: its own JSON, stored by the engine as it is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WATERMARK_VERSION = 1
# Graph's clock (which stamps `createdDateTime`) and ours may differ: a user counts as
# created after a read only when Graph's stamp is this much later than our clock said when
# the read ended. Five minutes, like Okta's overlap and the clock skew Entra itself
# tolerates on signed assertions; an NTP-synced host is within a second.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Watermark:
    """What an incremental read needs: both delta links, their age, and the scope seen.

    `group_members` holds, for assigned scope only, the direct user members of each
    assigned group, so that membership changes can move users in and out of scope.
    `links_at` is when the read that issued the links had them both (our clock); None in a
    watermark written before it was kept.
    """

    users_link: str
    groups_link: str
    issued_at: datetime
    full_at: datetime
    email_source: str
    service_principal_id: str | None = None
    assigned_users: frozenset[str] = frozenset()
    group_members: dict[str, frozenset[str]] = field(default_factory=dict)
    links_at: datetime | None = None

    def scope(self) -> set[str]:
        users = set(self.assigned_users)
        for members in self.group_members.values():
            users |= members
        return users

    def created_after(self) -> datetime | None:
        """Users Graph created after this time came after both links were issued, so every
        membership they hold is a change the links' next round reports; None: unknown."""
        return self.links_at + CLOCK_MARGIN if self.links_at is not None else None

    def dump(self) -> str:
        data: dict[str, object] = {
            "v": WATERMARK_VERSION, "users": self.users_link, "groups": self.groups_link,
            "issued_at": self.issued_at.isoformat(), "full_at": self.full_at.isoformat(),
            "email_source": self.email_source, "sp": self.service_principal_id,
            "assigned_users": sorted(self.assigned_users),
            "group_members": {g: sorted(m) for g, m in sorted(self.group_members.items())},
        }
        if self.links_at is not None:
            data["links_at"] = self.links_at.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def load(cls, raw: str) -> Watermark | None:
        """The watermark, or None if it is not one this version wrote."""
        try:
            data = json.loads(raw)
            if data.get("v") != WATERMARK_VERSION:
                return None
            links_at = data.get("links_at")
            return cls(
                users_link=str(data["users"]), groups_link=str(data["groups"]),
                issued_at=datetime.fromisoformat(data["issued_at"]),
                full_at=datetime.fromisoformat(data["full_at"]),
                email_source=str(data["email_source"]),
                service_principal_id=data.get("sp"),
                assigned_users=frozenset(data.get("assigned_users", ())),
                group_members={g: frozenset(m) for g, m in data.get("group_members", {}).items()},
                links_at=datetime.fromisoformat(links_at) if isinstance(links_at, str) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
