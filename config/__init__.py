"""Typed settings: one TOML file plus `DIRSYNC_*` environment overrides."""

from config.directories import (
    KINDS,
    DirectorySettings,
    EntraDirectorySettings,
    FileDirectorySettings,
    HttpDirectorySettings,
    OktaDirectorySettings,
)
from config.errors import ConfigError
from config.settings import Settings, load, parse, read_secret

__all__ = [
    "KINDS",
    "ConfigError",
    "DirectorySettings",
    "EntraDirectorySettings",
    "FileDirectorySettings",
    "HttpDirectorySettings",
    "OktaDirectorySettings",
    "Settings",
    "load",
    "parse",
    "read_secret",
]
