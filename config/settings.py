"""Loading the one configuration: a TOML file plus `DIRSYNC_*` environment overrides.

Where the file comes from: `--config PATH`, else `$DIRSYNC_CONFIG`, else `./dirsync.toml`
if it exists, else the embedded defaults (SQLite store, no directories).
Environment overrides name a section and a key: `DIRSYNC_STORE_URL`,
`DIRSYNC_SAFETY_MAX_DEACTIVATIONS`, `DIRSYNC_WORKER_BROKER_URL` (alias
`DIRSYNC_BROKER_URL`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.directories import DirectorySettings
from config.kinds import KINDS
from config.errors import ConfigError
from config.schema import build
from reconcile.model import RuleSettings, SafetyLimits

DEFAULT_PATH = Path("dirsync.toml")
ENV_PREFIX = "DIRSYNC_"
ENV_ALIASES = {"DIRSYNC_BROKER_URL": "DIRSYNC_WORKER_BROKER_URL"}
ENV_IGNORED = {"DIRSYNC_CONFIG"}


@dataclass(frozen=True)
class StoreSettings:
    url: str = "sqlite:///dirsync.db"


@dataclass(frozen=True)
class RulesSettings:
    max_group_name_length: int = 24
    admin_group: str = "Administrators"
    admin_alias: str = "Split_Administrators"
    link_groups_by_name: bool = True

    def __post_init__(self) -> None:
        if self.max_group_name_length < 1:
            raise ValueError("max_group_name_length must be at least 1")
        if not self.admin_group.strip() or not self.admin_alias.strip():
            raise ValueError("admin_group and admin_alias must not be empty")

    def to_rules(self) -> RuleSettings:
        return RuleSettings(
            max_group_name_length=self.max_group_name_length,
            admin_group=self.admin_group.strip(),
            admin_alias=self.admin_alias.strip(),
            link_groups_by_name=self.link_groups_by_name,
        )


@dataclass(frozen=True)
class SafetySettings:
    max_deactivations: int = 500
    max_deactivation_ratio: float = 0.2
    quarantine_after: int = 3

    def __post_init__(self) -> None:
        if self.max_deactivations < 0:
            raise ValueError("max_deactivations must not be negative")
        if not 0.0 <= self.max_deactivation_ratio <= 1.0:
            raise ValueError("max_deactivation_ratio must be between 0 and 1")
        if self.quarantine_after < 1:
            raise ValueError("quarantine_after must be at least 1")

    def to_limits(self) -> SafetyLimits:
        return SafetyLimits(
            max_deactivations=self.max_deactivations,
            max_deactivation_ratio=self.max_deactivation_ratio,
        )


@dataclass(frozen=True)
class WorkerSettings:
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None  # defaults to the broker URL
    metrics_port: int = 0  # 0: no metrics endpoint
    log_format: str = "text"
    log_level: str = "INFO"
    lock_ttl_seconds: int = 3600

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise ValueError('log_format must be "text" or "json"')
        if self.lock_ttl_seconds < 10:
            raise ValueError("lock_ttl_seconds must be at least 10")


@dataclass(frozen=True)
class Settings:
    store: StoreSettings = field(default_factory=StoreSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    directories: Mapping[str, DirectorySettings] = field(default_factory=dict)
    source: Path | None = None  # the file these came from; relative paths resolve against it

    def directory(self, name: str) -> DirectorySettings:
        try:
            return self.directories[name]
        except KeyError:
            known = ", ".join(sorted(self.directories)) or "none configured"
            raise ConfigError(f"directories.{name}: no such directory ({known})") from None

    def resolve_path(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        return p


SECTIONS: dict[str, type] = {
    "store": StoreSettings,
    "rules": RulesSettings,
    "safety": SafetySettings,
    "worker": WorkerSettings,
}


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise `ConfigError` with one line on any problem."""
    env = os.environ if environ is None else environ
    source = _choose_file(path, env)
    data: dict[str, object] = {}
    if source is not None:
        try:
            with source.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {source} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"config file {source} cannot be read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    return parse(data, env, source)


def parse(
    data: Mapping[str, object], environ: Mapping[str, str], source: Path | None = None
) -> Settings:
    """Validate already-parsed TOML plus environment overrides."""
    tables: dict[str, dict[str, object]] = {}
    for key, value in data.items():
        if key not in SECTIONS and key != "directories":
            allowed = ", ".join(sorted([*SECTIONS, "directories"]))
            raise ConfigError(f"{key}: unknown section (allowed: {allowed})")
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table")
        tables[key] = dict(value)
    _apply_environment(tables, environ)
    sections: dict[str, Any] = {
        name: build(cls, tables.get(name, {}), name) for name, cls in SECTIONS.items()
    }
    directories = {
        name: _build_directory(name, table)
        for name, table in sorted(tables.get("directories", {}).items())
    }
    return Settings(
        **sections,
        directories=directories,
        source=source.resolve() if source is not None else None,
    )


def _choose_file(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("DIRSYNC_CONFIG"):
        return Path(env["DIRSYNC_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def _apply_environment(tables: dict[str, dict[str, object]], env: Mapping[str, str]) -> None:
    for raw_name, value in sorted(env.items()):
        if not raw_name.startswith(ENV_PREFIX) or raw_name in ENV_IGNORED:
            continue
        name = ENV_ALIASES.get(raw_name, raw_name)
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        cls = SECTIONS.get(section)
        if cls is None or key not in {f.name for f in dataclasses.fields(cls)}:
            raise ConfigError(f"{raw_name}: unknown setting (expected DIRSYNC_<SECTION>_<KEY>)")
        tables.setdefault(section, {})[key] = value


def _build_directory(name: str, table: object) -> DirectorySettings:
    where = f"directories.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where}: a directory name uses letters, digits, - and _ only")
    kind = table.get("kind")
    if kind is None:
        raise ConfigError(f"{where}.kind: required key is missing")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"{where}.kind: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if "name" in table:
        raise ConfigError(f"{where}.name: unknown key (the table's name is the directory's name)")
    return build(cls, {**table, "name": name}, where)


def read_secret(env_name: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret held by environment variable `env_name`; the error names only the variable."""
    env = os.environ if environ is None else environ
    value = env.get(env_name, "")
    if not value:
        raise ConfigError(f"{where}: environment variable {env_name} is not set")
    return value
