"""Okta pacing on an injected clock: a bucket with no requests to spare is waited out to its
reset, by every request to it, and never sent to at remaining 0 before the reset; a reset
further away than `max_retry_wait` fails at once instead of being waited for partly."""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import CIMultiDict

from connectors.errors import TransientError
from connectors.okta_http import ApiToken, OktaPager

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that moves only when the pager sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake_at = self.now + seconds
        self.pauses.append(seconds)
        await asyncio.sleep(0)  # other requests reach their pacing meanwhile
        self.now = max(self.now, wake_at)


class Answer:
    """The headers of one Okta answer, as the pager reads them."""

    def __init__(self, remaining: int, reset_in: int) -> None:
        self.headers = CIMultiDict({
            "Date": email.utils.format_datetime(NOW, usegmt=True),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(int(NOW.timestamp()) + reset_in),
        })


def pager(time: FakeTime, *, concurrency: int = 1, max_wait: float = 300.0) -> OktaPager:
    return OktaPager("https://acme.okta.example", ApiToken("x" * 40), ssl_context=ssl.create_default_context(),
                     request_timeout=10, max_retries=3, retry_budget_seconds=300, max_concurrency=concurrency,
                     sleep=time.sleep, max_retry_wait=max_wait, monotonic=time.monotonic)


def run(job: Any) -> Any:
    return asyncio.run(job)


def test_remaining_zero_waits_until_the_reset() -> None:
    time = FakeTime()
    okta = pager(time)
    okta._observe("users.list", Answer(remaining=0, reset_in=30))

    run(okta._pace("users.list"))

    # the reset is 30 s after the answer's Date, plus a second for Date's rounding
    assert time.pauses == [31.0]


def test_every_request_to_an_exhausted_bucket_waits_not_only_the_first() -> None:
    time = FakeTime()
    okta = pager(time, concurrency=4)
    okta._observe("groups.id", Answer(remaining=2, reset_in=10))

    async def four_requests() -> None:
        await asyncio.gather(*(okta._pace("groups.id") for _ in range(4)))

    run(four_requests())

    assert time.pauses == [11.0] * 4


def test_a_bucket_with_requests_to_spare_sends_at_once_and_counts_them() -> None:
    time = FakeTime()
    okta = pager(time, concurrency=2)
    okta._observe("users.list", Answer(remaining=4, reset_in=60))

    for _ in range(2):
        run(okta._pace("users.list"))
    run(okta._pace("users.list"))  # 2 left, as many as may be in flight: wait

    assert time.pauses == [61.0]


def test_a_bucket_whose_reset_has_passed_sends_at_once() -> None:
    time = FakeTime()
    okta = pager(time)
    okta._observe("users.list", Answer(remaining=0, reset_in=5))
    time.now += 6.5

    run(okta._pace("users.list"))

    assert time.pauses == []


def test_a_reset_past_the_maximum_wait_fails_at_once() -> None:
    time = FakeTime()
    okta = pager(time, max_wait=300)
    okta._observe("users.list", Answer(remaining=0, reset_in=3600))

    with pytest.raises(TransientError, match=r"asks to wait 3601 s, more than max_retry_wait_seconds \(300 s\)"):
        run(okta._pace("users.list"))

    assert time.pauses == []
