"""A local certificate authority for running the suite with TLS where no real one is at hand
(docker-compose on one host, tests): a CA, and certificates it signs for each service (good as
server and as client, for mutual TLS) and for clients (a council system, an operator's tools).

`contactpoint tls make-local-ca DIR` writes them; a national deployment uses certificates from
its own PKI instead (README, "Operating it").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contactpoint.platform.db import create_private_file

CA_DAYS = 3650
LEAF_DAYS = 397  # what public CAs may issue; renew yearly


@dataclass(frozen=True)
class Authority:
    """A CA: its key and certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str, *, days: int = CA_DAYS) -> Authority:
        """A new self-signed CA named `name`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(self, name: str, hosts: tuple[str, ...], *, days: int = LEAF_DAYS) -> tuple[bytes, bytes]:
        """A certificate for `name` valid for `hosts` (DNS names or IP addresses), for both server
        and client use, signed by this CA: (certificate PEM, private key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def cert_pem(self) -> bytes:
        """The CA's certificate, PEM: what every party trusts."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (0600)."""
    create_private_file(path)
    os.chmod(path, 0o600)
    path.write_bytes(data)


def make_local_ca(
    folder: Path,
    services: dict[str, tuple[str, ...]],
    clients: tuple[str, ...] = (),
    *,
    keep_ca_key: bool = True,
) -> None:
    """Write a new CA (`ca.pem`, and with `keep_ca_key` its key `ca.key`, to be kept apart) and,
    for each service and client, `<name>.pem` and `<name>.key` into `folder`. `services` maps each
    name to the hosts it is reached by. Without the CA's key nothing more can be issued: a new CA
    replaces it."""
    folder.mkdir(parents=True, exist_ok=True)
    authority = Authority.create("ContactPoint local CA")
    (folder / "ca.pem").write_bytes(authority.cert_pem())
    if keep_ca_key:
        write_private(folder / "ca.key", _key_pem(authority.key))
    for name, hosts in {**services, **dict.fromkeys(clients, ())}.items():
        cert, key = authority.issue(name, hosts)
        (folder / f"{name}.pem").write_bytes(cert)
        write_private(folder / f"{name}.key", key)
