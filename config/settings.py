"""Loading the one configuration: a TOML file plus `DIRSYNC_*` environment overrides.

Where the file comes from: `--config PATH`, else `$DIRSYNC_CONFIG`, else `./dirsync.toml`
if it exists, else the embedded defaults (SQLite store, no directories).
Environment overrides name a section and a key: `DIRSYNC_STORE_URL`,
`DIRSYNC_SAFETY_MAX_DEACTIVATIONS`, `DIRSYNC_WORKER_BROKER_URL` (alias
`DIRSYNC_BROKER_URL`); a list is comma-separated. The few `DIRSYNC_*` variables that are
not settings are named in `ENV_NOT_SETTINGS`; any other unknown name is refused as a typo.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from config.directories import DirectorySettings
from config.kinds import KINDS
from config.errors import ConfigError, InvalidValue
from config.schema import build
from reconcile.model import RuleSettings, SafetyLimits
from reconcile.rules import Violation, check_email, check_group_name, email_key, name_key

DEFAULT_PATH = Path("dirsync.toml")
ENV_PREFIX = "DIRSYNC_"
ENV_ALIASES = {"DIRSYNC_BROKER_URL": "DIRSYNC_WORKER_BROKER_URL"}
# Variables with the prefix that are not setting overrides, and who reads them.
ENV_NOT_SETTINGS = {
    "DIRSYNC_CONFIG": "the configuration file (read here, before the overrides)",
    "DIRSYNC_DEBUG": "the CLI: 1 prints the traceback of an error",
    "DIRSYNC_TEST_PG": "the test suite: the PostgreSQL server its databases are made on",
}


# R2: group names are shorter than 25 characters; configuration may tighten this, not lift it.
LONGEST_GROUP_NAME = 24


@dataclass(frozen=True)
class StoreSettings:
    url: str = "sqlite:///dirsync.db"
    keep_runs_days: int = 90  # runs and their events older than this are pruned

    def __post_init__(self) -> None:
        if self.keep_runs_days < 1:
            raise InvalidValue("keep_runs_days", f"must be at least 1, got {self.keep_runs_days}")


@dataclass(frozen=True)
class RulesSettings:
    """Rule parameters. They can adjust the rules (R2, R3), never switch them off."""

    max_group_name_length: int = LONGEST_GROUP_NAME
    admin_group: str = "Administrators"
    admin_alias: str = "Split_Administrators"
    link_groups_by_name: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_group_name_length <= LONGEST_GROUP_NAME:
            raise InvalidValue(
                "max_group_name_length",
                f"must be between 1 and {LONGEST_GROUP_NAME} (group names stay shorter than"
                f" {LONGEST_GROUP_NAME + 1}), got {self.max_group_name_length}",
            )
        rules = self.to_rules()
        # The admin group's own name is reserved by definition; it must still obey R2.
        admin = check_group_name(self.admin_group, replace(rules, max_group_name_length=LONGEST_GROUP_NAME))
        if isinstance(admin, Violation) and admin.reason != "reserved-name":
            raise InvalidValue("admin_group", admin.detail)
        if name_key(self.admin_alias) == name_key(self.admin_group):
            raise InvalidValue("admin_alias", f"must differ from admin_group {self.admin_group.strip()!r}")
        alias = check_group_name(self.admin_alias, rules)
        if isinstance(alias, Violation):  # a directory group could never carry this name
            raise InvalidValue("admin_alias", alias.detail)

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
    # Break-glass accounts: no directory deactivates them or removes them from the admin group.
    protected_users: tuple[str, ...] = ()
    max_member_removals: int = 1000
    max_member_removal_ratio: float = 0.2  # of the directory's managed memberships
    max_retry_wait_seconds: float = 300.0  # a longer Retry-After fails the cycle as transient

    def __post_init__(self) -> None:
        if self.max_deactivations < 0:
            raise InvalidValue("max_deactivations", f"must not be negative, got {self.max_deactivations}")
        if not 0.0 <= self.max_deactivation_ratio <= 1.0:
            raise InvalidValue(
                "max_deactivation_ratio", f"must be between 0 and 1, got {self.max_deactivation_ratio}"
            )
        if self.quarantine_after < 1:
            raise InvalidValue("quarantine_after", f"must be at least 1, got {self.quarantine_after}")
        if self.max_member_removals < 0:
            raise InvalidValue("max_member_removals", f"must not be negative, got {self.max_member_removals}")
        if not 0.0 < self.max_member_removal_ratio <= 1.0:
            raise InvalidValue(
                "max_member_removal_ratio",
                f"must be more than 0 and at most 1, got {self.max_member_removal_ratio}",
            )
        if self.max_retry_wait_seconds <= 0:
            raise InvalidValue(
                "max_retry_wait_seconds", f"must be more than 0, got {self.max_retry_wait_seconds}"
            )
        object.__setattr__(self, "protected_users", _valid_emails("protected_users", self.protected_users))

    def to_limits(self) -> SafetyLimits:
        return SafetyLimits(
            max_deactivations=self.max_deactivations,
            max_deactivation_ratio=self.max_deactivation_ratio,
            max_member_removals=self.max_member_removals,
            max_member_removal_ratio=self.max_member_removal_ratio,
        )


@dataclass(frozen=True)
class WorkerSettings:
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None  # defaults to the broker URL
    metrics_port: int = 0  # 0: no metrics endpoint
    log_format: str = "text"
    log_level: str = "INFO"
    lock_ttl_seconds: int = 60  # a dead holder's lock blocks its directory at most this long
    cycle_time_limit_seconds: int = 3600  # the longest a worker's cycle may run before it is stopped

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise InvalidValue("log_format", f'must be "text" or "json", got {self.log_format!r}')
        if self.lock_ttl_seconds <= 0:
            raise InvalidValue("lock_ttl_seconds", f"must be more than 0, got {self.lock_ttl_seconds}")
        if self.cycle_time_limit_seconds < 60:
            raise InvalidValue("cycle_time_limit_seconds", f"must be at least 60, got {self.cycle_time_limit_seconds}")


@dataclass(frozen=True)
class WebSettings:
    """`dirsync serve`: where admins and IdPs reach it, and what one SCIM token may send."""

    public_url: str = "http://127.0.0.1:8080"  # SCIM base URLs are {public_url}/scim/v2/{name}
    scim_rate_per_second: float = 500.0  # sustained requests per token
    scim_burst: int = 1000  # requests a token may send at once before the rate applies
    max_body_bytes: int = 1_000_000  # larger request bodies are refused (413)

    def __post_init__(self) -> None:
        url = self.public_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or "://" not in url or not url.split("://", 1)[1]:
            raise InvalidValue("public_url", f"must be an http:// or https:// URL, got {self.public_url!r}")
        if "?" in url or "#" in url:
            raise InvalidValue("public_url", "must not carry a query or fragment")
        object.__setattr__(self, "public_url", url)
        if self.scim_rate_per_second <= 0:
            raise InvalidValue("scim_rate_per_second", f"must be more than 0, got {self.scim_rate_per_second}")
        if self.scim_burst < 1:
            raise InvalidValue("scim_burst", f"must be at least 1, got {self.scim_burst}")
        if self.max_body_bytes < 1024:
            raise InvalidValue("max_body_bytes", f"must be at least 1024, got {self.max_body_bytes}")

    def scim_base_url(self, directory: str) -> str:
        return f"{self.public_url}/scim/v2/{directory}"


def _valid_emails(key: str, emails: tuple[str, ...]) -> tuple[str, ...]:
    """The trimmed emails, or `InvalidValue` naming the first that is not valid (R1)."""
    cleaned = []
    for i, raw in enumerate(emails):
        checked = check_email(raw)
        if isinstance(checked, Violation):
            problem = "is empty; expected an email address" if checked.reason == "missing-email" else checked.detail
            raise InvalidValue(f"{key}[{i}]", problem)
        cleaned.append(checked)
    return tuple(cleaned)


@dataclass(frozen=True)
class Settings:
    store: StoreSettings = field(default_factory=StoreSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    web: WebSettings = field(default_factory=WebSettings)
    directories: Mapping[str, DirectorySettings] = field(default_factory=dict)
    source: Path | None = None  # the file these came from; relative paths resolve against it

    def to_rules(self) -> RuleSettings:
        """The rules a directory's plans follow: `[rules]`, and the break-glass accounts
        of `[safety]` by their email key."""
        return replace(
            self.rules.to_rules(),
            protected_users=frozenset(email_key(e) for e in self.safety.protected_users),
        )

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
    "web": WebSettings,
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
    rules = sections["rules"].to_rules()
    for directory in directories.values():
        _check_links(directory, rules)
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


def env_setting(name: str) -> tuple[str, str] | None:
    """The (section, key) a `DIRSYNC_*` variable overrides, or None for one that is not a
    setting (`ENV_NOT_SETTINGS`). Raises `ConfigError` for any other name, a likely typo."""
    if name in ENV_NOT_SETTINGS:
        return None
    rest = ENV_ALIASES.get(name, name).removeprefix(ENV_PREFIX).lower()
    section, _, key = rest.partition("_")
    cls = SECTIONS.get(section)
    if cls is None or key not in {f.name for f in dataclasses.fields(cls)}:
        raise ConfigError(f"{name}: unknown setting (expected DIRSYNC_<SECTION>_<KEY>)")
    return section, key


def _apply_environment(tables: dict[str, dict[str, object]], env: Mapping[str, str]) -> None:
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        target = env_setting(name)
        if target is not None:
            section, key = target
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


def _check_links(directory: DirectorySettings, rules: RuleSettings) -> None:
    """Every `links` target is a name a directory group may carry (R2, R3), once."""
    targets: dict[str, str] = {}
    for external_id, target in directory.links.items():
        where = f"directories.{directory.name}.links.{external_id}"
        checked = check_group_name(target, rules)
        if isinstance(checked, Violation):
            raise ConfigError(f"{where}: {checked.detail}")
        if name_key(checked) == name_key(rules.admin_alias):
            raise ConfigError(
                f"{where}: {checked!r} is the alias of the reserved {rules.admin_group!r};"
                " a directory group maps onto it by its own name, not by a link"
            )
        other = targets.setdefault(name_key(checked), external_id)
        if other != external_id:
            raise ConfigError(f"{where}: {checked!r} is already the target of {other}")


def check_secrets(directory: DirectorySettings, environ: Mapping[str, str] | None = None) -> None:
    """`ConfigError` naming the first environment variable a directory's settings name for
    a secret (`*_env`) that is not set: a configuration error before any cycle starts."""
    for field_ in dataclasses.fields(directory):
        env_name = getattr(directory, field_.name)
        if field_.name.endswith("_env") and isinstance(env_name, str) and env_name:
            read_secret(env_name, f"directories.{directory.name}.{field_.name}", environ)


def read_secret(env_name: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret held by environment variable `env_name`; the error names only the variable."""
    env = os.environ if environ is None else environ
    value = env.get(env_name, "")
    if not value:
        raise ConfigError(f"{where}: environment variable {env_name} is not set")
    return value
