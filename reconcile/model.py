"""Records that flow through one cycle: what a directory says, what the store holds, and the plan.

Connectors produce `Snapshot` (a complete read) or `Changes` (what changed since a
watermark); the store produces `LocalState`; `plan()` turns both into a `Plan` of
`Operation`s and `Rejection`s. Everything here is an immutable value with no I/O.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import overload

from reconcile.id_sets import NO_LOCAL_IDS, NO_MEMBERS, LocalIds, Members


# --- what a directory says -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalUser:
    """One user as the IdP reports it, already normalised by its connector.

    `email` is raw (untrimmed, any case): rules decide whether it is valid.
    `active` is the IdP status mapped per R9 (a connector leaves out `STAGED` users);
    `suspended` marks an inactive user the IdP suspended rather than disabled, so the
    deactivation says which.
    """

    external_id: str
    email: str | None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    active: bool = True
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class ExternalGroup:
    """One group as the IdP reports it, with its direct members' external ids (any set
    of them given is kept as `Members`)."""

    external_id: str
    name: str | None
    member_ids: Set[str] = NO_MEMBERS

    def __post_init__(self) -> None:
        if not isinstance(self.member_ids, Members):
            object.__setattr__(self, "member_ids", Members(self.member_ids))


class Kind(str, enum.Enum):
    USER = "user"
    GROUP = "group"
    MEMBERSHIP = "membership"
    INVITE = "invite"
    DIRECTORY = "directory"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record refused with a reason; its local counterpart is left untouched.

    `reason` is a short stable code (`invalid-email`, `name-too-long`, ...);
    `detail` is one human sentence. Rejections raised by a connector (a record it could
    not interpret) carry the record's external id so the plan can hold its local twin.
    """

    kind: Kind
    target: str
    reason: str
    detail: str = ""
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A complete read of a directory's scope: anything bound but absent has left scope."""

    users: tuple[ExternalUser, ...]
    groups: tuple[ExternalGroup, ...]
    rejections: tuple[Rejection, ...] = ()
    watermark: str | None = None


@dataclass(frozen=True, slots=True)
class MembershipDelta:
    """Members added to and removed from one group since the watermark."""

    group_external_id: str
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since a watermark (an incremental read).

    `users` and `groups` are full current records of objects that changed; a group listed
    in `groups` carries its complete member list when `members_complete` holds its id,
    otherwise its membership is only changed through `memberships`. Objects not mentioned
    are unchanged. `removed_*` left scope or were deleted. `user_groups_complete` are users
    whose every membership is in these changes (or a later read's), so the engine need not
    read their groups: users the directory created after the read the watermark came from
    (they hold no older membership), who entered an app's scope from outside it (the same,
    within that scope), or whose groups the read itself listed.
    """

    users: tuple[ExternalUser, ...] = ()
    groups: tuple[ExternalGroup, ...] = ()
    removed_user_ids: frozenset[str] = frozenset()
    removed_group_ids: frozenset[str] = frozenset()
    memberships: tuple[MembershipDelta, ...] = ()
    members_complete: frozenset[str] = frozenset()
    rejections: tuple[Rejection, ...] = ()
    watermark: str | None = None
    user_groups_complete: frozenset[str] = frozenset()


# --- what the store holds --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalUser:
    id: int
    email: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    managed_by: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class LocalGroup:
    id: int
    name: str
    managed_by: str | None = None
    external_id: str | None = None
    reserved: bool = False
    members: Set[int] = NO_LOCAL_IDS  # any set of user ids given is kept as `LocalIds`

    def __post_init__(self) -> None:
        if not isinstance(self.members, LocalIds):
            object.__setattr__(self, "members", LocalIds(self.members))


@dataclass(frozen=True, slots=True)
class LocalInvite:
    id: int
    email: str
    status: str


@dataclass(frozen=True, slots=True)
class LocalState:
    users: tuple[LocalUser, ...] = ()
    groups: tuple[LocalGroup, ...] = ()
    invites: tuple[LocalInvite, ...] = ()


# --- settings the pure core needs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSettings:
    max_group_name_length: int = 24
    admin_group: str = "Administrators"
    admin_alias: str = "Split_Administrators"
    link_groups_by_name: bool = True
    max_field_length: int = 256
    # Break-glass accounts, by `rules.email_key`: no directory deactivates them or removes
    # them from the admin group (R4); local admin actions still may.
    protected_users: frozenset[str] = frozenset()

    @property
    def reserved_names(self) -> tuple[str, str]:
        """The reserved admin group's name and the alias that maps onto it (R3)."""
        return (self.admin_group, self.admin_alias)


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    max_deactivations: int = 500
    max_deactivation_ratio: float = 0.2
    # The deactivation ratio applies to directories with more active users than this.
    ratio_floor: int = 10
    max_member_removals: int = 1000
    max_member_removal_ratio: float = 0.2
    # The removal ratio applies to directories managing more memberships than this.
    member_ratio_floor: int = 10


# --- the plan ---------------------------------------------------------------------------


class Action(str, enum.Enum):
    CREATE_USER = "create-user"
    UPDATE_USER = "update-user"
    LINK_USER = "link-user"
    UNLINK_USER = "unlink-user"
    ACTIVATE_USER = "activate-user"
    DEACTIVATE_USER = "deactivate-user"
    CREATE_GROUP = "create-group"
    RENAME_GROUP = "rename-group"
    LINK_GROUP = "link-group"
    UNLINK_GROUP = "unlink-group"
    ADD_MEMBER = "add-member"
    REMOVE_MEMBER = "remove-member"
    CREATE_INVITE = "create-invite"
    REVOKE_INVITE = "revoke-invite"


@dataclass(frozen=True, slots=True)
class Ref:
    """Points at a local row that exists (`local_id`) or that this plan creates.

    A row the plan creates is named by the external id it is bound to (directory
    objects) or, for a local admin action, by its natural key (email or group name).
    """

    local_id: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        return f"#{self.local_id}" if self.local_id is not None else f"new:{self.key}"


class Fields(Sequence[tuple[str, object]]):
    """(field, value) pairs kept as two tuples: the names, shared by every operation that
    sets the same fields, and the values. It equals, hashes and iterates as the tuple of
    pairs it stands for. A user's create sets seven fields: one object and one tuple of
    values instead of seven pairs, made for each create the apply reaches."""

    __slots__ = ("names", "data")

    def __init__(self, names: tuple[str, ...], data: tuple[object, ...]) -> None:
        if len(names) != len(data):
            raise ValueError(f"{len(names)} field names for {len(data)} values")
        self.names = names
        self.data = data

    def __iter__(self) -> Iterator[tuple[str, object]]:
        return zip(self.names, self.data)

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> tuple[str, object]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[tuple[str, object], ...]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, object] | tuple[tuple[str, object], ...]:
        return tuple(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (tuple, Fields)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self) -> tuple[type[Fields], tuple[tuple[str, ...], tuple[object, ...]]]:
        return (Fields, (self.names, self.data))


# What an operation sets, replaces or expects: (field, value) pairs, sorted by field.
Pairs = tuple[tuple[str, object], ...] | Fields


@dataclass(frozen=True, slots=True)
class Operation:
    """One change to the store. `values` holds the new field values the action sets;
    `old` the values it replaces (both as sorted (field, value) pairs), for the event log
    and as what the row must still hold when the change is written.

    `expect` is the binding (`managed_by`, `external_id`) the written row had when the
    operation was planned: the user row for user actions, the group row for group and
    membership actions. `apply` refuses to write over a row bound otherwise (§2a).
    `reason` is a stable code saying why the plan made it, when the action alone does not
    (`identity-changed`); the event log records it.
    """

    action: Action
    target: str
    user: Ref | None = None
    group: Ref | None = None
    invite_id: int | None = None
    values: Pairs = ()
    old: Pairs = ()
    expect: Pairs = ()
    reason: str | None = None

    def value(self, name: str) -> object:
        return dict(self.values).get(name)


class OperationSequence(Sequence[Operation]):
    """Operations read by index: a subclass gives `_at`, the operation at an index within
    bounds; indexes from the end and slices (a tuple) are this class's."""

    __slots__ = ()

    @abstractmethod
    def _at(self, index: int) -> Operation: ...

    @overload
    def __getitem__(self, index: int) -> Operation: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Operation, ...]: ...
    def __getitem__(self, index: int | slice) -> Operation | tuple[Operation, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(len(self))))
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError("operation index out of range")
        return self._at(at)


class Section(OperationSequence):
    """Operations of one action made when they are reached, from records far smaller
    than the operations (a first cycle's user creates and member additions: an operation
    with its values is 150 to 300 bytes, and a million users make three million)."""

    __slots__ = ()
    action: Action


class Operations(OperationSequence):
    """A plan's operations in order, kept as consecutive sections: tuples of operations
    and `Section`s. It equals, hashes and iterates as the tuple of its operations; only
    what is being used is made, and each time it is reached."""

    __slots__ = ("sections", "_ends")

    def __init__(self, sections: Iterable[Sequence[Operation]] = ()) -> None:
        self.sections = tuple(s for s in sections if len(s))
        self._ends = tuple(accumulate(len(s) for s in self.sections))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[Operation]:
        return chain.from_iterable(self.sections)

    def _at(self, index: int) -> Operation:
        n, at = locate(self._ends, index)
        return self.sections[n][at]

    def actions(self) -> Counter[Action]:
        """How many operations of each action, without making a section's operations."""
        counts: Counter[Action] = Counter()
        for section in self.sections:
            if isinstance(section, Section):
                counts[section.action] += len(section)
            else:
                counts.update(op.action for op in section)
        return counts

    def of(self, actions: Set[Action]) -> Iterator[tuple[int, Operation]]:
        """The operations of `actions` with their positions, passing over the sections of
        other actions without making their operations."""
        start = 0
        for section in self.sections:
            if not isinstance(section, Section) or section.action in actions:
                yield from ((start + i, op) for i, op in enumerate(section) if op.action in actions)
            start += len(section)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (tuple, Operations)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self) -> tuple[type[Operations], tuple[tuple[tuple[Operation, ...], ...]]]:
        return (Operations, ((tuple(self),),))


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered operations one cycle (or one admin action) applies, and what it refused."""

    directory: str | None
    operations: Sequence[Operation] = ()
    rejections: tuple[Rejection, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Operations per action value, plus `rejected`."""
        counts = Counter({a.value: n for a, n in action_counts(self.operations).items()})
        counts["rejected"] = len(self.rejections)
        return dict(sorted(counts.items()))

    @property
    def is_empty(self) -> bool:
        return not self.operations


def locate(ends: Sequence[int], index: int) -> tuple[int, int]:
    """Where item `index` (within bounds) of consecutive parts ending at `ends` (their
    running lengths) is: the part, and the position in it."""
    n = bisect_right(ends, index)
    return n, index - (ends[n - 1] if n else 0)


def of_actions(operations: Sequence[Operation], actions: Set[Action]) -> Iterator[tuple[int, Operation]]:
    """The operations of `actions` with their positions (`Operations.of`, for any sequence)."""
    if isinstance(operations, Operations):
        return operations.of(actions)
    return ((i, op) for i, op in enumerate(operations) if op.action in actions)


def action_counts(operations: Sequence[Operation]) -> Counter[Action]:
    """How many of `operations` have each action (`Operations` counts its sections)."""
    if isinstance(operations, Operations):
        return operations.actions()
    return Counter(op.action for op in operations)
