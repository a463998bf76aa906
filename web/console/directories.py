"""The Directories page: one row per directory with what `dirsync status` knows."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from reconcile import clock
from service.heartbeat import read_for
from service.status import collect
from web.console.auth import require_admin
from web.console.render import page


async def directories_page(request: Request) -> Response:
    await require_admin(request)
    app = request.app.state
    now = clock.now()
    beats = await run_in_threadpool(read_for, app.settings)
    rows = await run_in_threadpool(collect, app.settings, app.store, now, beats)
    return page(request, "directories.html", {"rows": rows, "now": now})
