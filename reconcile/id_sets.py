"""A group's member ids, kept compact: sets with a frozenset's meaning (equal to, and
hashing as, the frozenset of the same ids), held as one sorted sequence searched by
bisection. A set keeps each id in a hash table with room to spare, 40 to 80 bytes per
member. At a million users and two million memberships, `Members` took about 140 MiB
off a first cycle's peak, and `LocalIds` about 220 MiB off a full cycle's over a store
that holds them.

- `Members`: a directory's member ids (strings), as one sorted tuple: 8 bytes a member.
- `LocalIds`: the store's member ids (integers), as one sorted array of 64-bit integers:
  8 bytes a member, and no integer object per member until one is read.

`RowsById` looks rows up by their integer id the same way: the rows sorted by id and one
array of their ids, where a dict would take about 40 bytes a row.
"""

from __future__ import annotations

from abc import abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar, cast

_Id = TypeVar("_Id", str, int)


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_HasId)


class _SortedIds(Set[_Id], Generic[_Id]):
    """The shared behaviour: `ids` is sorted, without repeats, of one type (`_type`)."""

    __slots__ = ("ids",)
    _type: type
    ids: Sequence[_Id]

    @abstractmethod
    def __init__(self, ids: Iterable[_Id] = ()) -> None:
        """Keep `ids` sorted, each once."""

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, self._type):
            return False  # not an id: not a member, and no TypeError from the search
        at = bisect_left(self.ids, cast(_Id, item))
        return at < len(self.ids) and bool(self.ids[at] == item)

    def __iter__(self) -> Iterator[_Id]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __and__(self, other: Set[Any]) -> Any:
        # As a frozenset does: walk the smaller side, probe the larger (the mixin walks
        # `other` always, which for a group against a large set of ids is the larger).
        if isinstance(other, Set) and len(other) > len(self):
            return self._from_iterable(value for value in self if value in other)
        return super().__and__(other)

    __rand__ = __and__

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.ids == other.ids
        return super().__eq__(other)

    def __hash__(self) -> int:
        return self._hash()

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> Any:
        return cls(it)  # what `-`, `|` and `&` return

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.ids)!r})"

    def __reduce__(self) -> tuple[type, tuple[Any]]:
        return (type(self), (self.ids,))


class Members(_SortedIds[str]):
    """A directory group's member ids (external ids), as one sorted tuple of the very
    strings given."""

    __slots__ = ()
    _type = str

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.ids = ids.ids if isinstance(ids, Members) else tuple(sorted(set(ids)))


class LocalIds(_SortedIds[int]):
    """A store group's member ids (user row ids), as one sorted array of 64-bit integers."""

    __slots__ = ()
    _type = int

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self.ids = ids.ids if isinstance(ids, LocalIds) else array("q", sorted(set(ids)))


NO_MEMBERS = Members()
NO_LOCAL_IDS = LocalIds()


class RowsById(Mapping[int, _Row]):
    """`rows` by their `id`: the rows in id order (`rows` itself when it is a sequence in
    that order already, as the store loads them) and one sorted array of their ids."""

    __slots__ = ("_rows", "_ids")

    def __init__(self, rows: Iterable[_Row]) -> None:
        ordered: Sequence[_Row] = rows if isinstance(rows, Sequence) else list(rows)
        ids = array("q", (row.id for row in ordered))
        if not all(a < b for a, b in zip(ids, islice(ids, 1, None))):
            ordered = sorted(ordered, key=lambda row: row.id)
            ids = array("q", (row.id for row in ordered))
        self._rows = ordered
        self._ids = ids

    def __getitem__(self, key: int) -> _Row:
        at = bisect_left(self._ids, key) if isinstance(key, int) else len(self._ids)
        if at < len(self._ids) and self._ids[at] == key:
            return self._rows[at]
        raise KeyError(key)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
