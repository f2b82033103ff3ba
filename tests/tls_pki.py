"""A throwaway PKI for TLS tests, made with `cryptography`: a CA, one certificate for the suite's
services (for 127.0.0.1 and localhost, good as server and as client), a client certificate, and a
second, unrelated CA with a client certificate of its own."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    service_cert: Path
    service_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path

    def settings(self, *, mutual: bool = True) -> dict[str, object]:
        """A service's TLS settings: serve with the service certificate, trust the CA for peers,
        and (`mutual`) require clients signed by it."""
        values: dict[str, object] = {
            "tls_cert_file": self.service_cert,
            "tls_key_file": self.service_key,
            "tls_ca_file": self.ca,
        }
        if mutual:
            values["tls_client_ca_file"] = self.ca
        return values

    def credentials(
        self, *, ca: Path | None = None, client: str | None = "client"
    ) -> grpc.ChannelCredentials:
        """A client's credentials: trusting `ca` (default: the suite's CA), presenting the client
        certificate ("client"), the other CA's ("other") or none (None)."""
        key = cert = None
        if client == "client":
            key, cert = self.client_key.read_bytes(), self.client_cert.read_bytes()
        elif client == "other":
            key, cert = self.other_client_key.read_bytes(), self.other_client_cert.read_bytes()
        return grpc.ssl_channel_credentials(
            root_certificates=(ca or self.ca).read_bytes(), private_key=key, certificate_chain=cert
        )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _ca(common: str, path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _leaf(
    common: str, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], cert_path: Path, key_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca[0], hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)


def make_pki(folder: Path) -> Pki:
    """Every file of a `Pki`, written under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(*(folder / n for n in ("ca.pem", "svc.pem", "svc.key", "cli.pem", "cli.key", "other-ca.pem",
                                      "other-cli.pem", "other-cli.key")))  # fmt: skip
    ca = _ca("ContactPoint test CA", pki.ca)
    _leaf("contactpoint-service", ca, pki.service_cert, pki.service_key)
    _leaf("council-system", ca, pki.client_cert, pki.client_key)
    other = _ca("Someone else's CA", pki.other_ca)
    _leaf("intruder", other, pki.other_client_cert, pki.other_client_key)
    return pki
