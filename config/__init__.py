"""Typed settings: one TOML file plus `DIRSYNC_*` environment overrides."""

from config.directories import DirectorySettings, FileDirectorySettings, HttpDirectorySettings
from config.entra import EntraDirectorySettings
from config.kinds import KINDS
from config.okta import OktaDirectorySettings
from config.scim import ScimDirectorySettings
from config.errors import ConfigError
from config.settings import Settings, WebSettings, check_secrets, load, parse, read_secret

__all__ = [
    "KINDS",
    "ConfigError",
    "DirectorySettings",
    "EntraDirectorySettings",
    "FileDirectorySettings",
    "HttpDirectorySettings",
    "OktaDirectorySettings",
    "ScimDirectorySettings",
    "Settings",
    "WebSettings",
    "load",
    "parse",
    "check_secrets",
    "read_secret",
]
