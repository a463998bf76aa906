"""Streaming a JSON export's top-level arrays decodes exactly what `json.loads` decodes.

Properties: for any text, `stream_object` and `json.loads` agree on whether it is JSON (the
same error message at the same position when it is not), on whether its top level is an
object, and on what each streamed key holds, a key given twice counting as its last
occurrence. The file connector's `parse_text` equals `parse(json.loads(text))` record for
record, rejections included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import PartialReadError
from connectors.file import parse, parse_text
from connectors.json_stream import stream_object

STREAMED = ("users", "groups")
FAST = settings(max_examples=300, deadline=None)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)
keys = st.sampled_from(["users", "groups", "other", "Users", ""]) | st.text(max_size=3)
members = st.lists(st.tuples(keys, st.lists(values, max_size=4) | values), max_size=5)
spaces = st.sampled_from(["", " ", "\n  ", "\t"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A JSON text whose top level is mostly an object, keys possibly repeated, with whitespace anywhere."""
    if draw(st.integers(0, 9)) == 0:
        return json.dumps(draw(values))
    pad = lambda: draw(spaces)  # noqa: E731
    parts = [f"{pad()}{json.dumps(k)}{pad()}:{pad()}{json.dumps(v, indent=draw(st.sampled_from([None, 1])))}{pad()}"
             for k, v in draw(members)]
    return f"{pad()}{{{','.join(parts)}{pad()}}}{pad()}"


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A document cut short, or with one character inserted or deleted."""
    text = draw(documents())
    at = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["cut", "insert", "delete"]))
    if how == "cut":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.sampled_from(list('[]{},:" 1a'))) + text[at:]
    return text[:at] + text[at + 1:]


class Recorder:
    """What each streamed key holds at the end: its last occurrence's array or value."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[str, Any]] = {}

    def begin(self, key: str) -> None:
        self.held[key] = ("array", [])

    def item(self, key: str, index: int, value: object) -> None:
        kind, items = self.held[key]
        assert kind == "array" and index == len(items)
        items.append(value)

    def other(self, key: str, value: object) -> None:
        self.held[key] = ("other", value)


def outcome_of_loads(text: str) -> tuple[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return ("error", (exc.msg, exc.pos))
    if not isinstance(data, dict):
        return ("not an object", None)
    return ("object", {key: ("array", data[key]) if isinstance(data[key], list) else ("other", data[key])
                       for key in STREAMED if key in data})


def outcome_of_stream(text: str) -> tuple[str, Any]:
    recorder = Recorder()
    try:
        is_object = stream_object(text, STREAMED, recorder)
    except json.JSONDecodeError as exc:
        return ("error", (exc.msg, exc.pos))
    if not is_object:
        assert recorder.held == {}
        return ("not an object", None)
    return ("object", recorder.held)


@FAST
@given(documents())
def test_a_document_streams_as_json_loads_decodes_it(text: str) -> None:
    assert outcome_of_stream(text) == outcome_of_loads(text)


@FAST
@given(damaged())
def test_a_damaged_document_fails_where_json_loads_fails(text: str) -> None:
    assert outcome_of_stream(text) == outcome_of_loads(text)


@pytest.mark.parametrize("text", [
    "", "{", "{}", " {} ", "{} x", '{"users": [', '{"users": [1,]}', '{"users": [1 2]}', '{"a": 1,}',
    '{"a" 1}', '{"a": 1 "b": 2}', "[1, 2]", '{"users": [{"x": [1, }]}', '{"users": []}garbage',
])
def test_edge_texts_stream_as_json_loads_decodes_them(text: str) -> None:
    assert outcome_of_stream(text) == outcome_of_loads(text)


records = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(["u1", "u2", "g1", 7, True, "", " ", None, 2.5]),
    "email": st.sampled_from(["a@example.com", "B@Example.com", None, 3, ""]),
    "given_name": st.sampled_from(["Ana", None, ["x"]]),
    "display_name": st.sampled_from(["Ana Diaz", 42]),
    "active": st.sampled_from([True, False, "yes", None]),
    "name": st.sampled_from(["Eng", None, 5, "x" * 30]),
    "members": st.sampled_from([["u1", "u2"], [7, "u1"], "u1", [True], [None], []]),
}) | scalars
exports = st.lists(st.tuples(st.sampled_from(["users", "groups", "extra"]),
                             st.lists(records, max_size=5) | scalars), max_size=4)


@FAST
@given(exports)
def test_parse_text_reads_an_export_as_parse_of_json_loads_does(pairs: list[tuple[str, Any]]) -> None:
    text = "{" + ",".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    try:
        expected: Any = parse(json.loads(text), watermark="w")
    except PartialReadError as exc:
        expected = str(exc)
    try:
        streamed: Any = parse_text(text, watermark="w")
    except PartialReadError as exc:
        streamed = str(exc)
    assert streamed == expected


def test_a_group_lists_its_members_by_the_users_own_id_strings() -> None:
    text = json.dumps({"groups": [{"id": "g1", "name": "Eng", "members": ["u1", 2]}],
                       "users": [{"id": "u1", "email": "a@example.com"}, {"id": 2, "email": "b@example.com"}]})

    snapshot = parse_text(text)

    by_id = {user.external_id: user.external_id for user in snapshot.users}
    assert snapshot.groups[0].member_ids == {"u1", "2"}
    assert all(member is by_id[member] for member in snapshot.groups[0].member_ids)
