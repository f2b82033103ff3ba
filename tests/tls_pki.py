"""A throwaway PKI for TLS tests (`contactpoint.platform.local_ca`): a CA, one certificate for the suite's
services (for 127.0.0.1 and localhost, good as server and as client), a client certificate, and a
second, unrelated CA with a client certificate of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactpoint.platform.local_ca import Authority


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


def make_pki(folder: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Pki:
    """Every file of a `Pki`, written under `folder`; the certificates name `names`."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(*(folder / n for n in ("ca.pem", "svc.pem", "svc.key", "cli.pem", "cli.key", "other-ca.pem",
                                      "other-cli.pem", "other-cli.key")))  # fmt: skip
    ca, other = Authority.create("ContactPoint test CA"), Authority.create("Someone else's CA")
    for authority, path in ((ca, pki.ca), (other, pki.other_ca)):
        path.write_bytes(authority.cert_pem())
    for authority, name, cert, key in (
        (ca, "contactpoint-service", pki.service_cert, pki.service_key),
        (ca, "council-system", pki.client_cert, pki.client_key),
        (other, "intruder", pki.other_client_cert, pki.other_client_key),
    ):
        cert_pem, key_pem = authority.issue(name, names)
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
    return pki


async def answers(target: str, credentials: grpc.ChannelCredentials | None) -> bool:
    """Whether the server at `target` answers its health check SERVING, over TLS with
    `credentials`, else plaintext (the async twin of `contactpoint.cli.health.serving_at`, for
    servers on the test's own event loop)."""
    channel = (
        grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING
