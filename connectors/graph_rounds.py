"""Reading Graph delta rounds and lists into merged, normalised values.

A round follows every `@odata.nextLink` until a page carries the `@odata.deltaLink`; a
page that has neither, or any failed page, fails the whole round (S1). Objects may repeat
across pages and rounds, so the latest sighting wins; a group's `members@delta` may be
split over several pages of the same group and is merged. Only user members count: nested
groups, devices and service principals are not users of the product.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.errors import PartialReadError
from connectors.graph_http import GraphClient, decode_page
from reconcile.id_sets import Members
from reconcile.model import ExternalGroup, ExternalUser, Kind, Rejection
from reconcile.rules import entra_active

USER_SELECT = "id,userPrincipalName,mail,givenName,surname,displayName,accountEnabled,createdDateTime"
# The users delta without `createdDateTime`, for a tenant whose delta refuses to select it
# (Graph refuses some properties in a delta's `$select` with a 400, undocumented per property).
USER_DELTA_SELECT_WITHOUT_CREATED = USER_SELECT.removesuffix(",createdDateTime")
GROUP_SELECT = "id,displayName,members"
USER_TYPE = "#microsoft.graph.user"
FILTER_BATCH = 15  # Graph allows at most 15 values in one `id in (...)` filter


@dataclass
class GroupDelta:
    """One group as merged from a round: its name and member changes (all adds on a full round)."""

    name: str | None = None
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    gone: bool = False


UserRecord = ExternalUser | Rejection  # a user as read, or why it cannot be used


@dataclass
class UsersRound:
    # id -> latest record, normalised as each page arrives: far smaller than the raw JSON
    # objects (measured at 100,000 users: peak RSS of a full read 167 -> 133 MiB).
    users: dict[str, UserRecord] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    # Users created after the round's `created_after` time (see `read_users`).
    created: set[str] = field(default_factory=set)
    delta_link: str = ""
    pages: int = 0


@dataclass
class GroupsRound:
    groups: dict[str, GroupDelta] = field(default_factory=dict)
    delta_link: str = ""
    pages: int = 0


def pages(client: GraphClient, url: str, where: str) -> Iterable[tuple[list[dict[str, Any]],
                                                                      str | None]]:
    """Yield (items, deltaLink or None) for each page from `url` to the round's end."""
    seen: set[str] = set()
    while True:
        if url in seen:
            raise PartialReadError(f"{where}: the next link repeats a page already read")
        seen.add(url)
        body = client.get(url)
        items = decode_page(body, where)
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        if isinstance(next_link, str) and next_link:
            yield items, None
            url = next_link
        elif isinstance(delta_link, str) and delta_link:
            yield items, delta_link
            return
        else:
            raise PartialReadError(f"{where}: a page without a next or delta link")


def read_users(client: GraphClient, url: str, where: str, email_source: str,
               created_after: datetime | None = None, ids: dict[str, str] | None = None) -> UsersRound:
    """The round's users; those Graph says were created after `created_after` are also
    listed in `created`. With `ids` (see `read_groups`), each id is kept as the string it maps to."""
    out = UsersRound()
    for items, delta_link in pages(client, url, where):
        out.pages += 1
        for item in items:
            uid = item.get("id")
            if not isinstance(uid, str):
                raise PartialReadError(f"{where}: a user without an id")
            if ids is not None:  # the item too: its record takes the shared string
                uid = item["id"] = ids.setdefault(uid, uid)
            if "@removed" in item:
                out.users.pop(uid, None)
                out.removed.add(uid)
                out.created.discard(uid)
            else:
                out.removed.discard(uid)
                out.users[uid] = normalise_user(item, email_source)
                if created_after is not None and created_since(item, created_after):
                    out.created.add(uid)
        if delta_link:
            out.delta_link = delta_link
    return out


def read_groups(client: GraphClient, url: str, where: str, ids: dict[str, str] | None = None) -> GroupsRound:
    """The round's groups. With `ids`, the dict a full read gives this round and its users
    round alike, each member id is kept as the string it maps to: the string the user's
    record holds, not a copy per page, and each page's copies are freed as it is read
    (2,000,000 memberships of Graph's 36-character ids: about 160 MiB). The rounds run on
    two threads; `dict.setdefault` on strings is atomic."""
    out = GroupsRound()
    for items, delta_link in pages(client, url, where):
        out.pages += 1
        for item in items:
            gid = item.get("id")
            if not isinstance(gid, str):
                raise PartialReadError(f"{where}: a group without an id")
            acc = out.groups.setdefault(gid, GroupDelta())
            if "@removed" in item:
                out.groups[gid] = GroupDelta(gone=True)
                continue
            acc.gone = False
            if "displayName" in item:
                acc.name = item["displayName"]
            for member in item.get("members@delta") or ():
                mid = member.get("id") if isinstance(member, dict) else None
                if not isinstance(mid, str) or member.get("@odata.type", USER_TYPE) != USER_TYPE:
                    continue
                if ids is not None:
                    mid = ids.setdefault(mid, mid)
                if "@removed" in member:
                    acc.added.discard(mid)
                    acc.removed.add(mid)
                else:
                    acc.removed.discard(mid)
                    acc.added.add(mid)
        if delta_link:
            out.delta_link = delta_link
    return out


def list_all(client: GraphClient, url: str, where: str) -> list[dict[str, Any]]:
    """Every item of a plain paged list (no delta link at the end)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        if next_url in seen:
            raise PartialReadError(f"{where}: the next link repeats a page already read")
        seen.add(next_url)
        body = client.get(next_url)
        out.extend(decode_page(body, where))
        link = body.get("@odata.nextLink")
        next_url = link if isinstance(link, str) and link else None
    return out


def batched_filter_urls(base: str, ids: Iterable[str], select: str) -> list[str]:
    """`base?$filter=id in (...)&$select=...` URLs, at most FILTER_BATCH ids each."""
    ordered = sorted(ids)
    urls = []
    for start in range(0, len(ordered), FILTER_BATCH):
        chunk = ordered[start:start + FILTER_BATCH]
        expr = "id in (" + ",".join(f"'{i}'" for i in chunk) + ")"
        urls.append(f"{base}?$filter={quote(expr, safe='')}&$select={select}")
    return urls


def normalise_user(item: dict[str, Any], email_source: str
                   ) -> ExternalUser | Rejection:
    """An ExternalUser, or a Rejection carrying the external id: `malformed-record` when a
    field has the wrong type or `accountEnabled` is missing, `missing-email` when
    `email_source` is empty."""
    uid = str(item["id"])
    label = next((v for v in (item.get("userPrincipalName"), item.get("displayName"))
                  if isinstance(v, str) and v.strip()), uid)
    for key in ("givenName", "surname", "displayName", email_source):
        if item.get(key) is not None and not isinstance(item[key], str):
            return Rejection(Kind.USER, label, "malformed-record", f"{key} is not text", external_id=uid)
    enabled = item.get("accountEnabled")
    if not isinstance(enabled, bool):
        # Missing or null: whether the account may sign in is unknown, so it is never
        # taken as active (fail closed); the local user is held as it is.
        problem = "accountEnabled is missing" if enabled is None else "accountEnabled is not true or false"
        return Rejection(Kind.USER, label, "malformed-record", problem, external_id=uid)
    email = item.get(email_source)
    if email is None or not email.strip():
        return Rejection(Kind.USER, label, "missing-email", f"the user has no {email_source}", external_id=uid)
    return ExternalUser(
        external_id=uid,
        email=email,
        given_name=item.get("givenName"),
        family_name=item.get("surname"),
        display_name=item.get("displayName"),
        active=entra_active(enabled),  # R9, defined once in the rules; soft-deleted users arrive as removed
    )


def created_since(item: dict[str, Any], moment: datetime) -> bool:
    """Whether Graph says the user was created after `moment`. A missing, null or unreadable
    `createdDateTime` (null for some users created before June 2018) answers no."""
    raw = item.get("createdDateTime")
    if not isinstance(raw, str):
        return False
    try:
        created = datetime.fromisoformat(raw)
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # Graph writes UTC
    return created > moment


def split(records: Iterable[UserRecord]) -> tuple[list[ExternalUser], list[Rejection]]:
    """Users and rejections, in the order given."""
    users: list[ExternalUser] = []
    rejections: list[Rejection] = []
    for record in records:
        if isinstance(record, ExternalUser):
            users.append(record)
        else:
            rejections.append(record)
    return users, rejections


def external_group(gid: str, name: str | None, members: Iterable[str] = ()) -> ExternalGroup:
    return ExternalGroup(gid, name, Members(members))

