"""Okta's `filter` and `search` expressions (a SCIM subset), compiled to predicates.

Grammar: `expr := term (("and"|"or") term)*`, `term := "(" expr ")" | path op "value"`,
with `and` binding tighter than `or` and no `not` (Okta has none). `path` is a dotted
attribute (`status`, `profile.email`); values are double-quoted strings (`true`/`false`/
numbers are accepted bare). Each call site says which (path, operator) pairs it allows, as
Okta does: `filter` on users allows `eq` on a few properties and `gt/ge/lt/le` only on
dates. Dates compare as ISO strings, which works because Okta's format is fixed-width.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+)')
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
ORDER_OPS = {"gt", "ge", "lt", "le"}


class FilterError(ValueError):
    """The expression is not valid here (Okta answers 400 E0000031)."""


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos:].strip():
                raise FilterError(f"cannot parse near {text[pos:pos + 20]!r}")
            break
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def normalise_date(value: str) -> str:
    """`2026-01-05T09:00:00Z` and `...00.5Z` as Okta's `2026-01-05T09:00:00.000Z`."""
    if not _DATE.match(value):
        raise FilterError(f"not a date: {value!r}")
    head, _, rest = value.partition(".")
    if not rest:
        head, zone = value[:19], value[19:]
        millis = "000"
    else:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        millis = (digits.group(0) + "000")[:3]
        zone = rest[digits.end():]
    if zone not in ("Z", "+00:00"):
        raise FilterError("dates must be in UTC")
    return f"{head[:19]}.{millis}Z"


def compile_expression(
    text: str,
    allowed: Mapping[str, set[str]],
    dates: set[str] = frozenset(),  # type: ignore[assignment]
) -> Predicate:
    """A predicate over JSON records; `allowed` maps a path to its permitted operators."""
    tokens = _tokens(text)
    pos = 0
    equalities: dict[int, tuple[str, Any]] = {}  # id of an `eq` term's predicate -> its path and value

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end of expression")
        pos += 1
        return tokens[pos - 1]

    def term() -> Predicate:
        if peek() == "(":
            take()
            inner = disjunction()
            if take() != ")":
                raise FilterError("missing )")
            return inner
        path, op, raw = take(), take().lower(), take()
        if path not in allowed or op not in allowed[path]:
            raise FilterError(f"{path} {op} is not supported")
        if raw.startswith('"'):
            value: Any = raw[1:-1].replace('\\"', '"')
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            try:
                value = float(raw) if "." in raw else int(raw)
            except ValueError:
                raise FilterError(f"bad value {raw!r}") from None
        if path in dates:
            value = normalise_date(str(value))
        predicate = _comparison(path.split("."), op, value)
        if op == "eq":
            equalities[id(predicate)] = (path, value)
        return predicate

    def conjunction() -> Predicate:
        parts = [term()]
        while peek() is not None and peek().lower() == "and":  # type: ignore[union-attr]
            take()
            parts.append(term())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def disjunction() -> Predicate:
        parts = [conjunction()]
        while peek() is not None and peek().lower() == "or":  # type: ignore[union-attr]
            take()
            parts.append(conjunction())
        if len(parts) == 1:
            return parts[0]
        terms = [equalities.get(id(p)) for p in parts]
        paths = {t[0] for t in terms if t is not None}
        if None not in terms and len(paths) == 1:
            # `id eq "a" or id eq "b" ...`: one lookup in a set, not one comparison per term
            return _one_of(paths.pop().split("."), {t[1] for t in terms if t is not None})
        return lambda r: any(p(r) for p in parts)

    if not tokens:
        raise FilterError("empty expression")
    predicate = disjunction()
    if pos != len(tokens):
        raise FilterError(f"unexpected {tokens[pos]!r}")
    return predicate


def _lookup(record: Mapping[str, Any], path: list[str]) -> Any:
    current: Any = record
    for key in path:
        # `dict` first: a check against the `Mapping` ABC costs more than the lookup itself,
        # once per record of a list that scans them all
        if not (isinstance(current, dict) or isinstance(current, Mapping)):
            return None
        current = current.get(key)
    return current


def _one_of(path: list[str], values: set[Any]) -> Predicate:
    """`path eq v1 or path eq v2 ...`, as one set lookup (the same answer: the values are
    strings, numbers and booleans, which a set compares as `==` does)."""
    def matches(record: Mapping[str, Any]) -> bool:
        found = _lookup(record, path)
        try:
            return found in values
        except TypeError:  # a list or an object: equal to no such value
            return False

    return matches


def _comparison(path: list[str], op: str, value: Any) -> Predicate:
    def lookup(record: Mapping[str, Any]) -> Any:
        return _lookup(record, path)

    if op == "eq":
        return lambda r: lookup(r) == value
    if op == "sw":
        return lambda r: isinstance(lookup(r), str) and lookup(r).lower().startswith(str(value).lower())
    if op == "co":
        return lambda r: isinstance(lookup(r), str) and str(value).lower() in lookup(r).lower()
    if op == "pr":
        return lambda r: lookup(r) is not None
    compare: Callable[[Any, Any], bool] = {
        "gt": operator.gt,
        "ge": operator.ge,
        "lt": operator.lt,
        "le": operator.le,
    }[op]

    def ordered(record: Mapping[str, Any]) -> bool:
        found = lookup(record)
        return found is not None and compare(found, value)

    return ordered


class AnyPath(dict[str, set[str]]):
    """`allowed` for `search`: every path, with the given operators."""

    def __init__(self, ops: set[str]) -> None:
        super().__init__()
        self._ops = ops

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> set[str]:
        return self._ops
