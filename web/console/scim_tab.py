"""The SCIM tab's token action: Generate (the first token) or Regenerate (replacing it:
the old one is refused at once). The token is shown on this one answer only, never
stored in clear and never shown again."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from reconcile.admin import Refused
from service.audit import Audit
from service.scim_tokens import issue_token
from web.console.auth import require_admin
from web.console.directory import directory_name, render_directory
from web.console.errors import bad_request


async def token(request: Request) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    app = request.app.state
    if app.settings.directory(name).kind != "scim":
        raise bad_request(f"{name} is not a SCIM directory: it has no SCIM token")
    regenerate = (await request.form()).get("regenerate") == "yes"
    try:
        issued = await run_in_threadpool(issue_token, app.settings, app.store, name, regenerate=regenerate,
                                         audit=Audit(admin.email))
    except Refused as exc:
        return await render_directory(request, name, error=f"{exc.detail}", status=409)
    return await render_directory(request, name, issued=issued)
