"""`contactpoint tls make-local-ca` writes a CA and certificates that the services accept (the
checks of `load_tls`), keys private. `contactpoint health` over mutual TLS: tests/cli/test_tls_up.py."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from contactpoint.cli.main import app
from contactpoint.platform.tls import load_tls
from tests.harness import identity_settings


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
