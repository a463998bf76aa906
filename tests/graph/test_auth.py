"""Tokens from the real msal client: secret and certificate credentials, AADSTS errors as one
line without the secret, TLS trust from system CAs plus `ca_bundle` only, and secrets never
in errors, logs or reprs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trustme

from config import parse
from connectors import build_connector
from connectors.errors import AuthError, PermanentError
from connectors.graph_auth import Credential
from simulators.graph import GraphSimulator
from tests.graph.conftest import Replica, connect, expected


def _certificate(sim: GraphSimulator) -> tuple[Credential, str]:
    """A fresh key pair registered on the app: (credential, its private key PEM)."""
    leaf = trustme.CA().issue_cert("dirsync-app.contoso.example",
                                   key_type=trustme.KeyType.RSA)
    cert_pem = leaf.cert_chain_pems[0].bytes()
    thumbprint = sim.identity.register_certificate(cert_pem)
    key_pem = leaf.private_key_pem.bytes().decode()
    return Credential(private_key_pem=key_pem, thumbprint=thumbprint), key_pem


def test_certificate_credential_signs_a_client_assertion_that_the_platform_accepts(
    sim: GraphSimulator,
) -> None:
    credential, _ = _certificate(sim)

    snapshot = connect(sim, credential=credential).read(None)

    assert Replica().apply(snapshot).as_view() == expected(sim.tenant)
    assert sim.counts()["token"] == 1


def test_unregistered_certificate_is_an_auth_error_naming_aadsts700027(
    sim: GraphSimulator,
) -> None:
    leaf = trustme.CA().issue_cert("someone-else", key_type=trustme.KeyType.RSA)
    credential = Credential(private_key_pem=leaf.private_key_pem.bytes().decode(),
                            thumbprint="AB" * 20)

    with pytest.raises(AuthError, match="AADSTS700027"):
        connect(sim, credential=credential).read(None)


def test_wrong_secret_is_one_line_with_the_aadsts_code_and_no_secret(
    sim: GraphSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-" + sim.tenant.client_secret

    with pytest.raises(AuthError) as failure:
        connect(sim, credential=Credential(secret=secret)).read(None)

    message = str(failure.value)
    assert "AADSTS7000215" in message
    assert "invalid client secret" in message
    assert "\n" not in message
    assert secret not in message and sim.tenant.client_secret not in message
    assert secret not in caplog.text


def test_expired_secret_is_an_auth_error(sim: GraphSimulator) -> None:
    sim.tenant.client_secret_expired = True

    with pytest.raises(AuthError, match="AADSTS7000222.*expired"):
        connect(sim).read(None)


def test_unknown_tenant_is_a_permanent_error(sim: GraphSimulator) -> None:
    with pytest.raises(PermanentError, match="tenant_id"):
        connect(sim, tenant_id="00000000-0000-0000-0000-0000000000ff").read(None)


def test_wrong_graph_url_scope_is_a_permanent_error_naming_graph_url(
    sim: GraphSimulator,
) -> None:
    other = sim.graph_url.replace("127.0.0.1", "localhost")

    with pytest.raises(PermanentError, match="AADSTS500011.*graph_url"):
        connect(sim, graph_url=other).read(None)


def test_tls_without_the_simulators_ca_is_refused(sim: GraphSimulator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Environment CA variables must not widen (or replace) what the connector trusts.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_path)
    monkeypatch.setenv("CURL_CA_BUNDLE", sim.ca_path)
    directory_table = sim.directory_table()
    del directory_table["ca_bundle"]
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", sim.tenant.client_secret)
    settings = parse({"directories": {"entra": directory_table}}, {})

    with pytest.raises(PermanentError, match="TLS verification failed"):
        build_connector(settings, settings.directory("entra")).read(None)


def test_ca_bundle_is_trusted_even_when_requests_ca_bundle_points_elsewhere(
    sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")

    snapshot = connect(sim).read(None)

    assert len(snapshot.users) > 0


def test_build_connector_reads_the_secret_from_its_environment_variable(
    sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_text(Path(sim.ca_path).read_text())
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", sim.tenant.client_secret)
    table = {**sim.directory_table(assigned=True), "ca_bundle": "ca.pem"}
    settings = parse({"directories": {"entra": table}}, {}, source=tmp_path / "dirsync.toml")

    connector = build_connector(settings, settings.directory("entra"))

    assert Replica().apply(connector.read(None)).as_view() == expected(sim.tenant,
                                                                        assigned=True)


def test_build_connector_reads_a_certificate_file(sim: GraphSimulator, tmp_path: Path) -> None:
    credential, key_pem = _certificate(sim)
    (tmp_path / "app.pem").write_text(key_pem)
    table = sim.directory_table()
    del table["client_secret_env"]
    table.update(certificate_file="app.pem", certificate_thumbprint=credential.thumbprint)
    settings = parse({"directories": {"entra": table}}, {}, source=tmp_path / "dirsync.toml")

    snapshot = build_connector(settings, settings.directory("entra")).read(None)

    assert len(snapshot.users) > 0


def test_missing_secret_variable_is_a_permanent_error_naming_the_variable(
    sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENTRA_CLIENT_SECRET", raising=False)
    settings = parse({"directories": {"entra": sim.directory_table()}}, {})

    with pytest.raises(PermanentError, match="ENTRA_CLIENT_SECRET"):
        build_connector(settings, settings.directory("entra"))


def test_secrets_and_tokens_never_reach_logs_errors_or_reprs(
    sim: GraphSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credential, key_pem = _certificate(sim)
    secret = sim.tenant.client_secret
    connector = connect(sim)
    mark = connector.read(None).watermark
    sim.identity.revoke_tokens()  # forces a 401, a refresh and a retry, all logged
    connector.read(mark)
    cert_connector = connect(sim, credential=credential)
    cert_connector.read(None)
    tokens = list(sim.identity.tokens)

    texts = [caplog.text, repr(connector), repr(connector.tokens), repr(connector.client),
             repr(cert_connector), repr(credential), repr(Credential(secret=secret)),
             str(mark)]
    for text in texts:
        assert secret not in text
        assert key_pem.splitlines()[1] not in text
        assert all(token not in text for token in tokens)


def test_trust_is_system_cas_plus_ca_bundle_and_nothing_added_per_connection(
    sim: GraphSimulator,
) -> None:
    connector = connect(sim)
    adapter = connector._session.get_adapter(sim.graph_url)
    before = adapter.context.cert_store_stats()  # type: ignore[attr-defined]

    connector.read(None)

    assert adapter.context.cert_store_stats() == before  # type: ignore[attr-defined]
    assert adapter.context.verify_mode.name == "CERT_REQUIRED"  # type: ignore[attr-defined]
    assert adapter.context.check_hostname  # type: ignore[attr-defined]
