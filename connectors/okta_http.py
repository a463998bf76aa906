"""Getting one page from Okta reliably: the SDK's request executor, paced, retried, classified.

`OktaPager.get(url)` sends one GET through the official SDK's request executor (its auth,
including the OAuth private-key flow and token renewal) and returns the parsed JSON, the
`next` link and the server's clock. Everything around that is ours, because the SDK's own
handling is unsafe for a sync (research notes, sdks.md §1):

- its typed list methods collapse repeated `Link` headers into the last one, so we read
  `resp.links` (aiohttp parses every `Link` header, in any order);
- its retry is shallow (2 tries), retries 503 with no pause and crashes with an
  AttributeError when a 429 lacks `Date`/`X-Rate-Limit-Reset`: we set its retries to 0 and
  retry with tenacity (exponential backoff with jitter, bounded by attempts AND time);
- it has no timeout by default: every request carries `request_timeout_seconds`;
- every retry is announced on the `connectors.okta` logger and the final error names the
  URL (so the host) and the attempts made (`connectors.retry`);
- it reads `HTTP(S)_PROXY` itself and ignores `NO_PROXY`: we give it an HTTP client that
  never sets a proxy and an aiohttp session with `trust_env=True`, which applies the
  standard proxy variables including `NO_PROXY`;
- its DEBUG log line prints request headers (the token): its logger is kept disabled.

The executor is built without `okta.client` (whose API and model modules take seconds to
import and are never used here), so a read imports only the SDK's request path.

Rate limits: each answer's `X-Rate-Limit-Remaining`/`-Reset` (compared with the answer's
`Date`, so clock skew does not matter) is kept per bucket; while a bucket has no more
requests left than we may have in flight, every request to it waits for its reset, so none
is ever sent at remaining 0 before the reset. A 429 waits until the reset it announces; one
without headers backs off exponentially. A reset further away than `max_retry_wait` seconds
fails the read at once as transient: it is never waited for partly and retried early.

Every failure leaves as a `connectors.errors` type: 401/403 -> AuthError; 404 ->
NotFound (internal; callers decide); other 4xx -> PermanentError (a rejected cursor ->
PartialReadError); 429/5xx/timeouts/resets -> retried, then TransientError; a body that is
not the JSON expected -> retried, then PartialReadError. Messages never carry a secret.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from tenacity import AsyncRetrying

from connectors.errors import (
    AuthError,
    ConnectorError,
    PartialReadError,
    PermanentError,
    TransientError,
)
from connectors.retry import (
    DEFAULT_MAX_RETRY_WAIT_SECONDS,
    Retryable,
    RetryPolicy,
    describe_transport_failure,
    gave_up,
    seconds,
    too_long_to_wait,
)

log = logging.getLogger("connectors.okta")

OKTA_LOGGER = "okta-sdk-python"
Sleep = Callable[[float], Awaitable[None]]
PageSeen = Callable[[Any], None]  # called with each page's parsed JSON (read progress)


@dataclass(frozen=True)
class ApiToken:
    """An Okta API token (SSWS). Never printed."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class ServiceApp:
    """An OAuth service app authenticating with a private key (`private_key_jwt`). Never printed."""

    client_id: str
    private_key_pem: str = field(repr=False)
    key_id: str | None = None
    scopes: tuple[str, ...] = ("okta.users.read", "okta.groups.read", "okta.apps.read", "okta.logs.read")


Credentials = ApiToken | ServiceApp


class CursorRejected(PartialReadError):
    """Okta refused a page cursor (`after`): expired or unknown. A full read recovers."""


class NotFound(PermanentError):
    """404: the resource does not exist (a group deleted mid-read, a wrong app id)."""


@dataclass(frozen=True)
class Page:
    """One answer: parsed JSON, the absolute `next` link if any, and the server's clock."""

    data: Any
    next_url: str | None
    server_time: datetime | None


@dataclass
class _BucketState:
    remaining: int  # as the last answer said, less the requests we sent since
    reset_at: float  # on the pager's monotonic clock


def bucket_of(path: str) -> str:
    """Okta's rate-limit bucket for a path (the longest documented prefix)."""
    if path == "/api/v1/users":
        return "users.list"
    if path.startswith("/api/v1/users/"):
        return "users.get"
    if path == "/api/v1/groups":
        return "groups.list"
    if path.startswith("/api/v1/groups/"):
        return "groups.id"
    if path.startswith("/api/v1/apps"):
        return "apps"
    if path.startswith("/api/v1/logs"):
        return "logs"
    return "default"


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _int_header(headers: Any, name: str) -> int | None:
    try:
        values = headers.getall(name, [])
        return min(int(float(v)) for v in values) if values else None
    except (TypeError, ValueError):
        return None


def _okta_error(body: str | None) -> str:
    """`E0000011 Invalid token provided` from an Okta or OAuth error body, or ''."""
    try:
        parsed = json.loads(body or "")
    except ValueError:
        return ""
    if not isinstance(parsed, dict):
        return ""
    code = parsed.get("errorCode") or parsed.get("error") or ""
    summary = parsed.get("errorSummary") or parsed.get("error_description") or ""
    return f"{code} {summary}".strip()[:200]


class OktaPager:
    """GETs pages from one Okta org through the SDK; use as `async with`."""

    def __init__(
        self,
        org_url: str,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext,
        request_timeout: float,
        max_retries: int,
        retry_budget_seconds: float,
        max_concurrency: int,
        sleep: Sleep | None = None,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
        monotonic: Callable[[], float] | None = None,
        label: str = "okta",
        on_page: PageSeen | None = None,
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self.host = urlsplit(self.org_url).hostname or self.org_url
        self._credentials = credentials
        self._ssl_context = ssl_context
        self._timeout = request_timeout
        self._max_concurrency = max_concurrency
        self._sleep: Sleep = sleep or asyncio.sleep
        self._max_wait = max_retry_wait
        self._monotonic = monotonic or time.monotonic
        self._label = label
        self._on_page = on_page
        self._policy = RetryPolicy(max_retries, retry_budget_seconds, log, server_jitter=0.5)
        self._buckets: dict[str, _BucketState] = {}
        self._secrets = [s for s in self._secret_values() if s]
        self._session: aiohttp.ClientSession | None = None
        self._executor: Any = None
        self._slots: asyncio.Semaphore | None = None
        self.requests = 0

    def _secret_values(self) -> list[str]:
        if isinstance(self._credentials, ApiToken):
            return [self._credentials.token]
        return [self._credentials.private_key_pem]

    def __repr__(self) -> str:
        return f"OktaPager(org_url={self.org_url!r})"

    async def __aenter__(self) -> OktaPager:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl_context, limit=self._max_concurrency),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            trust_env=True,  # standard proxy variables, NO_PROXY included
        )
        try:
            self._executor = _build_executor(self.org_url, self._credentials, self._timeout)
        except ConnectorError:
            await self._session.close()
            raise
        self._executor.set_session(self._session)
        self._slots = asyncio.Semaphore(self._max_concurrency)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- public

    async def get(self, url: str) -> Page:
        """The page at `url` (a path or an absolute link from a `next` header)."""
        assert self._slots is not None, "use OktaPager as an async context manager"
        # Okta's reset is a whole second: the policy's jitter keeps clients apart after it.
        retrying = AsyncRetrying(**self._policy.tenacity_args(), sleep=self._sleep)
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    async with self._slots:
                        page = await self._get_once(url)
                    if self._on_page is not None:
                        self._on_page(page.data)
                    return page
        except Retryable as failure:
            raise gave_up(failure, attempts) from None
        raise TransientError(f"{self._where(url)}: not attempted")  # unreachable: tenacity raises

    async def get_optional(self, url: str) -> Page | None:
        """Like `get`, but a 404 answers None."""
        try:
            return await self.get(url)
        except NotFound:
            return None

    # -- one attempt

    async def _get_once(self, url: str) -> Page:
        path = urlsplit(url).path or url
        bucket = bucket_of(path)
        await self._pace(bucket)
        self.requests += 1
        where = self._where(url)
        try:
            request, error = await self._executor.create_request("GET", url, None, {})
            if error is not None:
                self._raise_for_auth_error(error, where)
            # fire_request_helper, not fire_request: the latter JSON-parses every 2xx body a
            # second time only to decide whether to cache it (the cache is off).
            # Its start-time check guards the SDK's own retry loop, which is off (each call is
            # a first attempt; aiohttp enforces the timeout). Our clock may not be the SDK's
            # (frozen time in tests), so a start of +inf keeps that check from ever firing.
            _, response, body, error = await self._executor.fire_request_helper(request, 0, math.inf)
        except (Retryable, ConnectorError):
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise self._transport_failure(exc, where) from None
        except Exception as exc:  # the SDK failing in its own code: never let it escape
            raise Retryable(TransientError(f"{where}: failed in the Okta SDK ({type(exc).__name__})")) from None
        if response is None:
            raise self._transport_failure(error, where)
        if response.status == 429:
            self._buckets.pop(bucket, None)  # the retry itself waits for the reset
        else:
            self._observe(bucket, response)
        return self._page(url, where, response, body)

    def _where(self, url: str) -> str:
        """`okta NAME: GET https://host/path`: the query is left out (cursors, filters)."""
        parts = urlsplit(url)
        path = parts.path or url
        return f"{self._label}: GET {self.org_url}{path}"

    def _raise_for_auth_error(self, error: object, where: str) -> None:
        """`create_request` failed: in OAuth mode, fetching the access token did."""
        status = getattr(error, "status", None)
        code, summary = getattr(error, "error_code", ""), getattr(error, "error_summary", "")
        detail = self._scrub(f"{code} {summary}".strip()[:200])
        token = f"{where}: access token request"
        if status in (400, 401, 403):
            raise AuthError(f"{token}: Okta refused the service app's credentials (HTTP {status} {detail})".strip())
        if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError)):
            raise self._transport_failure(error, token)
        if status == 429 or (isinstance(status, int) and status >= 500):
            raise Retryable(TransientError(f"{token}: HTTP {status}"))
        raise Retryable(TransientError(f"{token} failed ({type(error).__name__})"))

    def _transport_failure(self, exc: object, where: str) -> Exception:
        if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
            return PermanentError(f"{where}: TLS verification of {self.host} failed; check ca_bundle")
        if not isinstance(exc, BaseException):
            return Retryable(TransientError(f"{where}: no answer"), no_answer=True)
        failure = describe_transport_failure(exc, host=self.host, timeout=self._timeout,
                                             timed_out=isinstance(exc, asyncio.TimeoutError),
                                             dns_failed=isinstance(exc, aiohttp.ClientConnectorDNSError))
        return Retryable(TransientError(f"{where} {failure.text}"), no_answer=failure.no_answer)

    def _page(self, url: str, where: str, response: Any, body: str | None) -> Page:
        status = int(response.status)
        server_time = _http_date(response.headers.get("Date"))
        if 200 <= status < 300:
            try:
                data = json.loads(body or "")
            except (ValueError, RecursionError):  # nested past what JSON parsing allows: malformed too
                raise Retryable(PartialReadError(f"{where}: malformed or truncated page")) from None
            link = response.links.get("next")
            next_url = str(link.get("url")) if link and link.get("url") else None
            return Page(data, next_url, server_time)
        detail = self._scrub(_okta_error(body))
        answer = f"{where}: HTTP {status} {detail}".strip()
        if status in (401, 403):
            raise AuthError(f"{answer}: Okta refused the credentials")
        if status == 429:
            raise self._rate_limited(answer, response.headers, server_time)
        if status >= 500 or status == 408:
            raise Retryable(TransientError(answer))
        if status == 404:
            raise NotFound(f"{answer}: no such resource")
        if status == 400 and "after=" in url:
            raise CursorRejected(f"{answer}: Okta rejected a page cursor")
        raise PermanentError(f"{answer}: Okta rejected the request")

    def _rate_limited(self, answer: str, headers: Any, server_time: datetime | None) -> Exception:
        """A 429: wait for the reset it announces, unless that is too far away."""
        reset = _int_header(headers, "X-Rate-Limit-Reset")
        if reset is None or server_time is None:
            return Retryable(TransientError(f"{answer} (rate limited)"))  # back off instead
        delay = max(0.0, reset - server_time.timestamp()) + 1.0  # Date is rounded to the second
        if delay > self._max_wait:
            return too_long_to_wait(answer, delay, self._max_wait, "X-Rate-Limit-Reset")
        return Retryable(TransientError(f"{answer} (rate limited)"), delay)

    # -- pacing

    def _observe(self, bucket: str, response: Any) -> None:
        remaining = _int_header(response.headers, "X-Rate-Limit-Remaining")
        reset = _int_header(response.headers, "X-Rate-Limit-Reset")
        server_time = _http_date(response.headers.get("Date"))
        if remaining is None or reset is None or server_time is None:
            return
        seconds_to_reset = max(0.0, reset - server_time.timestamp()) + 1.0  # Date is rounded to the second
        self._buckets[bucket] = _BucketState(remaining, self._monotonic() + seconds_to_reset)

    async def _pace(self, bucket: str) -> None:
        """Before a request: while the bucket has no more requests left than we may have in
        flight, wait for its reset (every request to it, not only the first)."""
        while (state := self._buckets.get(bucket)) is not None:
            wait = state.reset_at - self._monotonic()
            if wait <= 0:
                del self._buckets[bucket]  # a new window: unknown until the next answer
                return
            if state.remaining > self._max_concurrency:
                state.remaining -= 1  # count our own request until the next answer says
                return
            where = f"{self._label}: {self.host} rate limit bucket {bucket}"
            if wait > self._max_wait:
                raise too_long_to_wait(where, wait, self._max_wait, "X-Rate-Limit-Reset")
            log.warning("%s has %d requests left, waiting %s s for its reset", where, max(state.remaining, 0),
                        seconds(wait))
            await self._sleep(wait)
            if self._buckets.get(bucket) is state:
                del self._buckets[bucket]  # waited until its reset: a new window

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _build_executor(org_url: str, credentials: Credentials, timeout: float) -> Any:
    """The SDK's request executor, configured only from our settings (see module docstring).

    Built the way `okta.client.Client` builds it (same configuration loading and
    validation), without importing `okta.client`, whose hundreds of API and model modules
    cost seconds and about 100 MB on every read that never uses them."""
    from okta.cache.no_op_cache import NoOpCache
    from okta.config.config_setter import ConfigSetter
    from okta.config.config_validator import ConfigValidator
    from okta.http_client import HTTPClient
    from okta.request_executor import RequestExecutor

    class NoProxyHTTPClient(HTTPClient):
        def _setup_proxy(self, proxy: object) -> None:
            return None  # the aiohttp session applies proxy variables itself, NO_PROXY included

    config: dict[str, Any] = {
        "orgUrl": org_url,
        "requestTimeout": timeout,
        "rateLimit": {"maxRetries": 0},
        "cache": {"enabled": False, "defaultTtl": 300, "defaultTti": 300},
        "logging": {"enabled": False, "logLevel": logging.INFO},
        "dpopEnabled": False,
        "httpClient": NoProxyHTTPClient,
    }
    if isinstance(credentials, ApiToken):
        config.update({"authorizationMode": "SSWS", "token": credentials.token})
    else:
        config.update({
            "authorizationMode": "PrivateKey",
            "clientId": credentials.client_id,
            "scopes": list(credentials.scopes),
            "privateKey": credentials.private_key_pem,
            "oauthTokenRenewalOffset": 5,
        })
        if credentials.key_id:
            config["kid"] = credentials.key_id
    # The SDK's DEBUG line prints request headers (the token): its logger stays disabled,
    # as `Client()` leaves it, whatever the root logger's level.
    logging.getLogger(OKTA_LOGGER).disabled = True
    try:
        setter = ConfigSetter()  # type: ignore[no-untyped-call]
        setter._apply_config({"client": config})
        checked = setter._prune_config(setter.get_config())  # type: ignore[no-untyped-call]
        ConfigValidator(checked)  # type: ignore[no-untyped-call]
        return RequestExecutor(checked, NoOpCache(), NoProxyHTTPClient)  # type: ignore[no-untyped-call]
    except Exception as exc:  # a validator ValueError, a stray okta.yaml that does not parse
        raise PermanentError(f"Okta client configuration rejected ({type(exc).__name__})") from None
