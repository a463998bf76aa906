"""The actions on a directory, each one `service` operation done as the signed-in admin:
Sync now (full or incremental), Approve / Reject the staged plan, Resume, Enable and
Disable (after a confirmation with the counts of what disabling converts)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from config import ConfigError, Settings, check_secrets
from service import audit, directories, staging
from service.audit import CONSOLE, Audit
from service.staging import Decision, NotStaged
from service.status import read_state
from service.sync import sync
from web.console.auth import require_admin
from web.console.directory import directory_name, render_directory, run_id_of
from web.console.errors import bad_request
from web.console.render import SECURITY_HEADERS, page


async def sync_now(request: Request) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    mode = (await request.form()).get("mode", "incremental")
    if mode not in ("full", "incremental"):
        raise bad_request(f"mode must be full or incremental, not {mode!r}")
    settings: Settings = request.app.state.settings
    directory = settings.directory(name)
    if directory.kind == "scim":
        raise bad_request(f"{name} is pushed by its IdP over SCIM: there is nothing to pull")
    try:
        check_secrets(directory)
    except ConfigError as exc:
        return await render_directory(request, name, error=f"Cannot sync: {exc}", status=409)
    state = await run_in_threadpool(read_state, request.app.state.store, name)
    if not state.enabled:  # the cycle would be refused without a run to show for it
        return await render_directory(request, name, error=f"Sync is turned off for {name}: enable it first.",
                                      status=409)
    # The request is in the log at once, with who asked, even if the cycle then finds nothing
    # to change (a run without events shows only in the runs table).
    await run_in_threadpool(audit.record, request.app.state.store, Audit(admin.email), name, "sync-now",
                            f"{mode} cycle requested")
    # A cycle can take minutes: it runs after the answer, and its run shows on the page.
    task = BackgroundTask(sync, settings, request.app.state.store, name, trigger=CONSOLE, full=mode == "full",
                          actor=admin.email)
    return RedirectResponse(f"/console/directories/{quote(name)}?started={mode}", status_code=303,
                            headers=SECURITY_HEADERS, background=task)


async def _decide(request: Request, approve: bool) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    run_id = run_id_of(request)
    app = request.app.state
    plans = await run_in_threadpool(staging.open_staged, app.store, name)
    if run_id not in {p.run_id for p in plans}:
        return await render_directory(request, name, status=409,
                                      error=f"Run {run_id} has no open staged plan of {name} (decided already?).")
    try:
        if approve:
            decision = await run_in_threadpool(staging.approve, app.settings, run_id, by=admin.email, store=app.store)
        else:
            decision = await run_in_threadpool(staging.reject, app.settings, run_id, store=app.store,
                                               audit=Audit(admin.email))
    except NotStaged as exc:
        return await render_directory(request, name, error=str(exc), status=409)
    if not decision.ok:
        return await render_directory(request, name, error=f"Staged plan of run {run_id}: {decision.error}",
                                      status=409)
    return await render_directory(request, name, notice=_decided(decision))


def _decided(decision: Decision) -> str:
    who = f"Staged plan of run {decision.staged_run_id}"
    if decision.status == "rejected":
        return f"{who} rejected by {decision.by}; nothing applied."
    applied = decision.applied.applied if decision.applied else 0
    text = f"{who} approved by {decision.by}: {applied} operations applied in run {decision.run_id}."
    if decision.dropped:
        text += (f" {len(decision.dropped)} staged operations were dropped: the fresh plan no longer contains them"
                 f" (the run's events say why).")
    if decision.error:
        text += f" {decision.error}"
    if decision.note:  # what it left for later: R4 holds, requests held while it ran
        text += f" {decision.note}"
    return text


async def approve(request: Request) -> Response:
    return await _decide(request, approve=True)


async def reject(request: Request) -> Response:
    return await _decide(request, approve=False)


async def resume(request: Request) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    app = request.app.state
    cleared = await run_in_threadpool(directories.end_quarantine, app.settings, app.store, name,
                                      audit=Audit(admin.email))
    notice = (f"Quarantine ended: {cleared} failed cycles cleared; the next cycle runs when due."
              if cleared else f"{name} was not quarantined; nothing to resume.")
    return await render_directory(request, name, notice=notice)


async def enable(request: Request) -> Response:
    admin = await require_admin(request)
    name = directory_name(request)
    app = request.app.state
    done = await run_in_threadpool(directories.enable, app.settings, app.store, name, audit=Audit(admin.email))
    return await render_directory(request, name, notice=f"Sync turned on; {done.invites_revoked} open invites"
                                                         " revoked. The next cycle links users by email and groups by name.")


async def disable(request: Request) -> Response:
    """GET: what disabling would convert, and a form to confirm; POST: disable."""
    admin = await require_admin(request)
    name = directory_name(request)
    app = request.app.state
    if request.method == "GET":
        preview = await run_in_threadpool(directories.disable_preview, app.settings, app.store, name)
        return page(request, "disable.html", {"name": name, "preview": preview})
    if (await request.form()).get("confirm") != "yes":
        raise bad_request("Disabling needs the confirmation form: open the Disable page and confirm.")
    done = await run_in_threadpool(directories.disable, app.settings, app.store, name, audit=Audit(admin.email))
    if done.failed:
        return await render_directory(request, name, status=409,
                                      error=f"Sync turned off, but {done.failed} conversions failed: disable again.")
    return await render_directory(request, name, notice=f"Sync turned off: {done.users} users and {done.groups}"
                                                         " groups are local now.")
