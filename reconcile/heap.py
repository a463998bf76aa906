"""Keeping the cyclic garbage collector off the large, long-lived values of one cycle.

A full read, the store's state and the plan are hundreds of thousands of immutable
objects that live until the cycle ends. Each full collection walks all of them (about
half a second each at 100,000 users), and planning and applying trigger several: a
third of a large cycle's CPU went there. `long_lived()` moves what exists on entry out
of the collector's sight (`gc.freeze`) until the outermost block ends (`gc.unfreeze`).
Reference counting still frees them as usual; only cycles among them wait for the end
of the block, and garbage created inside the block is collected as always.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0


@contextmanager
def long_lived(*, collect_first: bool = False) -> Iterator[None]:
    """Freeze the objects alive now for the length of the block (nestable, thread-safe:
    the freeze ends with the last block to exit)."""
    global _depth
    with _lock:
        _depth += 1
        if collect_first and _depth == 1:
            gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
