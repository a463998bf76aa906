"""Graph delta rounds over a `GraphTenant`: initial pages, replayed changes, opaque tokens.

An initial round (`/users/delta` with no token) pins the change-log position at its first
page and pages through the objects as they are; its delta link holds that position, so
any change made while the round was paging is replayed by the next round (objects may
appear twice, as Graph's documentation warns; none is lost). An incremental round replays
the log between the link's position and the position when the round started.

Tokens are base64url JSON: opaque to clients, never parsed by the connector.
"""

from __future__ import annotations

import base64
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.graph_tenant import GraphTenant

USER_FIELDS = (
    "id", "userPrincipalName", "mail", "givenName", "surname", "displayName", "accountEnabled",
    "createdDateTime",
)
ONLY_ON_SELECT = frozenset({"createdDateTime"})  # Graph: "Returned only on $select"
GROUP_FIELDS = ("id", "displayName", "members")
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600  # directory objects' delta tokens live 7 days
USER_TYPE = "#microsoft.graph.user"


class DeltaGone(Exception):
    """The token can no longer be used: answered 410 with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_token(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return state if isinstance(state, dict) else None


@dataclass
class DeltaPage:
    items: list[dict[str, Any]]
    next_token: str | None = None  # -> $skiptoken
    delta_token: str | None = None  # -> $deltatoken


class DeltaEngine:
    """Builds delta pages for users ("u") and groups ("g") of one tenant."""

    def __init__(self, tenant: GraphTenant, users_per_page: int = 200,
                 group_objects_per_page: int = 100, group_members_per_page: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.tenant = tenant
        self.clock = clock  # seconds since the epoch; token ages are measured with it
        # A replayed round is computed once, at its first page, and paged from this cache:
        # recomputing it for each page made a 1% round cost O(pages x changes).
        self._replays: dict[tuple[str, tuple[str, ...], int, int], list[dict[str, Any]]] = {}
        self.users_per_page = users_per_page
        self.group_objects_per_page = group_objects_per_page
        self.group_members_per_page = group_members_per_page

    # --- entry points -----------------------------------------------------------------

    def start(self, kind: str, select: list[str]) -> DeltaPage:
        """The first page of an initial round."""
        with self.tenant.lock:
            state = {"k": kind, "s": select, "p1": self.tenant.position, "p0": None,
                     "o": 0 if kind == "u" else [0, None], **self._epochs()}
            return self._page(state)

    def latest(self, kind: str, select: list[str]) -> DeltaPage:
        """`$deltatoken=latest`: no data, a delta link at the current position."""
        with self.tenant.lock:
            return DeltaPage([], delta_token=self._delta_token(kind, select, self.tenant.position))

    def resume_skip(self, token: str) -> DeltaPage:
        state = decode_token(token)
        if state is None or "p1" not in state:
            raise DeltaGone("syncStateNotFound", "The sync state generation is not found.")
        with self.tenant.lock:
            self._check_epochs(state)
            return self._page(state)

    def resume_delta(self, token: str) -> DeltaPage:
        """The first page of an incremental round from a delta link's token."""
        state = decode_token(token)
        if state is None or "p" not in state:
            raise DeltaGone("syncStateNotFound", "The sync state generation is not found.")
        with self.tenant.lock:
            self._check_epochs(state)
            if self.clock() - float(state.get("t", 0)) > TOKEN_LIFETIME_SECONDS:
                raise DeltaGone(
                    "syncStateNotFound",
                    "The sync state generation is not found. The delta token is expired "
                    "and data must be synchronized again.",
                )
            new = {"k": state["k"], "s": state["s"], "p0": state["p"],
                   "p1": self.tenant.position, "o": 0, **self._epochs()}
            return self._page(new)

    # --- internals --------------------------------------------------------------------

    def _epochs(self) -> dict[str, int]:
        return {"e": self.tenant.delta_epoch, "r": self.tenant.resync_epoch}

    def _check_epochs(self, state: dict[str, Any]) -> None:
        if state.get("r") != self.tenant.resync_epoch:
            raise DeltaGone("resyncRequired", "Resync required. Replace any local cached "
                            "copy with the results of an initial round.")
        if state.get("e") != self.tenant.delta_epoch:
            raise DeltaGone("syncStateNotFound", "The sync state generation is not found.")

    def _delta_token(self, kind: str, select: list[str], position: int) -> str:
        return encode_token({"k": kind, "s": select, "p": position, "t": int(self.clock()),
                             **self._epochs()})

    def _page(self, state: dict[str, Any]) -> DeltaPage:
        if state["p0"] is not None:
            return self._replay_page(state)
        if state["k"] == "u":
            return self._initial_users(state)
        return self._initial_groups(state)

    def _finish(self, state: dict[str, Any], items: list[dict[str, Any]],
                cursor: object | None) -> DeltaPage:
        if cursor is None:
            return DeltaPage(items, delta_token=self._delta_token(state["k"], state["s"],
                                                                  state["p1"]))
        return DeltaPage(items, next_token=encode_token({**state, "o": cursor}))

    def _initial_users(self, state: dict[str, Any]) -> DeltaPage:
        t = self.tenant
        index: int = state["o"]
        items: list[dict[str, Any]] = []
        order = t.user_order
        while index < len(order) and len(items) < self.users_per_page:
            user = t.users.get(order[index])
            index += 1
            if user is not None and not user.deleted:
                items.append(project(user.to_graph(), state["s"]))
        return self._finish(state, items, index if index < len(order) else None)

    def _initial_groups(self, state: dict[str, Any]) -> DeltaPage:
        t = self.tenant
        gi, after = state["o"]
        with_members = "members" in state["s"]
        budget = self.group_members_per_page
        items: list[dict[str, Any]] = []
        order = t.group_order
        while gi < len(order) and len(items) < self.group_objects_per_page and budget > 0:
            group = t.groups.get(order[gi])
            if group is None:
                gi, after = gi + 1, None
                continue
            item = project({"id": group.id, "displayName": group.display_name}, state["s"])
            if not with_members:
                items.append(item)
                gi, after = gi + 1, None
                continue
            members = sorted(group.members)
            start = bisect.bisect_right(members, after) if after is not None else 0
            take = members[start:start + budget]
            item["members@delta"] = [{"@odata.type": USER_TYPE, "id": m} for m in take]
            items.append(item)
            budget -= len(take)
            if start + len(take) < len(members):
                after = take[-1] if take else after
                break  # the rest of this group's members go on the next page
            gi, after = gi + 1, None
        return self._finish(state, items, [gi, after] if gi < len(order) else None)

    def _replay_page(self, state: dict[str, Any]) -> DeltaPage:
        key = (state["k"], tuple(state["s"]), state["p0"], state["p1"])
        items = self._replays.get(key)
        if items is None:
            items = self._replay_items(state["k"], state["s"], state["p0"], state["p1"])
            if len(self._replays) >= 16:
                self._replays.pop(next(iter(self._replays)))
            self._replays[key] = items
        offset: int = state["o"]
        size = self.users_per_page
        page = items[offset:offset + size]
        return self._finish(state, page, offset + size if offset + size < len(items) else None)

    def _replay_items(self, kind: str, select: list[str], p0: int, p1: int
                      ) -> list[dict[str, Any]]:
        t = self.tenant
        entries = t.log[p0:p1]
        if kind == "u":
            seen: dict[str, None] = {}
            for e in entries:
                if e.kind == "user":
                    seen[e.object_id] = None
            out: list[dict[str, Any]] = []
            for uid in seen:
                user = t.users.get(uid)
                if user is None:
                    out.append({"id": uid, "@removed": {"reason": "deleted"}})
                elif user.deleted:
                    out.append({"id": uid, "@removed": {"reason": "changed"}})
                else:
                    out.append(project(user.to_graph(), select))
            return out
        changed: dict[str, dict[str, str]] = {}
        for e in entries:
            if e.kind != "group":
                continue
            ops = changed.setdefault(e.object_id, {})
            if e.member_id is not None:
                ops[e.member_id] = e.op
        groups_out: list[dict[str, Any]] = []
        for gid, ops in changed.items():
            group = t.groups.get(gid)
            if group is None:
                groups_out.append({"id": gid, "@removed": {"reason": "deleted"}})
                continue
            item = project({"id": gid, "displayName": group.display_name}, select)
            if "members" in select and ops:
                item["members@delta"] = [
                    {"@odata.type": USER_TYPE, "id": m} if op == "add"
                    else {"@odata.type": USER_TYPE, "id": m, "@removed": {"reason": "deleted"}}
                    for m, op in ops.items()
                ]
            groups_out.append(item)
        return groups_out


def project(record: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """Only the selected properties (and always `id`), as Graph's `$select` does."""
    if not select:
        return {k: v for k, v in record.items() if k not in ONLY_ON_SELECT}
    return {k: v for k, v in record.items() if k == "id" or k in select}
