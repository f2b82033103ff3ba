"""`contactpoint tls make-local-ca` writes a CA and certificates that the services accept (the
checks of `load_tls`), keys private. `contactpoint health` over mutual TLS: tests/cli/test_tls_up.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contactpoint.cli.main import app
from contactpoint.platform.tls import load_tls
from tests.harness import free_ports, identity_settings


def test_make_local_ca_writes_certificates_the_services_accept(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    result = CliRunner().invoke(app, ["tls", "make-local-ca", str(folder), "--host", "cp.example"])
    assert result.exit_code == 0, result.output
    for name in ("identity", "records", "audit", "witness", "gateway", "council-system", "operator"):
        assert stat.S_IMODE((folder / f"{name}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    settings = identity_settings(
        f"sqlite:///{tmp_path}/i.db",
        tmp_path,
        tls_cert_file=folder / "identity.pem",
        tls_key_file=folder / "identity.key",
        tls_client_ca_file=folder / "ca.pem",
        tls_ca_file=folder / "ca.pem",
    )
    material = load_tls(settings)
    assert material.server_credentials() is not None
    # A second run never overwrites a CA.
    again = CliRunner().invoke(app, ["tls", "make-local-ca", str(folder)])
    assert again.exit_code == 2


def test_health_names_what_it_could_not_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing: with no LISTEN set it asked 127.0.0.1:50051 (identity's port under `up`)
    whatever the service, and a failed check printed nothing."""
    for name in list(os.environ):
        if name.startswith("CONTACTPOINT_"):
            monkeypatch.delenv(name)
    runner = CliRunner()
    unset = runner.invoke(app, ["health", "gateway"])
    assert unset.exit_code == 2
    assert "CONTACTPOINT_GATEWAY_LISTEN is not set" in unset.output
    port = free_ports(1)
    down = runner.invoke(app, ["health", "gateway"], env={"CONTACTPOINT_GATEWAY_LISTEN": f"127.0.0.1:{port}"})
    assert down.exit_code == 1
    assert f"gateway at 127.0.0.1:{port} is not SERVING" in down.output
