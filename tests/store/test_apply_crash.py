"""A process killed in the middle of an apply leaves whole chunks, which a rerun completes."""

from __future__ import annotations

import multiprocessing
import os
import signal

from sqlalchemy import func, select

from reconcile.apply import apply
from reconcile.model import Plan
from store import Store, SyncEvent, export_state, open_store
from tests.store.builders import add_member, create_group, create_user, plan

CHUNK = 5


def twenty_users_in_a_group() -> Plan:
    return plan(
        create_group("g", "Everyone"),
        *(create_user(f"u{n:02d}", f"user{n:02d}@x.com") for n in range(20)),
        *(add_member("g", f"u{n:02d}") for n in range(20)),
    )


def _apply_and_die_after_two_chunks(url: str) -> None:
    store = open_store(url)

    def die(done: int, total: int) -> None:
        if done >= 2 * CHUNK:
            os.kill(os.getpid(), signal.SIGKILL)

    apply(store, twenty_users_in_a_group(), run_id=None, progress=die, chunk_size=CHUNK)


def test_a_killed_apply_leaves_whole_chunks_and_a_rerun_completes_it(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    worker = multiprocessing.get_context("forkserver").Process(target=_apply_and_die_after_two_chunks, args=(url,))
    worker.start()
    worker.join(timeout=120)
    with store.session() as session:
        after_kill = export_state(session)
        events_after_kill = session.scalar(select(func.count()).select_from(SyncEvent))

    result = apply(store, twenty_users_in_a_group(), run_id=None, chunk_size=CHUNK)

    assert worker.exitcode == -signal.SIGKILL
    assert (len(after_kill["users"]), len(after_kill["groups"]), events_after_kill) == (9, 1, 10)
    assert result.outcomes == {"noop": 10, "applied": 31}
    with store.session() as session:
        state = export_state(session)
    assert len(state["users"]) == 20 and len(state["groups"][0]["members"]) == 20
