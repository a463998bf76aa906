"""Rendering console pages: one Jinja2 environment (autoescaped) over `templates/`, and
`page()`, which every handler returns through so that the layout (nav, the signed-in
admin, the sign-out form's CSRF token) is filled in one place."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Pages are never framed (clickjacking) nor cached by shared caches; scripts are not used.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:;"
                               " frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """`template` rendered with `context`, the signed-in admin (`admin`) and the session's
    CSRF token (`csrf`) when there is one."""
    state = request.state
    values = {"admin": getattr(state, "admin", None), "csrf": getattr(state, "csrf", None), **(context or {})}
    return templates.TemplateResponse(request, template, values, status_code=status,
                                      headers={**SECURITY_HEADERS, **(headers or {})})


def when(at: datetime | None, now: datetime | None = None) -> str:
    """A UTC time for a table cell: "2026-12-01 14:02Z", or "never"."""
    if at is None:
        return "never"
    return at.strftime("%Y-%m-%d %H:%MZ")


def age(seconds: float | None) -> str:
    """"3h 12m", "45s": a duration for a person."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def explain_url(*, directory: str | None = None, user: str | None = None, group: str | None = None) -> str:
    """The link to the explain view of `user` (an email) or `group` (a name)."""
    query = {k: v for k, v in (("directory", directory), ("user", user), ("group", group)) if v}
    return f"/console/explain?{urlencode(query)}"


templates.env.filters["when"] = when
templates.env.filters["age"] = age
templates.env.globals["explain_url"] = explain_url
