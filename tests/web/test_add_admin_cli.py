"""`dirsync console add-admin EMAIL`: exit codes, one-line errors, a hash stored."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from cli.main import main
from service.console_auth import verify_password
from store import Store
from store.models import ConsoleAdmin


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str,
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dirsync", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


@pytest.fixture
def configured(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    url = store.engine.url.render_as_string(hide_password=False)
    (tmp_path / "dirsync.toml").write_text(f'[store]\nurl = "{url}"\n')
    monkeypatch.setenv("DIRSYNC_CONFIG", str(tmp_path / "dirsync.toml"))
    return store


def _hash(store: Store, email: str) -> str | None:
    with store.session() as session:
        return session.scalars(select(ConsoleAdmin.password_hash).where(ConsoleAdmin.email == email)).one_or_none()


def test_add_admin_reads_the_password_from_stdin_and_stores_a_hash(configured: Store, monkeypatch, capsys) -> None:
    code, out, err = _run(monkeypatch, capsys, "a long password here\n", "console", "add-admin", "zoe@example.com",
                          "--password-stdin")

    assert (code, err) == (0, "")
    assert "zoe@example.com is a console admin now" in out
    stored = _hash(configured, "zoe@example.com")
    assert stored is not None and "a long password here" not in stored
    assert verify_password("a long password here", stored)


def test_add_admin_again_changes_the_password(configured: Store, monkeypatch, capsys) -> None:
    _run(monkeypatch, capsys, "a long password here\n", "console", "add-admin", "zoe@example.com", "--password-stdin")

    code, out, _ = _run(monkeypatch, capsys, "another long password\n", "console", "add-admin", "zoe@example.com",
                        "--password-stdin")

    assert code == 0 and "password changed" in out
    assert verify_password("another long password", _hash(configured, "zoe@example.com") or "")


def test_a_bad_email_is_a_usage_error_in_one_line(configured: Store, monkeypatch, capsys) -> None:
    code, out, err = _run(monkeypatch, capsys, "a long password here\n", "console", "add-admin", "zoe",
                          "--password-stdin")

    assert code == 2 and out == ""
    assert err == "dirsync: not an email address: 'zoe' is not a valid email address\n"


def test_a_short_password_is_refused(configured: Store, monkeypatch, capsys) -> None:
    code, _, err = _run(monkeypatch, capsys, "short\n", "console", "add-admin", "zoe@example.com", "--password-stdin")

    assert code == 2
    assert err == "dirsync: the password must be at least 12 characters long\n"
    assert _hash(configured, "zoe@example.com") is None


def test_without_a_terminal_or_stdin_flag_it_says_what_to_do(configured: Store, monkeypatch, capsys) -> None:
    code, _, err = _run(monkeypatch, capsys, "", "console", "add-admin", "zoe@example.com")

    assert code == 2
    assert "use --password-stdin" in err
