"""The shared retry policy's words and limits: how a failure without an answer is named,
how many attempts each kind of failure gets, and the final error."""

from __future__ import annotations

import errno
import logging
import socket

import aiohttp
import pytest
import requests
import tenacity

from connectors.errors import PartialReadError, TransientError
from connectors.retry import NO_ANSWER_ATTEMPTS, Retryable, RetryPolicy, describe_transport_failure, gave_up

LOG = logging.getLogger("tests.retry")


def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(("failure", "text", "no_answer"), [
    (wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
             requests.ConnectionError("Max retries exceeded")), "DNS lookup of idp.example failed", True),
    (wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
             requests.ConnectionError("Failed to establish a new connection")), "connection refused", True),
    (aiohttp.ClientOSError(errno.ECONNREFUSED, "Connect call failed"), "connection refused", True),
    (TimeoutError(), "timed out after 2.5 s", True),
    (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), "connection dropped", False),
    (requests.exceptions.ChunkedEncodingError("Connection broken"), "connection dropped", False),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "cannot connect to idp.example (No route to host)", True),
], ids=["dns", "refused", "refused-aiohttp", "timeout", "reset", "chunked", "unreachable"])
def test_a_failure_without_an_answer_is_named_for_what_it_is(failure: BaseException, text: str,
                                                              no_answer: bool) -> None:
    described = describe_transport_failure(failure, host="idp.example", timeout=2.5)

    assert (described.text, described.no_answer) == (text, no_answer)


def test_a_request_without_an_answer_gets_at_most_three_attempts() -> None:
    policy = RetryPolicy(max_retries=6, budget_seconds=300, log=LOG)

    assert policy.attempts_for(Retryable(TransientError("x"), no_answer=True)) == NO_ANSWER_ATTEMPTS == 3
    assert policy.attempts_for(Retryable(TransientError("x"))) == 7
    assert RetryPolicy(max_retries=0, budget_seconds=300, log=LOG).attempts_for(
        Retryable(TransientError("x"), no_answer=True)) == 1


def test_each_retry_is_announced_and_the_final_error_counts_the_attempts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOG.name)
    policy = RetryPolicy(max_retries=6, budget_seconds=300, log=LOG)
    attempts = []

    def fail() -> None:
        attempts.append(1)
        raise Retryable(TransientError("okta corp: GET https://idp.example/api/v1/users timed out after 10 s"),
                        delay=4.0, no_answer=True)

    retrying = tenacity.Retrying(**policy.tenacity_args(), sleep=lambda seconds: None)
    with pytest.raises(Retryable) as failure:
        retrying(fail)

    assert [r.getMessage() for r in caplog.records] == [
        f"okta corp: GET https://idp.example/api/v1/users timed out after 10 s (attempt {n} of 3), retrying in 4 s"
        for n in (1, 2)]
    final = gave_up(failure.value, len(attempts))
    assert isinstance(final, TransientError)
    assert str(final) == "okta corp: GET https://idp.example/api/v1/users timed out after 10 s (gave up after 3 attempts)"


def test_the_final_error_keeps_its_kind_and_says_one_attempt() -> None:
    final = gave_up(Retryable(PartialReadError("entra x: GET https://g/v1.0/users: malformed JSON page")), 1)

    assert isinstance(final, PartialReadError)
    assert str(final).endswith("(gave up after 1 attempt)")
