"""What the cycle asks of a connector."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from reconcile.model import Changes, Snapshot

# progress("read", pages, records): pages read so far and the records on them, called
# after every page (from the reading thread; never concurrently).
ReadProgress = Callable[[str, int, int], None]


class Connector(Protocol):
    """Reads one directory; never writes anywhere.

    `read(None)` is a full read and returns a `Snapshot`. `read(watermark)` may return
    `Changes` since that watermark, or a `Snapshot` when it must resync (an expired
    cursor or delta link). Either carries the watermark to store after a successful apply.
    `progress`, when given, is called as `progress("read", pages, records)` after every
    page, so a long read is never silent. Every failure is raised as a
    `connectors.errors.ConnectorError`.
    """

    def read(self, watermark: str | None, progress: ReadProgress | None = None) -> Snapshot | Changes: ...

    def close(self) -> None: ...


class PageCounter:
    """Counts the pages and records of one read and reports each page to `progress`;
    safe to call from several threads."""

    def __init__(self, progress: ReadProgress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self.pages = 0
        self.records = 0

    def page(self, records: int) -> None:
        with self._lock:
            self.pages += 1
            self.records += records
            if self._progress is not None:
                self._progress("read", self.pages, self.records)

    def json_page(self, data: Any) -> None:
        """A page as parsed JSON: a list counts its items, an object its `value` array."""
        if isinstance(data, list):
            self.page(len(data))
        elif isinstance(data, dict) and isinstance(data.get("value"), list):
            self.page(len(data["value"]))
        else:
            self.page(0)
