"""TLS and mutual TLS for every service (CONTRACT §1, v1.1).

- `CONTACTPOINT_<SERVICE>_TLS_CERT_FILE` and `…_TLS_KEY_FILE` (PEM): the service serves TLS with
  this certificate (chain) and key;
- `…_TLS_CLIENT_CA_FILE`: it also requires every client to present a certificate signed by this
  CA (mutual TLS), so that only ContactPoint's own services reach records, identity and audit;
- `…_TLS_CA_FILE`: the CA it trusts when it calls its peers; it then presents its own certificate
  (the cert and key above) to them.

Without them a service speaks plaintext. Every file is read and checked when the service starts
(the certificate and key parse and belong together, the CAs parse): a broken or missing one stops
it with a one-line reason (`ConfigurationError`) instead of failing each handshake later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from contactpoint.platform.settings import ConfigurationError, ServiceSettings, prefix_of


@dataclass(frozen=True)
class TlsMaterial:
    """A service's TLS files, read and checked: its own certificate chain and key, the CA its
    clients must be signed by (mutual TLS), the CA it trusts for its peers."""

    cert: bytes | None = None
    key: bytes | None = None
    client_ca: bytes | None = None
    ca: bytes | None = None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """What the service serves with: None for plaintext."""
        if self.cert is None or self.key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """What the service calls its peers with: None for plaintext. With a CA to trust, it also
        presents its own certificate, when it has one."""
        if self.ca is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None


def _certificates(data: bytes, path: Path, name: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigurationError(f"{name}: {path} holds no PEM certificate")
    return certs


def _check_key(key_pem: bytes, cert: x509.Certificate, key_path: Path, name: str) -> None:
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{name}: {key_path} holds no unencrypted PEM private key ({exc})") from None
    mine = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    theirs = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if mine != theirs:
        raise ConfigurationError(f"{name}: {key_path} is not the key of the certificate in the cert file")


def load_tls(settings: ServiceSettings) -> TlsMaterial:
    """The service's TLS files, read and checked (see the module's doc); ConfigurationError with a
    one-line reason when one is missing, unreadable, broken or does not belong with the others."""
    return read_tls(
        prefix_of(type(settings)),
        cert_path=settings.tls_cert_file,
        key_path=settings.tls_key_file,
        client_ca_path=settings.tls_client_ca_file,
        ca_path=settings.tls_ca_file,
    )


def tls_from_env(env: Mapping[str, str], service: str) -> TlsMaterial:
    """`service`'s TLS files as its `CONTACTPOINT_<SERVICE>_TLS_*` variables in `env` name them,
    read and checked as the service itself will (`read_tls`): what `contactpoint up` checks for
    every service before it starts any (a key that is not the certificate's stopped only that
    service, after `up` had tried its handshake with it many times, each try printing gRPC's
    errors)."""
    prefix = f"CONTACTPOINT_{service.upper()}_"

    def path(name: str) -> Path | None:
        value = env.get(f"{prefix}TLS_{name}_FILE", "")
        return Path(value) if value else None

    return read_tls(
        prefix,
        cert_path=path("CERT"),
        key_path=path("KEY"),
        client_ca_path=path("CLIENT_CA"),
        ca_path=path("CA"),
    )


def read_tls(
    prefix: str,
    *,
    cert_path: Path | None,
    key_path: Path | None,
    client_ca_path: Path | None,
    ca_path: Path | None,
) -> TlsMaterial:
    """TLS files read and checked; `prefix` names their variables in the reasons."""
    cert_name, key_name = f"{prefix}TLS_CERT_FILE", f"{prefix}TLS_KEY_FILE"
    if (cert_path is None) != (key_path is None):
        raise ConfigurationError(f"{cert_name} and {key_name} go together: set both or neither")
    cert = key = client_ca = ca = None
    if cert_path is not None and key_path is not None:
        cert = _read(cert_path, cert_name)
        leaf = _certificates(cert, cert_path, cert_name)[0]
        key = _read(key_path, key_name)
        _check_key(key, leaf, key_path, key_name)
    if client_ca_path is not None:
        name = f"{prefix}TLS_CLIENT_CA_FILE"
        if cert is None:
            raise ConfigurationError(f"{name} needs {cert_name} and {key_name}: mutual TLS is TLS first")
        client_ca = _read(client_ca_path, name)
        _certificates(client_ca, client_ca_path, name)
    if ca_path is not None:
        name = f"{prefix}TLS_CA_FILE"
        ca = _read(ca_path, name)
        _certificates(ca, ca_path, name)
    return TlsMaterial(cert, key, client_ca, ca)


# Words gRPC's core puts in a call's details when the TLS handshake failed (a CA that did not sign
# the other side's certificate, TLS on one side only).
_TLS_WORDS = ("ssl", "handshake", "certificate", "wrong_version_number", "tsi")

TLS_HINT = (
    "its TLS handshake failed (check that both sides use TLS, and the CA, certificate and key variables)"
)


def handshake_failed(details: str) -> bool:
    """Whether a failed call's details say its TLS handshake failed."""
    text = details.lower()
    return any(word in text for word in _TLS_WORDS)
