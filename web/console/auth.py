"""Console sign-in, sessions and CSRF, in one place.

Route handlers call:
- `admin = await require_admin(request)`: the signed-in `Admin`, or a 303 to
  `/console/login?next=...` (GET) / a 403 page (a POST whose session ended). On a POST it
  also checks the form's `csrf_token` field against the session (403 page when it does not
  match), so every state-changing form is protected by calling it.
- `csrf_token(request)`: the token to put in each form as
  `<input type="hidden" name="csrf_token" value="...">` (templates get it as `csrf`).

The session cookie is HttpOnly, SameSite=Lax, Secure when `web.public_url` is https, and
scoped to /console; only a digest of its value is stored (`service.console_auth`).
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from config import Settings
from service import console_auth
from service.console_auth import Admin, SignInRefused
from web.console.errors import ConsoleError, SignInRequired, safe_next
from web.console.render import SECURITY_HEADERS, page

SESSION_COOKIE = "dirsync_console"
# Sign-in has no session yet: its form is tied to this cookie instead (double submit).
LOGIN_COOKIE = "dirsync_console_login"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.web.public_url.startswith("https://")


def _next_of(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


async def require_admin(request: Request) -> Admin:
    """The signed-in admin (also kept as `request.state.admin`); see the module notes."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    admin = await run_in_threadpool(console_auth.admin_for, request.app.state.store, session_id) \
        if session_id else None
    if admin is None:
        if request.method in UNSAFE_METHODS:
            raise ConsoleError(403, "Signed out", "Your session has ended, so this form was not sent. "
                                                  "Sign in again and repeat the action.")
        raise SignInRequired(_next_of(request))
    request.state.admin = admin
    request.state.csrf = console_auth.csrf_token(session_id)
    if request.method in UNSAFE_METHODS:
        form = await request.form()
        if not console_auth.csrf_ok(session_id, _text(form.get(CSRF_FIELD))):
            raise ConsoleError(403, "Form refused", "This form did not carry this session's security token "
                                                    "(CSRF), so nothing was changed. Reload the page and try again.")
    return admin


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page (after `require_admin`)."""
    token: str = request.state.csrf
    return token


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def login_page(request: Request) -> Response:
    if request.method == "POST":
        return await _sign_in(request)
    return _login_form(request, safe_next(request.query_params.get("next")))


def _login_form(request: Request, next_url: str, *, error: str | None = None, email: str = "",
                status: int = 200, headers: dict[str, str] | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", {"next": next_url, "error": error, "email": email, "login_csrf": token},
                    status=status, headers=headers)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=COOKIE_PATH, secure=_secure(request),
                        httponly=True, samesite="lax")
    return response


async def _sign_in(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(_text(form.get("next")))
    email = (_text(form.get("email")) or "").strip()
    password = _text(form.get("password")) or ""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = _text(form.get(CSRF_FIELD)) or ""
    if not expected or not console_auth.same_secret(expected, sent):
        raise ConsoleError(403, "Form refused", "The sign-in form did not carry its security token (CSRF). "
                                                "Reload the sign-in page and try again.")
    address = request.client.host if request.client else "unknown"
    try:
        signed = await run_in_threadpool(console_auth.sign_in, request.app.state.store, email, password, address)
    except SignInRefused as refused:
        if refused.retry_after is not None:
            return _login_form(request, next_url, error=str(refused), email=email, status=429,
                               headers={"Retry-After": str(refused.retry_after)})
        return _login_form(request, next_url, error=str(refused), email=email, status=401)
    response = RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(SESSION_COOKIE, signed.session_id, max_age=console_auth.SESSION_HOURS * 3600,
                        path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="lax")
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


async def logout(request: Request) -> Response:
    await require_admin(request)
    await run_in_threadpool(console_auth.sign_out, request.app.state.store, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/console/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True,
                           samesite="lax")
    return response


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
