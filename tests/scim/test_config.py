"""A `kind = "scim"` directory and the `[web]` section: one-line errors, never scheduled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import config
from config import ConfigError, ScimDirectorySettings
from worker.beat import due_directories


def test_scim_directory_has_token_days_and_no_idp_settings() -> None:
    settings = config.parse({"directories": {"okta-push": {"kind": "scim"}}}, {})

    directory = settings.directories["okta-push"]
    assert isinstance(directory, ScimDirectorySettings)
    assert directory.token_days == 365


@pytest.mark.parametrize("name", ["okta_push", "Okta", "-okta", "okta-"])
def test_scim_directory_name_is_lowercase_letters_digits_and_dashes(name: str) -> None:
    with pytest.raises(ConfigError, match="lowercase letters, digits and - only") as info:
        config.parse({"directories": {name: {"kind": "scim"}}}, {})

    assert "\n" not in str(info.value)


def test_scim_directory_refuses_idp_settings() -> None:
    with pytest.raises(ConfigError, match=r"directories.okta.org_url: unknown key"):
        config.parse({"directories": {"okta": {"kind": "scim", "org_url": "https://x.okta.com"}}}, {})


def test_web_defaults() -> None:
    web = config.parse({}, {}).web

    assert web.public_url == "http://127.0.0.1:8080"
    assert (web.scim_rate_per_second, web.scim_burst) == (500.0, 1000)
    assert web.scim_base_url("okta") == "http://127.0.0.1:8080/scim/v2/okta"


def test_public_url_from_the_environment_loses_its_trailing_slash() -> None:
    web = config.parse({}, {"DIRSYNC_WEB_PUBLIC_URL": "https://sync.example.com/"}).web

    assert web.scim_base_url("a") == "https://sync.example.com/scim/v2/a"


@pytest.mark.parametrize(("table", "message"), [
    ({"public_url": "sync.example.com"}, "web.public_url: must be an http:// or https:// URL"),
    ({"scim_rate_per_second": 0}, "web.scim_rate_per_second: must be more than 0"),
    ({"scim_burst": 0}, "web.scim_burst: must be at least 1"),
])
def test_bad_web_settings_are_one_line_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.parse({"web": table}, {})


def test_beat_never_schedules_a_scim_directory() -> None:
    settings = config.parse({"directories": {"okta": {"kind": "scim"}, "hr": {"kind": "file", "path": "x.json"}}}, {})

    # Neither has ever run: only the pull directory is due.
    assert due_directories(settings, {}, datetime(2026, 12, 1, tzinfo=UTC)) == ["hr"]


def test_bad_config_exits_2_with_one_line(ws) -> None:
    ws.write_config('[directories.okta_push]\nkind = "scim"\n')

    result = ws.run("scim", "token", "okta_push")

    assert result.code == 2
    assert result.err.count("\n") == 1 and "lowercase letters" in result.err


def test_sync_of_a_scim_directory_is_refused_and_sync_all_skips_it(ws) -> None:
    refused = ws.run("sync", "okta")
    everything = ws.run("sync")

    assert refused.code == 4 and "pushed by its IdP over SCIM" in refused.out + refused.err
    assert everything.code == 0, everything.err
    assert "okta" not in everything.out
