"""A small framework for local, stateful HTTPS fakes of vendor APIs (Okta, Microsoft Graph).

The real vendor SDKs talk to these servers over TLS with a test CA, so tests exercise the
SDK exactly as production does, with nothing patched.

Building a vendor simulator
---------------------------
Subclass `SimulatorServer`, register routes, and override the hooks you need::

    class GraphSimulator(SimulatorServer):
        def __init__(self) -> None:
            super().__init__()
            self.users: dict[str, dict] = {}            # vendor state, guarded by self.lock
            self.add_route("GET", "/v1.0/users/{id}", self.get_user, name="users.get")

        def get_user(self, request: Request) -> Response:   # called with self.lock held
            user = self.users.get(request.params["id"])
            if user is None:
                return self.error_response(request, 404)
            return Response.json(user)

        # hooks (all optional):
        def error_response(self, request, status): ...   # the vendor's error body for a status
        def throttle_headers(self, request): ...         # reset headers sent with Fault.HTTP_429
        def vendor_fault(self, request, response, detail): ...  # Fault.VENDOR: rewrite a response

    with GraphSimulator() as sim:          # start()/stop() also work
        sim.base_url                       # "https://127.0.0.1:<port>"
        sim.ca_path                        # PEM file of the test CA, to trust in clients
        sim.inject(Fault.HTTP_503, endpoint="users.get", times=2)
        ...
        sim.counts()                       # {"users.get": 3}

Routing
-------
`add_route(method, pattern, handler, name=None)`: `pattern` is a path with `{param}`
segments (each matches one path segment, available as `request.params`). Routes are tried
in registration order; `name` (default `"METHOD pattern"`) is the endpoint name used for
counters, the request log and `inject(endpoint=...)`. Unmatched requests are answered by
`error_response(request, 404)` and counted under `"unmatched"`.
A handler takes a `Request` (method, path, query as `dict[str, list[str]]`, `arg(name)`,
headers (lower-case keys), body, `json()`, `form()`) and returns a `Response(status,
headers, body)`. Headers are a list of (name, value) pairs, so a name may repeat (two
`Link` headers). `Response.json(obj)` serialises; `Response(200, [...], bytes)` sends
pre-serialised bytes as they are. The server adds `Date` (from `self.clock`),
`Content-Length` and, when absent, `Content-Type: application/json`. `Request` and
`Response` live in `simulators.messages`; `simulators.wire` parses the one and writes the other.

Instrumentation
---------------
Every request gets a global 1-based `index` (`request_index` is the count so far), is
counted per endpoint (`counts()`, `reset_counts()`), and is recorded in `requests()` as a
`RequestRecord` (index, method, target = path + query, endpoint, selected headers as in
`logged_headers`, the fault applied, the status sent).

Faults
------
`inject(fault, ...)`, `hang()`, `latency(seconds)`, `clear_faults()` and `pending_faults()`
come from `simulators.faults` (`FaultInjection`), which lists what each `Fault` does and
holds `refusing_port()`; `_serve` here applies the fault a request takes.

State and threads
-----------------
Requests are served on threads (`ThreadingHTTPServer`, HTTP/1.1 keep-alive). Handlers run
with `self.lock` (an `RLock`) held, so vendor state needs no other locking; test code that
mutates state from outside takes the same lock (`with sim.lock: ...`), or calls vendor
methods that do. `clock` (a callable returning an aware UTC datetime) drives the `Date`
header; vendor simulators share it with their own timestamps so a test can run the whole
org on a manual clock (`simulators.clocks.ManualClock`).

TLS
---
A server serves a certificate of the process's test CA (`simulators.tls`); `use_ca(ca)`
before `start()` makes it serve another, such as `persistent_ca(directory)`'s.

Admin routes and stopping
-------------------------
`add_admin_route(method, pattern, handler)` serves `pattern` under `/_admin` for
`admin_token` (`Authorization: Bearer <token>`; 401 otherwise, 404 while no token is set).
Admin requests change state from outside, as a person would in the vendor's console: they
are not counted, logged, delayed or faulted, and skip the vendor's hooks (authentication,
rate limits). `stop()` closes the listening socket and every open connection, so it returns
promptly even with idle keep-alive clients or held requests.
"""

from __future__ import annotations

import email.utils
import http.client
import re
import secrets
import ssl
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from simulators.clocks import real_clock
from simulators.faults import MALFORMED_BODY, Fault, FaultInjection, PendingFault
from simulators.messages import Handler, Headers, Request, Response
from simulators.tls import TestCA, test_ca
from simulators.wire import _HTTPServer, _RequestHandler

__all__ = [
    "RequestRecord",
    "SimulatorServer",
]


# --- the request log and routes -------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One served request, as kept in the request log."""

    index: int
    method: str
    target: str
    endpoint: str
    headers: dict[str, str]
    fault: Fault | None
    status: int | None  # None: no answer was sent (RESET)


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    name: str
    admin: bool = False


ADMIN_PREFIX = "/_admin"


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-zA-Z_][a-zA-Z0-9_]*\})", pattern)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


# --- the server ------------------------------------------------------------------------


class SimulatorServer(FaultInjection):
    """A threaded HTTPS server on 127.0.0.1 with routing, instrumentation and fault injection."""

    logged_headers: tuple[str, ...] = ("authorization", "user-agent", "content-type")
    timeout_hold_seconds: float = 5.0
    max_hold_seconds: float = 120.0

    def __init__(self, *, port: int = 0, clock: Callable[[], datetime] = real_clock) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._port = port
        self._routes: list[_Route] = []
        self._counts: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=100_000)
        self._index = 0
        self._faults: list[PendingFault] = []
        self._latency = 0.0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ca = test_ca()
        self.admin_token: str | None = None

    # -- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", self._port), _RequestHandler, self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"{type(self).__name__}:{httpd.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port closes, open connections (idle keep-alive ones and held
        requests included) are cut, and this returns without waiting for clients."""
        if self._httpd is None:
            return
        self._stopping.set()  # ends TIMEOUT holds, HANG holds and latency waits
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def use_ca(self, ca: TestCA) -> None:
        """Serve with `ca`'s certificate (e.g. `persistent_ca(...)`); call before `start()`."""
        if self._httpd is not None:
            raise RuntimeError("use_ca() must be called before start()")
        self._ca = ca

    def new_admin_token(self) -> str:
        """Set and return a fresh random `admin_token`."""
        self.admin_token = "adm-" + secrets.token_urlsafe(24)
        return self.admin_token

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the simulator is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        return self._ca.ca_path

    def client_ssl_context(self) -> ssl.SSLContext:
        return self._ca.client_context()

    # -- routing

    def add_route(self, method: str, pattern: str, handler: Handler, name: str | None = None) -> None:
        self._routes.append(_Route(method.upper(), _compile(pattern), handler, name or f"{method.upper()} {pattern}"))

    def add_admin_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve `ADMIN_PREFIX + pattern` to holders of `admin_token` (module docstring)."""
        route = _Route(method.upper(), _compile(ADMIN_PREFIX + pattern), handler,
                       f"admin {method.upper()} {pattern}", admin=True)
        self._routes.insert(0, route)  # before vendor routes, whose patterns may be broad

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method != method:
                continue
            found = route.regex.match(path)
            if found:
                return route, found.groupdict()
        return None, {}

    # -- instrumentation

    def counts(self) -> dict[str, int]:
        """Requests served per endpoint name since start or the last `reset_counts()`."""
        with self.lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self.lock:
            self._counts.clear()

    def requests(self) -> list[RequestRecord]:
        """The request log, oldest first (the last 100,000)."""
        with self.lock:
            return list(self._log)

    @property
    def request_index(self) -> int:
        """How many requests this server has received so far."""
        with self.lock:
            return self._index

    # -- hooks for vendor simulators

    def error_response(self, request: Request, status: int) -> Response:
        """The vendor's error answer for `status`; override for the vendor's body shape."""
        return Response.json({"error": http.client.responses.get(status, "error")}, status)

    def throttle_headers(self, request: Request) -> Headers:
        """Headers telling the client when to retry a 429 (`Fault.HTTP_429`)."""
        return [("Retry-After", "1")]

    def vendor_fault(self, request: Request, response: Response, detail: Any) -> Response:
        """`Fault.VENDOR`: rewrite the normal `response`. The default leaves it alone."""
        return response

    def before_request(self, request: Request) -> Response | None:
        """Called under the lock before the handler (e.g. authentication, rate limits);
        an answer returned here replaces the handler's."""
        return None

    def after_response(self, request: Request, response: Response) -> Response:
        """Called under the lock after the handler (e.g. rate-limit headers)."""
        return response

    # -- serving (called from request threads)

    def _serve_admin(self, request: Request) -> Response:
        """An admin request: authenticated by `admin_token`, outside all instrumentation."""
        token = self.admin_token
        if token is None:
            return Response.json({"error": "this simulator has no admin API"}, 404)
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response.json({"error": "the admin token is missing or wrong"}, 401)
        with self.lock:
            route, params = self._match(request.method, request.path)
            if route is None or not route.admin:
                return Response.json({"error": f"no admin action {request.method} {request.path}"}, 404)
            request.params = params
            request.endpoint = route.name
            return route.handler(request)

    def _serve(self, request: Request, abort: Callable[[], None]) -> tuple[Response | None, Fault | None]:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return self._serve_admin(request), None
        with self.lock:
            self._index += 1
            request.index = self._index
            route, params = self._match(request.method, request.path)
            request.params = params
            request.endpoint = route.name if route else "unmatched"
            self._counts[request.endpoint] += 1
            pending = self._take_fault(request.endpoint)
            delay = self._latency
        if delay:
            self._stopping.wait(delay)
        fault = pending.fault if pending else None
        response: Response
        if fault in (Fault.RESET, Fault.HANG):
            self._record(request, fault, None)
            if fault is Fault.HANG:
                self._stopping.wait()  # until stop(): then the connection closes unanswered
            abort()  # raises: nothing is sent
            return None, fault
        if fault in (Fault.HTTP_429, Fault.HTTP_429_BARE, Fault.HTTP_500, Fault.HTTP_503):
            status = 429 if fault in (Fault.HTTP_429, Fault.HTTP_429_BARE) else int(fault.value[-3:])
            with self.lock:
                response = self.error_response(request, status)
                if fault is Fault.HTTP_429:
                    response.headers.extend(self.throttle_headers(request))
        else:
            if fault is Fault.TIMEOUT:
                hold = pending.seconds if pending and pending.seconds is not None else self.timeout_hold_seconds
                self._stopping.wait(min(hold, self.max_hold_seconds))
            with self.lock:
                response = self._handle(request, route)
                if fault is Fault.MALFORMED_JSON:
                    response = Response(response.status, response.headers, MALFORMED_BODY)
                elif fault is Fault.TRUNCATED:
                    response = Response(response.status, response.headers, response.body[: max(1, len(response.body) // 2)])
                elif fault is Fault.VENDOR:
                    response = self.vendor_fault(request, response, pending.detail if pending else None)
        self._record(request, fault, response.status)
        return response, fault

    def _record(self, request: Request, fault: Fault | None, status: int | None) -> None:
        with self.lock:
            self._log.append(
                RequestRecord(
                    index=request.index,
                    method=request.method,
                    target=request.target,
                    endpoint=request.endpoint,
                    headers={k: request.headers[k] for k in self.logged_headers if k in request.headers},
                    fault=fault,
                    status=status,
                )
            )

    def _handle(self, request: Request, route: _Route | None) -> Response:
        early = self.before_request(request)
        if early is not None:
            return self.after_response(request, early)
        if route is None:
            return self.after_response(request, self.error_response(request, 404))
        try:
            response = route.handler(request)
        except Exception:  # a simulator bug must show up as a 500, not a hung client
            import traceback

            traceback.print_exc()
            response = self.error_response(request, 500)
        return self.after_response(request, response)

    def http_date(self) -> str:
        return email.utils.format_datetime(self.clock().astimezone(UTC), usegmt=True)
