"""Keys of a `kind = "entra"` directory (Microsoft Entra ID through Microsoft Graph)."""

from __future__ import annotations

from dataclasses import dataclass

from config.directories import HttpDirectorySettings


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
