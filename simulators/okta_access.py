"""Who may call a simulated Okta org, and how often: API tokens, OAuth 2.0 service apps
(`private_key_jwt` client assertions for scoped access tokens, `POST /oauth2/v1/token`) and
Okta's per-minute rate-limit buckets with their `X-Rate-Limit-*` headers.

`OktaAccess`, a base class of `OktaSimulator`, holds these: its `before_request`
authenticates a request and takes one call from the endpoint's bucket, its `after_response`
adds the bucket's headers. Kept apart from `simulators.okta`, which serves the org's
records, because who may call and how often is a concern the record handlers never read.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from simulators.base import SimulatorServer
from simulators.messages import Headers, Request, Response

__all__ = ["BUCKET_OF_ENDPOINT", "DEFAULT_RATE_LIMITS", "SCOPE_OF_BUCKET", "Bucket", "OktaAccess", "ServiceApp"]

# Okta's last published Workforce per-minute limits, per bucket.
DEFAULT_RATE_LIMITS: dict[str, int] = {
    "users.list": 600,
    "users.get": 2000,
    "groups.list": 500,
    "groups.id": 1000,
    "apps": 100,
    "logs": 120,
    "oauth": 600,
}
BUCKET_OF_ENDPOINT = {
    "users.list": "users.list",
    "users.get": "users.get",
    "users.groups": "users.get",
    "groups.list": "groups.list",
    "groups.users": "groups.id",
    "apps.users": "apps",
    "apps.user": "apps",
    "apps.groups": "apps",
    "logs": "logs",
    "oauth.token": "oauth",
}
SCOPE_OF_BUCKET = {
    "users.list": "okta.users.read",
    "users.get": "okta.users.read",
    "groups.list": "okta.groups.read",
    "groups.id": "okta.groups.read",
    "apps": "okta.apps.read",
    "logs": "okta.logs.read",
}
_SSWS = re.compile(r"^SSWS\s*(\S+)\s*$")
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$")


@dataclass
class Bucket:
    limit: int
    remaining: int
    resets_at: float  # time.monotonic()


@dataclass(frozen=True)
class ServiceApp:
    client_id: str
    public_key: Any
    scopes: frozenset[str]


class OktaAccess(SimulatorServer):
    """Authentication, OAuth tokens and rate limits of `OktaSimulator`, its subclass, which
    sets these attributes in its `__init__`."""

    api_tokens: set[str]
    rate_limits: dict[str, int]
    rate_window_seconds: float
    fault_reset_seconds: int
    access_token_seconds: int
    service_apps: dict[str, ServiceApp]
    access_tokens: dict[str, tuple[str, frozenset[str], float]]
    _used_jtis: set[str]
    _buckets: dict[str, Bucket]
    _bucket_of: dict[int, str]

    # -- credentials

    def register_service_app(self, client_id: str, public_key_pem: str | bytes, scopes: Iterable[str]) -> None:
        """Accept `private_key_jwt` assertions from `client_id` signed by the matching key."""
        text = public_key_pem.decode() if isinstance(public_key_pem, bytes) else public_key_pem
        key: Any = jwt.algorithms.RSAAlgorithm.from_jwk(text) if text.lstrip().startswith("{") else text
        with self.lock:
            self.service_apps[client_id] = ServiceApp(client_id, key, frozenset(scopes))

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def _token(self, request: Request) -> Response:
        form = request.form()

        def oauth_error(status: int, error: str, description: str) -> Response:
            return Response.json({"error": error, "error_description": description}, status)

        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        assertion = form.get("client_assertion", "")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            app = self.service_apps.get(str(claims.get("sub")))
            if app is None or claims.get("iss") != app.client_id:
                return oauth_error(401, "invalid_client", "The client_id is not valid.")
            claims = jwt.decode(assertion, app.public_key, algorithms=["RS256"],
                                options={"verify_aud": False, "require": ["exp", "iat", "jti", "sub", "iss", "aud"]})
        except jwt.PyJWTError:
            return oauth_error(401, "invalid_client", "The client_assertion signature is invalid.")
        if not str(claims["aud"]).endswith("/oauth2/v1/token"):
            return oauth_error(401, "invalid_client", "The audience claim for client_assertion must be the endpoint invoked for the request.")
        if claims["jti"] in self._used_jtis:
            return oauth_error(401, "invalid_client", "The client_assertion token has already been used.")
        self._used_jtis.add(claims["jti"])
        requested = frozenset((form.get("scope") or "").split())
        if not requested or not requested <= app.scopes:
            return oauth_error(400, "invalid_scope", "One or more scopes are not configured for the authorization server resource.")
        token = secrets.token_urlsafe(32)
        self.access_tokens[token] = (app.client_id, requested, time.monotonic() + self.access_token_seconds)
        return Response.json({"token_type": "Bearer", "expires_in": self.access_token_seconds,
                              "access_token": token, "scope": " ".join(sorted(requested))})

    # -- rate limits and authentication (hooks)

    def throttle_headers(self, request: Request) -> Headers:
        bucket = BUCKET_OF_ENDPOINT.get(request.endpoint, "default")
        reset = int(self.clock().timestamp()) + self.fault_reset_seconds
        return [
            ("X-Rate-Limit-Limit", str(self.rate_limits.get(bucket, 1200))),
            ("X-Rate-Limit-Remaining", "0"),
            ("X-Rate-Limit-Reset", str(reset)),
        ]

    def before_request(self, request: Request) -> Response | None:
        bucket = BUCKET_OF_ENDPOINT.get(request.endpoint, "default")
        self._bucket_of[request.index] = bucket
        if bucket != "oauth":
            denied = self._authenticate(request, bucket)
            if denied is not None:
                return denied
        state = self._bucket(bucket)
        if state.remaining <= 0:
            return self.error_response(request, 429)
        state.remaining -= 1
        return None

    def after_response(self, request: Request, response: Response) -> Response:
        bucket = self._bucket_of.pop(request.index, "default")
        state = self._bucket(bucket)
        seconds_left = max(0.0, state.resets_at - time.monotonic())
        reset = int(self.clock().timestamp()) + math.ceil(seconds_left)
        response.headers.extend(
            [
                ("X-Rate-Limit-Limit", str(state.limit)),
                ("X-Rate-Limit-Remaining", str(max(0, state.remaining))),
                ("X-Rate-Limit-Reset", str(reset)),
                ("X-Okta-Request-Id", secrets.token_urlsafe(12)),
            ]
        )
        return response

    def _bucket(self, name: str) -> Bucket:
        now = time.monotonic()
        state = self._buckets.get(name)
        if state is None or now >= state.resets_at:
            limit = self.rate_limits.get(name, 1200)
            state = Bucket(limit, limit, now + self.rate_window_seconds)
            self._buckets[name] = state
        return state

    def _authenticate(self, request: Request, bucket: str) -> Response | None:
        header = request.headers.get("authorization", "")
        ssws = _SSWS.match(header)
        if ssws and ssws.group(1) in self.api_tokens:
            return None
        bearer = _BEARER.match(header)
        if bearer:
            grant = self.access_tokens.get(bearer.group(1))
            if grant is not None and grant[2] > time.monotonic():
                needed = SCOPE_OF_BUCKET.get(bucket)
                if needed is not None and needed not in grant[1]:
                    return self.error_response(request, 403)
                return None
        return self.error_response(request, 401)
