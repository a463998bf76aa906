"""The one retry policy of every HTTP connector (DESIGN.md S4), and the words for its failures.

A request that fails in a way worth another try raises `Retryable`, carrying the
`ConnectorError` to raise once tries run out (its message says where: kind, method and URL
without the query) and, when the server said how long to wait (`Retry-After`,
`X-Rate-Limit-Reset`), that delay. `RetryPolicy.tenacity_args()` gives the tenacity
arguments every connector uses:

- stop after `max_retries` retries OR `budget_seconds` in all, whichever comes first
  (attempts alone would never stop under a frozen clock; time alone could hammer);
- a request that got no answer at all (timed out, refused, DNS failure, no connection) is
  tried at most `NO_ANSWER_ATTEMPTS` times: an IdP that did not answer three times in a row
  is down, and the next cycle tries again, so a dead IdP fails a cycle in about three
  request timeouts instead of `max_retries` of them;
- wait what the server asked (the client refuses, before retrying, a wait longer than
  `max_retry_wait_seconds`: see `too_long_to_wait`), plus up to `server_jitter` seconds so
  clients released by one reset do not return at once; a server's wait is never cut short;
- otherwise back off exponentially with jitter: about 0.5 s, 1 s, 2 s ... at most 30 s;
- announce every retry as one WARNING line on the connector's logger, which the CLI prints
  on stderr: "okta: GET https://acme.okta.com/api/v1/users timed out after 10 s
  (attempt 2 of 3), retrying in 1 s";
- once tries run out, `gave_up()` is the error to raise: the last failure's message plus
  "(gave up after N attempts)".

`describe_transport_failure()` names a failure that left no HTTP answer the same way for
every connector: "connection refused", "DNS lookup of HOST failed", "timed out after N s",
"connection dropped".
"""

from __future__ import annotations

import errno
import logging
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import tenacity

from config import Settings
from connectors.errors import ConnectorError, TransientError

DEFAULT_MAX_RETRY_WAIT_SECONDS = 300.0  # `[safety] max_retry_wait_seconds`
NO_ANSWER_ATTEMPTS = 3
_BACKOFF = tenacity.wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)


def configured_max_retry_wait(settings: Settings) -> float:
    """`[safety] max_retry_wait_seconds`: a server asking to wait longer fails the cycle."""
    return float(settings.safety.max_retry_wait_seconds)


class Retryable(Exception):
    """A failure worth another try; `error` is what the caller sees once tries run out.

    `no_answer` marks a request that got no answer at all (timeout, refused, DNS), which is
    tried at most `NO_ANSWER_ATTEMPTS` times.
    """

    def __init__(self, error: ConnectorError, delay: float | None = None, *, no_answer: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay
        self.no_answer = no_answer


def seconds(value: float) -> str:
    """`4`, `0.5`, `12.5`: a duration as a person reads it."""
    return f"{value:.1f}".removesuffix(".0")


def too_long_to_wait(where: str, asked: float, max_wait: float, header: str) -> TransientError:
    """The error for a server that asks for a longer wait than `max_retry_wait_seconds`:
    the cycle fails now as transient, and a later cycle tries after the server's time."""
    return TransientError(
        f"{where}: rate limited, {header} asks to wait {seconds(asked)} s, more than"
        f" max_retry_wait_seconds ({seconds(max_wait)} s); a later cycle retries")


@dataclass(frozen=True)
class RetryPolicy:
    """How one connector retries a request; `log` receives one WARNING line per retry."""

    max_retries: int
    budget_seconds: float
    log: logging.Logger
    server_jitter: float = 0.0

    def attempts_for(self, failure: BaseException | None) -> int:
        """How many attempts a request may make when it failed like `failure`."""
        attempts = self.max_retries + 1
        if isinstance(failure, Retryable) and failure.no_answer:
            return min(attempts, NO_ANSWER_ATTEMPTS)
        return attempts

    def tenacity_args(self) -> dict[str, Any]:
        """Keyword arguments for `tenacity.Retrying` / `AsyncRetrying` (add `sleep=` as needed)."""
        return {
            "stop": self._stop,
            "wait": self._wait,
            "retry": tenacity.retry_if_exception_type(Retryable),
            "before_sleep": self._announce,
            "reraise": True,
        }

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        failure = state.outcome.exception() if state.outcome else None
        return state.attempt_number >= self.attempts_for(failure) or (
            state.seconds_since_start is not None and state.seconds_since_start >= self.budget_seconds)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, Retryable) and failure.delay is not None:
            jitter = random.uniform(0, self.server_jitter) if self.server_jitter else 0.0
            return max(failure.delay, 0.0) + jitter
        return float(_BACKOFF(state))

    def _announce(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        self.log.warning("%s (attempt %d of %d), retrying in %s s", failure, state.attempt_number,
                         self.attempts_for(failure), seconds(delay))


def gave_up(failure: Retryable, attempts: int) -> ConnectorError:
    """The error to raise once a request's tries have run out: what happened last, and how
    many attempts were made."""
    error = failure.error
    plural = "" if attempts == 1 else "s"
    return type(error)(f"{error} (gave up after {attempts} attempt{plural})")


# --- failures without an HTTP answer ---------------------------------------------------------


@dataclass(frozen=True)
class TransportFailure:
    """Why a request got no (complete) answer, in the words every connector uses."""

    text: str
    no_answer: bool  # nothing came back at all: timed out, refused, DNS, no connection


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions it wraps (arguments, `reason`, `os_error`, causes)."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [*current.args, getattr(current, "reason", None), getattr(current, "os_error", None),
                 current.__cause__, current.__context__]
        pending.extend(e for e in inner if isinstance(e, BaseException))


_REFUSED = {errno.ECONNREFUSED}
_DROPPED = {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}


def _errno_in(chain: list[BaseException], numbers: set[int]) -> OSError | None:
    return next((e for e in chain if isinstance(e, OSError) and e.errno in numbers), None)


def describe_transport_failure(exc: BaseException, *, host: str, timeout: float,
                               timed_out: bool = False, dns_failed: bool = False) -> TransportFailure:
    """Name a failure that left no HTTP answer. `timed_out` and `dns_failed` let a caller
    that knows its library's types say so; builtin `TimeoutError`s and `socket.gaierror`s
    anywhere in the chain count too."""
    chain = list(_causes(exc))
    if dns_failed or any(isinstance(e, socket.gaierror) for e in chain):
        return TransportFailure(f"DNS lookup of {host} failed", True)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or _errno_in(chain, _REFUSED):
        return TransportFailure("connection refused", True)
    if timed_out or any(isinstance(e, TimeoutError) for e in chain):
        return TransportFailure(f"timed out after {seconds(timeout)} s", True)
    if _errno_in(chain, _DROPPED):
        return TransportFailure("connection dropped", False)
    unreachable = _errno_in(chain, _UNREACHABLE)
    if unreachable is not None:
        return TransportFailure(f"cannot connect to {host} ({unreachable.strerror})", True)
    return TransportFailure("connection dropped", False)
