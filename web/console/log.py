"""The Provisioning log page: every event across runs, filtered, newest first, in keyset
pages (`service.history.event_page`). A filter the log cannot use is answered with a
400 page saying which and why, never a 500."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from service import history
from service.history import BadFilter, EventFilter, EventPage, EventView
from web.console.auth import require_admin
from web.console.errors import bad_request
from web.console.render import explain_url, page

FILTERS = ("user", "group", "directory", "action", "outcome", "reason", "since", "until")
# An action or reason code: short, lower-case words joined by hyphens.
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class Row:
    """One event as the table shows it."""

    event: EventView
    run_href: str | None
    target_href: str | None
    member: str | None
    member_href: str | None
    changes: tuple[tuple[str, str, str], ...]  # (field, old, new)


async def log_page(request: Request) -> Response:
    await require_admin(request)
    store, settings = request.app.state.store, request.app.state.settings
    params = request.query_params
    known = await run_in_threadpool(history.directory_names, store)
    directories = sorted(set(settings.directories) | set(known))
    where = parse_filter(params, directories)
    older, newer = params.get("older") or None, params.get("newer") or None
    try:
        found: EventPage = await run_in_threadpool(
            lambda: history.event_page(store, where, older_than=older, newer_than=newer))
    except BadFilter as exc:
        raise bad_request(str(exc)) from None
    shown = {name: params.get(name, "").strip() for name in FILTERS}
    kept = {name: value for name, value in shown.items() if value}
    return page(request, "log.html", {
        "rows": [_row(e) for e in found.events],
        "filters": shown,
        "filtered": bool(kept),
        "directories": directories,
        "actions": history.ACTIONS,
        "outcomes": history.OUTCOMES,
        "older_href": _href(kept, older=found.older) if found.older else None,
        "newer_href": _href(kept, newer=found.newer) if found.newer else None,
        "newest_href": _href(kept) if older or newer else None,
    })


def parse_filter(params: QueryParams, directories: list[str]) -> EventFilter:
    """The filter the query string asks for; raises a 400 page for a value it cannot use."""
    value = {name: params.get(name, "").strip() or None for name in FILTERS}
    if value["directory"] is not None and value["directory"] not in directories:
        raise bad_request(f"There is no directory named {value['directory']!r}.")
    if value["outcome"] is not None and value["outcome"] not in history.OUTCOMES:
        raise bad_request(f"{value['outcome']!r} is not an outcome; use one of {', '.join(history.OUTCOMES)}.")
    for name in ("action", "reason"):
        code = value[name]
        if code is not None and not _CODE.fullmatch(code):
            raise bad_request(f"{code!r} is not an {name} code: codes are lower-case words joined by"
                              " hyphens, such as deactivate-user or left-scope.")
    since, until = _time(value["since"], "since"), _time(value["until"], "until")
    if since is not None and until is not None and since >= until:
        raise bad_request("'since' must be earlier than 'until'.")
    return EventFilter(directory=value["directory"], user=value["user"], group=value["group"],
                       action=value["action"], outcome=value["outcome"], reason=value["reason"],
                       since=since, until=until)


def _time(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    for layout in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise bad_request(f"{name} {raw!r} is not a time: write it as 2026-12-01 or 2026-12-01T14:30 (UTC).")


def _href(filters: dict[str, str], **cursor: str | None) -> str:
    query = {**filters, **{k: v for k, v in cursor.items() if v}}
    return "/console/log" + (f"?{urlencode(query)}" if query else "")


def _row(e: EventView) -> Row:
    run_href = f"/console/directories/{_quote(e.directory)}/runs/{e.run_id}" \
        if e.directory is not None and e.run_id is not None else None
    member = _member(e)
    if e.kind in ("user", "invite"):
        target_href: str | None = explain_url(directory=e.directory, user=e.target)
    elif e.kind in ("group", "membership"):
        # A membership rejection's target is "group: member"; its group key names the group.
        group = e.target.partition(": ")[0] if e.kind == "membership" and e.action == "reject" else e.target
        target_href = explain_url(directory=e.directory, group=group)
    elif e.kind == "directory" and e.directory is not None:
        target_href = f"/console/directories/{_quote(e.directory)}"
    else:
        target_href = None
    return Row(e, run_href, target_href, member, explain_url(directory=e.directory, user=member) if member else None,
               _changes(e.old, e.new))


def _member(e: EventView) -> str | None:
    """The user a membership event is about: its `member` value, else its key."""
    if e.kind != "membership":
        return None
    for values in (e.new, e.old):
        if values and values.get("member"):
            return str(values["member"])
    return e.user_key


def _changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[tuple[str, str, str], ...]:
    old, new = old or {}, new or {}
    return tuple((name, _shown(old.get(name)), _shown(new.get(name)))
                 for name in sorted(set(old) | set(new)) if name != "member" and old.get(name) != new.get(name))


def _shown(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _quote(name: str) -> str:
    return quote(name, safe="")
