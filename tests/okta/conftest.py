"""Fixtures for the Okta connector: a small simulated org on a manual clock, served over HTTPS,
and connectors built the way production builds them, pointed at it by configuration."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from config import OktaDirectorySettings
from connectors.okta import ApiToken, OktaConnector
from connectors.okta_http import Credentials
from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator


def start_of_this_second() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture()
def clock() -> ManualClock:
    """The org's and the connector's clock: moves only when a test advances it."""
    return ManualClock(start_of_this_second())


@pytest.fixture()
def org(clock: ManualClock) -> OktaOrg:
    """30 users, 4 groups, 60 memberships; an app with 8 direct users and 2 groups assigned."""
    return OktaOrg.generate(users=30, groups=4, memberships=60, seed=11, clock=clock, app_users=8, app_groups=2)


@pytest.fixture()
def sim(org: OktaOrg) -> Iterator[OktaSimulator]:
    with OktaSimulator(org) as server:
        yield server


def client_context(sim: OktaSimulator) -> ssl.SSLContext:
    """System CAs plus the simulator's test CA, as `ca_bundle` configures in production."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=sim.ca_path)
    return context


def directory(sim: OktaSimulator, **overrides: Any) -> OktaDirectorySettings:
    base = OktaDirectorySettings(
        name="okta",
        kind="okta",
        org_url=sim.base_url,
        token_env="OKTA_TEST_TOKEN",
        ca_bundle=sim.ca_path,
        request_timeout_seconds=2.0,
        max_retries=3,
        retry_budget_seconds=20.0,
    )
    return replace(base, **overrides)


class SleepLog:
    """Records every pause the connector asks for and sleeps only a token amount."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.pauses.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))


@pytest.fixture()
def sleeps() -> SleepLog:
    return SleepLog()


MakeConnector = Callable[..., OktaConnector]


@pytest.fixture()
def make_connector(sim: OktaSimulator, clock: ManualClock, sleeps: SleepLog) -> MakeConnector:
    def make(credentials: Credentials | None = None, *, real_sleep: bool = False, **overrides: Any) -> OktaConnector:
        return OktaConnector(
            directory(sim, **overrides),
            credentials or ApiToken(sim.api_token),
            ssl_context=client_context(sim),
            clock=clock,
            sleep=None if real_sleep else sleeps,
        )

    return make
