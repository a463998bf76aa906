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

The export is decoded record by record (`connectors.json_stream`), each normalised before
the next is decoded, so the read never holds the whole decoded export: at a million users
its peak is the text and the normalised records (842 MiB), not those and 750 MiB of dicts
(1,226 MiB).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from config import FileDirectorySettings, Settings
from connectors.base import ReadProgress
from connectors.errors import PartialReadError, PermanentError
from connectors.json_stream import stream_object
from reconcile.id_sets import Members
from reconcile.model import Changes, ExternalGroup, ExternalUser, Kind, Rejection, Snapshot

TEXT_FIELDS = ("email", "given_name", "family_name", "display_name")
SECTIONS = ("users", "groups")


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
            text = raw.decode(json.detect_encoding(raw), "surrogatepass")
            del raw  # the parse holds the text only: a million users' export is 190 MiB of it
            snapshot = parse_text(text, watermark=digest)
        except ValueError as exc:  # not JSON, not its encoding, or an integer past Python's limit
            raise PartialReadError(f"directory file {self.path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise PartialReadError(f"directory file {self.path} is not a directory export: it nests arrays "
                                   "or objects too deeply to read") from None
        if progress is not None:
            progress("read", 1, len(snapshot.users) + len(snapshot.groups) + len(snapshot.rejections))
        return snapshot

    def close(self) -> None:
        pass


def parse(data: Any, watermark: str | None = None) -> Snapshot:
    """Normalise a parsed export; raise PartialReadError if its top level is not the shape."""
    export = _Export()
    if isinstance(data, dict):
        for key in SECTIONS:
            records = data.get(key, [])
            if isinstance(records, list):
                export.begin(key)
                for index, record in enumerate(records):
                    export.item(key, index, record)
            else:
                export.other(key, records)
    return export.snapshot(is_object=isinstance(data, dict), watermark=watermark)


def parse_text(text: str, watermark: str | None = None) -> Snapshot:
    """`parse(json.loads(text))`, without holding the decoded export: each record is
    normalised as it is decoded. Raises what `json.loads` raises on text it refuses."""
    export = _Export()
    is_object = stream_object(text, SECTIONS, export)
    return export.snapshot(is_object=is_object, watermark=watermark)


class _Export:
    """The users and groups of an export, normalised as its records arrive (a `json_stream.Sink`).

    An id is kept as one string however often it occurs: a group's member ids are the
    strings of the users' own ids, not a copy each (2,000,000 memberships: about 110 MiB).
    """

    def __init__(self) -> None:
        self.users: list[ExternalUser] = []
        self.groups: list[ExternalGroup] = []
        self.rejections: dict[str, list[Rejection]] = {key: [] for key in SECTIONS}
        self.arrays: dict[str, bool] = {key: True for key in SECTIONS}  # a missing section is empty
        self.ids: dict[str, str] = {}

    def begin(self, key: str) -> None:
        # A key given twice counts as its last occurrence, as in json.loads.
        self.arrays[key] = True
        self.rejections[key] = []
        if key == "users":
            self.users = []
        else:
            self.groups = []

    def other(self, key: str, value: object) -> None:
        self.arrays[key] = False

    def item(self, key: str, index: int, record: object) -> None:
        if key == "users":
            user = _user(record, index, self.rejections[key], self.ids)
            if user is not None:
                self.users.append(user)
        else:
            group = _group(record, index, self.rejections[key], self.ids)
            if group is not None:
                self.groups.append(group)

    def snapshot(self, *, is_object: bool, watermark: str | None) -> Snapshot:
        if not is_object or not all(self.arrays.values()):
            raise PartialReadError('the directory file must be an object with "users" and "groups" arrays')
        rejections = (*self.rejections["users"], *self.rejections["groups"])
        return Snapshot(tuple(self.users), tuple(self.groups), rejections, watermark)


def _user(record: object, index: int, rejections: list[Rejection], ids: dict[str, str]) -> ExternalUser | None:
    ident = _ident(record, ids)
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


def _group(record: object, index: int, rejections: list[Rejection], ids: dict[str, str]) -> ExternalGroup | None:
    ident = _ident(record, ids)
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
    return ExternalGroup(ident, record.get("name"), Members(_shared(str(m), ids) for m in members))


def _ident(record: object, ids: dict[str, str]) -> str | None:
    if not isinstance(record, dict):
        return None
    ident = record.get("id")
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or str(ident).strip() == "":
        return None
    return _shared(str(ident), ids)


def _shared(ident: str, ids: dict[str, str]) -> str:
    """The one string kept for `ident` (its first occurrence)."""
    return ids.setdefault(ident, ident)


def _label(record: dict[str, Any], key: str, ident: str) -> str:
    value = record.get(key)
    return value.strip()[:200] if isinstance(value, str) and value.strip() else ident


def build(settings: Settings, directory: FileDirectorySettings) -> FileConnector:
    return FileConnector(settings.resolve_path(directory.path))
