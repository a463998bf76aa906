"""Provision on demand: bring one user of a directory in step now (`service.sync.sync_user`)
and show, step by step, what happened and why (`service.explain`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from config import ConfigError, check_secrets
from service.console_auth import InvalidEmail, valid_email
from service.explain import explain
from service.sync import sync_user
from web.console.auth import require_admin
from web.console.directory import directory_name
from web.console.errors import bad_request
from web.console.render import page


async def provision(request: Request) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    raw = (await request.form()).get("email", "")
    try:
        email = valid_email(raw if isinstance(raw, str) else "")
    except InvalidEmail as exc:
        raise bad_request(f"Provision on demand needs a user's email: {exc}.") from None
    app = request.app.state
    directory = app.settings.directory(name)
    if directory.kind == "scim":
        raise bad_request(f"{name} is pushed by its IdP over SCIM: provision the user from the IdP")
    try:
        check_secrets(directory)
    except ConfigError as exc:
        raise bad_request(f"Cannot read {name}: {exc}") from None
    result = await run_in_threadpool(sync_user, app.settings, app.store, name, email, actor=admin.email)
    trace = await run_in_threadpool(explain, app.store, email, directory=name, kind="user")
    return page(request, "provision.html", {"name": name, "email": email, "result": result, "trace": trace})
