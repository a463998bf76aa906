"""The operator console (issue 13): server-rendered pages under `/console`, for signed-in
admins only. Every action is a `service` operation, recorded with the admin's email.

For route handlers (and the pages other modules add):
- `web.console.auth.require_admin(request)` (awaited) — the signed-in admin, or a redirect
  to sign-in; on POST it also refuses a form without this session's CSRF token.
- `web.console.auth.csrf_token(request)` — the token for a form's hidden `csrf_token`
  field (templates get it as `csrf`, with `admin`, from `web.console.render.page`).
- `web.console.render.page(request, template, context)` — a page in the layout;
  `web.console.render.explain_url(directory=, user=|group=)` — the explain view's link
  (also a template global).
- `web.console.errors.ConsoleError` / `not_found` / `bad_request` — raise for a clear
  error page (404 for an unknown directory, 400 for bad input).

`routes()` is the console's routing table, mounted at `/console` by `web.app`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web.console import actions, auth, provision, scim_tab
from web.console.run import run_page
from web.console.directories import directories_page
from web.console.directory import directory_page
from web.console.explain import explain_page
from web.console.log import log_page
from web.console.render import HERE


def routes() -> list[BaseRoute]:
    """The console routing table, relative to `/console`."""
    one = "/directories/{name}"
    post = ["POST"]
    return [
        Route("/", directories_page, methods=["GET"]),
        *auth.routes(),
        Route(one, directory_page, methods=["GET"]),
        Route(f"{one}/runs/{{run_id:int}}", run_page, methods=["GET"]),
        Route(f"{one}/sync", actions.sync_now, methods=post),
        Route(f"{one}/staged/{{run_id:int}}/approve", actions.approve, methods=post),
        Route(f"{one}/staged/{{run_id:int}}/reject", actions.reject, methods=post),
        Route(f"{one}/resume", actions.resume, methods=post),
        Route(f"{one}/enable", actions.enable, methods=post),
        Route(f"{one}/disable", actions.disable, methods=["GET", "POST"]),
        Route(f"{one}/scim-token", scim_tab.token, methods=post),
        Route(f"{one}/provision", provision.provision, methods=post),
        Route("/explain", explain_page, methods=["GET"]),
        Route("/log", log_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="console-static"),
    ]
