"""The file connector: an HR export read as a directory."""

import json

import pytest

from connectors.errors import PartialReadError, PermanentError
from connectors.file import FileConnector
from reconcile.model import Changes, Snapshot


def write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return FileConnector(path)


def test_reads_users_and_groups(tmp_path):
    conn = write(tmp_path / "d.json", {"users": [{"id": "u1", "email": "a@example.com", "active": False}],
                                       "groups": [{"id": 7, "name": "Eng", "members": ["u1", 2]}]})
    snap = conn.read(None)
    assert isinstance(snap, Snapshot)
    assert snap.users[0].external_id == "u1" and snap.users[0].active is False
    assert snap.groups[0].external_id == "7" and snap.groups[0].member_ids == {"u1", "2"}


def test_missing_file_fails_the_read(tmp_path):
    with pytest.raises(PermanentError, match="does not exist"):
        FileConnector(tmp_path / "none.json").read(None)


def test_truncated_file_fails_the_read(tmp_path):
    with pytest.raises(PartialReadError, match="not valid JSON"):
        write(tmp_path / "d.json", '{"users": [{"id": "u1"').read(None)


def test_wrong_top_level_shape_fails_the_read(tmp_path):
    with pytest.raises(PartialReadError):
        write(tmp_path / "d.json", {"users": {"id": "u1"}}).read(None)


def test_one_malformed_record_is_a_rejection_and_the_rest_is_read(tmp_path):
    snap = write(tmp_path / "d.json", {"users": [
        {"id": "u1", "email": "a@example.com"},
        {"id": "u2", "email": None, "display_name": 42},
        {"email": "no-id@example.com"},
        "not an object",
    ]}).read(None)
    assert [u.external_id for u in snap.users] == ["u1"]
    assert [(r.target, r.reason) for r in snap.rejections] == [
        ("u2", "malformed-record"), ("no-id@example.com", "malformed-record"), ("users[3]", "malformed-record")]
    assert snap.rejections[0].external_id == "u2"  # held: its local twin stays untouched


def test_unchanged_file_reports_no_changes_since_its_watermark(tmp_path):
    conn = write(tmp_path / "d.json", {"users": [{"id": "u1", "email": "a@example.com"}]})
    first = conn.read(None)
    assert conn.read(first.watermark) == Changes(watermark=first.watermark)


def test_changed_file_is_read_in_full(tmp_path):
    conn = write(tmp_path / "d.json", {"users": []})
    first = conn.read(None)
    write(tmp_path / "d.json", {"users": [{"id": "u1", "email": "a@example.com"}]})
    again = conn.read(first.watermark)
    assert isinstance(again, Snapshot) and len(again.users) == 1


def test_unknown_fields_are_ignored(tmp_path):
    snap = write(tmp_path / "d.json", {"users": [{"id": "u1", "email": "a@example.com", "department": "R&D"}]}).read(None)
    assert len(snap.users) == 1 and not snap.rejections


def test_a_file_nested_ten_thousand_levels_deep_fails_the_read_in_one_line(tmp_path):
    depth = 10_000
    conn = write(tmp_path / "d.json", '{"users": ' + "[" * depth + "]" * depth + "}")

    with pytest.raises(PartialReadError) as failure:
        conn.read(None)

    assert "nests arrays or objects too deeply" in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_read_reports_its_records_as_progress(tmp_path):
    seen = []
    conn = write(tmp_path / "d.json", {"users": [{"id": "u1", "email": "a@example.com"}, {"id": "u2"}],
                                       "groups": [{"id": "g1", "name": "Eng"}]})

    conn.read(None, progress=lambda phase, pages, records: seen.append((phase, pages, records)))

    assert seen == [("read", 1, 3)]


def test_an_integer_too_long_for_python_fails_the_read_as_invalid_json(tmp_path):
    conn = write(tmp_path / "d.json", '{"users": [{"id": ' + "9" * 5000 + "}]}")

    with pytest.raises(PartialReadError, match="not valid JSON"):
        conn.read(None)


def test_an_export_in_utf16_reads_as_json_loads_reads_it(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(json.dumps({"users": [{"id": "u1", "email": "ana@example.com", "given_name": "Aña"}]})
                     .encode("utf-16"))

    snap = FileConnector(path).read(None)

    assert [(u.external_id, u.given_name) for u in snap.users] == [("u1", "Aña")]
