"""`dirsync status` and the metrics tell the truth the store holds."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from store import open_store
from tests.worker.builders import directory, load, prepare_store, settings_file
from service import schedule
from cli.base import Context
from cli.commands.daemon import resume_command, status_command
from worker.metrics import DirectoryFact, Facts, exposition, serve
from service.status import LastRun, build_status, collect
from cli.status_view import render_text
from worker.tasks import run_directory

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CADENCE = schedule.Cadence()


def last(status: str, **kw: object) -> LastRun:
    return LastRun(id=7, status=status, mode="incremental", trigger="beat", started_at=NOW - timedelta(minutes=10),
                   finished_at=NOW - timedelta(minutes=9), counts={"create-user": 2, "rejected": 0}, **kw)  # type: ignore[arg-type]


def test_healthy_directory_shows_last_run_next_cycle_and_watermark_age() -> None:
    state = schedule.DirectoryState(has_watermark=True, last_full_sync_at=NOW - timedelta(hours=2),
                                    last_run_at=NOW - timedelta(minutes=10), last_success_at=NOW - timedelta(minutes=9))
    s = build_status("hr", "file", configured=True, state=state, cadence=CADENCE, now=NOW,
                     last_run=last("succeeded"), watermark_at=NOW - timedelta(minutes=9))
    text = render_text([s], NOW)
    assert text.splitlines()[0] == "hr (file): ok"
    assert "last run:    succeeded incremental, 2026-03-02 11:51:00Z (9m ago) (create-user 2)" in text
    assert "next cycle:  incremental, 2026-03-02 12:30:00Z (in 30m)" in text
    assert "watermark:   9m old" in text
    assert s.watermark_age_seconds == 540


def test_quarantined_directory_shows_the_error_and_next_attempt() -> None:
    state = schedule.DirectoryState(consecutive_failures=4, last_failure_at=NOW - timedelta(hours=1),
                                    last_run_at=NOW - timedelta(hours=1))
    s = build_status("okta", "okta", configured=True, state=state, cadence=CADENCE, now=NOW,
                     last_run=last("failed", error="HTTP 503"), last_error="HTTP 503")
    text = render_text([s], NOW)
    assert "okta (okta): QUARANTINED" in text
    assert "4 failed cycles in a row" in text
    assert "last error:  HTTP 503" in text
    assert "next try:    2026-03-02 17:00:00Z (in 5h 0m)" in text
    assert "dirsync resume okta" in text
    assert s.next_due == NOW + timedelta(hours=5)


def test_directory_that_never_ran_is_due_now_and_full() -> None:
    s = build_status("hr", "file", configured=True, state=schedule.DirectoryState(), cadence=CADENCE, now=NOW)
    assert (s.next_due, s.next_mode, s.last_run) == (NOW, "full", None)
    assert "last run:    never" in render_text([s], NOW)


def test_status_json_lists_every_directory_for_machines(tmp_path: Path) -> None:
    directory(tmp_path / "hr.json")
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"},
                                    "corp": {"kind": "file", "path": "corp.json"}})
    settings = load(path)
    prepare_store(settings)
    store = open_store(settings.store.url)
    from reconcile.cycle import run_cycle

    run_directory(settings, "hr", cycle=run_cycle, store=store, lock=None)
    store.dispose()
    out = CliRunner().invoke(status_command, ["--json"], obj=Context(str(path)))
    assert out.exit_code == 0, out.output
    data = {d["name"]: d for d in json.loads(out.output)}
    assert data["hr"]["last_run"]["status"] == "succeeded"
    assert data["hr"]["next_mode"] == "incremental"
    assert data["hr"]["quarantined"] is False
    assert data["corp"]["last_run"] is None and data["corp"]["next_mode"] == "full"
    text = CliRunner().invoke(status_command, [], obj=Context(str(path)))
    assert "hr (file): ok" in text.output and "corp (file): never run" in text.output


def test_resume_of_an_unknown_directory_is_a_usage_error(tmp_path: Path) -> None:
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"}})
    out = CliRunner().invoke(resume_command, ["nope"], obj=Context(str(path)))
    assert out.exit_code != 0
    assert getattr(out.exception, "code", None) == 2


def test_resume_of_a_healthy_directory_runs_a_cycle_now(tmp_path: Path) -> None:
    directory(tmp_path / "hr.json", users=2)
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"}})
    prepare_store(load(path))
    out = CliRunner().invoke(resume_command, ["hr"], obj=Context(str(path)))
    assert out.exit_code == 0, out.output
    assert "hr is not quarantined; starting a cycle now." in out.output
    assert "hr: succeeded" in out.output


def test_metrics_expose_cycles_operations_durations_and_quarantine() -> None:
    facts = Facts(
        cycles={("hr", "succeeded"): 3, ("hr", "failed"): 1},
        durations={"hr": [0.5, 2.0, 40.0]},
        operations={("hr", "create-user", "applied"): 5, ("hr", "deactivate-user", "staged"): 2},
        directories=(DirectoryFact("hr", last_success_at=NOW, quarantined=True, consecutive_failures=3),),
    )
    text = exposition(facts).decode()
    assert 'dirsync_cycles_total{directory="hr",status="succeeded"} 3.0' in text
    assert 'dirsync_operations_total{action="create-user",directory="hr",outcome="applied"} 5.0' in text
    assert 'dirsync_cycle_duration_seconds_bucket{directory="hr",le="5.0"} 2.0' in text
    assert 'dirsync_cycle_duration_seconds_count{directory="hr"} 3.0' in text
    from prometheus_client.parser import text_string_to_metric_families

    values = {
        (sample.name, sample.labels.get("directory")): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }
    assert values[("dirsync_last_success_timestamp_seconds", "hr")] == NOW.timestamp()
    assert 'dirsync_quarantined{directory="hr"} 1.0' in text
    assert 'dirsync_consecutive_failures{directory="hr"} 3.0' in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_serves_metrics_read_from_the_store(tmp_path: Path) -> None:
    directory(tmp_path / "hr.json", users=3)
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"}})
    settings = load(path)
    prepare_store(settings)
    store = open_store(settings.store.url)
    from reconcile.cycle import run_cycle

    run_directory(settings, "hr", cycle=run_cycle, store=store, lock=None)
    port = free_port()
    assert serve(settings, port, store=lambda: store, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'dirsync_cycles_total{directory="hr",status="succeeded"} 1.0' in body
    assert 'dirsync_operations_total{action="create-user",directory="hr",outcome="applied"} 3.0' in body
    assert 'dirsync_quarantined{directory="hr"} 0.0' in body
    assert not serve(settings, port, store=lambda: store, addr="127.0.0.1")  # port taken: logged, no crash
    store.dispose()


def test_collect_reads_the_store(tmp_path: Path) -> None:
    directory(tmp_path / "hr.json", users=2)
    path = settings_file(tmp_path, {"hr": {"kind": "file", "path": "hr.json"}})
    settings = load(path)
    prepare_store(settings)
    store = open_store(settings.store.url)
    (view,) = collect(settings, store, NOW)
    assert view.name == "hr" and view.enabled and view.last_run is None
    store.dispose()
