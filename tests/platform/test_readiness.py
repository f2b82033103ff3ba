"""A service says it serves only when it can: NOT_SERVING until it has reached identity (before,
a gateway that could not reach identity at all — TLS on one side only — reported SERVING and
`contactpoint up` said the suite was up while every call failed); and `contactpoint up` says why
a service is not serving, naming TLS when the handshake failed."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent import futures
from pathlib import Path

import grpc
import psycopg
import pytest
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from contactpoint.cli.health import health_problem
from contactpoint.platform import migrate, readiness, service
from contactpoint.platform.logging import configure_logging
from services.audit.main import MIGRATIONS as AUDIT_MIGRATIONS
from services.audit.main import build as build_audit
from services.audit.settings import AuditSettings
from services.identity.main import MIGRATIONS as IDENTITY_MIGRATIONS
from tests.conftest import POSTGRES_ADMIN_URL, DatabaseFactory
from tests.harness import (
    eventually,
    free_port,
    identity_settings,
    platform_account,
    running_identity,
    running_service,
)
from tests.tls_pki import Pki, make_pki


async def _status(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return int(reply.status)


@pytest.mark.asyncio
async def test_not_serving_until_identity_is_reached(tmp_path: Path) -> None:
    identity_url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate.upgrade("identity", IDENTITY_MIGRATIONS, identity_url)
    identity_port = free_port()
    settings = AuditSettings.model_validate(
        {
            "database_url": f"sqlite:///{tmp_path / 'audit.db'}",
            "listen": "127.0.0.1:0",
            "identity_target": f"127.0.0.1:{identity_port}",  # nothing there yet
            "signing_key_file": tmp_path / "keys" / "audit.pem",
            **platform_account(identity_url, "audit"),
        }
    )
    configure_logging(level="info")
    with structlog.testing.capture_logs() as lines:
        async with running_service("audit", AUDIT_MIGRATIONS, build_audit, settings) as (_, audit):
            port = int(audit.rsplit(":", 1)[1])

            def logged(event: str) -> bool:
                return any(line["event"] == event and line.get("port") == port for line in lines)

            assert await _status(audit) == health_pb2.HealthCheckResponse.NOT_SERVING
            # Its log says so too, and not "serving" (an operator reading it was told it served).
            assert logged("service.not_ready") and not logged("service.serving"), lines
            problem = await asyncio.to_thread(health_problem, audit)  # what `up` would say
            assert problem is not None and "NOT_SERVING" in problem, problem
            own = identity_settings(identity_url, tmp_path, listen=f"127.0.0.1:{identity_port}")
            async with running_identity(own):

                async def serving() -> bool:
                    return await _status(audit) == health_pb2.HealthCheckResponse.SERVING

                await eventually(serving, within=5.0)
            assert logged("service.serving")
            # Once it has verified tokens, a passing outage of identity does not take it out of
            # service (its calls fail closed meanwhile; the health check is about being able to).
            assert await _status(audit) == health_pb2.HealthCheckResponse.SERVING


def _health_server(credentials: grpc.ServerCredentials | None) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = (
        server.add_secure_port("127.0.0.1:0", credentials)
        if credentials
        else server.add_insecure_port("127.0.0.1:0")
    )
    server.start()
    return server, f"127.0.0.1:{port}"


def _server_credentials(pki: Pki) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(pki.service_key.read_bytes(), pki.service_cert.read_bytes())])


def test_a_failed_tls_handshake_is_named(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    plain, plain_target = _health_server(None)
    secure, secure_target = _health_server(_server_credentials(pki))
    try:
        assert health_problem(plain_target) is None
        assert health_problem(secure_target, pki.credentials()) is None
        # TLS asked of a plaintext server, and a server whose certificate another CA signed.
        for target, credentials in (
            (plain_target, pki.credentials()),
            (secure_target, pki.credentials(ca=pki.other_ca)),
        ):
            problem = health_problem(target, credentials)
            assert problem is not None and "TLS" in problem, problem
        # Nothing listening is not a TLS problem.
        nowhere = health_problem(f"127.0.0.1:{free_port()}")
        assert nowhere is not None and "TLS" not in nowhere, nowhere
    finally:
        plain.stop(0)
        secure.stop(0)


def _set_connections(database_url: str, allowed: bool) -> None:
    # Make a PostgreSQL database refuse new connections and end its open ones (as a failover or
    # a restart would), or take connections again.
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.mark.asyncio
async def test_not_serving_while_its_database_is_down(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by an operations probe: a service whose database was down went on answering SERVING,
    # so load balancers and `contactpoint health` sent callers to a replica that failed every call.
    monkeypatch.setattr(service, "CHECK_SECONDS", 0.1)
    url = databases.new("identity")
    path = Path(url.removeprefix("sqlite:///"))
    configure_logging(level="info")
    with structlog.testing.capture_logs() as lines:
        async with running_identity(identity_settings(url, tmp_path)) as (_, target):

            async def status_is(wanted: int) -> bool:
                return await _status(target) == wanted

            assert await status_is(health_pb2.HealthCheckResponse.SERVING)
            moved = path.with_suffix(".moved")
            if databases.backend == "sqlite":  # its file moved away under it
                await asyncio.to_thread(path.rename, moved)
            else:
                await asyncio.to_thread(_set_connections, url, False)
            try:
                await eventually(lambda: status_is(health_pb2.HealthCheckResponse.NOT_SERVING), within=10.0)
            finally:
                if databases.backend == "sqlite":
                    await asyncio.to_thread(moved.rename, path)
                else:
                    await asyncio.to_thread(_set_connections, url, True)
            await eventually(lambda: status_is(health_pb2.HealthCheckResponse.SERVING), within=10.0)
    down = [line for line in lines if line["event"] == "service.not_serving"]
    assert down and down[0]["log_level"] == "warning" and down[0]["reason"], lines
    assert [line["event"] for line in lines].count("service.serving") == 2, lines


@pytest.mark.asyncio
async def test_a_busy_service_whose_database_answers_stays_serving(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by re-probing: under 16 streams at once every worker thread was at the database, the
    # check queued behind them past its timeout, and a replica whose database answered was
    # reported down (5 times, for 5-60 s each).
    monkeypatch.setattr(service, "CHECK_SECONDS", 0.1)
    monkeypatch.setattr(readiness, "CHECK_TIMEOUT_SECONDS", 0.5)
    async with running_identity(identity_settings(database_url, tmp_path)) as (_, target):
        loop = asyncio.get_running_loop()
        # Every worker thread of the loop's default executor (its default size) busy for 4 s: the
        # 20 checks below run meanwhile. (64 sleeps of 3 s queued for 33 s on 2 cores.)
        threads = min(32, (os.cpu_count() or 1) + 4)
        busy = [loop.run_in_executor(None, time.sleep, 4) for _ in range(threads)]
        try:
            for _ in range(20):
                assert await _status(target) == health_pb2.HealthCheckResponse.SERVING
                await asyncio.sleep(0.1)
        finally:
            await asyncio.gather(*busy)
