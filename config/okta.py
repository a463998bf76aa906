"""Keys of a `kind = "okta"` directory."""

from __future__ import annotations

from dataclasses import dataclass

from config.directories import HttpDirectorySettings


@dataclass(frozen=True, kw_only=True)
class OktaDirectorySettings(HttpDirectorySettings):
    """Okta Management API. Authenticate with an API token or an OAuth service app."""

    org_url: str
    token_env: str | None = None
    client_id: str | None = None
    private_key_file: str | None = None
    key_id: str | None = None
    app_id: str | None = None
    include_everyone: bool = False  # Okta's BUILT_IN "Everyone" group
    overlap_minutes: int = 5  # incremental filters re-read this much before the last read
    retry_budget_seconds: float = 300.0  # one request's retries (and rate-limit waits) stop after this

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.org_url.startswith("https://"):
            raise ValueError("org_url must start with https://")
        if self.token_env is None and not (self.client_id and self.private_key_file):
            raise ValueError("set token_env, or client_id and private_key_file")
        if self.overlap_minutes < 0:
            raise ValueError("overlap_minutes must not be negative")
        if self.retry_budget_seconds <= 0:
            raise ValueError("retry_budget_seconds must be positive")
