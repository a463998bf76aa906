"""Configuration can adjust the rules and limits but never switch them off: every value out
of bounds stops the command with one line naming the key, exit 2."""

from __future__ import annotations

import pytest

from config import ConfigError, parse
from config.settings import LONGEST_GROUP_NAME

LINKS = '[directories.hr]\nkind = "file"\npath = "hr.json"\nlinks = {{ {} }}\n'

# (the TOML, the start of the one line that names the key, a word of the reason)
OUT_OF_BOUNDS = [
    ("[rules]\nmax_group_name_length = 25", "rules.max_group_name_length:", "between 1 and 24"),
    ("[rules]\nmax_group_name_length = 0", "rules.max_group_name_length:", "between 1 and 24"),
    ('[rules]\nadmin_alias = "Administrators"', "rules.admin_alias:", "must differ from admin_group"),
    ('[rules]\nadmin_alias = " ADMINISTRATORS "', "rules.admin_alias:", "must differ from admin_group"),
    ('[rules]\nadmin_group = "Root"\nadmin_alias = "root"', "rules.admin_alias:", "must differ from admin_group"),
    ('[rules]\nadmin_alias = "Аdministrators"', "rules.admin_alias:", "looks like the reserved"),  # Cyrillic А
    ('[rules]\nadmin_alias = ""', "rules.admin_alias:", "no name"),
    (f'[rules]\nadmin_alias = "{"S" * 25}"', "rules.admin_alias:", "shorter than 25"),
    ("[rules]\nmax_group_name_length = 10", "rules.admin_alias:", "shorter than 11"),
    ('[rules]\nadmin_group = "  "', "rules.admin_group:", "no name"),
    (f'[rules]\nadmin_group = "{"A" * 25}"', "rules.admin_group:", "shorter than 25"),
    ('[rules]\nadmin_group = "Admins\\u202e"', "rules.admin_group:", "control characters"),
    (LINKS.format('"g1" = "Administrators"'), "directories.hr.links.g1:", "reserved"),
    (LINKS.format('"g1" = "administrators"'), "directories.hr.links.g1:", "reserved"),
    (LINKS.format('"g1" = "Split_Administrators"'), "directories.hr.links.g1:", "alias of the reserved"),
    (LINKS.format(f'"g1" = "{"E" * 25}"'), "directories.hr.links.g1:", "shorter than 25"),
    (LINKS.format('"g1" = ""'), "directories.hr.links.g1:", "no name"),
    (LINKS.format('"g1" = "Eng", "g2" = "ENG"'), "directories.hr.links.g2:", "already the target of g1"),
    ('[safety]\nprotected_users = ["root@example.com", "root"]', "safety.protected_users[1]:", "not a valid email"),
    ('[safety]\nprotected_users = [""]', "safety.protected_users[0]:", "empty"),
    ('[safety]\nprotected_users = "root@example.com, x@"', "safety.protected_users[1]:", "not a valid email"),
    ("[safety]\nprotected_users = [1]", "safety.protected_users[0]:", "expected a string"),
    ("[safety]\nprotected_users = {}", "safety.protected_users:", "expected an array"),
    ("[safety]\nmax_member_removals = -1", "safety.max_member_removals:", "negative"),
    ("[safety]\nmax_member_removal_ratio = 0", "safety.max_member_removal_ratio:", "more than 0"),
    ("[safety]\nmax_member_removal_ratio = 1.5", "safety.max_member_removal_ratio:", "at most 1"),
    ("[safety]\nmax_retry_wait_seconds = 0", "safety.max_retry_wait_seconds:", "more than 0"),
    ("[safety]\nmax_deactivation_ratio = 2", "safety.max_deactivation_ratio:", "between 0 and 1"),
    ("[store]\nkeep_runs_days = 0", "store.keep_runs_days:", "at least 1"),
    ("[worker]\nlock_ttl_seconds = 0", "worker.lock_ttl_seconds:", "more than 0"),
]


@pytest.mark.parametrize(("toml", "key", "reason"), OUT_OF_BOUNDS, ids=[c[1] + c[2] for c in OUT_OF_BOUNDS])
def test_a_value_out_of_bounds_stops_the_cli_with_one_line_naming_the_key(cli, toml, key, reason):
    cli.write_config(toml + "\n")
    result = cli.run("status")
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith(f"dirsync: configuration error: {key} ")
    assert reason in result.err


def test_the_bounds_themselves_are_accepted():
    settings = parse(
        {
            "rules": {"max_group_name_length": 1, "admin_group": "A" * LONGEST_GROUP_NAME, "admin_alias": "S"},
            "safety": {"max_member_removals": 0, "max_member_removal_ratio": 1, "max_retry_wait_seconds": 0.5},
            "store": {"keep_runs_days": 1},
            "worker": {"lock_ttl_seconds": 1},
        },
        environ={},
    )
    assert settings.rules.to_rules().max_group_name_length == 1
    assert settings.safety.max_member_removal_ratio == 1.0
    assert settings.safety.max_member_removals == 0
    assert settings.store.keep_runs_days == 1
    assert settings.worker.lock_ttl_seconds == 1
    assert parse({"rules": {"max_group_name_length": LONGEST_GROUP_NAME}}, environ={}).rules.max_group_name_length == 24


def test_valid_links_load_and_the_alias_still_maps_by_its_own_name():
    settings = parse(
        {"directories": {"hr": {"kind": "file", "path": "hr.json", "links": {"g1": " Engineering ", "g2": "Ops"}}}},
        environ={},
    )
    assert settings.directory("hr").links == {"g1": " Engineering ", "g2": "Ops"}


def test_a_link_is_checked_against_the_configured_rules_not_the_defaults():
    tight = {"max_group_name_length": 5, "admin_alias": "Adm"}
    table = {"kind": "file", "path": "hr.json", "links": {"g1": "Finance"}}
    with pytest.raises(ConfigError, match=r"^directories\.hr\.links\.g1: group names must be shorter than 6"):
        parse({"rules": tight, "directories": {"hr": table}}, environ={})
    with pytest.raises(ConfigError, match=r"^directories\.hr\.links\.g1: .*alias"):
        parse({"rules": tight, "directories": {"hr": {**table, "links": {"g1": "ADM"}}}}, environ={})


def test_protected_users_are_kept_trimmed_in_order():
    settings = parse({"safety": {"protected_users": [" root@example.com ", "Ops@Example.com"]}}, environ={})
    assert settings.safety.protected_users == ("root@example.com", "Ops@Example.com")
