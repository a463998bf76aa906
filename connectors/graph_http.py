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
wait for `Retry-After`; other 5xx, timeouts, dropped connections and malformed or
truncated pages back off exponentially with jitter; attempts are bounded by `max_retries`
and by a total delay, whichever comes first. Every request has a timeout.
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
from connectors.graph_auth import TokenSource
from connectors.retry import Retryable, policy

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
                 cancelled: threading.Event | None = None) -> None:
        self._directory = directory
        self._graph_url = graph_url.rstrip("/")
        self._session = session
        self._tokens = tokens
        self._max_retries = max_retries
        self._max_total = max_total_seconds
        self._sleep = sleep
        self._cancelled = cancelled or threading.Event()
        self.retries = 0  # retried requests so far (for logs and tests)

    def __repr__(self) -> str:
        return f"GraphClient({self._directory!r}, {self._graph_url!r})"

    def get(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The JSON object at `url` (absolute, on graph_url); raises a ConnectorError."""
        if not url.startswith(self._graph_url + "/"):
            # A nextLink elsewhere would carry our bearer token to another host.
            raise PartialReadError(f"{self._where(url)}: link points outside graph_url")
        retrying = tenacity.Retrying(**policy(self._max_retries, self._max_total),
                                     sleep=self._pause, before_sleep=self._before_sleep)
        refreshed = [False]
        try:
            return retrying(self._attempt, url, headers or {}, refreshed)
        except Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise type(exc.error)(f"{exc.error} (gave up after {attempts} attempts)") from None

    def _attempt(self, url: str, headers: dict[str, str], refreshed: list[bool]
                 ) -> dict[str, Any]:
        where = self._where(url)
        if self._cancelled.is_set():
            raise TransientError(f"{where}: abandoned, another request of this read failed")
        try:
            token = self._tokens.token()
        except TransientError as exc:
            raise Retryable(exc) from None
        try:
            response = self._session.get(
                url, headers={**headers, "Authorization": f"Bearer {token}",
                              "Accept": "application/json"})
        except requests.exceptions.SSLError:
            raise PermanentError(f"{where}: TLS verification failed (check ca_bundle)") from None
        except requests.Timeout:
            raise Retryable(TransientError(f"{where}: timed out")) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            raise Retryable(TransientError(f"{where}: connection dropped")) from None
        status = response.status_code
        if status < 400:
            try:
                body = response.json()
            except (ValueError, requests.exceptions.ChunkedEncodingError):
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
            raise Retryable(TransientError(f"{where}: {label}"), delay=wait)
        if status >= 500:
            raise Retryable(TransientError(f"{where}: {label}"))
        raise PermanentError(f"{where}: {label}: {message}".rstrip(": "))

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s; retry %d in %.1fs", exc, state.attempt_number,
                    state.next_action.sleep if state.next_action else 0.0)

    def _where(self, url: str) -> str:
        # The path only: query strings hold paging and delta tokens, noise in a log line.
        return f"entra {self._directory}: GET {urlsplit(url).path}"


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
