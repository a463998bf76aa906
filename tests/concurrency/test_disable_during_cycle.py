"""`dirsync disable NAME` while a long cycle of NAME applies (R8, DESIGN §2a, issue 9).

Disable wins: the directory stays disabled, every user and group it managed is local,
its watermark stays cleared, and the cycle stops writing and ends `aborted` with the
reason, with every operation of its plan accounted for by exactly one event. Proven once
at a fixed point (after the cycle's first commit, deterministic) and at random moments
(seeded) while the cycle commits many small chunks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store import get_directory, open_store
from store.models import groups, sync_runs, users
from tests.concurrency import actors
from tests.concurrency.invariants import read_log, run_accounting

NAME = "big"
USERS = 3000
TEAMS = 30


def _org() -> dict[str, Any]:
    people = [{"id": f"u{i}", "email": f"user{i}@example.com", "display_name": f"User {i}"} for i in range(USERS)]
    teams = [{"id": f"t{j}", "name": f"Team {j}", "members": [f"u{i}" for i in range(j, USERS, TEAMS)]}
             for j in range(TEAMS)]
    teams.append({"id": "admins", "name": "Split_Administrators", "members": ["u0", "u1"]})
    return {"users": people, "groups": teams}


@pytest.fixture
def setup(store_url: str, tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "big.json").write_text(json.dumps(_org()))
    config = tmp_path / "dirsync.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n\n[directories.{NAME}]\nkind = "file"\npath = "big.json"\n')
    store = open_store(store_url, check_schema=False)
    store.upgrade()
    store.dispose()
    return config, store_url


def _start_cycle(config: Path, url: str, folder: Path, chunk_size: int, pause_after: int | None) -> tuple[Any, dict[str, str]]:
    hooks: dict[str, Any] = {"commits": str(folder / "commits.jsonl"), "paused": str(folder / "paused"),
                             "go": str(folder / "go"), "pause_after": pause_after}
    cycle = actors.start(actors.run_cycle_with_hooks, ["--config", str(config), "sync", NAME], url, chunk_size,
                         hooks, str(folder / "cycle.json"))
    return cycle, hooks


def _disable(config: Path, folder: Path, delay: float = 0.0) -> dict[str, Any]:
    report = folder / "disable.json"
    process = actors.start(actors.run_cli, ["--config", str(config), "disable", NAME, "--yes"], delay, str(report))
    process.join(120)
    assert process.exitcode == 0
    return dict(json.loads(report.read_text()))


def _assert_disabled_and_local(url: str) -> dict[str, Any]:
    store = open_store(url)
    try:
        with store.session() as session:
            row = get_directory(session, NAME)
            assert row is not None and not row.enabled
            assert row.watermark is None
            managed_users = session.execute(select(users.c.email).where(users.c.managed_by.is_not(None))).all()
            managed_groups = session.execute(select(groups.c.name).where(groups.c.managed_by.is_not(None))).all()
            assert managed_users == [] and managed_groups == []
            run = session.execute(select(sync_runs).where(sync_runs.c.directory == NAME)).one()._mapping
        events, runs = read_log(store)
        assert run_accounting(events, runs) == []
        return dict(run)
    finally:
        store.dispose()


def test_disable_after_the_first_commit_stops_the_cycle(setup: tuple[Path, str], tmp_path: Path) -> None:
    config, url = setup
    cycle, hooks = _start_cycle(config, url, tmp_path, chunk_size=500, pause_after=1)
    assert actors.wait_for(Path(hooks["paused"]), cycle), "the cycle ended before its first commit"
    disabled = _disable(config, tmp_path)
    Path(hooks["go"]).touch()
    cycle.join(120)

    assert disabled["code"] == 0, disabled
    synced = json.loads((tmp_path / "cycle.json").read_text())
    assert synced["code"] == 1, synced  # aborted is not success
    run = _assert_disabled_and_local(url)
    assert run["status"] == "aborted"
    assert run["error"] == f"aborted: directory {NAME!r} was disabled while this cycle ran"
    assert run["counts"]["outcome:conflict"] > 0  # what it did not write is accounted for


@pytest.mark.parametrize("seed", range(3))
def test_disable_at_a_random_moment_of_the_apply(setup: tuple[Path, str], tmp_path: Path, seed: int) -> None:
    config, url = setup
    cycle, hooks = _start_cycle(config, url, tmp_path, chunk_size=100, pause_after=None)
    # Once the cycle has committed something, disable at a random moment of the rest.
    first = Path(hooks["commits"])
    assert actors.wait_for(first, cycle), "the cycle ended before its first commit"
    disabled = _disable(config, tmp_path, random.Random(seed).uniform(0, 1.5))
    cycle.join(120)

    assert disabled["code"] == 0, disabled
    run = _assert_disabled_and_local(url)
    # Disable may land after the last chunk: then the cycle succeeded before it, and the
    # disable converted everything it wrote.
    assert run["status"] in ("aborted", "succeeded"), run
    if run["status"] == "aborted":
        assert "was disabled while this cycle ran" in run["error"]


def test_disable_survives_a_commit_between_its_read_and_its_write(
    setup: tuple[Path, str], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cycle's chunk that commits after `disable` read the directory row and before it
    writes it (the fixed interleaving of what the random test above meets by chance)."""
    config, url = setup
    if url.startswith("sqlite"):
        pytest.skip("on SQLite disable takes the write lock before it reads the directory row:"
                    " no other commit can come between its read and its write")
    import store as store_package
    from cli.main import main

    store = open_store(url)
    with store.session(write=True) as session:
        store_package.ensure_directory(session, NAME, "file")
    real_set_enabled = store_package.set_enabled

    def a_chunk_commits_first(session: Any, name: str, enabled: bool) -> Any:
        with store.session(write=True) as other:
            store_package.record_run_started(other, name)
        return real_set_enabled(session, name, enabled)

    import service.directories

    monkeypatch.setattr(service.directories, "set_enabled", a_chunk_commits_first)
    monkeypatch.setattr("sys.argv", ["dirsync", "--config", str(config), "disable", NAME, "--yes"])
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        store.dispose()
    assert done.value.code in (0, None), capsys.readouterr().err
    after = open_store(url)
    try:
        with after.session() as session:
            row = get_directory(session, NAME)
            assert row is not None and not row.enabled
    finally:
        after.dispose()
