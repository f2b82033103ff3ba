"""Real services started in-process on port 0, for tests across one or more services."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pyotp
from sqlalchemy import make_url

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.server import RunningServer
from contactpoint.platform.service import Built, start_built
from contactpoint.platform.tls import load_tls
from contactpoint.platform.vault import Vault
from services.audit import report as audit_report
from services.identity import domain as identity_domain
from services.identity.main import MIGRATIONS as IDENTITY_MIGRATIONS
from services.identity.main import build as build_identity
from services.identity.sealing import Sealer
from services.identity.settings import IdentitySettings

# The TOTP data key of each test identity database, so that accounts made straight in the
# database are sealed with the key the running identity opens them with.
_TOTP_KEYS: dict[str, Path] = {}


def identity_settings(database_url: str, tmp_path: Path, **overrides: object) -> IdentitySettings:
    """Identity settings for a test."""
    values: dict[str, object] = {
        "database_url": database_url,
        "signing_key_file": tmp_path / "keys" / "identity.pem",
        "listen": "127.0.0.1:0",
        **overrides,
    }
    settings = IdentitySettings.model_validate(values)
    _TOTP_KEYS[database_url] = settings.totp_key_path
    return settings


def totp_sealer(database_url: str) -> Sealer:
    """The sealer of the identity service that uses `database_url` (or of a fresh key)."""
    path = _TOTP_KEYS.get(database_url)
    return Sealer.from_file(path) if path else Sealer(os.urandom(32))


_KEYS_DIR = Path(tempfile.gettempdir()) / f"contactpoint-test-keys-{os.getpid()}"


def records_key_file(database_url: str) -> Path:
    """The data key file of the records database at `database_url`: one per database, so that a
    test's replicas (and its direct reads) share the keys its service sealed with."""
    name = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return _KEYS_DIR / f"records-{name}.keys"


def records_keys(database_url: str) -> dict[str, str]:
    """Records' settings for the data keys of `database_url`."""
    return {"data_key_file": str(records_key_file(database_url))}


def bind_records_keys(db: Database) -> Vault:
    """Bind the data keys of `db` (records' database) to it, as the service does on start-up."""
    from services.records.data_keys import open_file_vault

    return open_file_vault(db, records_key_file(db.url))


@asynccontextmanager
async def running_service(
    name: str, migrations: Path | None, build: Callable[[Any], Awaitable[Built]], settings: Any
) -> AsyncIterator[tuple[RunningServer, str]]:
    """Any service (its `main.build`) migrated and serving on a free port: (server, target)."""
    if migrations is not None:
        # Off the event loop: services already running in this loop (identity's own state poll
        # among them) must not stall for a migration, or they go stale and refuse every token.
        await asyncio.to_thread(migrate.upgrade, name, migrations, settings.database_url)
    running = await start_built(
        await build(settings), settings.listen, load_tls(settings).server_credentials(), settings=settings
    )
    try:
        yield running, f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


def running_identity(settings: IdentitySettings) -> AbstractAsyncContextManager[tuple[RunningServer, str]]:
    """Identity serving on a free port: (server, target)."""
    return running_service("identity", IDENTITY_MIGRATIONS, build_identity, settings)


def create_user(
    database_url: str,
    username: str,
    *roles: str,
    org: str = "E08000003",
    password: str = "correct horse battery staple 9",
) -> identity_domain.NewUser:
    """Create a person straight in identity's database (as `admin create-user` does)."""
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: identity_domain.create_user(
                c,
                username=username,
                organisation=org,
                roles=list(roles),
                password=password,
                issuer="ContactPoint",
                sealer=totp_sealer(database_url),
            )
        )
    finally:
        db.dispose()


def create_service_account(
    database_url: str, name: str, role: str, org: str = "E08000003"
) -> identity_domain.NewServiceAccount:
    """Create a machine account straight in identity's database."""
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: identity_domain.create_service_account(c, name=name, organisation=org, role=role)
        )
    finally:
        db.dispose()


def _ephemeral_start() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive TCP ports on 127.0.0.1 that were free a moment ago, for
    services that others must know the address of before they start. Drawn at random below the
    ephemeral range: a port from it (what binding port 0 gives) can be taken, before the service
    binds it, by any outgoing connection of the tests running beside this one."""
    top = max(_ephemeral_start(), 12_000) - count
    for _ in range(500):
        base = random.randrange(10_000, top)
        if all(_bindable(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} free ports in a row")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a service others must know first)."""
    return free_ports(1)


async def totp_code(secret: str, step: int = 0) -> str:
    """The TOTP code of `step` steps (-1, 0 or 1) from now. Identity takes one step either side of
    its own clock, so a code of the step before is refused if the clock turns before it arrives:
    for step -1 this first waits out the last 5 seconds of a step."""
    if step < 0:
        left = 30 - time.time() % 30
        if left < 5:
            await asyncio.sleep(left + 0.05)
    return pyotp.TOTP(secret).at(time.time() + 30 * step)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 2.0) -> float:
    """Seconds until `check()` holds, polled; fails the test when it does not within `within`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"did not happen within {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


_PLATFORM_ACCOUNTS: dict[tuple[str, str], dict[str, str]] = {}


def platform_account(database_url: str, service: str) -> dict[str, str]:
    """Settings naming `service`'s own machine account, as `contactpoint up` makes them:
    {"client_id", "client_secret"} (made once per identity database; later calls reuse it, so a
    running service's secret is never rotated under it)."""
    known = _PLATFORM_ACCOUNTS.get((database_url, service))
    if known is not None:
        return dict(known)
    role = {"gateway": "gateway", "records": "records-service", "identity": "identity-service"}.get(
        service, f"{service}-service"
    )
    db = Database(database_url)
    try:
        account = db.run_sync(
            lambda c: identity_domain.create_service_account(
                c, name=service, organisation="contactpoint", role=role, rotate_if_exists=True
            )
        )
    finally:
        db.dispose()
    made = {"client_id": account.client_id, "client_secret": account.client_secret}
    _PLATFORM_ACCOUNTS[(database_url, service)] = made
    return dict(made)


async def platform_metadata(
    identity_target: str, database_url: str, service: str
) -> tuple[tuple[str, str], ...]:
    """Call metadata with a token of `service`'s own machine account (for calls only the platform's
    services may make, such as GetVerificationState)."""
    from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
    from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc

    creds = platform_account(database_url, service)
    async with grpc.aio.insecure_channel(identity_target) as channel:
        resp = await identity_grpc.IdentityServiceStub(channel).IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(**creds)
        )
    return bearer(resp.access_token)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)


def code_of(exc: BaseException) -> grpc.StatusCode:
    """The status code of a failed call."""
    assert isinstance(exc, grpc.aio.AioRpcError), exc
    return exc.code()


def subject_access(audit_url: str, contactpoint_id: str) -> list[audit_report.Access]:
    """The subject-access report on `contactpoint_id` from the audit database at `audit_url`, as
    `contactpoint audit report` reads it (without recording the read)."""
    db = Database(audit_url)
    try:
        return db.run_sync(lambda c: audit_report.accesses(c, contactpoint_id=contactpoint_id), write=False)
    finally:
        db.dispose()


@contextmanager
def write_locked(url: str, pg_table: str) -> Iterator[None]:
    """A database's writes held up by another session (as an operator's long transaction or a
    stalled disk would), until the block ends: SQLite's write lock, or on PostgreSQL an exclusive
    lock on `pg_table` (reads go on)."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as pg:
        pg.execute(f"LOCK TABLE {pg_table} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()
