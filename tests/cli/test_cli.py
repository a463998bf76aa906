"""The `dirsync` command line: exit codes, one-line errors, the shapes it prints."""

from __future__ import annotations

from tests.cli.conftest import user


def test_sync_creates_users_and_export_prints_the_documented_shape(ws):
    ws.write_directory(
        [user("u1", "ana@example.com", name="Ana Diaz")],
        [{"id": "g1", "name": "Engineering", "members": ["u1"]}],
    )
    assert ws.run("sync").code == 0
    assert ws.export() == {
        "users": [{"email": "ana@example.com", "display_name": "Ana Diaz", "given_name": None,
                   "family_name": None, "active": True, "managed_by": "hr", "external_id": "u1"}],
        "groups": [
            {"name": "Administrators", "managed_by": None, "external_id": None, "members": []},
            {"name": "Engineering", "managed_by": "hr", "external_id": "g1", "members": ["ana@example.com"]},
        ],
        "invites": [],
    }


def test_second_sync_with_nothing_changed_exits_zero_and_plans_nothing(ws):
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")
    result = ws.run("sync", "--dry-run")
    assert result.code == 0
    assert "(nothing to do)" in result.out


def test_dry_run_prints_a_diff_and_changes_nothing(ws):
    ws.write_directory([user("u1", "ana@example.com"), user("u2", "bad")],
                       [{"id": "g1", "name": "G" * 25, "members": []}])
    result = ws.run("sync", "--dry-run")
    assert result.code == 0
    assert "+ user ana@example.com" in result.out
    assert "! rejected user bad: invalid-email" in result.out
    assert "name-too-long" in result.out
    assert ws.export()["users"] == []


def test_missing_directory_file_fails_the_cycle_with_exit_1(ws):
    result = ws.run("sync")
    assert result.code == 1
    assert "does not exist" in result.out + result.err


def test_truncated_file_fails_and_deactivates_nobody(ws):
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")
    ws.directory_file.write_text('{"users": [{"id": "u1", "email": "ana@exa')
    assert ws.run("sync").code == 1
    assert ws.export()["users"][0]["active"] is True


def test_empty_snapshot_for_a_directory_with_users_halts_with_exit_3(ws):
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")
    ws.write_directory([])
    result = ws.run("sync")
    assert result.code == 3
    assert "dirsync approve" in result.out
    assert ws.export()["users"][0]["active"] is True
    assert ws.run("sync", "--allow-deactivations").code == 3  # an empty read needs `approve RUN_ID`
    assert ws.export()["users"][0]["active"] is True


def test_unknown_config_key_is_one_line_and_exit_2(ws):
    ws.write_config('[store]\nurll = "sqlite:///x.db"\n')
    result = ws.run("sync")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0
    assert "store.urll: unknown key" in result.err


def test_bad_type_in_config_names_the_key(ws):
    ws.write_config('[safety]\nmax_deactivations = "many"\n')
    result = ws.run("status")
    assert result.code == 2
    assert "safety.max_deactivations" in result.err


def test_unknown_directory_name_is_a_usage_error(ws):
    result = ws.run("sync", "nope")
    assert result.code == 2
    assert "directories.nope" in result.err


def test_admin_action_on_managed_user_is_refused_with_exit_4(ws):
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")
    result = ws.run("admin", "deactivate-user", "ana@example.com")
    assert result.code == 4
    assert "managed by directory 'hr'" in result.err
    assert ws.export()["users"][0]["active"] is True


def test_local_admin_actions_change_local_objects(ws):
    assert ws.run("admin", "add-user", "bo@example.com", "--name", "Bo").code == 0
    assert ws.run("admin", "add-group", "Support").code == 0
    assert ws.run("admin", "add-member", "Support", "bo@example.com").code == 0
    [support] = [g for g in ws.export()["groups"] if g["name"] == "Support"]
    assert support["members"] == ["bo@example.com"]
    assert ws.run("admin", "remove-member", "Support", "bo@example.com").code == 0
    assert ws.run("admin", "deactivate-user", "bo@example.com").code == 0
    assert ws.export()["users"][0]["active"] is False
    assert ws.run("admin", "activate-user", "bo@example.com").code == 0


def test_group_of_25_characters_is_refused_locally_too(ws):
    result = ws.run("admin", "add-group", "x" * 25)
    assert result.code == 4 and "shorter than 25" in result.err


def test_invite_is_refused_while_sync_is_on_and_revoked_when_it_is_turned_on(ws):
    assert ws.run("admin", "invite", "new@example.com").code == 4
    ws.write_directory([user("u1", "ana@example.com")])
    assert ws.run("disable", "hr", "--yes").code == 0
    assert ws.run("admin", "invite", "new@example.com").code == 0
    assert ws.export()["invites"] == [{"email": "new@example.com", "status": "open"}]
    assert ws.run("enable", "hr").code == 0
    assert ws.export()["invites"] == [{"email": "new@example.com", "status": "revoked"}]


def test_disable_converts_managed_objects_to_local_and_sync_refuses_until_enabled(ws):
    ws.write_directory([user("u1", "ana@example.com")], [{"id": "g1", "name": "Eng", "members": ["u1"]}])
    ws.run("sync")
    assert ws.run("disable", "hr", "--yes").code == 0
    state = ws.export()
    assert state["users"][0]["managed_by"] is None and state["users"][0]["active"] is True
    [eng] = [g for g in state["groups"] if g["name"] == "Eng"]
    assert eng["managed_by"] is None and eng["members"] == ["ana@example.com"]
    assert ws.run("sync", "hr").code == 4
    assert ws.run("enable", "hr").code == 0
    assert ws.run("sync", "hr").code == 0
    state = ws.export()
    assert state["users"][0]["managed_by"] == "hr"
    assert [g["managed_by"] for g in state["groups"] if g["name"] == "Eng"] == ["hr"]


def test_runs_and_events_show_what_a_cycle_did(ws):
    ws.write_directory([user("u1", "ana@example.com"), user("u2", "")])
    ws.run("sync")
    runs = ws.run("runs", "--json").json()
    assert runs[0]["status"] == "succeeded"
    events = ws.run("events", str(runs[0]["id"]), "--json").json()
    assert {(e["action"], e["outcome"]) for e in events} >= {("create-user", "applied")}
    assert any(e["outcome"] == "rejected" and e["reason"] == "missing-email" for e in events)


def test_sync_json_reports_each_directory(ws):
    ws.write_directory([user("u1", "ana@example.com")])
    [result] = ws.run("sync", "--json").json()
    assert result["directory"] == "hr" and result["status"] == "succeeded"
    assert result["counts"]["create-user"] == 1


def test_events_of_an_unknown_run_is_a_usage_error(ws):
    assert ws.run("events", "424242").code == 2


def test_a_configured_store_password_never_reaches_an_error(ws):
    ws.write_config('[store]\nurl = "postgresql+psycopg://dirsync:hunter2secret@127.0.0.1:1/none"\n')
    result = ws.run("export")
    assert result.code == 1
    assert "hunter2secret" not in result.err + result.out


def test_disable_says_what_it_would_convert_and_needs_a_confirmation(ws):
    ws.write_directory([user("u1", "ana@example.com"), user("u2", "bo@example.com")],
                       [{"id": "g1", "name": "Eng", "members": ["u1"]}])
    ws.run("sync")

    looked = ws.run("disable", "hr", "--dry-run")
    unconfirmed = ws.run("disable", "hr")

    assert looked.code == 0 and "2 users and 1 groups managed by hr would become local" in looked.out
    assert unconfirmed.code == 2 and "confirm with --yes" in unconfirmed.err
    assert {u["managed_by"] for u in ws.export()["users"]} == {"hr"}


def test_a_secret_variable_that_is_not_set_is_a_configuration_error_naming_it(ws, monkeypatch):
    monkeypatch.delenv("CORP_TOKEN", raising=False)
    ws.write_config((ws.folder / "dirsync.toml").read_text()
                    + '\n[directories.corp]\nkind = "okta"\norg_url = "https://127.0.0.1:9"\ntoken_env = "CORP_TOKEN"\n')

    result = ws.run("sync", "corp")
    one = ws.run("sync-user", "corp", "ana@example.com")

    assert result.code == 2 and one.code == 2
    assert result.err.strip() == ("dirsync: configuration error: directories.corp.token_env:"
                                  " environment variable CORP_TOKEN is not set")
    assert ws.run("runs", "--json").json() == []
