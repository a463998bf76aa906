"""A local Okta Management API over HTTPS, faithful to Okta's documentation where dirsync uses it.

    org = OktaOrg.generate(users=500, groups=20, memberships=1500, seed=7)
    with OktaSimulator(org) as sim:
        sim.base_url, sim.api_token, sim.ca_path     # what a client needs
        org.hire("Ada", "Lovelace")                  # admin actions: see okta_org.py
        sim.inject(Fault.HTTP_503, endpoint="users.list")
        sim.inject(Fault.VENDOR, endpoint="users.list", detail=OktaSimulator.REORDERED_LINKS)
        sim.counts()                                 # {"users.list": 3, "logs": 1, ...}

Endpoints (endpoint names in brackets are what `counts()` and `inject(endpoint=)` use):
- `GET /api/v1/users` [users.list]: `limit` (default and max 200), `after`, `filter`
  (`status`/`id`/`profile.login|email|firstName|lastName` `eq`; `lastUpdated` `eq/gt/ge/lt/le`;
  `and`/`or`/parentheses), `search` (any attribute; `eq/sw/co/gt/ge/lt/le/pr`), `q`.
  Without `filter`/`search`, DEPROVISIONED users are left out, as in Okta.
- `GET /api/v1/users/{id}` [users.get]
- `GET /api/v1/users/{id}/groups` [users.groups]: the groups the user is a member of.
- `GET /api/v1/groups` [groups.list]: `limit` (default and max 10000), `after`, `filter` (`id`,
  `type` `eq`; `lastUpdated`, `lastMembershipUpdated` `eq/gt/ge/lt/le`), `search`, `q`,
  `expand=stats`.
- `GET /api/v1/groups/{id}/users` [groups.users]: `limit` (default and max 1000), `after`.
- `GET /api/v1/apps/{id}/users` [apps.users]: `limit` (default 50, max 500), `after`,
  `expand=user` (`_embedded.user`); AppUser `scope` is USER (direct) or GROUP.
- `GET /api/v1/apps/{id}/users/{userId}` [apps.user]: 404 when not assigned.
- `GET /api/v1/apps/{id}/groups` [apps.groups]: `limit` (default 20, max 200), `after`,
  `expand=group`.
- `GET /api/v1/logs` [logs]: `since`, `until`, `after`, `filter` (`eventType`,
  `target.id` ... `eq`), `limit` (default 100, max 1000). A polling request (no `until`)
  always carries a `next` link, even on an empty page, and returns events in the order they
  were persisted, which is not `published` order when some were persisted late
  (`OktaOrg.held_log`).
- `POST /oauth2/v1/token` [oauth.token]: `client_credentials` with a `private_key_jwt`
  client assertion, verified against the public key given to `register_service_app`.

Every answer carries `X-Rate-Limit-Limit/-Remaining/-Reset` for its bucket (Okta's published
Workforce per-minute limits unless `rate_limits` says otherwise) and `X-Okta-Request-Id`;
an empty bucket answers 429 `E0000047`. Lists send two `Link` headers, self then next.
Errors use Okta's body (`errorCode`, `errorSummary`, `errorLink`, `errorId`,
`errorCauses`); a bad token is 401 `E0000011`; an OAuth token without the endpoint's scope is
403 `E0000006`. Both `SSWS <token>` and `SSWS<token>` (what the SDK sends) are accepted.
Tokens, OAuth service apps and rate limits are `simulators.okta_access`, paging
`simulators.okta_paging`: the base classes `OktaAccess` and `OktaPaging` of `OktaSimulator`.

Okta-specific faults for `inject(Fault.VENDOR, detail=...)`: `REORDERED_LINKS` (next before
self), `COMBINED_LINK` (one `Link` header holding both), `EXPIRED_CURSOR` (400 for the page).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from simulators.faults import Fault
from simulators.messages import Headers, Request, Response
from simulators.okta_access import DEFAULT_RATE_LIMITS, Bucket, OktaAccess, ServiceApp
from simulators.okta_filter import AnyPath, FilterError, compile_expression, normalise_date
from simulators.okta_org import OktaOrg
from simulators.okta_paging import OktaPaging
from simulators.okta_records import okta_time

__all__ = ["DEFAULT_RATE_LIMITS", "Fault", "OktaOrg", "OktaSimulator", "run_cli"]

ERRORS = {
    400: ("E0000001", "Api validation failed"),
    401: ("E0000011", "Invalid token provided"),
    403: ("E0000006", "You do not have permission to perform the requested action"),
    404: ("E0000007", "Not found: Resource not found"),
    429: ("E0000047", "API call exceeded rate limit due to too many requests."),
    500: ("E0000009", "Internal Server Error"),
    503: ("E0000009", "Service Unavailable"),
}
USER_FILTER = {
    "status": {"eq"},
    "id": {"eq"},
    "profile.login": {"eq"},
    "profile.email": {"eq"},
    "profile.firstName": {"eq"},
    "profile.lastName": {"eq"},
    "lastUpdated": {"eq", "gt", "ge", "lt", "le"},
}
GROUP_FILTER = {
    "id": {"eq"},
    "type": {"eq"},
    "lastUpdated": {"eq", "gt", "ge", "lt", "le"},
    "lastMembershipUpdated": {"eq", "gt", "ge", "lt", "le"},
}
LOG_FILTER = {"eventType": {"eq"}, "target.id": {"eq"}, "actor.id": {"eq"}, "outcome.result": {"eq"}}
SEARCH_OPS = {"eq", "sw", "co", "gt", "ge", "lt", "le", "pr"}


class OktaSimulator(OktaAccess, OktaPaging):
    """An Okta org served over HTTPS; see the module docstring for endpoints and faults."""

    REORDERED_LINKS = "reordered-links"
    COMBINED_LINK = "combined-link"
    EXPIRED_CURSOR = "expired-cursor"

    logged_headers = ("authorization", "user-agent", "x-okta-retry-count")

    def __init__(
        self,
        org: OktaOrg | None = None,
        *,
        port: int = 0,
        api_token: str | None = None,
        rate_limits: Mapping[str, int] | None = None,
        rate_window_seconds: float = 60.0,
        fault_reset_seconds: int = 1,
        access_token_seconds: int = 3600,
    ) -> None:
        self.org = org or OktaOrg()
        super().__init__(port=port, clock=self.org.clock)
        self.lock = self.org.lock  # one lock for the org and the server
        self.api_token = api_token or "00" + secrets.token_urlsafe(30)
        self.api_tokens = {self.api_token}
        self.rate_limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self.rate_window_seconds = rate_window_seconds
        self.fault_reset_seconds = fault_reset_seconds
        self.access_token_seconds = access_token_seconds
        self.service_apps: dict[str, ServiceApp] = {}
        self.access_tokens: dict[str, tuple[str, frozenset[str], float]] = {}
        self._used_jtis: set[str] = set()
        self._buckets: dict[str, Bucket] = {}
        self._bucket_of: dict[int, str] = {}
        for method, pattern, handler, name in (
            ("GET", "/api/v1/users", self._list_users, "users.list"),
            ("GET", "/api/v1/users/{user_id}", self._get_user, "users.get"),
            ("GET", "/api/v1/users/{user_id}/groups", self._list_user_groups, "users.groups"),
            ("GET", "/api/v1/groups", self._list_groups, "groups.list"),
            ("GET", "/api/v1/groups/{group_id}/users", self._list_group_users, "groups.users"),
            ("GET", "/api/v1/apps/{app_id}/users", self._list_app_users, "apps.users"),
            ("GET", "/api/v1/apps/{app_id}/users/{user_id}", self._get_app_user, "apps.user"),
            ("GET", "/api/v1/apps/{app_id}/groups", self._list_app_groups, "apps.groups"),
            ("GET", "/api/v1/logs", self._list_logs, "logs"),
            ("POST", "/oauth2/v1/token", self._token, "oauth.token"),
        ):
            self.add_route(method, pattern, handler, name)

    def start(self) -> OktaSimulator:
        super().start()
        self.org.set_org_url(self.base_url)
        return self

    def __enter__(self) -> OktaSimulator:
        return self.start()

    # -- hooks

    def error_response(self, request: Request, status: int, summary: str | None = None, code: str | None = None,
                       causes: Iterable[str] = ()) -> Response:
        default_code, default_summary = ERRORS.get(status, ("E0000009", "Internal Server Error"))
        code = code or default_code
        body = {
            "errorCode": code,
            "errorSummary": summary or default_summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_hex(10),
            "errorCauses": [{"errorSummary": cause} for cause in causes],
        }
        return Response.json(body, status)

    def vendor_fault(self, request: Request, response: Response, detail: Any) -> Response:
        links = [(k, v) for k, v in response.headers if k.lower() == "link"]
        others = [(k, v) for k, v in response.headers if k.lower() != "link"]
        if detail == self.REORDERED_LINKS:
            return Response(response.status, others + links[::-1], response.body)
        if detail == self.COMBINED_LINK:
            combined = [("Link", ", ".join(v for _, v in links))] if links else []
            return Response(response.status, others + combined, response.body)
        if detail == self.EXPIRED_CURSOR:
            return self.error_response(request, 400, "Api validation failed: after", causes=["after: the cursor has expired"])
        raise ValueError(f"unknown Okta fault {detail!r}")

    def _bad_filter(self, request: Request, error: FilterError) -> Response:
        return self.error_response(request, 400, "Invalid search criteria.", code="E0000031", causes=[str(error)])

    # -- handlers (called with the lock held)

    def _list_users(self, request: Request) -> Response:
        org = self.org
        try:
            keep = self._user_predicate(request)
            q = request.arg("q")
            if q is not None and not request.arg("filter") and not request.arg("search"):
                # `q`: prefix match, no pagination, DEPROVISIONED left out
                needle = q.lower()
                limit = self._limit(request, 10, 200)
                matches = [u for u in org.user_ids if org.users[u]["status"] != "DEPROVISIONED" and any(
                    str(org.users[u]["profile"].get(f) or "").lower().startswith(needle)
                    for f in ("firstName", "lastName", "email"))][:limit]
                return Response(200, [("Content-Type", "application/json")],
                                b"[" + b",".join(org.user_bytes(u) for u in matches) + b"]")
            return self._paged(request, org.user_ids, 200, 200, keep, org.user_bytes)
        except FilterError as error:
            return self._bad_filter(request, error)

    def _user_predicate(self, request: Request) -> Callable[[str], bool]:
        users = self.org.users
        expression, search = request.arg("filter"), request.arg("search")
        if expression is None and search is None:
            return lambda u: users[u]["status"] != "DEPROVISIONED"
        predicates = []
        if expression is not None:
            predicates.append(compile_expression(expression, USER_FILTER, {"lastUpdated"}))
        if search is not None:
            predicates.append(compile_expression(search, AnyPath(SEARCH_OPS)))
        if len(predicates) == 1:  # the usual case: no generator per user (a list scans them all)
            only = predicates[0]
            return lambda u: only(users[u])
        return lambda u: all(p(users[u]) for p in predicates)

    def _get_user(self, request: Request) -> Response:
        user_id = request.params["user_id"]
        if user_id not in self.org.users:
            found = [u for u in self.org.user_ids if self.org.users[u]["profile"].get("login") == user_id]
            if not found:
                return self.error_response(request, 404, f"Not found: Resource not found: {user_id} (User)")
            user_id = found[0]
        return Response(200, [("Content-Type", "application/json")], self.org.user_bytes(user_id))

    def _list_user_groups(self, request: Request) -> Response:
        user_id = request.params["user_id"]
        if user_id not in self.org.users:
            return self.error_response(request, 404, f"Not found: Resource not found: {user_id} (User)")
        ids = [g for g in self.org.group_ids if user_id in self.org.members[g]]
        try:
            return self._paged(request, ids, 10000, 10000, lambda g: True,
                               lambda g: json.dumps(self.org.groups[g], separators=(",", ":")).encode())
        except FilterError as error:
            return self._bad_filter(request, error)

    def _list_groups(self, request: Request) -> Response:
        org = self.org
        try:
            predicates = []
            if request.arg("filter") is not None:
                predicates.append(compile_expression(request.arg("filter") or "", GROUP_FILTER,
                                                     {"lastUpdated", "lastMembershipUpdated"}))
            if request.arg("search") is not None:
                predicates.append(compile_expression(request.arg("search") or "", AnyPath(SEARCH_OPS)))
            q = (request.arg("q") or "").lower()
            if q:
                predicates.append(lambda g: str(g["profile"]["name"]).lower().startswith(q))
            stats = "stats" in (request.arg("expand") or "")

            def render(group_id: str) -> bytes:
                group = org.groups[group_id]
                if stats:
                    group = {**group, "_embedded": {"stats": {"usersCount": len(org.members[group_id])}}}
                return json.dumps(group, separators=(",", ":")).encode()

            return self._paged(request, org.group_ids, 10000, 10000,
                               lambda g: all(p(org.groups[g]) for p in predicates), render)
        except FilterError as error:
            return self._bad_filter(request, error)

    def _list_group_users(self, request: Request) -> Response:
        group_id = request.params["group_id"]
        if group_id not in self.org.groups:
            return self.error_response(request, 404, f"Not found: Resource not found: {group_id} (UserGroup)")
        try:
            return self._paged(request, self.org.sorted_members(group_id), 1000, 1000,
                               lambda u: u in self.org.users, self.org.user_bytes)
        except FilterError as error:
            return self._bad_filter(request, error)

    def _app_user_bytes(self, app_id: str, user_id: str, scope: str, expand: bool) -> bytes:
        user = self.org.users[user_id]
        app_user = {
            "id": user_id,
            "externalId": None,
            "created": self.org.app_users[app_id].get(user_id, user["created"]),
            "lastUpdated": user["lastUpdated"],
            "scope": scope,
            "status": "ACTIVE" if user["status"] != "SUSPENDED" else "SUSPENDED",
            "statusChanged": user["statusChanged"],
            "passwordChanged": None,
            "syncState": "DISABLED",
            "credentials": {"userName": user["profile"].get("login")},
            "profile": {},
            "_links": {"app": {"href": f"{self.org.org_url}/api/v1/apps/{app_id}"},
                       "user": {"href": f"{self.org.org_url}/api/v1/users/{user_id}"}},
        }
        encoded = json.dumps(app_user, separators=(",", ":")).encode()
        if not expand:
            return encoded
        return encoded[:-1] + b',"_embedded":{"user":' + self.org.user_bytes(user_id) + b"}}"

    def _list_app_users(self, request: Request) -> Response:
        app_id = request.params["app_id"]
        if app_id not in self.org.apps:
            return self.error_response(request, 404, f"Not found: Resource not found: {app_id} (AppInstance)")
        ids, scopes = self.org.app_user_ids(app_id)
        expand = request.arg("expand") == "user"
        try:
            return self._paged(request, ids, 50, 500, lambda u: True,
                               lambda u: self._app_user_bytes(app_id, u, scopes[u], expand))
        except FilterError as error:
            return self._bad_filter(request, error)

    def _get_app_user(self, request: Request) -> Response:
        app_id, user_id = request.params["app_id"], request.params["user_id"]
        if app_id not in self.org.apps:
            return self.error_response(request, 404, f"Not found: Resource not found: {app_id} (AppInstance)")
        _, scopes = self.org.app_user_ids(app_id)
        if user_id not in scopes:
            return self.error_response(request, 404, f"Not found: Resource not found: {user_id} (AppUser)")
        body = self._app_user_bytes(app_id, user_id, scopes[user_id], request.arg("expand") == "user")
        return Response(200, [("Content-Type", "application/json")], body)

    def _list_app_groups(self, request: Request) -> Response:
        app_id = request.params["app_id"]
        if app_id not in self.org.apps:
            return self.error_response(request, 404, f"Not found: Resource not found: {app_id} (AppInstance)")
        assigned = self.org.app_groups[app_id]
        ids = sorted(g for g in assigned if g in self.org.groups)
        expand = request.arg("expand") == "group"

        def render(group_id: str) -> bytes:
            body: dict[str, Any] = {"id": group_id, "lastUpdated": assigned[group_id], "priority": 0, "profile": {},
                                    "_links": {"group": {"href": f"{self.org.org_url}/api/v1/groups/{group_id}"}}}
            if expand:
                body["_embedded"] = {"group": self.org.groups[group_id]}
            return json.dumps(body, separators=(",", ":")).encode()

        try:
            return self._paged(request, ids, 20, 200, lambda g: True, render)
        except FilterError as error:
            return self._bad_filter(request, error)

    def _list_logs(self, request: Request) -> Response:
        events = self.org.events
        try:
            limit = self._limit(request, 100, 1000)
            keep = compile_expression(request.arg("filter") or "", LOG_FILTER) if request.arg("filter") else None
            until_raw = request.arg("until")
            until = normalise_date(until_raw) if until_raw else None
            after = request.arg("after")
            earliest: str | None = None
            if after is not None:
                if not after.isdigit() or int(after) > len(events):
                    return self.error_response(request, 400, "Api validation failed: after",
                                               causes=["after: not a valid cursor"])
                start = int(after)
            else:
                since_raw = request.arg("since")
                floor = okta_time(self.clock() - timedelta(days=180))
                since = normalise_date(since_raw) if since_raw else okta_time(self.clock() - timedelta(days=7))
                if since < floor:
                    return self.error_response(request, 400, "Api validation failed: since", code="E0000053",
                                               causes=["since: must be within the last 180 days"])
                # events are in persistence order, so `published` is not sorted when some
                # were persisted late: the first page skips those published before `since`
                start = next((i for i, e in enumerate(events) if e["published"] >= since), len(events))
                earliest = since
        except FilterError as error:
            return self._bad_filter(request, error)
        page: list[dict[str, Any]] = []
        position = start
        while position < len(events) and len(page) < limit:
            event = events[position]
            if until is not None and event["published"] >= until:
                position = len(events)
                break
            if (keep is None or keep(event)) and (earliest is None or event["published"] >= earliest):
                page.append(event)
            position += 1
        bounded_done = until is not None and position >= len(events)
        next_after = None if bounded_done else str(position)
        headers: Headers = [("Content-Type", "application/json")] + self._links(request, next_after)
        return Response(200, headers, json.dumps(page, separators=(",", ":")).encode())


def run_cli(users: int, groups: int, seed: int, port: int) -> None:
    """Serve a generated org until interrupted (see `simulators.serve`)."""
    from simulators.serve import serve

    serve("okta", users=users, groups=groups, seed=seed, port=port)
