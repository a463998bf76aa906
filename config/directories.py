"""Settings of each kind of directory: the keys a `[directories.NAME]` table may hold."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class DirectorySettings:
    """Keys every kind shares. `links` maps an IdP group id to a local group name (R6)."""

    name: str = ""
    kind: str
    cycle_minutes: int = 40
    full_every_hours: int = 24
    links: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cycle_minutes < 1:
            raise ValueError("cycle_minutes must be at least 1")
        if self.full_every_hours < 1:
            raise ValueError("full_every_hours must be at least 1")


@dataclass(frozen=True, kw_only=True)
class FileDirectorySettings(DirectorySettings):
    """A JSON export on disk (`connectors.file`). A relative path is relative to the config file."""

    path: str


@dataclass(frozen=True, kw_only=True)
class HttpDirectorySettings(DirectorySettings):
    """Keys of directories read over HTTPS."""

    ca_bundle: str | None = None  # an extra CA bundle; TLS verification is never turned off
    request_timeout_seconds: float = 10.0
    max_retries: int = 6
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.request_timeout_seconds <= 0:
            raise ValueError("request_timeout_seconds must be positive")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
