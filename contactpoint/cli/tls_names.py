"""The name `up` calls each service by over TLS: the loopback address it listens on, unless its
certificate names "localhost" and not that address (found by review: a certificate for localhost
alone, as many are made, failed every call `up` and the services made to 127.0.0.1, and `up`
gave up after a minute). Then each call to it is made to `localhost`, which the certificate
names, at the same port."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from contactpoint.cli.embedded import SERVICES

LOOPBACK = "127.0.0.1"
WILDCARDS = ("", "0.0.0.0", "::", "[::]")  # noqa: S104 — compared, not bound


@lru_cache(maxsize=16)
def _names(cert_file: str) -> tuple[frozenset[str], frozenset[str]]:
    """The DNS names and IP addresses a PEM certificate's subject alternative names hold (none
    when it cannot be read: the service itself then refuses to start and says why)."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return frozenset(), frozenset()
    dns = frozenset(name.lower() for name in san.get_values_for_type(x509.DNSName))
    ips = frozenset(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def dial_target(env: Mapping[str, str], service: str) -> str:
    """Where to call `service` at: its listen address, or `localhost` at its port when it
    listens on the loopback address and its certificate names localhost but not that address."""
    listen = env[f"CONTACTPOINT_{service.upper()}_LISTEN"]
    host, _, port = listen.rpartition(":")
    if host in WILDCARDS:
        # Listening on every interface (allowed with TLS): called on this machine's loopback
        # (found by probing: `up` dialled 0.0.0.0, and the certificate did not name it).
        host, listen = LOOPBACK, f"{LOOPBACK}:{port}"
    cert = env.get(f"CONTACTPOINT_{service.upper()}_TLS_CERT_FILE")
    if not cert or host != LOOPBACK:
        return listen
    dns, ips = _names(cert)
    if "localhost" in dns and LOOPBACK not in ips:
        return f"localhost:{port}"
    return listen


def call_by_name(env: dict[str, str], environ: Mapping[str, str]) -> None:
    """Every peer target `up` set itself (not one the environment gives) to the service's
    `dial_target`."""
    for callee in SERVICES:
        listen = env.get(f"CONTACTPOINT_{callee.upper()}_LISTEN", "")
        if listen.startswith("unix"):
            continue  # a local socket is already checked for "localhost" (`tls_name_options`)
        target = dial_target(env, callee)
        if target == listen:
            continue
        for caller in SERVICES:
            key = f"CONTACTPOINT_{caller.upper()}_{callee.upper()}_TARGET"
            if env.get(key) == listen and key not in environ:
                env[key] = target
