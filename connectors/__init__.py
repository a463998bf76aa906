"""Read-only clients of each kind of directory, normalising into `reconcile.model` records."""

from __future__ import annotations

import importlib

from config import DirectorySettings, Settings
from connectors.base import Connector
from connectors.errors import (
    AuthError,
    ConnectorError,
    PartialReadError,
    PermanentError,
    TransientError,
)

# kind -> module with `build(settings, directory) -> Connector`; imported on first use
# because the okta SDK alone takes about two seconds to import.
_MODULES = {"file": "connectors.file", "okta": "connectors.okta", "entra": "connectors.graph"}


def build_connector(settings: Settings, directory: DirectorySettings) -> Connector:
    """The connector for `directory`'s kind, configured from `settings`."""
    module = importlib.import_module(_MODULES[directory.kind])
    connector: Connector = module.build(settings, directory)
    return connector


__all__ = [
    "AuthError",
    "Connector",
    "ConnectorError",
    "PartialReadError",
    "PermanentError",
    "TransientError",
    "build_connector",
]
