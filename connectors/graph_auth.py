"""App-only tokens for Microsoft Graph from one long-lived msal client per process.

`TokenSource.token()` returns a bearer token from msal's in-memory cache, asking the
identity platform only on a miss or near expiry. Every failure becomes one line with the
AADSTS code and what it means for an admin, as a `connectors.errors` type; the client
secret, the private key and tokens never appear in a message, a log line or a repr.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.retry import describe_transport_failure

log = logging.getLogger("connectors.graph")

# What an admin should check for the AADSTS codes a client-credentials request meets.
AADSTS_MEANINGS: dict[int, str] = {
    7000215: "invalid client secret (use the secret's value, not its id)",
    7000222: "the client secret has expired; create a new one",
    7000218: "no client secret or certificate was sent",
    700016: "application (client_id) not found in this tenant",
    90002: "tenant not found; check tenant_id and authority_host",
    900023: "tenant_id is not a valid tenant id or domain",
    700027: "certificate not registered on the app, or the assertion signature is invalid",
    700024: "client assertion outside its valid time range; check the clock",
    700023: "client assertion issuer or subject is not the application",
    700021: "client assertion audience does not match the token endpoint",
    700025: "client assertion is malformed",
    1002012: "invalid scope; expected <graph_url>/.default",
    500011: "resource not found in the tenant; check graph_url for this cloud",
    7000112: "the application is disabled",
    53003: "blocked by a Conditional Access policy",
}
_AUTH_ERRORS = {"invalid_client", "unauthorized_client", "invalid_tenant", "access_denied"}
_TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


class TokenEndpointUnreachable(TransientError):
    """The identity platform gave no answer (timed out, refused, DNS): tried fewer times."""


@dataclass(frozen=True)
class Credential:
    """A client secret or a certificate (PEM private key + SHA-1 thumbprint).

    The repr names the kind only; `fingerprint` is a one-way digest used to tell apart
    credentials (a rotated secret gets a new msal client) without keeping the value around
    in any key that could be printed.
    """

    secret: str | None = None
    private_key_pem: str | None = None
    thumbprint: str | None = None

    def __repr__(self) -> str:
        return "Credential(certificate)" if self.private_key_pem else "Credential(secret)"

    def for_msal(self) -> Any:
        if self.private_key_pem is not None:
            return {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
        return self.secret

    @property
    def fingerprint(self) -> str:
        raw = (self.secret or "") + "\0" + (self.private_key_pem or "") + "\0" + (
            self.thumbprint or "")
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


# msal is imported on first use (about 0.4 s): only a process that asks for a token pays it.
_apps: dict[tuple[str, str, str], tuple[Any, threading.Lock]] = {}  # msal.ConfidentialClientApplication
_apps_lock = threading.Lock()


def forget_clients() -> None:
    """Drop every msal client of this process (tests; after a credential rotation)."""
    with _apps_lock:
        _apps.clear()


def _client(authority: str, client_id: str, credential: Credential,
            session: Callable[[], requests.Session]
            ) -> tuple[Any, threading.Lock]:
    key = (authority, client_id, credential.fingerprint)
    with _apps_lock:
        entry = _apps.get(key)
        if entry is None:
            import msal  # type: ignore[import-untyped]
            from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS  # type: ignore[import-untyped]

            host = urlsplit(authority).hostname or ""
            # For Microsoft's own cloud hosts msal validates the authority against its
            # instance metadata; for any other host (a private gateway, the simulator) that
            # validation would call login.microsoftonline.com and fail offline, so it is
            # skipped only there. Discovery of the tenant's token endpoint still happens.
            app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=credential.for_msal(),
                authority=authority,
                http_client=session(),  # lives as long as the msal client
                instance_discovery=host in WELL_KNOWN_AUTHORITY_HOSTS,
                token_cache=msal.TokenCache(),
            )
            # The lock makes concurrent first calls share one token request: msal alone
            # would send one per thread that misses its cache at the same moment.
            entry = _apps[key] = (app, threading.Lock())
        return entry


class TokenSource:
    """Bearer tokens for `scope`, from the process-wide msal client for this app.

    The msal client is built on first use (its constructor discovers the tenant's
    endpoints over the network) and then lives as long as the process.
    """

    def __init__(self, *, directory: str, authority: str, client_id: str,
                 credential: Credential, scope: str,
                 session: Callable[[], requests.Session], timeout: float = 30.0) -> None:
        self._directory = directory
        self._timeout = timeout
        self._authority = authority
        self._client_id = client_id
        self._credential = credential
        self._scope = scope
        self._session = session
        self.requests = 0  # tokens fetched from the identity platform (not from the cache)

    def __repr__(self) -> str:
        return f"TokenSource({self._directory!r}, {self._authority!r}, {self._credential!r})"

    def token(self) -> str:
        """A valid access token; raises AuthError, PermanentError or TransientError."""
        where = f"entra {self._directory}: token request to {self._authority}"
        import msal  # already loaded by `_client` unless this is the first token

        try:
            app, lock = _client(self._authority, self._client_id, self._credential,
                                self._session)
            with lock:
                result = app.acquire_token_for_client(scopes=[self._scope])
        except requests.exceptions.SSLError:
            raise PermanentError(f"{where}: TLS verification failed (check ca_bundle)") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            host = urlsplit(self._authority).hostname or self._authority
            failure = describe_transport_failure(exc, host=host, timeout=self._timeout,
                                                 timed_out=isinstance(exc, requests.Timeout))
            kind = TokenEndpointUnreachable if failure.no_answer else TransientError
            raise kind(f"{where}: {failure.text}") from None
        except requests.HTTPError as exc:  # discovery answered 5xx
            status = exc.response.status_code if exc.response is not None else "?"
            raise TransientError(f"{where}: discovery failed with HTTP {status}") from None
        except msal.exceptions.MsalServiceError:  # token endpoint answered 5xx
            raise TransientError(f"{where}: the identity platform failed (HTTP 5xx)") from None
        except jwt.PyJWTError:
            raise PermanentError(f"{where}: the certificate's private key cannot sign a "
                                 "client assertion (an RSA key is required)") from None
        except json.JSONDecodeError:  # a garbled or cut-off answer
            raise TransientError(f"{where}: malformed answer from the identity platform") from None
        except ValueError:  # discovery answered 4xx: the tenant or authority is wrong
            raise PermanentError(
                f"{where}: OpenID discovery refused; check tenant_id and authority_host"
            ) from None
        if "access_token" in result:
            if result.get("token_source") == "identity_provider":
                self.requests += 1
            return str(result["access_token"])
        raise self._failure(where, result)

    def invalidate(self, failed: str) -> None:
        """Forget `failed` (a token Graph refused), so the next `token()` fetches a new one.

        Only that token is dropped: when several threads see the same 401, the first one
        replaces it and the others keep the replacement.
        """
        with _apps_lock:
            entry = _apps.get((self._authority, self._client_id, self._credential.fingerprint))
        if entry is None:
            return
        app, lock = entry
        with lock:
            cached = app.acquire_token_for_client(scopes=[self._scope])
            if cached.get("access_token") == failed:
                app.remove_tokens_for_client()

    @staticmethod
    def _failure(where: str, result: dict[str, Any]) -> Exception:
        error = str(result.get("error", "unknown_error"))
        codes = result.get("error_codes") or []
        code = int(codes[0]) if codes and str(codes[0]).isdigit() else None
        meaning = AADSTS_MEANINGS.get(code or 0, "see the AADSTS code in Microsoft's reference")
        label = f"AADSTS{code}" if code is not None else error
        message = f"{where} refused: {label} {error}: {meaning}"
        if error in _TRANSIENT_ERRORS:
            return TransientError(message)
        if error in _AUTH_ERRORS or code in (7000215, 7000222, 700016, 700027, 700024):
            return AuthError(message)
        return PermanentError(message)
