"""Unreachable IdPs without leaving the machine: names under the reserved `.invalid` TLD
(RFC 6761) fail to resolve here, before any DNS query is sent, and no proxy is used."""

from __future__ import annotations

import socket
from typing import Any

import pytest

UNRESOLVABLE_HOST = "nothing.invalid"
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def resolve_invalid_names_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """`*.invalid` fails with EAI_NONAME as a resolver would, without asking one; every
    other name resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for variable in _PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def retry_lines(records: list[Any], logger: str) -> list[str]:
    """The retry announcements one connector logged, in order."""
    return [r.getMessage() for r in records if r.name == logger and "retrying in" in r.getMessage()]
