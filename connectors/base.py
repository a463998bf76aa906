"""What the cycle asks of a connector."""

from __future__ import annotations

from typing import Protocol

from reconcile.model import Changes, Snapshot


class Connector(Protocol):
    """Reads one directory; never writes anywhere.

    `read(None)` is a full read and returns a `Snapshot`. `read(watermark)` may return
    `Changes` since that watermark, or a `Snapshot` when it must resync (an expired
    cursor or delta link). Either carries the watermark to store after a successful apply.
    Every failure is raised as a `connectors.errors.ConnectorError`.
    """

    def read(self, watermark: str | None) -> Snapshot | Changes: ...

    def close(self) -> None: ...
