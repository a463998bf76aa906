"""The one retry policy of every HTTP connector (DESIGN.md S4).

A request that fails in a way worth another try raises `Retryable`, carrying the
`ConnectorError` to raise once tries run out and, when the server said how long to wait
(`Retry-After`, `X-Rate-Limit-Reset`), that delay. `policy()` gives the tenacity
arguments every connector uses:

- stop after `max_retries` retries OR `budget_seconds` in all, whichever comes first
  (attempts alone would never stop under a frozen clock; time alone could hammer);
- wait what the server asked, capped at `MAX_SERVER_DELAY_SECONDS`, plus up to
  `server_jitter` seconds so clients released by one reset do not return at once;
- otherwise back off exponentially with jitter: about 0.5 s, 1 s, 2 s ... at most 30 s.
"""

from __future__ import annotations

import random
from typing import Any

import tenacity

from connectors.errors import ConnectorError

MAX_SERVER_DELAY_SECONDS = 120.0  # a longer wait belongs to the next cycle, not this one
_BACKOFF = tenacity.wait_exponential_jitter(initial=0.5, max=30.0, jitter=0.5)


class Retryable(Exception):
    """A failure worth another try; `error` is what the caller sees once tries run out."""

    def __init__(self, error: ConnectorError, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def policy(max_retries: int, budget_seconds: float, *, server_jitter: float = 0.0) -> dict[str, Any]:
    """Keyword arguments for `tenacity.Retrying` / `AsyncRetrying` (add `sleep=` as needed)."""

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, Retryable) and failure.delay is not None:
            delay = min(max(failure.delay, 0.0), MAX_SERVER_DELAY_SECONDS)
            return delay + (random.uniform(0, server_jitter) if server_jitter else 0.0)
        return float(_BACKOFF(state))

    return {
        "stop": tenacity.stop_after_attempt(max_retries + 1) | tenacity.stop_after_delay(budget_seconds),
        "wait": wait,
        "retry": tenacity.retry_if_exception_type(Retryable),
        "reraise": True,
    }
