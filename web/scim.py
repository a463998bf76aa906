"""The SCIM 2.0 endpoint: one routing table under `/scim/v2/{directory}`.

Each route parses the request, calls one `service.scim` function in a worker thread (the
store is synchronous) and renders what it returns. `scim_endpoint` does what every route
shares, once: the directory and its bearer token (401 / 404), the per-token rate limit
(429), the body limit (413), the media type (415), and SCIM errors for every refusal.

A request is admitted (token, rate, then what reading its body found) in the same worker
thread as its work, before any of it: one thread hop per request, not two, and nothing
of an unauthenticated request is parsed or answered but the 401.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import ScimDirectorySettings, Settings
from service import scim
from service.scim import Problem
from service.scim_tokens import authenticate
from store import Store
from web import scim_render as render
from web.limits import TokenBuckets

log = logging.getLogger("dirsync.web.scim")
Handler = Callable[["ScimRequest"], Awaitable[Response]]
T = TypeVar("T")


class ScimResponse(JSONResponse):
    media_type = render.MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def scim_error(problem: Problem) -> Response:
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after is not None else None
    if problem.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="SCIM"'}
    return ScimResponse(render.error(problem.status, problem.detail, problem.scim_type), problem.status,
                        headers=headers)


class ScimRequest:
    """One request: the app's settings and store, the directory, the body; `run` admits it
    and does its work."""

    def __init__(self, request: Request, directory: str, path: str, token: str, body: bytes,
                 refusal: Problem | None) -> None:
        state = request.app.state
        self.request = request
        self.settings: Settings = state.settings
        self.store: Store = state.store
        self.directory = directory
        self.body = body
        self.base = self.settings.web.scim_base_url(directory)
        self.label = scim.request_label(request.method, _under_directory(path, request.path_params))
        self._buckets: TokenBuckets = state.buckets
        self._token = token
        self._refusal = refusal  # what reading the body found, answered once admitted
        self.admitted = False

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise Problem(400, "the body is not valid JSON", "invalidSyntax") from None

    def param(self, name: str) -> str | None:
        for key, value in self.request.query_params.items():
            if key.lower() == name.lower():
                return value
        return None

    def int_param(self, name: str, default: int) -> int:
        raw = self.param(name)
        try:
            return int(raw) if raw not in (None, "") else default
        except ValueError:
            raise Problem(400, f"{name} must be an integer, got {raw!r}", "invalidValue") from None

    def listed(self, name: str) -> list[str]:
        raw = self.param(name)
        return [a.strip() for a in raw.split(",") if a.strip()] if raw else []

    def project(self, resource: dict[str, Any]) -> dict[str, Any]:
        return render.project(resource, self.listed("attributes"), self.listed("excludedAttributes"))

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` in a worker thread (the store is synchronous), after the request is
        admitted there: parse the request inside `work`, so a refusal comes first."""
        def admitted() -> T:
            self._admit()
            return work()
        return await run_in_threadpool(admitted)

    def _admit(self) -> None:
        """The token (401), the rate limit (429), then the body (413, 415), in that order."""
        if self.admitted:
            return
        if not authenticate(self.store, self.directory, self._token):
            raise Problem(401, "a valid bearer token for this directory is required")
        wait = self._buckets.take(self._token)
        if wait is not None:
            raise Problem(429, "too many requests for this token; retry later", None, "rate-limited",
                          retry_after=wait)
        if self._refusal is not None:
            raise self._refusal
        self.admitted = True


_JSON_TYPES = ("application/scim+json", "application/json")


def scim_endpoint(path: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of route `path` (under the directory's base URL) that `handler` serves."""
    async def endpoint(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        directory = request.path_params["directory"]
        try:
            config = settings.directories.get(directory)
            if not isinstance(config, ScimDirectorySettings):
                raise Problem(404, f"no SCIM directory {directory!r} here")
            token = _bearer(request)
            if token is None:
                raise Problem(401, "a valid bearer token for this directory is required")
            try:
                body, refusal = await _body(request, settings.web.max_body_bytes), None
            except Problem as problem:
                body, refusal = b"", problem
            req = ScimRequest(request, directory, path, token, body, refusal)
            try:
                response = await handler(req)
            finally:
                if not req.admitted:  # a route answers only an admitted request: its refusal first
                    await req.run(lambda: None)
            return response
        except Problem as problem:
            if problem.status >= 500:
                log.warning("SCIM %s %s: %s", request.method, request.url.path, problem.detail)
            return scim_error(problem)
    return endpoint


def _under_directory(path: str, params: dict[str, Any]) -> str:
    """The path a request names under its directory's base URL: its route's `path` with
    the request's parameters in it. Read from the route, not cut from the URL, which may
    name the directory elsewhere too (a directory `scim`, or a proxy's prefix)."""
    return _PARAM.sub(lambda found: str(params[found.group(1)]), path)


_PARAM = re.compile(r"\{(\w+)\}")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _body(request: Request, limit: int) -> bytes:
    if request.method not in ("POST", "PUT", "PATCH"):
        return b""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"the body is larger than {limit} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in _JSON_TYPES and not media.endswith("+json"):
        raise Problem(415, f"send application/scim+json, not {media}")
    return bytes(body)


# --- discovery ---------------------------------------------------------------------------------


def _no_filter(req: ScimRequest) -> None:
    if req.param("filter"):
        raise Problem(403, "discovery endpoints take no filter")


async def service_provider_config(req: ScimRequest) -> Response:
    await req.run(lambda: _no_filter(req))
    return ScimResponse(render.service_provider_config(req.base, req.settings.web.max_body_bytes))


async def resource_types(req: ScimRequest) -> Response:
    await req.run(lambda: _no_filter(req))
    found = render.resource_types(req.base)
    return ScimResponse(render.list_response(scim.Page(len(found), 1, tuple(found)), found))


async def resource_type(req: ScimRequest) -> Response:
    await req.run(lambda: None)
    wanted = req.request.path_params["name"]
    for item in render.resource_types(req.base):
        if item["id"] == wanted:
            return ScimResponse(item)
    raise Problem(404, f"no resource type {wanted!r}")


async def schemas(req: ScimRequest) -> Response:
    await req.run(lambda: _no_filter(req))
    found = render.schemas(req.base)
    return ScimResponse(render.list_response(scim.Page(len(found), 1, tuple(found)), found))


async def schema(req: ScimRequest) -> Response:
    await req.run(lambda: None)
    wanted = req.request.path_params["name"]
    for item in render.schemas(req.base):
        if item["id"] == wanted:
            return ScimResponse(item)
    raise Problem(404, f"no schema {wanted!r}")


# --- users -------------------------------------------------------------------------------------


async def users(req: ScimRequest) -> Response:
    if req.request.method == "POST":
        created = await req.run(lambda: scim.create_user(req.settings, req.store, req.directory,
                                                         scim.parse_user(req.json()), request=req.label))
        body = render.user(created, req.base)
        return ScimResponse(req.project(body), 201, headers={"Location": body["meta"]["location"]})
    page = await req.run(lambda: scim.list_users(req.store, req.directory, scim.filter_of(req.param("filter"), "User"),
                                                 req.int_param("startIndex", 1), req.int_param("count", 100)))
    found = [req.project(render.user(u, req.base)) for u in page.items]
    return ScimResponse(render.list_response(page, found))


async def user(req: ScimRequest) -> Response:
    scim_id = req.request.path_params["id"]
    method = req.request.method
    if method == "GET":
        view = await req.run(lambda: scim.get_user(req.store, req.directory, scim_id))
    elif method == "PUT":
        view = await req.run(lambda: scim.replace_user(req.settings, req.store, req.directory, scim_id,
                                                       scim.parse_user(req.json()), request=req.label))
    elif method == "PATCH":
        view = await req.run(lambda: scim.patch_user(req.settings, req.store, req.directory, scim_id,
                                                     scim.parse_patch(req.json()), request=req.label))
    else:
        await req.run(lambda: scim.delete_user(req.settings, req.store, req.directory, scim_id, request=req.label))
        return Response(status_code=204)
    return ScimResponse(req.project(render.user(view, req.base)))


# --- groups ------------------------------------------------------------------------------------


def _wants_members(req: ScimRequest) -> bool:
    excluded = {a.lower().split(":")[-1] for a in req.listed("excludedAttributes")}
    wanted = {a.lower().split(":")[-1].split(".")[0] for a in req.listed("attributes")}
    return "members" not in excluded and (not wanted or "members" in wanted)


async def groups(req: ScimRequest) -> Response:
    if req.request.method == "POST":
        created = await req.run(lambda: scim.create_group(req.settings, req.store, req.directory,
                                                          scim.parse_group(req.json()), request=req.label))
        body = render.group(created, req.base)
        return ScimResponse(req.project(body), 201, headers={"Location": body["meta"]["location"]})

    def listed() -> scim.Page[scim.GroupView]:
        where = scim.filter_of(req.param("filter"), "Group")
        return scim.list_groups(req.settings, req.store, req.directory, where, req.int_param("startIndex", 1),
                                req.int_param("count", 100), members=_wants_members(req))

    page = await req.run(listed)
    found = [req.project(render.group(g, req.base)) for g in page.items]
    return ScimResponse(render.list_response(page, found))


async def group(req: ScimRequest) -> Response:
    scim_id = req.request.path_params["id"]
    method = req.request.method
    if method == "DELETE":
        await req.run(lambda: scim.delete_group(req.settings, req.store, req.directory, scim_id, request=req.label))
        return Response(status_code=204)
    if method == "PATCH":
        await req.run(lambda: scim.update_group(req.settings, req.store, req.directory, scim_id,
                                                scim.group_patch(scim.parse_patch(req.json())), request=req.label))
        if not req.listed("attributes") and not req.listed("excludedAttributes"):
            # Entra: "should yield an HTTP 204"; a 50,000-member body would undo the fast path.
            return Response(status_code=204)
    elif method == "PUT":
        await req.run(lambda: scim.update_group(req.settings, req.store, req.directory, scim_id,
                                                scim.group_replacement(req.json()), request=req.label))
    view = await req.run(lambda: scim.get_group(req.settings, req.store, req.directory, scim_id,
                                                members=_wants_members(req)))
    return ScimResponse(req.project(render.group(view, req.base)))


async def not_offered(req: ScimRequest) -> Response:
    await req.run(lambda: None)
    raise Problem(501, "not offered by this service provider (see /ServiceProviderConfig)")


def routes() -> list[BaseRoute]:
    """The SCIM routing table, relative to `/scim/v2/{directory}`."""
    read = ["GET"]
    table: list[tuple[str, Handler, list[str]]] = [
        ("/ServiceProviderConfig", service_provider_config, read),
        ("/ResourceTypes", resource_types, read),
        ("/ResourceTypes/{name}", resource_type, read),
        ("/Schemas", schemas, read),
        ("/Schemas/{name}", schema, read),
        ("/Users", users, ["GET", "POST"]),
        ("/Users/{id}", user, ["GET", "PUT", "PATCH", "DELETE"]),
        ("/Groups", groups, ["GET", "POST"]),
        ("/Groups/{id}", group, ["GET", "PUT", "PATCH", "DELETE"]),
        ("/Bulk", not_offered, ["POST"]),
        ("/.search", not_offered, ["POST"]),
    ]
    return [Route(path, scim_endpoint(path, handler), methods=methods) for path, handler, methods in table]
