"""Fault injection for a `SimulatorServer`: the `Fault` kinds, the faults a server holds
until a request takes one, the methods that schedule them, and `refusing_port()`.

`inject(fault, at=k)` hits the k-th request from now (1-based, any endpoint);
`inject(fault, endpoint=name, times=n)` hits the next n requests to that endpoint;
`inject(fault, endpoint=name, at=k)` hits the k-th request to that endpoint from now; `times`
with `at` hits that many consecutive matching requests. `seconds` sets the hold of
`Fault.TIMEOUT`; `detail` is passed to `vendor_fault`. `clear_faults()` drops pending ones,
`pending_faults()` counts them. The faults are the `Fault` enum:

    HTTP_429        429 with the vendor's reset headers (`throttle_headers` hook)
    HTTP_429_BARE   429 without any reset or Retry-After header
    HTTP_500        `error_response(request, 500)`
    HTTP_503        `error_response(request, 503)`
    TIMEOUT         holds the request `seconds` (default `timeout_hold_seconds`), then answers
                    normally; set it longer than the client timeout. `stop()` ends the hold.
    HANG            accepts the request and never answers: holds it until `stop()`, then
                    closes the connection. `hang()` does this to every later request (an IdP
                    that accepts connections and never answers).
    RESET           closes the TCP connection abruptly (RST) without an answer
    MALFORMED_JSON  the normal status and headers (Link included) with a body that is not JSON
    TRUNCATED       the normal answer with its body cut in half (a valid start of JSON)
    VENDOR          `vendor_fault(request, normal_response, detail)` rewrites the answer
                    (reordered Link headers, an expired cursor or delta link, ...)

`refusing_port()` gives a local port that refuses connections (an IdP that is down), for
pointing a connector at; nothing listens there while it is held.

`latency(seconds)` delays every request (outside the lock). Faults never run the handler
except TIMEOUT, MALFORMED_JSON, TRUNCATED and VENDOR, which transform its answer.

Kept apart from `simulators.base`, whose server routes, counts and serves requests: this is
what a test can make go wrong. `SimulatorServer` inherits `FaultInjection` and applies the
fault a request takes where it serves it (`SimulatorServer._serve`).
"""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["MALFORMED_BODY", "Fault", "FaultInjection", "PendingFault", "refusing_port"]


class Fault(enum.Enum):
    """What an injected fault does to one request (see the module docstring)."""

    HTTP_429 = "http-429"
    HTTP_429_BARE = "http-429-bare"
    HTTP_500 = "http-500"
    HTTP_503 = "http-503"
    TIMEOUT = "timeout"
    RESET = "reset"
    MALFORMED_JSON = "malformed-json"
    TRUNCATED = "truncated"
    VENDOR = "vendor"
    HANG = "hang"


@dataclass
class PendingFault:
    fault: Fault
    endpoint: str | None
    skip: int  # matching requests to let through first
    remaining: int
    seconds: float | None
    detail: Any


MALFORMED_BODY = b'{"this is": not JSON, <html>oops</html>'


class FaultInjection:
    """The fault methods of `SimulatorServer`, its base class: they change, under the
    server's lock, the pending faults and the latency that `_serve` reads."""

    lock: threading.RLock
    _faults: list[PendingFault]
    _latency: float

    def inject(
        self,
        fault: Fault,
        *,
        at: int | None = None,
        endpoint: str | None = None,
        times: int = 1,
        seconds: float | None = None,
        detail: Any = None,
    ) -> None:
        """Make the chosen upcoming request(s) fail with `fault` (see the module docstring)."""
        if at is not None and at < 1:
            raise ValueError("at counts from 1")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self._faults.append(
                PendingFault(fault, endpoint, (at - 1) if at is not None else 0, times, seconds, detail)
            )

    def hang(self) -> None:
        """From now on, accept every request and never answer it (until `stop()`)."""
        self.inject(Fault.HANG, times=1_000_000_000)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self.lock:
            return sum(f.remaining for f in self._faults)

    def latency(self, seconds: float) -> None:
        """Delay every later request by `seconds` (0 turns it off)."""
        with self.lock:
            self._latency = max(0.0, seconds)

    def _take_fault(self, endpoint: str) -> PendingFault | None:
        """Under the lock: the fault this request gets, if any (the first match wins)."""
        chosen: PendingFault | None = None
        for pending in self._faults:
            if pending.endpoint is not None and pending.endpoint != endpoint:
                continue
            if pending.skip > 0:
                pending.skip -= 1
                continue
            if chosen is None:
                chosen = pending
                pending.remaining -= 1
        self._faults = [f for f in self._faults if f.remaining > 0]
        return chosen


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections while the block runs: a socket is bound
    to it (so no other server takes it) but never listens, so a connect gets a reset."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
