"""Small builders for worker tests: a file directory, a config file, a slow connector."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import config
from config.settings import Settings
from reconcile.model import Changes, Snapshot

from tests.worker.conftest import REDIS_URL


def user(i: int, *, active: bool = True, prefix: str = "user") -> dict[str, Any]:
    return {
        "id": f"{prefix}-u{i}",
        "email": f"{prefix}{i}@example.com",
        "given_name": f"Given{i}",
        "family_name": f"Family{i}",
        "display_name": f"User {i}",
        "active": active,
    }


def directory(
    path: Path, users: int | list[dict[str, Any]] = 3, groups: list[dict[str, Any]] | None = None
) -> Path:
    """Write a file directory of `users` (a count or records) and `groups` to `path`.

    Generated users and the default group are named after the file (`hr.json`: hr0@...,
    group "hr-staff"), so two directories never claim the same user.
    """
    prefix = path.stem
    records = [user(i, prefix=prefix) for i in range(users)] if isinstance(users, int) else users
    if groups is None:
        groups = [{"id": f"{prefix}-g1", "name": f"{prefix}-staff", "members": [u["id"] for u in records[:2]]}]
    path.write_text(json.dumps({"users": records, "groups": groups}))
    return path


def settings_file(
    folder: Path,
    directories: dict[str, dict[str, Any]],
    *,
    broker_url: str = REDIS_URL,
    lock_ttl_seconds: int = 60,
    quarantine_after: int = 3,
    store_url: str | None = None,
) -> Path:
    """Write a dirsync.toml in `folder` (SQLite store there) and return its path."""
    lines = [
        "[store]",
        f'url = "{store_url or "sqlite:///" + str(folder / "dirsync.db")}"',
        "[safety]",
        f"quarantine_after = {quarantine_after}",
        "[worker]",
        f'broker_url = "{broker_url}"',
        f"lock_ttl_seconds = {lock_ttl_seconds}",
    ]
    for name, table in directories.items():
        lines.append(f"[directories.{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "dirsync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path: Path) -> Settings:
    return config.load(path, environ={})


def prepare_store(settings: Settings) -> None:
    """Migrate the store (what `dirsync db upgrade` does) and create a row per configured
    directory before any cycle runs, so concurrent first cycles never race to insert them."""
    from store import open_store
    from store.directories import ensure_directory

    store = open_store(settings.store.url, check_schema=False)
    try:
        store.upgrade()
        with store.session(write=True) as session:
            for name, d in settings.directories.items():
                ensure_directory(session, name, d.kind)
    finally:
        store.dispose()


class SlowConnector:
    """Wraps a connector and takes `delay` seconds to read: a long cycle, on demand."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        time.sleep(self.delay)
        result: Snapshot | Changes = self.inner.read(watermark)
        return result

    def close(self) -> None:
        self.inner.close()


def slow_cycle(delay: float) -> Any:
    """`run_cycle` whose reads take `delay` seconds (passed to `create_app(cycle=...)`)."""

    def cycle(settings: Settings, name: str, **kwargs: Any) -> Any:
        from connectors import build_connector
        from reconcile.cycle import run_cycle

        if delay:
            kwargs["connector"] = SlowConnector(build_connector(settings, settings.directory(name)), delay)
        return run_cycle(settings, name, **kwargs)

    return cycle
