"""Credentials, TLS and environment: API token and OAuth private-key auth, failures that
quarantine, CA bundles, proxy variables, and secrets kept out of errors, logs and reprs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from config import Settings
from connectors.errors import AuthError, ConnectorError, PermanentError
from connectors.okta import ApiToken, OktaConnector, ServiceApp, build
from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.model import Snapshot
from tests.okta.conftest import MakeConnector, directory

ALL_SCOPES = ("okta.users.read", "okta.groups.read", "okta.apps.read", "okta.logs.read")


def new_key() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return new_key()


@pytest.fixture()
def service_app(sim: OktaSimulator, key_pair: tuple[str, str]) -> ServiceApp:
    private, public = key_pair
    sim.register_service_app("0oaservice", public, ALL_SCOPES)
    return ServiceApp("0oaservice", private, key_id="key-1", scopes=ALL_SCOPES)


# --- authentication -----------------------------------------------------------------------


def test_api_token_is_sent_as_ssws(make_connector: MakeConnector, sim: OktaSimulator) -> None:
    make_connector().read(None)

    assert all(r.headers["authorization"].startswith("SSWS") for r in sim.requests())


def test_a_wrong_token_is_an_auth_error_and_is_not_retried(make_connector: MakeConnector, sim: OktaSimulator) -> None:
    with pytest.raises(AuthError, match="E0000011"):
        make_connector(ApiToken("00wrong-token")).read(None)

    assert sum(sim.counts().values()) == 1


def test_oauth_private_key_reads_everything_with_one_token(
    make_connector: MakeConnector, sim: OktaSimulator, org: OktaOrg, service_app: ServiceApp
) -> None:
    snapshot = make_connector(service_app, app_id=org.app_id).read(None)

    assert isinstance(snapshot, Snapshot) and snapshot.users
    assert sim.counts()["oauth.token"] == 1
    api_calls = [r for r in sim.requests() if r.endpoint != "oauth.token"]
    assert all(r.headers["authorization"].startswith("Bearer ") for r in api_calls)


def test_oauth_with_a_key_okta_does_not_know_is_an_auth_error(
    make_connector: MakeConnector, sim: OktaSimulator, service_app: ServiceApp
) -> None:
    other_private, _ = new_key()

    with pytest.raises(AuthError, match="invalid_client"):
        make_connector(ServiceApp("0oaservice", other_private, scopes=ALL_SCOPES)).read(None)


def test_oauth_without_a_granted_scope_is_an_auth_error(
    make_connector: MakeConnector, sim: OktaSimulator, key_pair: tuple[str, str]
) -> None:
    private, public = key_pair
    sim.register_service_app("0oanarrow", public, ("okta.users.read", "okta.groups.read"))

    with pytest.raises(AuthError):
        make_connector(ServiceApp("0oanarrow", private, scopes=ALL_SCOPES)).read(None)


def test_a_token_without_the_scope_an_endpoint_needs_is_refused(
    make_connector: MakeConnector, sim: OktaSimulator, key_pair: tuple[str, str]
) -> None:
    private, public = key_pair
    scopes = ("okta.users.read", "okta.groups.read", "okta.logs.read")
    sim.register_service_app("0oanoapps", public, scopes)

    with pytest.raises(AuthError, match="403"):
        make_connector(ServiceApp("0oanoapps", private, scopes=scopes), app_id="0oa1").read(None)


def test_a_failing_token_endpoint_is_retried(
    make_connector: MakeConnector, sim: OktaSimulator, service_app: ServiceApp
) -> None:
    sim.inject(Fault.HTTP_503, endpoint="oauth.token")

    assert isinstance(make_connector(service_app).read(None), Snapshot)


# --- building from configuration -----------------------------------------------------------


def settings_for(tmp_path: Path, sim: OktaSimulator, **keys: object) -> tuple[Settings, object]:
    okta = directory(sim, **keys)
    return Settings(directories={"okta": okta}, source=tmp_path / "dirsync.toml"), okta


def test_build_reads_the_token_from_the_environment(
    tmp_path: Path, sim: OktaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKTA_TEST_TOKEN", sim.api_token)
    settings, okta = settings_for(tmp_path, sim)

    assert isinstance(build(settings, okta).read(None), Snapshot)  # type: ignore[arg-type]


def test_build_with_the_token_variable_unset_is_a_permanent_error(
    tmp_path: Path, sim: OktaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OKTA_TEST_TOKEN", raising=False)
    settings, okta = settings_for(tmp_path, sim)

    with pytest.raises(PermanentError, match="OKTA_TEST_TOKEN"):
        build(settings, okta)  # type: ignore[arg-type]


def test_build_with_a_private_key_file_relative_to_the_config(
    tmp_path: Path, sim: OktaSimulator, key_pair: tuple[str, str]
) -> None:
    private, public = key_pair
    (tmp_path / "okta-key.pem").write_text(private)
    sim.register_service_app("0oafile", public, ("okta.users.read", "okta.groups.read", "okta.logs.read"))
    settings, okta = settings_for(tmp_path, sim, token_env=None, client_id="0oafile",
                                  private_key_file="okta-key.pem", key_id="k1")

    assert isinstance(build(settings, okta).read(None), Snapshot)  # type: ignore[arg-type]


def test_build_with_an_unreadable_private_key_names_the_file_not_its_content(
    tmp_path: Path, sim: OktaSimulator
) -> None:
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n")
    settings, okta = settings_for(tmp_path, sim, token_env=None, client_id="0oa", private_key_file="bad.pem")

    with pytest.raises(PermanentError, match="bad.pem") as failure:
        build(settings, okta)  # type: ignore[arg-type]

    assert "c2VjcmV0" not in str(failure.value)


# --- TLS and environment -------------------------------------------------------------------


def test_tls_is_verified_and_an_unknown_ca_is_a_permanent_error(sim: OktaSimulator, org: OktaOrg) -> None:
    import ssl

    connector = OktaConnector(directory(sim), ApiToken(sim.api_token), ssl_context=ssl.create_default_context(),
                              clock=org.clock)

    with pytest.raises(PermanentError, match="ca_bundle"):
        connector.read(None)


def test_proxy_variables_are_honoured_with_no_proxy(
    make_connector: MakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK alone would send everything to this dead proxy: it ignores NO_PROXY.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    assert isinstance(make_connector().read(None), Snapshot)


def test_sdk_logger_gains_no_handlers(make_connector: MakeConnector) -> None:
    before = list(logging.getLogger("okta-sdk-python").handlers)

    make_connector().read(None)
    make_connector().read(None)

    assert logging.getLogger("okta-sdk-python").handlers == before


# --- secrets ---------------------------------------------------------------------------------


def test_the_api_token_is_never_in_errors_logs_or_reprs(
    make_connector: MakeConnector, sim: OktaSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connector = make_connector(max_retries=1)
    for fault in (Fault.HTTP_500, Fault.RESET, Fault.MALFORMED_JSON, Fault.HTTP_429):
        sim.inject(fault, endpoint="users.list", times=5)
        with pytest.raises(ConnectorError) as failure:
            connector.read(None)
        assert sim.api_token not in str(failure.value)
        sim.clear_faults()
    sim.api_tokens.clear()  # the token is revoked
    with pytest.raises(AuthError) as refused:
        connector.read(None)

    assert sim.api_token not in str(refused.value)
    assert sim.api_token not in caplog.text
    assert sim.api_token not in repr(connector) and sim.api_token not in repr(ApiToken(sim.api_token))


def test_oauth_secrets_are_never_in_errors_logs_or_reprs(
    make_connector: MakeConnector, sim: OktaSimulator, service_app: ServiceApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connector = make_connector(service_app, max_retries=0)
    connector.read(None)
    access_tokens = list(sim.access_tokens)
    sim.service_apps.clear()  # the service app is deleted in Okta
    with pytest.raises(AuthError) as refused:
        connector.read(None)

    key_body = service_app.private_key_pem.splitlines()[1]
    for secret in [key_body, *access_tokens]:
        assert secret not in caplog.text
        assert secret not in str(refused.value)
    assert key_body not in repr(service_app) and key_body not in repr(connector)
