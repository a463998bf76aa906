"""HTTPS to Microsoft Graph: one deliberate `requests.Session` and one retry policy.

Why `requests`: msal already depends on it and needs a session for the token endpoint; one
client keeps one TLS and proxy configuration for both. The Graph SDK (msgraph-sdk) would add
an async stack and kiota models to parse pages we only need a handful of fields from.

TLS: the session sets `trust_env = False`. Many hosts set `REQUESTS_CA_BUNDLE` /
`CURL_CA_BUNDLE`, and with `trust_env` on, requests lets them replace
`Session.verify` silently (measured: a session with `verify=<simulator CA>` was refused
by the simulator while those variables pointed at the system bundle). Instead an
`ssl.SSLContext` is built from the operating system's trust store plus `ca_bundle`, and
mounted on the adapter, so verification is always on and is exactly "system CAs plus the
configured bundle". Proxies from the environment are still honoured, but explicitly, per
host (`HTTPS_PROXY` / `NO_PROXY`), since `trust_env = False` also turns those off.

Retries (S4) follow `connectors.retry`, the policy every connector shares: 429 and 503
wait for `Retry-After` (a wait longer than `max_retry_wait` seconds fails the read at once
as transient, never retried early); other 5xx, timeouts, refused connections, DNS failures,
dropped connections and malformed or truncated pages back off exponentially with jitter;
attempts are bounded by `max_retries` (three for a request that got no answer at all) and
by a total delay, whichever comes first. Every request has a timeout. Every retry is
announced on the `connectors.graph` logger; the final error names the URL and the attempts.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from connectors.errors import (
    AuthError,
    PartialReadError,
    PermanentError,
    TransientError,
)
from connectors.graph_auth import TokenEndpointUnreachable, TokenSource
from connectors.retry import (
    DEFAULT_MAX_RETRY_WAIT_SECONDS,
    Retryable,
    RetryPolicy,
    describe_transport_failure,
    gave_up,
    too_long_to_wait,
)

log = logging.getLogger("connectors.graph")

RESYNC_CODES = {"syncStateNotFound", "resyncRequired", "SyncStateNotFound", "ResyncRequired"}


class ResyncNeeded(TransientError):
    """A delta link can no longer be used (410, syncStateNotFound, resyncRequired)."""


class _TlsAdapter(HTTPAdapter):
    def __init__(self, context: ssl.SSLContext, pool: int) -> None:
        self._context = context
        super().__init__(pool_connections=4, pool_maxsize=pool, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would hand certifi's bundle to every new connection, which urllib3 then
        # loads into our context: certifi's roots would be trusted too, and re-reading the
        # file cost ~26 ms per connection (measured). The context already verifies
        # (CERT_REQUIRED, hostname checked) against exactly the roots chosen above.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    @property
    def context(self) -> ssl.SSLContext:
        return self._context


class _TimeoutSession(requests.Session):
    """A session whose requests always carry a timeout (msal passes none of its own)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str, url: str, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


def make_session(*, ca_bundle: str | None, timeout: float, pool: int,
                 hosts: tuple[str, ...]) -> requests.Session:
    """A session verifying TLS against system CAs plus `ca_bundle`, with a default timeout."""
    context = ssl.create_default_context()  # the OS trust store, not certifi's copy
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    session = _TimeoutSession(timeout)
    session.trust_env = False
    session.verify = True
    session.mount("https://", _TlsAdapter(context, pool))
    for url in hosts:
        proxies = requests.utils.get_environ_proxies(url)
        host = urlsplit(url).hostname
        if proxies.get("https") and host:
            session.proxies[f"https://{host}"] = proxies["https"]
    return session


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class GraphClient:
    """GETs Graph JSON pages with a bearer token, the retry policy and the error taxonomy."""

    def __init__(self, *, directory: str, graph_url: str, session: requests.Session,
                 tokens: TokenSource, max_retries: int, max_total_seconds: float = 300.0,
                 sleep: Callable[[float], object] = time.sleep,
                 cancelled: threading.Event | None = None, timeout: float = 30.0,
                 max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT_SECONDS) -> None:
        self._directory = directory
        self._graph_url = graph_url.rstrip("/")
        self._host = urlsplit(self._graph_url).hostname or self._graph_url
        self._session = session
        self._tokens = tokens
        self._policy = RetryPolicy(max_retries, max_total_seconds, log)
        self._sleep = sleep
        self._cancelled = cancelled or threading.Event()
        self._timeout = timeout
        self._max_wait = max_retry_wait
        self.on_page: Callable[[dict[str, Any]], None] | None = None  # read progress
        self.retries = 0  # retried requests so far (for logs and tests)

    def __repr__(self) -> str:
        return f"GraphClient({self._directory!r}, {self._graph_url!r})"

    def get(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The JSON object at `url` (absolute, on graph_url); raises a ConnectorError."""
        if not url.startswith(self._graph_url + "/"):
            # A nextLink elsewhere would carry our bearer token to another host.
            raise PartialReadError(f"{self._where(url)}: link points outside graph_url")
        args = self._policy.tenacity_args()
        announce = args.pop("before_sleep")

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1
            announce(state)

        retrying = tenacity.Retrying(**args, sleep=self._pause, before_sleep=before_sleep)
        refreshed = [False]
        try:
            body = retrying(self._attempt, url, headers or {}, refreshed)
        except Retryable as exc:
            raise gave_up(exc, retrying.statistics.get("attempt_number", 1)) from None
        if self.on_page is not None:
            self.on_page(body)
        return body

    def _attempt(self, url: str, headers: dict[str, str], refreshed: list[bool]
                 ) -> dict[str, Any]:
        where = self._where(url)
        if self._cancelled.is_set():
            raise TransientError(f"{where}: abandoned, another request of this read failed")
        try:
            token = self._tokens.token()
        except TransientError as exc:
            raise Retryable(exc, no_answer=isinstance(exc, TokenEndpointUnreachable)) from None
        try:
            response = self._session.get(
                url, headers={**headers, "Authorization": f"Bearer {token}",
                              "Accept": "application/json"})
        except requests.exceptions.SSLError:
            raise PermanentError(f"{where}: TLS verification of {self._host} failed "
                                 "(check ca_bundle)") from None
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            failure = describe_transport_failure(exc, host=self._host, timeout=self._timeout,
                                                 timed_out=isinstance(exc, requests.Timeout))
            raise Retryable(TransientError(f"{where} {failure.text}"),
                            no_answer=failure.no_answer) from None
        status = response.status_code
        if status < 400:
            try:
                body = response.json()
            except (ValueError, RecursionError, requests.exceptions.ChunkedEncodingError):
                # RecursionError: nested past what JSON parsing allows, malformed too
                raise Retryable(PartialReadError(f"{where}: malformed JSON page")) from None
            if not isinstance(body, dict):
                raise Retryable(PartialReadError(f"{where}: page is not a JSON object"))
            return body
        code, message = _graph_error(response)
        label = f"HTTP {status}" + (f" {code}" if code else "")
        if status == 410 or code in RESYNC_CODES:
            raise ResyncNeeded(f"{where}: {label}: the delta link must be replaced by a full read")
        if status == 401 and not refreshed[0]:
            # An expired or revoked token: drop it and try once more with a fresh one.
            refreshed[0] = True
            self._tokens.invalidate(token)
            raise Retryable(AuthError(f"{where}: {label}"), delay=0.0)
        if status in (401, 403):
            raise AuthError(f"{where}: {label}: {message or 'access denied'} (check the app's "
                            "Graph application permissions and admin consent)")
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self._max_wait:
                raise too_long_to_wait(f"{where}: {label}", wait, self._max_wait, "Retry-After")
            raise Retryable(TransientError(f"{where}: {label}"), delay=wait)
        if status >= 500:
            raise Retryable(TransientError(f"{where}: {label}"))
        raise PermanentError(f"{where}: {label}: {message}".rstrip(": "))

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _where(self, url: str) -> str:
        # Host and path only: query strings hold paging and delta tokens, noise in a log line.
        parts = urlsplit(url)
        return f"entra {self._directory}: GET {parts.scheme}://{parts.netloc}{parts.path}"


def _graph_error(response: requests.Response) -> tuple[str, str]:
    """(code, message) from a Graph error body, or empty strings."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    message = " ".join(str(error.get("message", "")).split())[:200]
    return str(error.get("code", "")), message


def decode_page(body: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The `value` array of a page; a page without one is a partial read."""
    value = body.get("value")
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PartialReadError(f"{where}: page without a value array")
    return value


__all__ = ["GraphClient", "ResyncNeeded", "decode_page", "make_session"]
