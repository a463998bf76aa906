"""What a simulator's handler takes and returns: a parsed `Request` and a `Response`.

A `Response`'s headers are a list of (name, value) pairs, so a name may repeat (two `Link`
headers); its body is sent as it is (`simulators.wire` writes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Handler", "Headers", "Request", "Response"]

Headers = list[tuple[str, str]]
Handler = Callable[["Request"], "Response"]


@dataclass
class Request:
    """One parsed request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""
    index: int = 0

    @property
    def target(self) -> str:
        """Path plus query string, as sent."""
        return self.path + (("?" + self.raw_query) if self.raw_query else "")

    raw_query: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """An `application/x-www-form-urlencoded` body, first value of each field."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class Response:
    """What a handler answers. `headers` may repeat a name; `body` is sent as it is."""

    status: int = 200
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, [("Content-Type", "application/json"), *headers], body)

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive)."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    def without_headers(self, names: Iterable[str]) -> Response:
        drop = {n.lower() for n in names}
        return Response(self.status, [(k, v) for k, v in self.headers if k.lower() not in drop], self.body)
