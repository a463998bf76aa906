"""Keys of a `kind = "scim"` directory: the IdP pushes to dirsync, so there is nothing to
connect to, only the lifetime of its bearer token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.directories import DirectorySettings
from config.errors import InvalidValue

# The name is the last segment of the SCIM base URL; Okta refuses `_` in base URLs.
SCIM_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class ScimDirectorySettings(DirectorySettings):
    """A directory that Okta or Entra pushes to over SCIM 2.0 (never scheduled by beat)."""

    token_days: int = 365  # a bearer token is valid this long after it is created

    def __post_init__(self) -> None:
        super().__post_init__()
        if not SCIM_NAME.match(self.name):
            raise ValueError(
                f"a scim directory's name is the last segment of its base URL: lowercase letters,"
                f" digits and - only (not {self.name!r})",
            )
        if not 1 <= self.token_days <= 3650:
            raise InvalidValue("token_days", f"must be between 1 and 3650, got {self.token_days}")
