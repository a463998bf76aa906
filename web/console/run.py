"""One run of a directory (`/console/directories/{name}/runs/{run_id}`): who started it and
how, how it ended, and its events in order, each object linked to its explain view."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from service.history import EventFilter, events
from service.run_series import run_point
from web.console.auth import require_admin
from web.console.directory import directory_name, run_id_of
from web.console.errors import not_found
from web.console.render import page

# A run of a million operations is read in the provisioning log, page by page.
EVENTS_SHOWN = 500


async def run_page(request: Request) -> Response:
    await require_admin(request)
    name = directory_name(request)
    run_id = run_id_of(request)
    store = request.app.state.store
    run = await run_in_threadpool(run_point, store, run_id)
    if run is None or run.directory != name:
        raise not_found(f"{name} has no run {run_id}.")
    found = await run_in_threadpool(lambda: events(store, EventFilter(run_id=run_id), limit=EVENTS_SHOWN + 1))
    return page(request, "run.html", {"name": name, "run": run, "events": found[:EVENTS_SHOWN],
                                      "more": len(found) > EVENTS_SHOWN})
