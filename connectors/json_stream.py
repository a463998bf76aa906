"""Decode one JSON object the way `json.loads` does, without holding its large arrays.

A directory export of a million users is 190 MiB of text, and `json.loads` turns it into
about 750 MiB of dicts before the first record is normalised. `stream_object` hands the
top-level object's members to a `Sink` as it decodes them, and the arrays under the keys
it is told to stream go item by item, so a record is normalised and dropped before the
next one is decoded. What it accepts and refuses is what `json.loads` accepts and refuses
(the same decoder reads each item; the same errors, at the same positions, are raised), and
a key given twice counts as its last occurrence, as in `json.loads`. One difference: the
nesting limit (about a thousand levels, `RecursionError`) counts from each item, so an item
may nest two levels deeper than under `json.loads`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from json import JSONDecodeError
from typing import Protocol

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what JSON counts as whitespace (json.decoder's own pattern)


class Sink(Protocol):
    def begin(self, key: str) -> None:
        """A streamed key's array starts: it replaces whatever an earlier occurrence gave."""

    def item(self, key: str, index: int, value: object) -> None:
        """One item of the array under streamed `key`, at `index`."""

    def other(self, key: str, value: object) -> None:
        """Streamed `key` holds `value`, which is not an array."""


def stream_object(text: str, streamed: Collection[str], sink: Sink) -> bool:
    """Decode `text` as `json.loads(text)` would, telling `sink` of the top-level members
    named in `streamed` (other members are decoded, to check them, and dropped).

    Returns False, having told `sink` nothing, when `text` is valid JSON but its top level
    is not an object. Raises `json.JSONDecodeError` (or `RecursionError`, or `ValueError`
    for an integer past Python's digit limit) where `json.loads` would.
    """
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        _DECODER.decode(text)  # raises as json.loads would, when it is not valid JSON at all
        return False
    pos = _skip(text, pos + 1)
    if not text.startswith("}", pos):
        while True:
            if not text.startswith('"', pos):
                raise JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
            key, pos = _DECODER.raw_decode(text, pos)  # a string: it starts with a quote
            pos = _skip(text, pos)
            if not text.startswith(":", pos):
                raise JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _skip(text, pos + 1)
            if key in streamed and text.startswith("[", pos):
                pos = _array(text, pos + 1, key, sink)
            else:
                value, pos = _DECODER.raw_decode(text, pos)
                if key in streamed:
                    sink.other(key, value)
            pos = _skip(text, pos)
            if text.startswith("}", pos):
                break
            if not text.startswith(",", pos):
                raise JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip(text, pos + 1)
    end = _skip(text, pos + 1)
    if end != len(text):
        raise JSONDecodeError("Extra data", text, end)
    return True


def _array(text: str, pos: int, key: str, sink: Sink) -> int:
    """Decode the array whose `[` ends before `pos`, item by item; the position after its `]`."""
    sink.begin(key)
    pos = _skip(text, pos)
    if text.startswith("]", pos):
        return pos + 1
    index = 0
    while True:
        value, pos = _DECODER.raw_decode(text, pos)
        sink.item(key, index, value)
        index += 1
        pos = _skip(text, pos)
        if text.startswith("]", pos):
            return pos + 1
        if not text.startswith(",", pos):
            raise JSONDecodeError("Expecting ',' delimiter", text, pos)
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()
