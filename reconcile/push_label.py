"""How the events of a SCIM request name it (its label), and which user a label addresses.

A held request (S2) is about the user it addressed: a request to `/Users/{id}` names a
SCIM resource, whatever that user's email is by the time it is approved, and a `POST
/Users` names an email. The endpoint labels each request once (`request_label`, from its
route); the store reads the user back from the label (`addressed_user`).
"""

from __future__ import annotations

_USERS = "/Users"
# The methods of a request that addresses one user by its SCIM id and may be held (S2).
_USER_WRITES = ("PUT", "PATCH", "DELETE")


def request_label(method: str, path: str) -> str:
    """How the events of a request name it: its method and its path under the directory's
    base URL, e.g. `PATCH /Users/2819c223`. `addressed_user` reads the user back."""
    return f"{method.upper()} {path or '/'}"


def addressed_user(label: str | None) -> str | None:
    """The SCIM id of the user the request `label` (see `request_label`) addresses by
    `/Users/{id}`; None for one that names no user by id (`POST /Users` names an email)."""
    method, _, path = (label or "").partition(" ")
    collection, _, scim_id = path.rpartition("/")
    return scim_id if method in _USER_WRITES and collection == _USERS and scim_id else None


def labels_addressing(scim_id: str) -> tuple[str, ...]:
    """The labels of every request that addresses user `scim_id` and may be held."""
    return tuple(request_label(method, f"{_USERS}/{scim_id}") for method in _USER_WRITES)


__all__ = ["addressed_user", "labels_addressing", "request_label"]
