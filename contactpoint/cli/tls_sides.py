"""TLS on both sides of every call the suite makes, or on neither: checked before `up` starts
anything (found by probing: TLS on records or audit alone was reported up, and every read or
login then failed UNAVAILABLE)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from contactpoint.cli.embedded import SERVICES
from contactpoint.platform.settings import ConfigurationError
from contactpoint.platform.tls import tls_from_env


def tls_mismatches(env: Mapping[str, str]) -> list[str]:
    """One line for each service that calls a peer (its `<PEER>_TARGET` is set) with TLS when the
    peer serves plaintext, or in plaintext when the peer serves TLS. A caller uses TLS towards
    every peer when its TLS_CA_FILE is set; a service serves TLS when its TLS_CERT_FILE is."""
    problems = []
    for caller in SERVICES:
        secure = bool(env.get(f"CONTACTPOINT_{caller.upper()}_TLS_CA_FILE"))
        for callee in SERVICES:
            if callee == caller or not env.get(f"CONTACTPOINT_{caller.upper()}_{callee.upper()}_TARGET"):
                continue
            serves = bool(env.get(f"CONTACTPOINT_{callee.upper()}_TLS_CERT_FILE"))
            if serves and not secure:
                problems.append(
                    f"{callee} serves TLS but {caller} would call it in plaintext: set "
                    f"CONTACTPOINT_{caller.upper()}_TLS_CA_FILE too (or turn TLS on for every service)"
                )
            elif secure and not serves:
                problems.append(
                    f"{caller} calls its peers over TLS but {callee} serves plaintext: set "
                    f"CONTACTPOINT_{callee.upper()}_TLS_CERT_FILE and _KEY_FILE too (or turn TLS off)"
                )
    return problems


def tls_file_problems(env: Mapping[str, str]) -> list[str]:
    """One line for each service whose TLS files the service itself would refuse (missing,
    unreadable, broken, or a key that is not its certificate's), checked before anything starts:
    `up` used to start the suite and try each handshake with such a key until that service had
    exited, every try printing gRPC's errors around the one line that said why."""
    problems, checked = [], set()
    for service in SERVICES:
        prefix = f"CONTACTPOINT_{service.upper()}_TLS_"
        names = ("CERT_FILE", "KEY_FILE", "CLIENT_CA_FILE", "CA_FILE")
        files = tuple(env.get(prefix + name) for name in names)
        if files in checked:
            continue  # the same files (the witness following audit's): said once, by the first's names
        checked.add(files)
        try:
            tls_from_env(env, service)
        except ConfigurationError as exc:
            problems.append(str(exc))
    return problems


def _loopback(host: str) -> bool:
    # An address literal that is a loopback one, or "localhost": a name is not resolved here, and
    # any other name ("127.example.org" too) may stand for an address beyond this machine.
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_beyond_loopback(env: Mapping[str, str]) -> list[str]:
    """One line for each address `up` would listen on in plaintext beyond this machine (CONTRACT
    §1: without TLS, `contactpoint up` listens on 127.0.0.1 only). An explicit
    `CONTACTPOINT_<SERVICE>_LISTEN` (or `…_METRICS_LISTEN`) still chooses the port, and with TLS the
    host; without TLS a host that is not a loopback one is refused before anything starts (found by
    probing: `CONTACTPOINT_GATEWAY_LISTEN=0.0.0.0:…` served the gateway in plaintext on every
    interface). `contactpoint serve` is how an operator runs a service elsewhere, behind TLS or a
    network of its own."""
    problems = []
    for service in SERVICES:
        if env.get(f"CONTACTPOINT_{service.upper()}_TLS_CERT_FILE"):
            continue
        for key in (
            f"CONTACTPOINT_{service.upper()}_LISTEN",
            f"CONTACTPOINT_{service.upper()}_METRICS_LISTEN",
        ):
            address = env.get(key, "")
            if not address or address.startswith(("unix:", "unix-abstract:")):
                continue
            host = address.rpartition(":")[0]
            if not _loopback(host):  # no host at all: every interface
                problems.append(
                    f"{key}={address}: without TLS `contactpoint up` listens on 127.0.0.1 only; set "
                    f"CONTACTPOINT_{service.upper()}_TLS_CERT_FILE and _KEY_FILE, or use `contactpoint serve`"
                )
    return problems
