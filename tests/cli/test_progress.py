"""The progress a sync prints: the read phase speaks up once it has taken a while."""

from __future__ import annotations

import pytest

from cli import base as cli_base


def test_a_long_read_says_how_far_it_got_every_couple_of_seconds(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    now = [1000.0]
    monkeypatch.setattr(cli_base.time, "monotonic", lambda: now[0])

    with cli_base.progress_printer(True) as show:
        show("read", 1, 200)  # quick reads say nothing
        now[0] += 2.5
        show("read", 7, 1400)
        now[0] += 0.5
        show("read", 8, 1600)  # too soon after the last line
        now[0] += 2.0
        show("read", 12, 2400)

    lines = capsys.readouterr().err.split("\n")
    assert [line.strip() for line in lines if line.strip()] == ["read: 7 pages, 1400 records",
                                                                 "read: 12 pages, 2400 records"]
