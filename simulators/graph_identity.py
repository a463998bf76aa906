"""The identity platform side of the Graph simulator: OpenID discovery and the v2.0 token endpoint.

Serves what `msal.ConfidentialClientApplication` needs for the client-credentials flow,
with a client secret or a certificate-signed client assertion (RS256/PS256 JWT checked
against the registered certificate, its audience, issuer, subject and lifetime). Errors
use the identity platform's body: `error`, `error_description` starting `AADSTSnnnn:`,
`error_codes`, `timestamp`, `trace_id`, `correlation_id`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from simulators.graph_tenant import GraphTenant
from simulators.messages import Request, Response

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3599


def thumbprints(cert_pem: bytes) -> tuple[str, str, str]:
    """(SHA-1 hex as admins paste it, base64url SHA-1 `x5t`, base64url SHA-256 `x5t#S256`)."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    sha1 = hashlib.sha1(der).digest()  # noqa: S324 - x5t is defined as SHA-1
    sha256 = hashlib.sha256(der).digest()

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return sha1.hex().upper(), b64(sha1), b64(sha256)


class IdentityPlatform:
    """Issues bearer tokens for one tenant's app and checks them on Graph requests."""

    def __init__(self, tenant: GraphTenant, base_url: Callable[[], str],
                 graph_resource: Callable[[], str], clock: Callable[[], float]) -> None:
        self.tenant = tenant
        self._base_url = base_url
        self._graph_resource = graph_resource
        self._clock = clock
        self.tokens: dict[str, float] = {}  # access token -> expiry (clock seconds)
        self.token_lifetime = TOKEN_LIFETIME

    # --- test controls -----------------------------------------------------------------

    def register_certificate(self, cert_pem: bytes) -> str:
        """Register a certificate credential; returns its SHA-1 thumbprint (hex)."""
        hex_sha1, x5t, x5t256 = thumbprints(cert_pem)
        self.tenant.certificates[x5t] = cert_pem
        self.tenant.certificates[x5t256] = cert_pem
        return hex_sha1

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        self.tokens.clear()

    # --- endpoints ----------------------------------------------------------------------

    def discovery(self, request: Request) -> Response:
        tenant = request.params["tenant"]
        if tenant != self.tenant.tenant_id:
            return self._error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self._base_url()}/{tenant}"
        return Response.json({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{self._base_url()}/{tenant}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "EU",
        })

    def token(self, request: Request) -> Response:
        t = self.tenant
        tenant = request.params["tenant"]
        form = request.form()
        if tenant != t.tenant_id:
            return self._error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. "
                               "Check to make sure you have the correct tenant ID.")
        if form.get("grant_type") != "client_credentials":
            return self._error(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        if client_id != t.client_id:
            return self._error(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in "
                               f"the directory '{tenant}'.")
        scope = form.get("scope", "")
        if not any(s.endswith("/.default") for s in scope.split()):
            return self._error(400, "invalid_scope", 1002012,
                               f"The provided value for scope {scope} is not valid. Client "
                               "credential flows must have a scope value with /.default "
                               "suffixed to the resource identifier (application ID URI).")
        resource = scope.split()[0][: -len("/.default")]
        if resource.rstrip("/") != self._graph_resource().rstrip("/"):
            return self._error(400, "invalid_resource", 500011,
                               f"The resource principal named {resource} was not found in "
                               f"the tenant named {tenant}.")
        failure = self._authenticate_client(form, request)
        if failure is not None:
            return failure
        access_token = "eyJ0eXAi." + secrets.token_urlsafe(32)
        self.tokens[access_token] = self._clock() + self.token_lifetime
        return Response.json({"token_type": "Bearer", "expires_in": self.token_lifetime,
                              "ext_expires_in": self.token_lifetime,
                              "access_token": access_token})

    def _authenticate_client(self, form: dict[str, str], request: Request) -> Response | None:
        t = self.tenant
        if "client_secret" in form:
            if t.client_secret_expired:
                return self._error(401, "invalid_client", 7000222,
                                   f"The provided client secret keys for app '{t.client_id}' "
                                   "are expired.")
            if not secrets.compare_digest(form["client_secret"], t.client_secret):
                return self._error(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being "
                                   "sent in the request is the client secret value, not the "
                                   f"client secret ID, for a secret added to app "
                                   f"'{t.client_id}'.")
            return None
        if form.get("client_assertion_type") == ASSERTION_TYPE and "client_assertion" in form:
            return self._check_assertion(form["client_assertion"], request)
        return self._error(401, "invalid_client", 7000218,
                           "The request body must contain the following parameter: "
                           "'client_assertion' or 'client_secret'.")

    def _check_assertion(self, assertion: str, request: Request) -> Response | None:
        t = self.tenant
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._error(401, "invalid_client", 700025, "Client assertion is malformed.")
        key_id = header.get("x5t#S256") or header.get("x5t")
        # msal sends x5t with base64 padding; the platform matches it either way.
        cert_pem = t.certificates.get(str(key_id).rstrip("="))
        if cert_pem is None:
            return self._error(401, "invalid_client", 700027,
                               "The certificate with identifier used to sign the client "
                               f"assertion is not registered on application {t.client_id}.")
        public_key: Any = x509.load_pem_x509_certificate(cert_pem).public_key()
        audience = f"{self._base_url()}{request.path}"
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256", "PS256"],
                                audience=audience, options={"require": ["exp", "aud"]})
        except jwt.ExpiredSignatureError:
            return self._error(401, "invalid_client", 700024,
                               "Client assertion is not within its valid time range.")
        except jwt.InvalidAudienceError:
            return self._error(401, "invalid_client", 700021,
                               "Client assertion audience claim does not match Realm issuer.")
        except jwt.PyJWTError:
            return self._error(401, "invalid_client", 700027,
                               "Client assertion failed signature validation.")
        if claims.get("iss") != t.client_id or claims.get("sub") != t.client_id:
            return self._error(401, "invalid_client", 700023,
                               "Client assertion issuer or subject is not the application.")
        return None

    # --- Graph side -----------------------------------------------------------------------

    def check_bearer(self, request: Request) -> str | None:
        """None when the bearer token is valid, else the reason to answer 401."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return "Access token is empty."
        expiry = self.tokens.get(auth[7:].strip())
        if expiry is None:
            return "Access token validation failure. Invalid audience."
        if self._clock() >= expiry:
            return "Lifetime validation failed, the token is expired."
        return None

    def _error(self, status: int, error: str, code: int, message: str) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return Response.json({
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {trace} "
                                 f"Correlation ID: {correlation}",
            "error_codes": [code],
            "timestamp": "",
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self._base_url()}/error?code={code}",
        }, status)
