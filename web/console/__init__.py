"""The operator console (issue 13): server-rendered pages under `/console`, for signed-in
admins only. Every action is a `service` operation, recorded with the admin's email.

For route handlers (and the pages other modules add):
- `web.console.auth.require_admin(request)` (awaited) — the signed-in admin, or a redirect
  to sign-in; on POST it also refuses a form without this session's CSRF token.
- `web.console.auth.csrf_token(request)` — the token for a form's hidden `csrf_token`
  field (templates get it as `csrf`, with `admin`, from `web.console.render.page`).
- `web.console.render.page(request, template, context)` — a page in the layout.
- `web.console.errors.ConsoleError` / `not_found` / `bad_request` — raise for a clear
  error page (404 for an unknown directory, 400 for bad input).

`routes()` is the console's routing table, mounted at `/console` by `web.app`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web.console import auth
from web.console.directories import directories_page
from web.console.log import log_page
from web.console.render import HERE


def routes() -> list[BaseRoute]:
    """The console routing table, relative to `/console`."""
    return [
        Route("/", directories_page, methods=["GET"]),
        Route("/log", log_page, methods=["GET"]),
        *auth.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="console-static"),
    ]
