"""A stateful Microsoft Graph v1.0 + identity platform simulator over HTTPS.

    with GraphSimulator(GraphTenant.generate(users=50, groups=5, memberships=80)) as sim:
        sim.tenant.hire("ann@contoso.example", assign=True)      # mutate (logged for delta)
        sim.inject(Fault.HTTP_429, endpoint="users.delta")       # faults from the base framework
        sim.expire_delta_link("groups.delta")                    # vendor faults
        sim.counts()                                             # requests per endpoint

Endpoints (endpoint names in brackets, for `counts()` and `inject(endpoint=...)`):
    GET  /{tenant}/v2.0/.well-known/openid-configuration      [openid-configuration]
    POST /{tenant}/oauth2/v2.0/token                          [token]
    GET  /v1.0/users/delta, /v1.0/groups/delta                [users.delta] [groups.delta]
    GET  /v1.0/users, /v1.0/groups                            [users] [groups]
         ($filter: `id in (...)` up to 15 ids; users also `userPrincipalName|mail eq '...'`)
    GET  /v1.0/users/{id}/memberOf                            [users.memberOf]
    GET  /v1.0/groups/{id}/members                            [groups.members]
    GET  /v1.0/servicePrincipals/{id}/appRoleAssignedTo       [sp.appRoleAssignedTo]

Graph requests need a bearer token from the token endpoint (401
`InvalidAuthenticationToken` otherwise), answer 403 `Authorization_RequestDenied` once
`tenant.consent_revoked` is set, and are charged resource units against Graph's budget per
app and tenant over 10 s (3,500 / 5,000 / 8,000 RU for <50 / 50-500 / >500 users; costs from
the throttling-limits page: GET users 2, GET groups/{id}/members 3, `$select` -1, `$top`<20
-1, minimum 1; anything else 1). Over budget: 429 with `Retry-After` and a `TooManyRequests`
body. `throttle_budget` overrides the budget (tests). The budget and its window are
`simulators.graph_throttle`.

Vendor faults (`inject(Fault.VENDOR, endpoint=..., detail=...)` or the helpers):
    "expired-delta"   410 syncStateNotFound          `expire_delta_link(endpoint)`
    "resync"          410 resyncRequired + Location   `require_resync(endpoint)`
    "503-retry-after" 503 with Retry-After: 1
    "401"             401 InvalidAuthenticationToken
    "403"             403 Authorization_RequestDenied
Tenant-wide: `tenant.expire_delta_tokens()`, `tenant.force_resync()`, `identity.revoke_tokens()`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from simulators.base import SimulatorServer
from simulators.clocks import real_clock
from simulators.faults import Fault
from simulators.graph_delta import (
    GROUP_FIELDS,
    USER_FIELDS,
    USER_TYPE,
    DeltaEngine,
    DeltaGone,
    decode_token,
    encode_token,
    project,
)
from simulators.graph_identity import IdentityPlatform
from simulators.graph_tenant import GraphTenant
from simulators.graph_throttle import ResourceUnitBudget, budget_for
from simulators.messages import Headers, Request, Response

__all__ = ["Fault", "GraphSimulator", "GraphTenant", "run_cli"]

MAX_FILTER_IDS = 15  # Graph: "Too many child clauses ... Max allowed: 15."
_FILTER_IN = re.compile(r"^\s*id\s+in\s+\((.*)\)\s*$", re.IGNORECASE)
_FILTER_EQ = re.compile(r"^\s*id\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_FILTER_PROPERTY = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")

ERROR_CODES = {
    400: ("BadRequest", "Invalid request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource does not exist or one of its queried "
                                      "reference-property objects are not present."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable."),
}



class GraphSimulator(SimulatorServer):
    """Microsoft Graph and the identity platform for one `GraphTenant` (see module docs)."""

    def __init__(self, tenant: GraphTenant | None = None, *, port: int = 0,
                 clock: Callable[[], datetime] = real_clock, users_per_page: int = 200,
                 group_members_per_page: int = 1000, list_page_default: int = 100) -> None:
        super().__init__(port=port, clock=clock)
        self.tenant = tenant or GraphTenant()
        self.tenant.lock = self.lock  # one lock: handlers and test mutations never interleave
        seconds = lambda: self.clock().timestamp()  # noqa: E731
        self.identity = IdentityPlatform(self.tenant, lambda: self.base_url,
                                         lambda: self.graph_url, seconds)
        self.delta = DeltaEngine(self.tenant, users_per_page=users_per_page,
                                 group_members_per_page=group_members_per_page, clock=seconds)
        self.list_page_default = list_page_default
        self.throttle_budget: int | None = None  # None: Graph's budget for the tenant's size
        self.retry_after_seconds = 1
        self._budget = ResourceUnitBudget()
        t = "/{tenant}"
        self.add_route("GET", t + "/v2.0/.well-known/openid-configuration",
                       self.identity.discovery, name="openid-configuration")
        self.add_route("POST", t + "/oauth2/v2.0/token", self.identity.token, name="token")
        self.add_route("GET", "/v1.0/users/delta", self._users_delta, name="users.delta")
        self.add_route("GET", "/v1.0/groups/delta", self._groups_delta, name="groups.delta")
        self.add_route("GET", "/v1.0/users", self._users, name="users")
        self.add_route("GET", "/v1.0/users/{id}/memberOf", self._member_of, name="users.memberOf")
        self.add_route("GET", "/v1.0/groups", self._groups, name="groups")
        self.add_route("GET", "/v1.0/groups/{id}/members", self._members, name="groups.members")
        self.add_route("GET", "/v1.0/servicePrincipals/{id}/appRoleAssignedTo",
                       self._assigned_to, name="sp.appRoleAssignedTo")

    # --- what a client needs ----------------------------------------------------------

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        return self.base_url

    def directory_table(self, secret_env: str = "ENTRA_CLIENT_SECRET", *,
                        assigned: bool = False, **extra: Any) -> dict[str, Any]:
        """A `[directories.NAME]` table pointing at this simulator."""
        table: dict[str, Any] = {
            "kind": "entra", "tenant_id": self.tenant.tenant_id,
            "client_id": self.tenant.client_id, "client_secret_env": secret_env,
            "authority_host": self.authority_host, "graph_url": self.graph_url,
            "ca_bundle": self.ca_path,
        }
        if assigned:
            table["service_principal_id"] = self.tenant.service_principal_id
        table.update(extra)
        return table

    # --- vendor fault helpers -----------------------------------------------------------

    def expire_delta_link(self, endpoint: str = "users.delta", times: int = 1) -> None:
        self.inject(Fault.VENDOR, endpoint=endpoint, times=times, detail="expired-delta")

    def require_resync(self, endpoint: str = "users.delta", times: int = 1) -> None:
        self.inject(Fault.VENDOR, endpoint=endpoint, times=times, detail="resync")

    # --- framework hooks ----------------------------------------------------------------

    def graph_error(self, status: int, code: str | None = None, message: str | None = None,
                    headers: Headers | None = None) -> Response:
        default_code, default_message = ERROR_CODES.get(status, ("generalException", "Error."))
        return Response.json({"error": {
            "code": code or default_code, "message": message or default_message,
            "innerError": {"date": self.clock().strftime("%Y-%m-%dT%H:%M:%S"),
                           "request-id": str(uuid.uuid4()),
                           "client-request-id": str(uuid.uuid4())},
        }}, status, headers or [])

    def error_response(self, request: Request, status: int) -> Response:
        if not request.path.startswith("/v1.0/"):
            error = {429: "temporarily_unavailable", 503: "temporarily_unavailable"}.get(
                status, "server_error" if status >= 500 else "invalid_request")
            return self.identity._error(status, error, 90033 if status >= 500 else 90000,
                                        "A transient error has occurred. Please try again.")
        return self.graph_error(status)

    def throttle_headers(self, request: Request) -> Headers:
        return [("Retry-After", str(self.retry_after_seconds)),
                ("x-ms-throttle-scope",
                 f"Tenant_Application/ReadWrite/{self.tenant.client_id}/{self.tenant.tenant_id}"),
                ("x-ms-throttle-information", "ResourceUnitLimitExceeded")]

    def vendor_fault(self, request: Request, response: Response, detail: Any) -> Response:
        if detail == "expired-delta":
            return self.graph_error(410, "syncStateNotFound",
                                    "The sync state generation is not found. The delta token "
                                    "is expired and data must be synchronized again.")
        if detail == "resync":
            return self._resync_response(request)
        if detail == "503-retry-after":
            return self.graph_error(503, headers=[("Retry-After", str(self.retry_after_seconds))])
        if detail == "401":
            return self.graph_error(401)
        if detail == "403":
            return self.graph_error(403)
        return response

    def before_request(self, request: Request) -> Response | None:
        if not request.path.startswith("/v1.0/"):
            return None
        reason = self.identity.check_bearer(request)
        if reason is not None:
            return self.graph_error(401, message=reason)
        if self.tenant.consent_revoked:
            return self.graph_error(403)
        budget = self.throttle_budget or budget_for(len(self.tenant.users))
        wait = self._budget.charge(self._cost(request), budget)
        if wait is not None:
            return self.graph_error(429, "TooManyRequests",
                                    "Too many requests, please retry after some time.",
                                    [("Retry-After", str(max(1, math.ceil(wait)))),
                                     *self.throttle_headers(request)[1:]])
        return None

    def after_response(self, request: Request, response: Response) -> Response:
        if request.path.startswith("/v1.0/") and response.status < 400:
            response.headers.append(("x-ms-resource-unit", str(self._cost(request))))
        return response

    def _cost(self, request: Request) -> int:
        base = {"users": 2, "groups.members": 3}.get(request.endpoint, 1)
        if base > 1 and request.arg("$select"):
            base -= 1
        top = request.arg("$top")
        if top and top.isdigit() and int(top) < 20:
            base -= 1
        return max(1, base)

    # --- delta ----------------------------------------------------------------------------

    def _users_delta(self, request: Request) -> Response:
        return self._delta(request, "u", USER_FIELDS)

    def _groups_delta(self, request: Request) -> Response:
        return self._delta(request, "g", GROUP_FIELDS)

    def _delta(self, request: Request, kind: str, allowed: tuple[str, ...]) -> Response:
        path = request.path
        skip, delta = request.arg("$skiptoken"), request.arg("$deltatoken")
        refused = [f for f in _select(request, allowed) if kind == "u" and f in self.tenant.users_delta_refuses]
        if refused:  # only a round's first request carries `$select`; its links encode it
            return self.graph_error(400, "BadRequest", "Invalid request for delta query: for this entity set, "
                                    f"$expand/$select is not supported for the following properties: {','.join(refused)}")
        try:
            if skip:
                page = self.delta.resume_skip(skip)
            elif delta == "latest":
                page = self.delta.latest(kind, _select(request, allowed))
            elif delta:
                page = self.delta.resume_delta(delta)
            else:
                page = self.delta.start(kind, _select(request, allowed))
        except DeltaGone as gone:
            if gone.code == "resyncRequired":
                return self._resync_response(request)
            return self.graph_error(410, gone.code, gone.message)
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata#"
                                f"{'users' if kind == 'u' else 'groups'}(...)"}
        if page.next_token is not None:
            body["@odata.nextLink"] = f"{self.base_url}{path}?$skiptoken={page.next_token}"
        if page.delta_token is not None:
            body["@odata.deltaLink"] = f"{self.base_url}{path}?$deltatoken={page.delta_token}"
        body["value"] = page.items
        return Response.json(body)

    def _resync_response(self, request: Request) -> Response:
        location = f"{self.base_url}{request.path}?$deltatoken="
        return self.graph_error(410, "resyncRequired",
                                "Resync required. Replace any local cached copy with the "
                                "results of an initial round.", [("Location", location)])

    # --- lists ------------------------------------------------------------------------------

    def _users(self, request: Request) -> Response:
        t = self.tenant

        def live(oid: str) -> bool:
            user = t.users.get(oid)
            return user is not None and not user.deleted

        def lookup(prop: str, value: str) -> list[str] | None:
            # Graph matches userPrincipalName and mail case-insensitively.
            if prop not in ("userPrincipalName", "mail"):
                return None
            wanted = value.lower()
            return [oid for oid in t.user_order if live(oid)
                    and str(t.users[oid].to_graph()[prop] or "").lower() == wanted]

        return self._list(request, t.user_order, live,
                          lambda oid: t.users[oid].to_graph(), USER_FIELDS, lookup=lookup)

    def _member_of(self, request: Request) -> Response:
        """The groups a user is a direct member of (`/users/{id}/memberOf`)."""
        t = self.tenant
        uid = request.params["id"]
        user = t.users.get(uid)
        if user is None or user.deleted:
            return self.graph_error(404, message=f"Resource '{uid}' does not exist or one of "
                                    "its queried reference-property objects are not present.")
        order = [gid for gid in t.group_order if gid in t.groups and uid in t.groups[gid].members]
        return self._list(request, order, lambda gid: gid in t.groups,
                          lambda gid: {"@odata.type": "#microsoft.graph.group", "id": gid,
                                       "displayName": t.groups[gid].display_name},
                          ("id", "displayName"), keep=("@odata.type",))

    def _groups(self, request: Request) -> Response:
        t = self.tenant
        return self._list(request, t.group_order, lambda oid: oid in t.groups,
                          lambda oid: {"id": oid, "displayName": t.groups[oid].display_name},
                          ("id", "displayName"))

    def _members(self, request: Request) -> Response:
        group = self.tenant.groups.get(request.params["id"])
        if group is None:
            return self.graph_error(404, message=f"Resource '{request.params['id']}' does not "
                                    "exist or one of its queried reference-property objects "
                                    "are not present.")
        users = self.tenant.users
        order = sorted(group.members)
        return self._list(request, order, lambda oid: oid in users,
                          lambda oid: {"@odata.type": USER_TYPE, **users[oid].to_graph()},
                          USER_FIELDS, keep=("@odata.type",))

    def _assigned_to(self, request: Request) -> Response:
        t = self.tenant
        if request.params["id"] != t.service_principal_id:
            return self.graph_error(404, message=f"Resource '{request.params['id']}' does not "
                                    "exist or one of its queried reference-property objects "
                                    "are not present.")

        def record(pid: str) -> dict[str, Any]:
            ptype, assignment_id = t.assignments[pid]
            name = (t.users[pid].display_name if ptype == "User" else t.groups[pid].display_name)
            return {"id": assignment_id, "appRoleId": "00000000-0000-0000-0000-000000000000",
                    "createdDateTime": "2026-01-01T00:00:00Z", "principalDisplayName": name,
                    "principalId": pid, "principalType": ptype, "resourceId": t.service_principal_id,
                    "resourceDisplayName": "dirsync"}

        order = list(t.assignments)
        return self._list(request, order, lambda pid: pid in t.assignments, record,
                          ("id", "appRoleId", "createdDateTime", "principalDisplayName",
                           "principalId", "principalType", "resourceId", "resourceDisplayName"))

    def _list(self, request: Request, order: list[str], exists: Callable[[str], bool],
              render: Callable[[str], dict[str, Any]], allowed: tuple[str, ...],
              keep: tuple[str, ...] = (),
              lookup: Callable[[str, str], list[str] | None] | None = None) -> Response:
        """One page of a plain list: `$top` 1-999, `$select`, `$filter` by id, `$skiptoken`."""
        top_raw = request.arg("$top")
        if top_raw is not None and (not top_raw.isdigit() or not 1 <= int(top_raw) <= 999):
            return self.graph_error(400, "Request_BadRequest",
                                    f"Invalid page size specified: '{top_raw}'. Must be between "
                                    "1 and 999 inclusive.")
        top = int(top_raw) if top_raw else self.list_page_default
        select = _select(request, allowed)
        ids: list[str] | None = None
        if request.arg("$filter"):
            expression = request.arg("$filter") or ""
            ids = _filter_ids(expression)
            match = _FILTER_PROPERTY.match(expression)
            if ids is None and match and lookup is not None:
                ids = lookup(match.group(1), match.group(2).replace("''", "'"))
            if ids is None:
                return self.graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.")
            if len(ids) > MAX_FILTER_IDS:
                return self.graph_error(400, "Request_UnsupportedQuery",
                                        "Too many child clauses specified in search filter "
                                        f"expression containing 'OR' operators: {len(ids)}. "
                                        f"Max allowed: {MAX_FILTER_IDS}.")
        start = 0
        skip = request.arg("$skiptoken")
        if skip:
            state = decode_token(skip)
            if state is None or not isinstance(state.get("o"), int):
                return self.graph_error(400, "Request_BadRequest", "Invalid skip token.")
            start = state["o"]
        source = ids if ids is not None else order
        items: list[dict[str, Any]] = []
        index = start
        while index < len(source) and len(items) < top:
            oid = source[index]
            index += 1
            if exists(oid):
                record = render(oid)
                items.append({**{k: record[k] for k in keep if k in record},
                              **project(record, select)})
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata#..."}
        if index < len(source):
            query = [f"$top={top}"]
            if select:
                query.append("$select=" + quote(",".join(select), safe=","))
            if request.arg("$filter"):
                query.append("$filter=" + quote(request.arg("$filter") or "", safe=""))
            query.append("$skiptoken=" + encode_token({"o": index}))
            body["@odata.nextLink"] = f"{self.base_url}{request.path}?" + "&".join(query)
        body["value"] = items
        return Response.json(body)


def _select(request: Request, allowed: tuple[str, ...]) -> list[str]:
    raw = request.arg("$select") or ""
    return [f for f in (s.strip() for s in raw.split(",")) if f in allowed]


def _filter_ids(expression: str) -> list[str] | None:
    """Ids from `id in ('a','b')` or `id eq 'a' or id eq 'b'`; None if unsupported."""
    found = _FILTER_IN.match(expression)
    if found:
        parts = [p.strip() for p in found.group(1).split(",") if p.strip()]
        if not all(p.startswith("'") and p.endswith("'") for p in parts):
            return None
        return [p[1:-1] for p in parts]
    ids = []
    for clause in re.split(r"\s+or\s+", expression, flags=re.IGNORECASE):
        eq = _FILTER_EQ.match(clause)
        if eq is None:
            return None
        ids.append(eq.group(1))
    return ids


def run_cli(users: int, groups: int, seed: int, port: int) -> None:
    """Serve a generated tenant until interrupted (see `simulators.serve`)."""
    from simulators.serve import serve

    serve("entra", users=users, groups=groups, seed=seed, port=port)
