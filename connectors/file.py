"""A directory kept as a JSON file (an HR export), `kind = "file"`.

    {"users":  [{"id": "u1", "email": "ana@example.com", "given_name": "Ana",
                 "family_name": "Diaz", "display_name": "Ana Diaz", "active": true}],
     "groups": [{"id": "g1", "name": "Engineering", "members": ["u1"]}]}

A read is a complete snapshot, except that an incremental read of a file whose content
has not changed since the watermark (its SHA-256) reports no changes without parsing it.
A missing, unreadable or malformed file fails the read (S1), and so does one nested deeper
than JSON parsing allows (about a thousand levels); one record of the wrong shape becomes a
rejection and the rest is read. Fields other than those above are
ignored, so a richer export reads as it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from config import FileDirectorySettings, Settings
from connectors.base import ReadProgress
from connectors.errors import PartialReadError, PermanentError
from reconcile.model import Changes, ExternalGroup, ExternalUser, Kind, Rejection, Snapshot

TEXT_FIELDS = ("email", "given_name", "family_name", "display_name")


class FileConnector:
    """Reads a JSON export; the watermark is the SHA-256 of the content last applied."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, watermark: str | None, progress: ReadProgress | None = None) -> Snapshot | Changes:
        """The file as a Snapshot, or no Changes when it is the one `watermark` names;
        `progress("read", 1, records)` once it is parsed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise PermanentError(f"directory file {self.path} does not exist") from None
        except OSError as exc:
            raise PermanentError(f"directory file {self.path} cannot be read: {exc.strerror}") from None
        digest = hashlib.sha256(raw).hexdigest()
        if watermark == digest:
            return Changes(watermark=digest)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PartialReadError(f"directory file {self.path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise PartialReadError(f"directory file {self.path} is not a directory export: it nests arrays "
                                   "or objects too deeply to read") from None
        snapshot = parse(data, watermark=digest)
        if progress is not None:
            progress("read", 1, len(snapshot.users) + len(snapshot.groups) + len(snapshot.rejections))
        return snapshot

    def close(self) -> None:
        pass


def parse(data: Any, watermark: str | None = None) -> Snapshot:
    """Normalise a parsed export; raise PartialReadError if its top level is not the shape."""
    if not isinstance(data, dict) or not isinstance(data.get("users", []), list) or not isinstance(
        data.get("groups", []), list
    ):
        raise PartialReadError('the directory file must be an object with "users" and "groups" arrays')
    rejections: list[Rejection] = []
    users: list[ExternalUser] = []
    for index, record in enumerate(data.get("users", [])):
        user = _user(record, index, rejections)
        if user is not None:
            users.append(user)
    groups: list[ExternalGroup] = []
    for index, record in enumerate(data.get("groups", [])):
        group = _group(record, index, rejections)
        if group is not None:
            groups.append(group)
    return Snapshot(tuple(users), tuple(groups), tuple(rejections), watermark)


def _user(record: object, index: int, rejections: list[Rejection]) -> ExternalUser | None:
    ident = _ident(record)
    if not isinstance(record, dict) or ident is None:
        where = _label(record, "email", f"users[{index}]") if isinstance(record, dict) else f"users[{index}]"
        rejections.append(Rejection(Kind.USER, where, "malformed-record", "a user needs a string or number \"id\""))
        return None
    problem = None
    for key in TEXT_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            problem = f"{key} must be text or null"
            break
    active = record.get("active", True)
    if problem is None and not isinstance(active, bool):
        problem = "active must be true or false"
    if problem is not None:
        rejections.append(Rejection(Kind.USER, _label(record, "email", ident), "malformed-record", problem, external_id=ident))
        return None
    return ExternalUser(
        external_id=ident,
        email=record.get("email"),
        given_name=record.get("given_name"),
        family_name=record.get("family_name"),
        display_name=record.get("display_name"),
        active=active,
    )


def _group(record: object, index: int, rejections: list[Rejection]) -> ExternalGroup | None:
    ident = _ident(record)
    if not isinstance(record, dict) or ident is None:
        where = _label(record, "name", f"groups[{index}]") if isinstance(record, dict) else f"groups[{index}]"
        rejections.append(Rejection(Kind.GROUP, where, "malformed-record", "a group needs a string or number \"id\""))
        return None
    problem = None
    members = record.get("members", [])
    if record.get("name") is not None and not isinstance(record["name"], str):
        problem = "name must be text"
    if problem is None and (
        not isinstance(members, list) or not all(isinstance(m, (str, int)) and not isinstance(m, bool) for m in members)
    ):
        problem = "members must be an array of user ids"
    if problem is not None:
        rejections.append(Rejection(Kind.GROUP, _label(record, "name", ident), "malformed-record", problem, external_id=ident))
        return None
    return ExternalGroup(ident, record.get("name"), frozenset(str(m) for m in members))


def _ident(record: object) -> str | None:
    if not isinstance(record, dict):
        return None
    ident = record.get("id")
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or str(ident).strip() == "":
        return None
    return str(ident)


def _label(record: dict[str, Any], key: str, ident: str) -> str:
    value = record.get(key)
    return value.strip()[:200] if isinstance(value, str) and value.strip() else ident


def build(settings: Settings, directory: FileDirectorySettings) -> FileConnector:  # type: ignore[override]
    return FileConnector(settings.resolve_path(directory.path))
