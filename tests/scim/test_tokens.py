"""`dirsync scim token`: shown once, stored as a hash, one at a time, expiring; what it opens."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select

from config import Settings
from reconcile.apply import apply
from reconcile.model import Action, Operation, Plan
from reconcile.plan import plan_disable
from service.scim_tokens import authenticate, expiry_warning, issue_token
from store import Store, export_state, load_local_state, open_store, set_enabled
from store.models import ScimToken


def _store(ws) -> Store:
    from config import load

    return open_store(load(ws.folder / "dirsync.toml").store.url)


def test_token_is_printed_once_with_the_base_url_and_only_its_hash_is_stored(ws) -> None:
    result = ws.run("scim", "token", "okta", "--json")

    assert result.code == 0, result.err
    shown = result.json()
    assert shown["directory"] == "okta"
    assert shown["base_url"] == "https://dirsync.example.com/scim/v2/okta"
    assert shown["token"].startswith("dsync_scim_") and len(shown["token"]) > 40
    store = _store(ws)
    try:
        with store.session() as session:
            row = session.scalars(select(ScimToken)).one()
        assert row.token_hash == hashlib.sha256(shown["token"].encode()).hexdigest()
        assert shown["token"] not in {row.token_hash, row.directory}
        assert abs(row.expires_at - row.created_at - timedelta(days=30)) < timedelta(seconds=1)
        assert datetime.fromisoformat(shown["expires_at"]) == row.expires_at.replace(microsecond=0)
    finally:
        store.dispose()


def test_second_token_is_refused_without_regenerate(ws) -> None:
    assert ws.run("scim", "token", "okta").code == 0

    result = ws.run("scim", "token", "okta")

    assert result.code == 4
    assert "a token exists; use --regenerate" in result.err
    assert "\n" not in result.err.strip()


def test_regenerating_refuses_the_old_token_at_once(ws) -> None:
    old = ws.run("scim", "token", "okta", "--json").json()["token"]

    new = ws.run("scim", "token", "okta", "--regenerate", "--json").json()["token"]

    store = _store(ws)
    try:
        assert new != old
        assert not authenticate(store, "okta", old)
        assert authenticate(store, "okta", new)
    finally:
        store.dispose()


def test_token_for_a_directory_that_is_not_scim_is_a_configuration_error(ws) -> None:
    result = ws.run("scim", "token", "hr")

    assert result.code == 2
    assert "kind 'file' has no SCIM token" in result.err


def test_token_for_an_unknown_directory_is_a_configuration_error(ws) -> None:
    result = ws.run("scim", "token", "nope")

    assert result.code == 2
    assert "no such directory" in result.err


def test_expired_token_is_refused(settings: Settings, store: Store) -> None:
    issued = issue_token(settings, store, "okta")

    assert authenticate(store, "okta", issued.token)
    assert not authenticate(store, "okta", issued.token, now=issued.expires_at + timedelta(seconds=1))


def test_a_token_opens_only_its_own_directory(settings: Settings, store: Store) -> None:
    okta = issue_token(settings, store, "okta").token
    entra = issue_token(settings, store, "entra").token

    assert not authenticate(store, "entra", okta)
    assert not authenticate(store, "okta", entra)
    assert not authenticate(store, "okta", okta + "x")


def test_first_token_revokes_open_invites(settings: Settings, store: Store) -> None:
    """R8: enabling sync (the first token) revokes open invites."""
    apply(store, Plan(None, (Operation(Action.CREATE_INVITE, "new@example.com", values=(("email", "new@example.com"),)),)),
          run_id=None)

    issue_token(settings, store, "okta")

    with store.session() as session:
        invites = export_state(session)["invites"]
    assert [i["status"] for i in invites] == ["revoked"]


def test_expiry_warnings_at_30_7_and_1_days() -> None:
    expires = datetime(2027, 1, 31, 12, 0, tzinfo=datetime.now().astimezone().tzinfo)

    assert expiry_warning("okta", expires, expires - timedelta(days=31)) is None
    assert "within 30 days" in str(expiry_warning("okta", expires, expires - timedelta(days=29)))
    assert "within 7 days" in str(expiry_warning("okta", expires, expires - timedelta(days=6)))
    assert "within 1 day " in str(expiry_warning("okta", expires, expires - timedelta(hours=5)))
    assert "expired" in str(expiry_warning("okta", expires, expires + timedelta(minutes=1)))


def test_dirsync_disable_refuses_the_token(ws) -> None:
    token = ws.run("scim", "token", "okta", "--json").json()["token"]

    result = ws.run("disable", "okta", "--yes")

    assert result.code == 0, result.err
    store = _store(ws)
    try:
        assert not authenticate(store, "okta", token)
    finally:
        store.dispose()
def test_disable_refuses_the_token_and_makes_users_local(settings: Settings, store: Store, okta) -> None:
    created = okta.create_user("ann@example.com")

    with store.session() as session:
        set_enabled(session, "okta", False)
        local = load_local_state(session)
    apply(store, plan_disable(local, "okta"), run_id=None, directory="okta")

    assert not authenticate(store, "okta", okta.token)
    assert okta.get(f"/Users/{created['id']}").status_code == 401
    with store.session() as session:
        users = export_state(session)["users"]
    assert [(u["email"], u["managed_by"]) for u in users] == [("ann@example.com", None)]




def test_status_shows_the_token_expiry_and_warns_before_it(ws) -> None:
    from datetime import UTC

    import freezegun

    issued = ws.run("scim", "token", "okta", "--json").json()
    expires = datetime.fromisoformat(issued["expires_at"])

    fine = ws.run("status", "--json").json()
    with freezegun.freeze_time(expires.astimezone(UTC) - timedelta(days=6)):
        late = ws.run("status")

    okta = next(d for d in fine if d["name"] == "okta")
    assert okta["next_due"] is None  # beat never schedules it
    assert "within 30 days" in okta["scim_token_warning"]  # token_days = 30 in this config
    assert okta["scim_token_expires_at"].startswith(issued["expires_at"][:19])
    assert "SCIM token expires within 7 days" in late.out


def test_runs_and_events_show_scim_requests(ws) -> None:
    from config import load
    from reconcile.push import PushUser
    from service import scim

    ws.run("scim", "token", "okta")
    settings = load(ws.folder / "dirsync.toml")
    store = open_store(settings.store.url)
    try:
        scim.create_user(settings, store, "okta", PushUser("ann@example.com"), request="POST /Users")
        from service.scim_runs import flush_counts

        flush_counts(store)
    finally:
        store.dispose()

    runs = ws.run("runs", "--json").json()
    events = ws.run("events", str(runs[0]["id"]))

    assert (runs[0]["directory"], runs[0]["trigger"], runs[0]["mode"]) == ("okta", "scim", "push")
    assert "create-user" in events.out and "POST /Users" in events.out
