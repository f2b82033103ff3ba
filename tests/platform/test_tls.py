"""TLS and mutual TLS (CONTRACT §1, v1.1; `contactpoint.platform.tls`): a service serves TLS with
its certificate, refuses plaintext and clients that do not trust its CA, and with a client CA
refuses clients without a certificate signed by it; a broken or missing file stops the service at
start with a one-line reason. The whole suite over mutual TLS is in tests/gateway/test_tls_suite.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contactpoint.platform.settings import ConfigurationError
from contactpoint.platform.tls import load_tls
from tests.harness import free_ports, identity_settings, running_identity
from tests.tls_pki import Pki, answers, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_tls_refuses_plaintext_and_strangers(pki: Pki, tmp_path: Path) -> None:
    settings = identity_settings(f"sqlite:///{tmp_path}/identity.db", tmp_path, **pki.settings(mutual=False))
    async with running_identity(settings) as (_, target):
        assert await answers(target, pki.credentials(client=None))
        assert not await answers(target, None)
        # A client that trusts another CA does not accept this service's certificate.
        assert not await answers(target, pki.credentials(ca=pki.other_ca, client=None))


async def test_mutual_tls_lets_in_only_clients_signed_by_the_ca(pki: Pki, tmp_path: Path) -> None:
    settings = identity_settings(f"sqlite:///{tmp_path}/identity.db", tmp_path, **pki.settings())
    async with running_identity(settings) as (_, target):
        assert await answers(target, pki.credentials())
        for client in (None, "other"):
            assert not await answers(target, pki.credentials(client=client)), client
        assert not await answers(target, None)


def _problem(pki: Pki, tmp_path: Path, **files: object) -> str:
    settings = identity_settings(f"sqlite:///{tmp_path}/identity.db", tmp_path, **files)
    with pytest.raises(ConfigurationError) as err:
        load_tls(settings)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_broken_files_are_refused_with_their_reason(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    both = {"tls_cert_file": pki.service_cert, "tls_key_file": pki.service_key}
    assert "TLS_CERT_FILE: cannot read" in _problem(
        pki, tmp_path, **{**both, "tls_cert_file": tmp_path / "none"}
    )
    assert "go together" in _problem(pki, tmp_path, tls_cert_file=pki.service_cert)
    assert "go together" in _problem(pki, tmp_path, tls_key_file=pki.service_key)
    assert "holds no PEM certificate" in _problem(pki, tmp_path, **{**both, "tls_cert_file": garbage})
    assert "no unencrypted PEM private key" in _problem(pki, tmp_path, **{**both, "tls_key_file": garbage})
    # Someone else's key: the certificate and key do not belong together.
    assert "is not the key" in _problem(pki, tmp_path, **{**both, "tls_key_file": pki.client_key})
    assert "mutual TLS is TLS first" in _problem(pki, tmp_path, tls_client_ca_file=pki.ca)
    assert "TLS_CLIENT_CA_FILE" in _problem(pki, tmp_path, **both, tls_client_ca_file=garbage)
    assert "TLS_CA_FILE: cannot read" in _problem(pki, tmp_path, tls_ca_file=tmp_path / "none")
    # All good: nothing raised, credentials for both sides.
    material = load_tls(identity_settings(f"sqlite:///{tmp_path}/i.db", tmp_path, **pki.settings()))
    assert material.server_credentials() is not None and material.channel_credentials() is not None
    plain = load_tls(identity_settings(f"sqlite:///{tmp_path}/i.db", tmp_path))
    assert plain.server_credentials() is None and plain.channel_credentials() is None


def test_a_service_with_a_missing_certificate_does_not_start(pki: Pki, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONTACTPOINT_IDENTITY_DATABASE_URL": f"sqlite:///{tmp_path}/identity.db",
        "CONTACTPOINT_IDENTITY_LISTEN": f"127.0.0.1:{free_ports(1)}",
        "CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE": str(tmp_path / "identity.pem"),
        "CONTACTPOINT_IDENTITY_TLS_CERT_FILE": str(tmp_path / "missing.pem"),
        "CONTACTPOINT_IDENTITY_TLS_KEY_FILE": str(pki.service_key),
    }
    done = subprocess.run(
        [sys.executable, "-m", "contactpoint", "serve", "identity"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "CONTACTPOINT_IDENTITY_TLS_CERT_FILE: cannot read" in lines[0], lines
    # Nothing was created before the refusal: no database.
    assert not (tmp_path / "identity.db").exists()


def test_empty_tls_variables_are_unset(tmp_path: Path) -> None:
    # Found by probing: compose's `${VAR:-}` passes an empty value, which was the current folder
    # ("cannot read .: Is a directory") and stopped the service.
    from contactpoint.platform.settings import load_settings
    from gateway.settings import GatewaySettings

    names = ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE", "TLS_CA_FILE")
    env = {
        "CONTACTPOINT_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
        "CONTACTPOINT_GATEWAY_IDENTITY_TARGET": "127.0.0.1:1",
        "CONTACTPOINT_GATEWAY_RECORDS_TARGET": "127.0.0.1:2",
        "CONTACTPOINT_GATEWAY_AUDIT_TARGET": "127.0.0.1:3",
        **{
            f"CONTACTPOINT_GATEWAY_{name}": value
            for name, value in zip(names, ("", " ", "", ""), strict=True)
        },
    }
    settings = load_settings(GatewaySettings, env)
    assert (
        settings.tls_cert_file,
        settings.tls_key_file,
        settings.tls_client_ca_file,
        settings.tls_ca_file,
    ) == (
        None,
        None,
        None,
        None,
    )
    material = load_tls(settings)
    assert material.server_credentials() is None and material.channel_credentials() is None
