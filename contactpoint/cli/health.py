"""Whether a service of the suite is up: its port taken, its health check SERVING (over TLS when
it serves TLS), as `contactpoint up` and `contactpoint tls check` ask."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactpoint.platform.peers import tls_name_options
from contactpoint.platform.settings import ConfigurationError
from contactpoint.platform.tls import TLS_HINT, TlsMaterial, handshake_failed, tls_from_env


def port_in_use(host: str, port: int) -> bool:
    """Whether a server could not bind host:port, probed the way gRPC binds (SO_REUSEADDR): a
    port whose last connections linger in TIME_WAIT (as after a Ctrl-C) is free, one that
    something listens on is not."""
    host = host.strip("[]")  # "[::1]" as a listen address gives: probed over IPv6 (found by probing)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def serving(host: str, port: int) -> bool:
    """Whether the server at host:port answers its health check with SERVING."""
    return serving_at(f"{host}:{port}")


def check_credentials(env: Mapping[str, str], service: str) -> grpc.ChannelCredentials | None:
    """How `up` reaches `service` to check it is SERVING: plaintext, or, when the service serves
    TLS (its TLS_CERT_FILE is set), TLS trusting its TLS_CA_FILE (else its TLS_CLIENT_CA_FILE)
    and presenting the service's own certificate (what mutual TLS asks). None also when a file
    cannot be read or does not belong with the others (a key that is not the certificate's: each
    handshake tried with it prints gRPC's errors): the service itself then refuses to start and
    says why, as `up` does before it starts anything."""
    try:
        files = tls_from_env(env, service)
    except ConfigurationError:
        return None
    if files.cert is None or files.key is None:
        return None
    root = files.ca or files.client_ca or files.cert
    return TlsMaterial(cert=files.cert, key=files.key, ca=root).channel_credentials()


def serving_at(target: str, credentials: grpc.ChannelCredentials | None = None) -> bool:
    """Whether the server at `target` (host:port, or a unix socket) answers its health check
    with SERVING (over TLS with `credentials`)."""
    return health_problem(target, credentials) is None


# Words of a failed TLS handshake in gRPC's error text (OpenSSL's and gRPC's own).
def health_problem(target: str, credentials: grpc.ChannelCredentials | None = None) -> str | None:
    """None when the server at `target` answers its health check SERVING; otherwise a short
    reason, naming TLS when the handshake failed (a CA that did not sign the other side's
    certificate, TLS on one side only)."""
    try:
        channel = (
            grpc.secure_channel(target, credentials, options=tls_name_options(target))
            if credentials
            else grpc.insecure_channel(target)
        )
        with channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        text = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
        if handshake_failed(text):
            return TLS_HINT
        return f"its health check answered {code.name if code else 'nothing'}"
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return None
    return (
        f"it reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)} "
        "(a service is NOT_SERVING until it has reached identity, and while its database does "
        "not answer: see its log)"
    )
