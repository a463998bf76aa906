"""Shared fixtures of the worker tests: a dedicated Redis database, flushed around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import os

# Database 15 is the tests' own; parallel test processes (pytest-xdist gwN) take 14, 13, ...
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
REDIS_DB = 15 - min(int(_WORKER[2:] or 0), 7) if _WORKER.startswith("gw") else 15
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if redis_reachable():
        return
    skip = pytest.mark.skip(reason=f"Redis is not reachable at {REDIS_URL}")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client on the test database (15), flushed before and after; no other DB is touched."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
