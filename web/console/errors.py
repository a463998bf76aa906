"""Console refusals as pages: `ConsoleError` (a status, a title and a sentence saying what
to do) and `SignInRequired` (a 303 to the sign-in page that comes back to where the admin
was going). `web.app` registers the handlers; routes only raise."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.console.render import SECURITY_HEADERS, page

LOGIN_PATH = "/console/login"


class ConsoleError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


class SignInRequired(Exception):
    """No valid session: sign in first, then go on to `next`."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


def not_found(what: str) -> ConsoleError:
    return ConsoleError(404, "Not found", what)


def bad_request(detail: str) -> ConsoleError:
    return ConsoleError(400, "Bad request", detail)


async def error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return page(request, "error.html", {"status": exc.status, "title": exc.title, "detail": exc.detail},
                status=exc.status)


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(exc.next_url, safe='/')}", status_code=303,
                            headers=SECURITY_HEADERS)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not raw or not raw.startswith("/console") or raw.startswith("//") or "\\" in raw:
        return "/console"
    return raw
