"""Hostile and odd directory records: each one is rejected with its reason (in the plan and
as a `rejected` event) or, when merely odd, created as it is; and nothing else in the cycle
is harmed: the baseline users and groups stay exactly as the previous cycle left them.

The file connector runs on SQLite and PostgreSQL; the simulators on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.mark import ParameterSet

from store import Store, open_store
from tests.corpus.checks import (
    assert_baseline_unharmed,
    assert_created_as_given,
    assert_only_case_records_rejected,
    assert_rejected,
    export,
)
from tests.corpus.conftest import MakeDirectory
from tests.corpus.records import CASES, ENTRA, FILE, KNOWN_GAPS, OKTA, Case, all_at_once

SIMULATED = (OKTA, ENTRA)


def _params(kind: str) -> list[ParameterSet]:
    params = []
    for case in CASES:
        if kind not in case.connectors:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case.name, kind])] \
            if (case.name, kind) in KNOWN_GAPS else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'corpus.db'}", check_schema=False)
    opened.upgrade()
    yield opened
    opened.dispose()


def check_case(case: Case, kind: str, make_directory: MakeDirectory, store: Store) -> None:
    directory = make_directory(kind)
    first = directory.cycle(store)
    assert first.status == "succeeded", first.error
    before = export(store)
    directory.put(case.users, case.groups)

    result = directory.cycle(store)

    assert result.status == "succeeded", result.error
    after = export(store)
    assert_rejected(result, store, case.expected(kind), directory)
    assert_only_case_records_rejected(result, {r["id"] for r in (*case.users, *case.groups)}, directory)
    assert_baseline_unharmed(before, after, case)
    assert_created_as_given(after, case, directory)


@pytest.mark.parametrize("case", _params(FILE))
def test_file_record_is_rejected_with_its_reason_or_kept_and_harms_nothing(
    case: Case, make_directory: MakeDirectory, store: Store
) -> None:
    check_case(case, FILE, make_directory, store)


@pytest.mark.parametrize("case", _params(OKTA))
def test_okta_record_is_rejected_with_its_reason_or_kept_and_harms_nothing(
    case: Case, make_directory: MakeDirectory, sqlite_store: Store
) -> None:
    check_case(case, OKTA, make_directory, sqlite_store)


@pytest.mark.parametrize("case", _params(ENTRA))
def test_entra_record_is_rejected_with_its_reason_or_kept_and_harms_nothing(
    case: Case, make_directory: MakeDirectory, sqlite_store: Store
) -> None:
    check_case(case, ENTRA, make_directory, sqlite_store)


def test_every_file_record_at_once_is_rejected_or_kept_and_harms_nothing(
    make_directory: MakeDirectory, store: Store
) -> None:
    check_case(all_at_once(FILE), FILE, make_directory, store)


@pytest.mark.parametrize("kind", SIMULATED)
def test_every_simulated_record_at_once_is_rejected_or_kept_and_harms_nothing(
    kind: str, make_directory: MakeDirectory, sqlite_store: Store
) -> None:
    check_case(all_at_once(kind), kind, make_directory, sqlite_store)

