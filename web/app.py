"""The ASGI app: `create_app(settings)` for tests and embedding, `create_app_from_env()`
for `dirsync serve` (each uvicorn worker process builds its own, with its own store
connections)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

import config
from config import Settings
from service.scim import Problem
from service.scim_runs import flush_counts
from store import Store, open_store
from web import console, scim
from web.console.directories import directories_page
from web.console.errors import ConsoleError, SignInRequired, error_page, sign_in_redirect
from web.limits import TokenBuckets


def _is_console(request: Request) -> bool:
    return request.url.path == "/console" or request.url.path.startswith("/console/")


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 from the router: console pages under /console, SCIM errors elsewhere;
    anything unexpected as a 500 without a traceback."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if _is_console(request):
        title = {404: "Not found", 405: "Not allowed"}.get(status, "Something went wrong")
        detail = "There is no such page in the console." if status == 404 else \
            f"{request.method} is not allowed here." if status == 405 else \
            "The console could not answer this request; the server log says why."
        return await error_page(request, ConsoleError(status, title, detail))
    detail = "no such endpoint" if status == 404 else f"{request.method} is not allowed here" if status == 405 else \
        "internal error"
    response = scim.scim_error(Problem(status, detail))
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """The web app over `store` (opened from the settings when not given)."""
    opened = store if store is not None else open_store(settings.store.url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        flush_counts(opened)  # the runs' counts of the last second

    routes = [
        Mount("/scim/v2/{directory}", routes=scim.routes()),
        Route("/console", directories_page, methods=["GET"]),  # without the trailing slash
        Mount("/console", routes=console.routes()),
    ]
    handlers = {HTTPException: _http_error, ConsoleError: error_page, SignInRequired: sign_in_redirect,
                Exception: _http_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = opened
    app.state.buckets = TokenBuckets(settings.web.scim_rate_per_second, settings.web.scim_burst)
    return app


def create_app_from_env() -> Starlette:
    """The app for the configuration `dirsync serve` names in $DIRSYNC_CONFIG."""
    return create_app(config.load())
