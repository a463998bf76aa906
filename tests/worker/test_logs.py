"""The one logging setup: text or JSON lines, secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from config.settings import WorkerSettings
from worker.logs import configure, redact


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    "line, secret",
    [
        ("Authorization: SSWS00abcdefghijklmnopqrstuvwxyz", "00abcdefghijklmnopqrstuvwxyz"),
        ("Authorization: SSWS 00abcdefghijklmnop", "00abcdefghijklmnop"),
        ("header Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("client_secret=s3cr3t-Value~x", "s3cr3t-Value~x"),
        ('{"client_secret": "abc123def"}', "abc123def"),
        ("postgresql://dirsync:hunter22@db:5432/dirsync", "hunter22"),
        ("https://host/cb?user=a&password=pa55word&x=1", "pa55word"),
        ("token: abcdef123456", "abcdef123456"),
        ("a jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig_nature-1", "sig_nature-1"),
    ],
)
def test_secret_looking_values_are_masked(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "***" in redact(line)


def test_ordinary_text_is_left_alone() -> None:
    line = "cycle end: directory hr succeeded incremental in 1.2s (create-user=3)"
    assert redact(line) == line


def test_text_log_line_is_redacted_including_arguments(restore_root: None) -> None:
    out = io.StringIO()
    configure(WorkerSettings(log_format="text"), stream=out)
    logging.getLogger("dirsync.test").error("request failed: %s", "Authorization: Bearer abcdef.ghijkl.mnopq")
    assert "abcdef" not in out.getvalue()
    assert "request failed: Authorization: Bearer ***" in out.getvalue()


def test_json_log_line_is_one_object_with_extras(restore_root: None) -> None:
    out = io.StringIO()
    configure(WorkerSettings(log_format="json"), stream=out)
    logging.getLogger("dirsync.test").info(
        "cycle end", extra={"directory": "hr", "status": "succeeded", "error": "password=letmein"}
    )
    entry = json.loads(out.getvalue().strip())
    assert entry["message"] == "cycle end"
    assert entry["directory"] == "hr"
    assert entry["status"] == "succeeded"
    assert entry["level"] == "INFO"
    assert "letmein" not in out.getvalue()


def test_traceback_is_redacted(restore_root: None) -> None:
    out = io.StringIO()
    configure(WorkerSettings(log_format="json"), stream=out)
    try:
        raise RuntimeError("connect failed client_secret=abc.def.ghi")
    except RuntimeError:
        logging.getLogger("dirsync.test").exception("cycle failed")
    assert "abc.def.ghi" not in out.getvalue()
    assert "RuntimeError" in json.loads(out.getvalue())["exception"]


def test_configure_twice_does_not_duplicate_lines(restore_root: None) -> None:
    out = io.StringIO()
    configure(WorkerSettings(), stream=out)
    configure(WorkerSettings(), stream=out)
    logging.getLogger("dirsync.test").warning("once")
    assert out.getvalue().count("once") == 1


def test_level_comes_from_settings(restore_root: None) -> None:
    out = io.StringIO()
    configure(WorkerSettings(log_level="WARNING"), stream=out)
    logging.getLogger("dirsync.test").info("hidden")
    assert out.getvalue() == ""
