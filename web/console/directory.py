"""A directory's page: its status, runs over time (chart and table), the open staged plan,
and the forms of every action on it (`web.console.actions`, `web.console.scim_tab`,
`web.console.provision`). Action handlers answer by rendering this page with a notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from config import Settings
from reconcile import clock
from service.history import MAX_ID
from service.run_series import RunPoint, recent_runs
from service.scim_tokens import TokenStatus, token_status
from service.staging import open_staged
from service.status import DirectoryStatus, collect
from store import Store
from web.console.auth import require_admin
from web.console.chart import runs_chart
from web.console.errors import not_found
from web.console.render import page

RUNS_SHOWN = 50
# A staged plan lists this many deactivations and removals; the CLI's --json has them all.
STAGED_SHOWN = 200
# Notices a redirect may ask for by code (never free text from a URL).
STARTED = {"full": "Full sync requested: it appears in the runs below when it starts (reload to follow it).",
           "incremental": "Incremental sync requested: it appears in the runs below when it starts"
                          " (reload to follow it)."}


@dataclass(frozen=True, slots=True)
class DirectoryFacts:
    status: DirectoryStatus
    runs: list[RunPoint]
    staged: list[Any]  # what `service.staging.open_staged` lists: run_id, reason, deactivations, removals...
    token: TokenStatus | None
    base_url: str | None


def directory_name(request: Request) -> str:
    """The configured directory the path names, or a 404 page."""
    name: str = request.path_params["name"]
    settings: Settings = request.app.state.settings
    if name not in settings.directories:
        raise not_found(f"No directory named {name!r} is configured.")
    return name


def run_id_of(request: Request) -> int:
    """The run id the path names, or a 404 page when it is past any id a store can hold."""
    run_id: int = request.path_params["run_id"]
    if run_id > MAX_ID:
        raise not_found(f"There is no run {run_id}.")
    return run_id


def read_facts(settings: Settings, store: Store, name: str, now: datetime) -> DirectoryFacts:
    status = next(s for s in collect(settings, store, now) if s.name == name)
    scim = status.kind == "scim"
    return DirectoryFacts(
        status=status,
        runs=recent_runs(store, name, limit=RUNS_SHOWN),
        staged=list(open_staged(store, name)),
        token=token_status(store, name, now) if scim else None,
        base_url=settings.web.scim_base_url(name) if scim else None,
    )


async def render_directory(request: Request, name: str, *, notice: str | None = None, error: str | None = None,
                           status: int = 200, **extra: Any) -> Response:
    app = request.app.state
    now = clock.now()
    facts = await run_in_threadpool(read_facts, app.settings, app.store, name, now)
    return page(request, "directory.html", {
        "name": name, "d": facts.status, "runs": list(reversed(facts.runs)), "chart": runs_chart(facts.runs),
        "staged": facts.staged, "token": facts.token, "base_url": facts.base_url, "now": now,
        "notice": notice, "error": error, "shown": STAGED_SHOWN, **extra,
    }, status=status)


async def directory_page(request: Request) -> Response:
    await require_admin(request)
    name = directory_name(request)
    return await render_directory(request, name, notice=STARTED.get(request.query_params.get("started", "")))
