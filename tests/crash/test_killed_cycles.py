"""A cycle SIGKILLed anywhere in its apply is completed by the next cycle, exactly.

The apply commits in chunks (2,000 operations, the product's size), so the store a kill
can leave is "the first n chunks, with their events", and a kill inside a chunk's
transaction must leave nothing of it. Kill points (see tests.crash.runner) are every
database event of the apply (each chunk's BEGIN, each statement, each COMMIT), plus the
moment just after the last chunk committed and before the run is recorded; on SQLite also
points in the middle of statements, spread evenly over the apply's work. After each kill the
next, uninterrupted cycle must leave exactly the store an uninterrupted cycle from the same
start state leaves (`export_state`: no duplicate or missing users or groups, no lost
membership, nobody inactive who should be active), the same watermark, and run rows that
say what happened: the killed run `failed` as interrupted, the next one `succeeded`.

store-level chunk atomicity on a small plan is tests/store/test_apply_crash.py; these tests
take it to whole cycles of a large directory, on SQLite at every point and on PostgreSQL
at points spread over the apply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.conftest import Scenarios
from tests.crash.harness import KillPoint, Reference, kill_and_recover

POSTGRES_POINTS = 8
STEP_POINTS = 24  # SQLite only: kills in the middle of statements, spread over the apply


def every_event(ref: Reference) -> list[KillPoint]:
    """Every event of the apply, and the first event after it."""
    return [KillPoint(at) for at in range(1, ref.timeline.apply_events + 2)]


def spread(last: int, count: int) -> list[int]:
    """`count` numbers spread evenly over 1..`last`, both ends included."""
    return sorted({1 + round(i * (last - 1) / (count - 1)) for i in range(count)})


def spread_steps(ref: Reference, count: int) -> list[KillPoint]:
    return [KillPoint(at, step=True) for at in spread(ref.timeline.apply_steps, count)]


def spread_events(ref: Reference, count: int) -> list[KillPoint]:
    return [KillPoint(at) for at in spread(ref.timeline.apply_events + 1, count)]


def kill_at_each(scenarios: Scenarios, name: str, points: list[KillPoint], folder: Path) -> list[str]:
    ref = scenarios[name]
    problems: list[str] = []
    for n, point in enumerate(points):
        problems += kill_and_recover(scenarios.states, ref, point, folder / str(n), fresh=scenarios.fresh)
    failed = {p.split(":")[0] for p in problems}
    print(f"\n{name}: {len(points)} kill points, {len(points) - len(failed)} converged")
    return problems


def test_the_first_cycle_is_large_and_applies_in_several_chunks(sqlite_scenarios: Scenarios) -> None:
    timeline = sqlite_scenarios["first"].timeline
    assert len(timeline.chunk_ends) >= 5
    assert timeline.counts["create-user"] >= 2900 and timeline.counts["add-member"] >= 5900


def test_the_next_day_cycle_applies_every_kind_of_change(sqlite_scenarios: Scenarios) -> None:
    counts = sqlite_scenarios["mixed"].timeline.counts
    kinds = ("update-user", "rename-group", "deactivate-user", "activate-user", "add-member",
             "remove-member", "create-user", "create-group", "link-group", "link-user", "unlink-group")
    assert {kind: counts.get(kind, 0) > 0 for kind in kinds} == dict.fromkeys(kinds, True), counts
    assert len(sqlite_scenarios["mixed"].timeline.chunk_ends) >= 2  # the key changes, then the rest


def test_a_first_cycle_killed_anywhere_in_its_apply_is_completed_by_the_next_cycle(
    sqlite_scenarios: Scenarios, tmp_path: Path
) -> None:
    ref = sqlite_scenarios["first"]
    points = every_event(ref) + spread_steps(ref, STEP_POINTS)
    assert len(points) >= 50

    problems = kill_at_each(sqlite_scenarios, "first", points, tmp_path)

    assert problems == []


def test_a_cycle_of_mixed_changes_killed_anywhere_in_its_apply_is_completed_by_the_next_cycle(
    sqlite_scenarios: Scenarios, tmp_path: Path
) -> None:
    ref = sqlite_scenarios["mixed"]
    points = every_event(ref) + spread_steps(ref, STEP_POINTS // 2)
    assert len(points) >= 40

    problems = kill_at_each(sqlite_scenarios, "mixed", points, tmp_path)

    assert problems == []


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["first", "mixed"])
def test_on_postgresql_a_cycle_killed_in_its_apply_is_completed_by_the_next_cycle(
    postgres_scenarios: Scenarios, name: str, tmp_path: Path
) -> None:
    points = spread_events(postgres_scenarios[name], POSTGRES_POINTS)

    problems = kill_at_each(postgres_scenarios, name, points, tmp_path)

    assert problems == []
