"""`DIRSYNC_*` variables: overrides for every new key, and every variable the docs name works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import ConfigError, Settings, load, parse
from config.settings import env_setting

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docker-compose.yml", ROOT / "Dockerfile"]
# A full name: `DIRSYNC_` and then letters, not a pattern such as `DIRSYNC_*` or `DIRSYNC_<SECTION>`.
VARIABLE = re.compile(r"\bDIRSYNC_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def documented_variables() -> set[str]:
    return {name for doc in DOCUMENTS if doc.exists() for name in VARIABLE.findall(doc.read_text())}


def test_the_new_keys_are_overridden_from_the_environment():
    settings = parse(
        {"safety": {"protected_users": ["file@example.com"]}, "store": {"keep_runs_days": 7}},
        environ={
            "DIRSYNC_SAFETY_PROTECTED_USERS": " root@example.com, ops@example.com ,",
            "DIRSYNC_SAFETY_MAX_MEMBER_REMOVALS": "25",
            "DIRSYNC_SAFETY_MAX_MEMBER_REMOVAL_RATIO": "0.5",
            "DIRSYNC_SAFETY_MAX_RETRY_WAIT_SECONDS": "12.5",
            "DIRSYNC_STORE_KEEP_RUNS_DAYS": "30",
            "DIRSYNC_WORKER_LOCK_TTL_SECONDS": "15",
        },
    )
    assert settings.safety.protected_users == ("root@example.com", "ops@example.com")
    assert settings.safety.max_member_removals == 25
    assert settings.safety.max_member_removal_ratio == 0.5
    assert settings.safety.max_retry_wait_seconds == 12.5
    assert settings.store.keep_runs_days == 30
    assert settings.worker.lock_ttl_seconds == 15


def test_an_empty_protected_users_variable_clears_the_list():
    settings = parse({"safety": {"protected_users": ["root@example.com"]}}, environ={"DIRSYNC_SAFETY_PROTECTED_USERS": ""})
    assert settings.safety.protected_users == ()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIRSYNC_SAFETY_PROTECTED_USERS", "root@example.com,nobody", r"^safety\.protected_users\[1\]: 'nobody' is not a valid email"),
        ("DIRSYNC_SAFETY_MAX_MEMBER_REMOVALS", "many", r"^safety\.max_member_removals: expected an integer, got string 'many'$"),
        ("DIRSYNC_SAFETY_MAX_MEMBER_REMOVAL_RATIO", "0", r"^safety\.max_member_removal_ratio: must be more than 0"),
        ("DIRSYNC_STORE_KEEP_RUNS_DAYS", "0", r"^store\.keep_runs_days: must be at least 1"),
        ("DIRSYNC_WORKER_LOCK_TTL_SECONDS", "-5", r"^worker\.lock_ttl_seconds: must be more than 0"),
        ("DIRSYNC_RULES_MAX_GROUP_NAME_LENGTH", "100", r"^rules\.max_group_name_length: must be between 1 and 24"),
        ("DIRSYNC_RULES_ADMIN_ALIAS", "administrators", r"^rules\.admin_alias: must differ from admin_group"),
    ],
)
def test_a_bad_override_is_held_to_the_same_bounds_as_the_file(name, value, message):
    with pytest.raises(ConfigError, match=message):
        parse({}, environ={name: value})


def test_the_defaults_are_the_documented_ones():
    settings = Settings()
    assert settings.safety.protected_users == ()
    assert settings.safety.max_member_removals == 1000
    assert settings.safety.max_member_removal_ratio == 0.2
    assert settings.safety.max_retry_wait_seconds == 300
    assert settings.store.keep_runs_days == 90
    assert settings.worker.lock_ttl_seconds == 60


def test_the_readme_example_loads_and_shows_the_defaults(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None, "README's Configuration section has no TOML example"
    path = tmp_path / "dirsync.toml"
    path.write_text(example.group(1))
    settings = load(path, environ={})
    defaults = Settings()
    for section_name in ("store", "rules", "safety", "worker"):
        assert getattr(settings, section_name) == getattr(defaults, section_name), section_name
    assert settings.directory("hr").links == {"g-42": "Engineering"}


def test_the_docs_name_the_variables_this_test_walks():
    # Guards the walk below against finding nothing (a changed pattern, moved docs).
    assert {"DIRSYNC_CONFIG", "DIRSYNC_DEBUG", "DIRSYNC_TEST_PG", "DIRSYNC_STORE_URL", "DIRSYNC_BROKER_URL"} <= documented_variables()


@pytest.mark.parametrize("name", sorted(documented_variables()))
def test_every_documented_variable_works_with_the_cli(cli, name):
    store = cli.folder / "walk.db"
    config = cli.write_config(f'[store]\nurl = "sqlite:///{store}"\n')
    assert cli.run("admin", "add-user", "walk@example.com").code == 0
    target = env_setting(name)
    if name == "DIRSYNC_CONFIG":
        config = config.rename(cli.folder / "elsewhere.toml")  # found only through the variable
        value = str(config)
    elif target is None:
        value = "1"
    else:
        value = _as_variable(getattr(getattr(Settings(), target[0]), target[1]))
    if name == "DIRSYNC_STORE_URL":
        value = f"sqlite:///{store}"
    cli.monkeypatch.setenv(name, value)
    result = cli.run("export", "--json")
    assert result.code == 0, result.err
    # The configured store was used: it holds the user added before the variable was set.
    assert [u["email"] for u in result.json()["users"]] == ["walk@example.com"]


def test_an_unknown_variable_is_still_refused_as_a_likely_typo(cli):
    cli.monkeypatch.setenv("DIRSYNC_STOR_URL", "sqlite:///x.db")
    result = cli.run("status")
    assert result.code == 2
    assert result.err == "dirsync: configuration error: DIRSYNC_STOR_URL: unknown setting (expected DIRSYNC_<SECTION>_<KEY>)\n"


def _as_variable(value: object) -> str:
    """A setting's value as an environment variable spells it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return "" if value is None else str(value)
