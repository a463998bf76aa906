"""Graph's throttling of a simulated tenant: the resource units an app may spend per 10 s
(`budget_for`, by tenant size) and the sliding window that charges them
(`ResourceUnitBudget`).

Kept apart from `simulators.graph`, which prices each request (`GraphSimulator._cost`) and
answers 429 when the window is full, so that the window's arithmetic and its clock (real
time, even under freezegun) read on their own.
"""

from __future__ import annotations

import time
from collections import deque

__all__ = ["ResourceUnitBudget", "budget_for"]

# freezegun replaces time.monotonic; the throttle window must keep real time even in tests
# that freeze the clock, or a throttled client would wait forever. A tuple hides it.
_REAL_MONOTONIC = (time.monotonic,)


class ResourceUnitBudget:
    """A sliding 10-second window of resource units charged to the app+tenant pair."""

    window_seconds = 10.0

    def __init__(self) -> None:
        self._charges: deque[tuple[float, int]] = deque()
        self._total = 0

    def charge(self, cost: int, budget: int) -> float | None:
        """Charge `cost`; or, over budget, the seconds until it would fit (nothing charged)."""
        now = _REAL_MONOTONIC[0]()
        while self._charges and self._charges[0][0] <= now - self.window_seconds:
            self._total -= self._charges.popleft()[1]
        if self._total + cost > budget:
            freed, wait = 0, self.window_seconds
            for at, units in self._charges:
                freed += units
                if self._total - freed + cost <= budget:
                    wait = at + self.window_seconds - now
                    break
            return max(wait, 0.001)
        self._charges.append((now, cost))
        self._total += cost
        return None


def budget_for(user_count: int) -> int:
    """Graph's RU quota per 10 s for an app+tenant pair, by tenant size."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000
