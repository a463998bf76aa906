"""A client for a running simulator's admin API (`admin.py`), as `dirsync simulate admin` uses it."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ADMIN_TOKEN_ENV", "AdminClient", "AdminRequestError"]

# Where the CLI looks for the admin token; not DIRSYNC_*, which dirsync takes for settings
# and refuses when unknown.
ADMIN_TOKEN_ENV = "SIMULATOR_ADMIN_TOKEN"


class AdminRequestError(Exception):
    """The simulator refused the action or could not be reached; `status` 0 means unreachable."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AdminClient:
    def __init__(self, url: str, token: str, ca_bundle: str, *, timeout: float = 30.0) -> None:
        split = urlsplit(url)
        if split.scheme != "https" or not split.hostname:
            raise AdminRequestError(f"the simulator URL must be https://HOST:PORT, not {url!r}")
        self.url = url
        self._host, self._port = split.hostname, split.port or 443
        self._token = token
        self._ca_bundle = ca_bundle
        self._timeout = timeout

    @classmethod
    def from_state_dir(cls, directory: Path) -> AdminClient:
        """The admin endpoint of the simulator started with `--state-dir directory`."""
        # Here, not at the top: the CLI imports this module for ADMIN_TOKEN_ENV, and the
        # simulator's state module brings its TLS stack (about 0.1 s on every command).
        from simulators.state import load

        state = load(directory)
        if state is None:
            raise AdminRequestError(f"{directory} holds no simulator state (start one with --state-dir {directory})")
        return cls(f"https://127.0.0.1:{state['port']}", state["admin_token"], str(directory / "ca.pem"))

    def call(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST `body` to `/_admin/<action>` (GET without a body); the answer's JSON."""
        try:
            context = ssl.create_default_context(cafile=self._ca_bundle)
        except (OSError, ssl.SSLError) as error:
            raise AdminRequestError(f"cannot read the CA bundle {self._ca_bundle}: {error}") from None
        connection = http.client.HTTPSConnection(self._host, self._port, context=context, timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            connection.request("GET" if body is None else "POST", f"/_admin/{action}",
                               None if body is None else json.dumps(body), headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            raise AdminRequestError(f"cannot reach the simulator at {self.url}: {error}") from None
        finally:
            connection.close()
        try:
            answer: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise AdminRequestError(f"the simulator answered {status} without JSON", status) from None
        if status >= 400:
            raise AdminRequestError(str(answer.get("error") or f"the simulator answered {status}"), status)
        return answer
