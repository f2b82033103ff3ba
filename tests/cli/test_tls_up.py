"""`contactpoint up` with TLS configured through the environment (CONTRACT §1, v1.1): every
service serves TLS, identity, records, audit and the witness ask for client certificates, and `up`
checks each is SERVING over TLS (the witness on its local socket too); plaintext is refused
everywhere, and only the gateway answers a client without a certificate. A read over TLS end to
end is tests/gateway/test_tls_suite.py."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from contactpoint.cli.embedded import SERVICES, layered_env
from contactpoint.cli.health import serving_at
from contactpoint.cli.main import app
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from tests.harness import free_ports
from tests.suite import Suite
from tests.tls_pki import make_pki

CONTRACT_SERVICES = ("gateway", "identity", "records", "audit")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract socket"),
]


@pytest.mark.parametrize("configured", [SERVICES, CONTRACT_SERVICES], ids=["witness-too", "four-services"])
def test_up_over_mutual_tls(tmp_path: Path, configured: tuple[str, ...]) -> None:
    # With TLS set for the four services the contract names only, the embedded witness follows
    # audit's (found by review: `up` refused to start, the witness serving plaintext).
    pki = make_pki(tmp_path / "pki")
    env: dict[str, str] = {}
    for service in configured:
        prefix = f"CONTACTPOINT_{service.upper()}_TLS_"
        env |= {prefix + "CERT_FILE": str(pki.service_cert), prefix + "KEY_FILE": str(pki.service_key)}
        env[prefix + "CA_FILE"] = str(pki.ca)
        if service != "gateway":
            env[prefix + "CLIENT_CA_FILE"] = str(pki.ca)
    suite = Suite(tmp_path / "data", env, credentials=pki.credentials()).start()
    try:
        for offset in range(4):
            assert not serving_at(suite.target(offset)), offset  # plaintext
        # Partners need no certificate at the gateway; identity, records and audit refuse them.
        for offset, reachable in ((0, True), (1, False), (2, False), (3, False)):
            assert serving_at(suite.target(offset), pki.credentials(client=None)) is reachable, offset
        # `contactpoint health` (docker-compose's healthcheck) with the service's own settings.
        runner = CliRunner()
        identity_env = {k: v for k, v in env.items() if k.startswith("CONTACTPOINT_IDENTITY_")}
        listen = {"CONTACTPOINT_IDENTITY_LISTEN": suite.target(1)}
        assert runner.invoke(app, ["health", "identity"], env={**identity_env, **listen}).exit_code == 0
        plain = dict.fromkeys(identity_env)  # unset: a plaintext check is refused
        assert runner.invoke(app, ["health", "identity"], env={**plain, **listen}).exit_code == 1
        # A key that is not the certificate's: said once, as the service would say it.
        wrong_key = {**identity_env, **listen, "CONTACTPOINT_IDENTITY_TLS_KEY_FILE": str(pki.client_key)}
        refused = runner.invoke(app, ["health", "identity"], env=wrong_key)
        assert refused.exit_code == 2 and refused.output.splitlines() == [
            f"contactpoint: CONTACTPOINT_IDENTITY_TLS_KEY_FILE: {pki.client_key} is not the key of the "
            "certificate in the cert file"
        ]
    finally:
        assert suite.stop() == 0


def test_up_over_tls_with_certificates_naming_localhost_alone(tmp_path: Path) -> None:
    # Found by review: with certificates for "localhost" only (as many are made), every call to
    # 127.0.0.1 failed the name check and `up` gave up after a minute. It calls them by the name
    # their certificates give, and a read works end to end.
    pki = make_pki(tmp_path / "pki", names=("localhost",))
    env: dict[str, str] = {}
    for service in CONTRACT_SERVICES:
        prefix = f"CONTACTPOINT_{service.upper()}_TLS_"
        env |= {prefix + "CERT_FILE": str(pki.service_cert), prefix + "KEY_FILE": str(pki.service_key)}
        env[prefix + "CA_FILE"] = str(pki.ca)
    suite = Suite(tmp_path / "data", env, credentials=pki.credentials(), host="localhost").start()
    try:
        council = suite.create_service_account("council-tls")
        person = suite.create_user("pat.tls", "practitioner")
        with grpc.secure_channel(suite.target(1), pki.credentials()) as ch:
            token = identity_grpc.IdentityServiceStub(ch).IssueServiceToken(
                identity_pb.IssueServiceTokenRequest(client_id=council[0], client_secret=council[1])
            )
        assert token.access_token
        assert suite.login(person)  # the gateway calls identity and audit by name
    finally:
        assert suite.stop() == 0


def test_up_refuses_tls_on_one_side_of_a_call(tmp_path: Path) -> None:
    # Found by probing: TLS on records alone was reported up, and every read then failed
    # UNAVAILABLE; on audit alone, every login.
    from contactpoint.cli.embedded import layered_env
    from contactpoint.cli.tls_sides import tls_mismatches

    pki = make_pki(tmp_path / "pki")
    # Free ports below the ephemeral range (a fixed 60050 was taken once by another test's
    # outgoing connection, and `up` refused it before it checked TLS).
    base = free_ports(10)
    plain = layered_env({}, tmp_path / "data", base)
    assert tls_mismatches(plain) == []
    records_only = {
        **plain,
        "CONTACTPOINT_RECORDS_TLS_CERT_FILE": str(pki.service_cert),
        "CONTACTPOINT_RECORDS_TLS_KEY_FILE": str(pki.service_key),
    }
    assert tls_mismatches(records_only) == [
        "records serves TLS but gateway would call it in plaintext: set CONTACTPOINT_GATEWAY_TLS_CA_FILE "
        "too (or turn TLS on for every service)"
    ]
    result = CliRunner().invoke(
        app, ["up", "--data-dir", str(tmp_path / "data"), "--base-port", str(base)], env=records_only
    )
    assert (
        result.exit_code == 2 and "records serves TLS but gateway would call it in plaintext" in result.output
    )


def test_up_refuses_a_key_that_is_not_its_certificates_before_starting_anything(tmp_path: Path) -> None:
    # Found by probing: with audit's key not its certificate's, `up` started the suite and tried
    # audit's handshake with that key until audit had exited, printing 186 lines of gRPC's errors
    # around the one line that said why. Now `up` checks every service's files first, as the
    # service would, and says why once (audit's files, which the witness follows, named once).
    pki = make_pki(tmp_path / "pki")
    env: dict[str, str] = {}
    for service in CONTRACT_SERVICES:
        prefix = f"CONTACTPOINT_{service.upper()}_TLS_"
        key = pki.client_key if service == "audit" else pki.service_key
        env |= {prefix + "CERT_FILE": str(pki.service_cert), prefix + "KEY_FILE": str(key)}
        env[prefix + "CA_FILE"] = str(pki.ca)
    data = tmp_path / "data"
    arguments = ["up", "--data-dir", str(data), "--base-port", str(free_ports(10))]
    result = CliRunner().invoke(app, arguments, env=env)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"contactpoint up: CONTACTPOINT_AUDIT_TLS_KEY_FILE: {pki.client_key} is not the key of the "
        "certificate in the cert file"
    ]
    assert not data.exists()  # nothing started, nothing made


def test_the_embedded_witness_follows_audits_tls_unless_given_its_own(tmp_path: Path) -> None:
    audit_tls = {
        "CONTACTPOINT_AUDIT_TLS_CERT_FILE": "/pki/a.pem",
        "CONTACTPOINT_AUDIT_TLS_KEY_FILE": "/pki/a.key",
        "CONTACTPOINT_AUDIT_TLS_CA_FILE": "/pki/ca.pem",
        "CONTACTPOINT_AUDIT_TLS_CLIENT_CA_FILE": "/pki/ca.pem",
    }
    followed = layered_env(audit_tls, tmp_path, 40000)
    for name in ("CERT_FILE", "KEY_FILE", "CA_FILE", "CLIENT_CA_FILE"):
        assert followed[f"CONTACTPOINT_WITNESS_TLS_{name}"] == audit_tls[f"CONTACTPOINT_AUDIT_TLS_{name}"]
    assert followed["CONTACTPOINT_WITNESS_LISTEN"] == "127.0.0.1:40004"
    assert followed["CONTACTPOINT_AUDIT_WITNESS_TARGET"] == "127.0.0.1:40004"
    # Its own settings win, and without TLS on audit nothing changes.
    own = layered_env({**audit_tls, "CONTACTPOINT_WITNESS_TLS_CERT_FILE": "/pki/w.pem"}, tmp_path, 40000)
    assert own["CONTACTPOINT_WITNESS_TLS_CERT_FILE"] == "/pki/w.pem"
    assert "CONTACTPOINT_WITNESS_TLS_KEY_FILE" not in own
    assert own["CONTACTPOINT_WITNESS_LISTEN"].startswith("unix-abstract:")
    plain = layered_env({}, tmp_path, 40000)
    assert not any(key.startswith("CONTACTPOINT_WITNESS_TLS_") for key in plain)
    assert plain["CONTACTPOINT_WITNESS_LISTEN"].startswith("unix-abstract:")
