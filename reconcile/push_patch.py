"""SCIM resources as the IdPs send them: parsing bodies, applying PATCH (RFC 7644 §3.5.2)
in both Okta's and Entra's dialects. Pure.

Tolerances, because the IdPs need them (research/scim.md §2, §3): attribute names and op
names are case-insensitive (Entra's `Replace`); `active` may be the string "True"/"False";
a no-path op's keys may be dotted (`name.givenName`) or carry a schema URN; a filtered
path that matches no entry creates it (`emails[type eq "work"].value`); Entra's
`remove members` with a value removes those members only. Attributes dirsync does not
keep (phone numbers, the enterprise extension, ...) are accepted and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconcile.push import GroupChange, Problem, PushEmail, PushGroup, PushUser

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# The User attributes dirsync keeps, by lower-cased name: their canonical spelling.
_USER_ATTRS = {"username": "userName", "externalid": "externalId", "displayname": "displayName",
               "name": "name", "emails": "emails", "active": "active"}
_NAME_PARTS = {"givenname": "givenName", "familyname": "familyName", "formatted": "formatted"}
_EMAIL_PARTS = {"value": "value", "type": "type", "primary": "primary", "display": "display"}
_PATH = re.compile(r'^(?P<attr>[A-Za-z$][\w$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$')
_VALUE_FILTER = re.compile(r'^\s*(?P<attr>[A-Za-z]\w*)\s+eq\s+"(?P<value>(?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def bad(detail: str, scim_type: str = "invalidValue") -> Problem:
    return Problem(400, detail, scim_type)


def lower_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute names are case-insensitive (RFC 7643 §2.1)."""
    return {str(k).lower(): v for k, v in body.items()}


def parse_bool(value: object, what: str) -> bool:
    """A SCIM boolean; Entra sends "True"/"False" strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad(f"{what} must be true or false, got {value!r}")


def _text(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise bad(f"{what} must be a string, got {type(value).__name__}")


# --- bodies --------------------------------------------------------------------------------------


def parse_user(body: object) -> PushUser:
    """A User resource (POST, PUT, or the result of a PATCH)."""
    if not isinstance(body, Mapping):
        raise bad("the body must be a JSON object", "invalidSyntax")
    data = lower_keys(body)
    name = data.get("name") or {}
    if not isinstance(name, Mapping):
        raise bad("name must be an object")
    name = lower_keys(name)
    emails = data.get("emails") or []
    if not isinstance(emails, list):
        raise bad("emails must be a list")
    parsed = []
    for item in emails:
        if not isinstance(item, Mapping):
            raise bad("each email must be an object")
        entry = lower_keys(item)
        primary = entry.get("primary")
        parsed.append(PushEmail(entry.get("value"), _text(entry.get("type"), "emails.type"),
                                parse_bool(primary, "emails.primary") if primary is not None else False))
    active = data.get("active")
    if "username" not in data or data["username"] in (None, ""):
        raise bad("userName is required")
    return PushUser(
        user_name=data["username"],
        emails=tuple(parsed),
        given_name=name.get("givenname"),
        family_name=name.get("familyname"),
        display_name=data.get("displayname"),
        active=None if active is None else parse_bool(active, "active"),
        external_id=_text(data.get("externalid"), "externalId"),
    )


def parse_group(body: object) -> PushGroup:
    """A Group resource (POST)."""
    if not isinstance(body, Mapping):
        raise bad("the body must be a JSON object", "invalidSyntax")
    data = lower_keys(body)
    if data.get("displayname") in (None, ""):
        raise bad("displayName is required")
    return PushGroup(data["displayname"], _text(data.get("externalid"), "externalId"),
                     member_ids(data.get("members") or []))


def group_replacement(body: object) -> GroupChange:
    """PUT /Groups/{id}: the name, and the member list when one is sent (a PUT without
    `members` leaves them alone rather than removing everyone)."""
    group = parse_group(body)
    data = lower_keys(body) if isinstance(body, Mapping) else {}
    members = group.members if data.get("members") is not None else None
    return GroupChange(display_name=group.display_name, external_id=group.external_id, members=members)


def member_ids(value: object) -> tuple[str, ...]:
    """SCIM ids from a `members` value (a list of {"value": id}, or one such object)."""
    items = value if isinstance(value, list) else [value]
    ids: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise bad(f"each member must be an object with a value, got {item!r}")
        member = lower_keys(item).get("value")
        if not isinstance(member, str) or not member:
            raise bad(f"a member's value must be a user id, got {member!r}")
        if member not in ids:
            ids.append(member)
    return tuple(ids)


# --- PATCH -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchOp:
    op: str  # add, replace or remove
    path: str | None
    value: Any = None


def parse_patch(body: object) -> tuple[PatchOp, ...]:
    """The operations of a PatchOp message; op names in any case."""
    if not isinstance(body, Mapping):
        raise bad("the body must be a JSON object", "invalidSyntax")
    data = lower_keys(body)
    ops = data.get("operations")
    if not isinstance(ops, list) or not ops:
        raise bad("a PATCH needs a non-empty Operations list", "invalidSyntax")
    out = []
    for raw in ops:
        if not isinstance(raw, Mapping):
            raise bad("each operation must be an object", "invalidSyntax")
        item = lower_keys(raw)
        op = str(item.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise bad(f"unknown PATCH op {item.get('op')!r} (add, replace or remove)", "invalidSyntax")
        path = item.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise bad(f"invalid path {path!r}", "invalidPath")
        if op == "remove" and path is None:
            raise bad("remove needs a path", "noTarget")
        if op != "remove" and path is None and not isinstance(item.get("value"), Mapping):
            raise bad(f"{op} without a path needs an object value", "invalidValue")
        out.append(PatchOp(op, path.strip() if isinstance(path, str) else None, item.get("value")))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Path:
    attr: str  # lower-cased
    filter: tuple[str, str] | None  # (sub-attribute lower-cased, value)
    sub: str | None  # lower-cased


def _parse_path(path: str, schema: str) -> _Path | None:
    """The path without its schema URN; None for another schema's attribute (ignored)."""
    text = path.strip()
    if text.lower().startswith("urn:"):
        if not text.lower().startswith(schema.lower() + ":"):
            return None  # an extension dirsync does not keep (enterprise User, Entra's ADSCIM)
        text = text[len(schema) + 1:]
    match = _PATH.match(text)
    if match is None:
        raise bad(f"invalid path {path!r}", "invalidPath")
    filt = None
    if match["filter"] is not None:
        inner = _VALUE_FILTER.match(match["filter"])
        if inner is None:
            raise bad(f"unsupported filter in path {path!r} (attribute eq \"value\")", "invalidPath")
        filt = (inner["attr"].lower(), inner["value"].replace('\\"', '"'))
    return _Path(match["attr"].lower(), filt, match["sub"].lower() if match["sub"] else None)


def patch_user(document: Mapping[str, Any], ops: Sequence[PatchOp]) -> dict[str, Any]:
    """The User resource `document` (as dirsync renders it) after `ops`."""
    doc: dict[str, Any] = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, Mapping) else v)
                           for k, v in document.items()}
    doc["emails"] = [dict(e) for e in doc.get("emails") or []]
    for op in ops:
        if op.path is None:
            assert isinstance(op.value, Mapping)
            for key, value in op.value.items():
                _apply_user(doc, op.op, str(key), value)
        else:
            _apply_user(doc, op.op, op.path, op.value)
    return doc


def sets_active(ops: Sequence[PatchOp]) -> bool:
    """Whether `ops` set `active` to true (the IdP says the user is active)."""
    value = patch_user({"active": None, "emails": []}, ops).get("active")
    return value is not None and parse_bool(value, "active")


def _apply_user(doc: dict[str, Any], op: str, path: str, value: Any) -> None:
    parsed = _parse_path(path, USER_SCHEMA)
    if parsed is None or parsed.attr not in _USER_ATTRS:
        return  # an attribute dirsync does not keep
    attr = _USER_ATTRS[parsed.attr]
    if attr == "name":
        _patch_name(doc, op, parsed, value)
    elif attr == "emails":
        _patch_emails(doc, op, parsed, value)
    elif parsed.filter is not None or parsed.sub is not None:
        raise bad(f"{attr} has no sub-attributes", "invalidPath")
    elif op == "remove":
        if attr in ("userName", "active"):
            raise bad(f"{attr} cannot be removed", "mutability")
        doc[attr] = None
    else:
        doc[attr] = value


def _patch_name(doc: dict[str, Any], op: str, path: _Path, value: Any) -> None:
    name = dict(doc.get("name") or {})
    if path.sub is None:
        if op == "remove":
            name = {}
        elif isinstance(value, Mapping):
            for key, part in value.items():
                canonical = _NAME_PARTS.get(str(key).lower())
                if canonical is not None:
                    name[canonical] = part
        else:
            raise bad("name must be an object")
    elif path.sub in _NAME_PARTS:
        name[_NAME_PARTS[path.sub]] = None if op == "remove" else value
    doc["name"] = name


def _patch_emails(doc: dict[str, Any], op: str, path: _Path, value: Any) -> None:
    emails: list[dict[str, Any]] = doc["emails"]
    if path.filter is None:
        if path.sub is not None:
            raise bad("emails needs a filter before a sub-attribute", "invalidPath")
        if op == "remove":
            emails.clear()
            return
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, Mapping) for i in items):
            raise bad("emails must be a list of objects")
        if op == "replace":
            emails.clear()
        emails.extend(dict(i) for i in items)
        return
    key, wanted = path.filter
    matching = [e for e in emails if str(lower_keys(e).get(key, "")).lower() == wanted.lower()]
    if op == "remove":
        for entry in matching:
            if path.sub is None:
                emails.remove(entry)
            else:
                entry.pop(_EMAIL_PARTS.get(path.sub, path.sub), None)
        return
    if not matching:  # Entra: the entry the filter describes is created
        entry = {_EMAIL_PARTS.get(key, key): wanted}
        emails.append(entry)
        matching = [entry]
    for entry in matching:
        if path.sub is not None:
            entry[_EMAIL_PARTS.get(path.sub, path.sub)] = value
        elif isinstance(value, Mapping):
            entry.update(value)


def patch_group(ops: Sequence[PatchOp]) -> GroupChange:
    """What a Group PATCH asks: the name, externalId, and member deltas (or, after a
    replace of `members` or a remove of all of them, the complete list)."""
    state = _GroupPatch()
    for op in ops:
        if op.path is None:
            assert isinstance(op.value, Mapping)
            for key, value in op.value.items():
                state.apply(op.op, str(key), value)
        else:
            state.apply(op.op, op.path, op.value)
    return state.change()


class _GroupPatch:
    def __init__(self) -> None:
        self.display_name: object = None
        self.external_id: str | None = None
        self.full: list[str] | None = None
        self.add: list[str] = []
        self.remove: list[str] = []

    def apply(self, op: str, path: str, value: Any) -> None:
        parsed = _parse_path(path, GROUP_SCHEMA)
        if parsed is None:
            return
        if parsed.attr == "displayname":
            if op == "remove":
                raise bad("displayName cannot be removed", "mutability")
            self.display_name = value
        elif parsed.attr == "externalid":
            # "" asks to remove it: the binding falls back to the SCIM id.
            self.external_id = (_text(value, "externalId") or "") if op != "remove" else ""
        elif parsed.attr == "members":
            self._members(op, parsed, value)

    def _members(self, op: str, path: _Path, value: Any) -> None:
        if path.filter is not None:
            if path.filter[0] != "value" or op != "remove":
                raise bad("only remove members[value eq \"id\"] is supported with a filter", "invalidPath")
            self._remove([path.filter[1]])
        elif op == "add":
            self._add(member_ids(value))
        elif op == "replace":
            self.full, self.add, self.remove = list(member_ids(value or [])), [], []
        elif value:  # Entra's remove with a value: those members only
            self._remove(member_ids(value))
        else:
            self.full, self.add, self.remove = [], [], []

    def _add(self, ids: Sequence[str]) -> None:
        for i in ids:
            if self.full is not None:
                if i not in self.full:
                    self.full.append(i)
                continue
            if i in self.remove:
                self.remove.remove(i)
            if i not in self.add:
                self.add.append(i)

    def _remove(self, ids: Sequence[str]) -> None:
        for i in ids:
            if self.full is not None:
                if i in self.full:
                    self.full.remove(i)
                continue
            if i in self.add:
                self.add.remove(i)
            if i not in self.remove:
                self.remove.append(i)

    def change(self) -> GroupChange:
        return GroupChange(self.display_name, self.external_id, tuple(self.add), tuple(self.remove),
                           None if self.full is None else tuple(self.full))
