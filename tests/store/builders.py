"""Small builders for plans and operations, so tests read as the behaviour they check."""

from __future__ import annotations

from reconcile.model import Action, Operation, Plan, Ref

DIRECTORY = "okta"


def plan(*ops: Operation, directory: str | None = DIRECTORY, rejections: tuple = ()) -> Plan:  # type: ignore[type-arg]
    return Plan(directory=directory, operations=tuple(ops), rejections=rejections)


def ref(target: int | str) -> Ref:
    """`#id` for an existing row, else the key of a row the plan creates."""
    return Ref(local_id=target) if isinstance(target, int) else Ref(key=target)


def create_user(
    external_id: str | None,
    email: str,
    *,
    directory: str | None = DIRECTORY,
    given: str | None = "Given",
    family: str | None = "Family",
    display: str | None = None,
    active: bool = True,
) -> Operation:
    key = external_id if external_id is not None else email
    return Operation(
        Action.CREATE_USER,
        email,
        user=Ref(key=key),
        values=(
            ("active", active),
            ("display_name", display or f"{given} {family}"),
            ("email", email),
            ("external_id", external_id),
            ("family_name", family),
            ("given_name", given),
            ("managed_by", directory if external_id is not None else None),
        ),
    )


def create_group(
    external_id: str | None, name: str, *, directory: str | None = DIRECTORY, reserved: bool = False
) -> Operation:
    key = external_id if external_id is not None else name
    return Operation(
        Action.CREATE_GROUP,
        name,
        group=Ref(key=key),
        values=(
            ("external_id", external_id),
            ("managed_by", directory if external_id is not None else None),
            ("name", name),
            ("reserved", reserved),
        ),
    )


def update_user(user: int | str, old: dict[str, object] | None = None, **values: object) -> Operation:
    return Operation(
        Action.UPDATE_USER,
        str(values.get("email", user)),
        user=ref(user),
        values=tuple(sorted(values.items())),
        old=tuple(sorted((old or {}).items())),
    )


def rename_group(group: int | str, name: str) -> Operation:
    return Operation(Action.RENAME_GROUP, name, group=ref(group), values=(("name", name),))


def link_user(user: int | str, external_id: str, directory: str = DIRECTORY) -> Operation:
    return Operation(
        Action.LINK_USER,
        str(user),
        user=ref(user),
        values=(("external_id", external_id), ("managed_by", directory)),
        old=(("external_id", None), ("managed_by", None)),
    )


def unlink_user(user: int | str) -> Operation:
    return Operation(Action.UNLINK_USER, str(user), user=ref(user))


def link_group(group: int | str, external_id: str, directory: str = DIRECTORY) -> Operation:
    return Operation(
        Action.LINK_GROUP,
        str(group),
        group=ref(group),
        values=(("external_id", external_id), ("managed_by", directory)),
    )


def unlink_group(group: int | str) -> Operation:
    return Operation(Action.UNLINK_GROUP, str(group), group=ref(group))


def activate(user: int | str) -> Operation:
    return Operation(Action.ACTIVATE_USER, str(user), user=ref(user), values=(("active", True),))


def deactivate(user: int | str) -> Operation:
    return Operation(
        Action.DEACTIVATE_USER, str(user), user=ref(user), values=(("active", False),), old=(("active", True),)
    )


def add_member(group: int | str, user: int | str) -> Operation:
    return Operation(Action.ADD_MEMBER, f"{group}<-{user}", group=ref(group), user=ref(user))


def remove_member(group: int | str, user: int | str) -> Operation:
    return Operation(Action.REMOVE_MEMBER, f"{group}->{user}", group=ref(group), user=ref(user))


def create_invite(email: str) -> Operation:
    return Operation(Action.CREATE_INVITE, email, values=(("email", email),))


def revoke_invite(invite_id: int) -> Operation:
    return Operation(Action.REVOKE_INVITE, f"invite #{invite_id}", invite_id=invite_id)
