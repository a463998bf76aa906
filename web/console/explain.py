"""The explain view of one user or group (`/console/explain?directory=NAME&user=EMAIL` or
`&group=NAME`): the decision trace `dirsync explain` prints, and its recent events. The
provisioning log links each row here."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from service.console_auth import InvalidEmail, valid_email
from service.explain import explain
from web.console.auth import require_admin
from web.console.errors import bad_request, not_found
from web.console.render import page


async def explain_page(request: Request) -> Response:
    await require_admin(request)
    params = request.query_params
    directory = params.get("directory") or None
    user, group = params.get("user", "").strip(), params.get("group", "").strip()
    if directory is not None and directory not in request.app.state.settings.directories:
        raise not_found(f"No directory named {directory!r} is configured.")
    if bool(user) == bool(group):
        raise bad_request("Name one object: ?user=EMAIL or ?group=NAME (with ?directory=NAME to narrow its events).")
    if user:
        try:
            user = valid_email(user)
        except InvalidEmail as exc:
            raise bad_request(f"user must be an email address: {exc}.") from None
    trace = await run_in_threadpool(explain, request.app.state.store, user or group, directory=directory,
                                    kind="user" if user else "group", list_members=False)
    return page(request, "explain.html", {"trace": trace, "directory": directory})
