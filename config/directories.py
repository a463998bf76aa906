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
    request_timeout_seconds: float = 30.0
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


@dataclass(frozen=True, kw_only=True)
class OktaDirectorySettings(HttpDirectorySettings):
    """Okta Management API. Authenticate with an API token or an OAuth service app."""

    org_url: str
    token_env: str | None = None
    client_id: str | None = None
    private_key_file: str | None = None
    key_id: str | None = None
    app_id: str | None = None
    include_everyone: bool = False
    overlap_minutes: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.org_url.startswith("https://"):
            raise ValueError("org_url must start with https://")
        if self.token_env is None and not (self.client_id and self.private_key_file):
            raise ValueError("set token_env, or client_id and private_key_file")


@dataclass(frozen=True, kw_only=True)
class EntraDirectorySettings(HttpDirectorySettings):
    """Microsoft Entra ID through Microsoft Graph, with a client secret or a certificate."""

    tenant_id: str
    client_id: str
    client_secret_env: str | None = None
    certificate_file: str | None = None
    certificate_thumbprint: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    service_principal_id: str | None = None
    email_source: str = "userPrincipalName"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.email_source not in ("userPrincipalName", "mail"):
            raise ValueError('email_source must be "userPrincipalName" or "mail"')
        for key in ("authority_host", "graph_url"):
            if not getattr(self, key).startswith("https://"):
                raise ValueError(f"{key} must start with https://")
        if self.client_secret_env is None and not (
            self.certificate_file and self.certificate_thumbprint
        ):
            raise ValueError(
                "set client_secret_env, or certificate_file and certificate_thumbprint"
            )


KINDS: dict[str, type[DirectorySettings]] = {
    "file": FileDirectorySettings,
    "okta": OktaDirectorySettings,
    "entra": EntraDirectorySettings,
}
