"""The audit service over real gRPC with a real identity service, on SQLite and PostgreSQL: one
identity per test module (accounts cost Argon2 work) with tokens for the gateway, a council
system, an auditor and a practitioner, and a fresh audit service and database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.server import RunningServer
from services.audit.main import MIGRATIONS, build
from services.audit.settings import AuditSettings
from tests.conftest import DatabaseFactory
from tests.harness import (
    bearer,
    create_service_account,
    create_user,
    identity_settings,
    platform_account,
    running_identity,
    running_service,
)
from tests.services.audit.witness_suite import (
    Suite,
    append_events,
    suite_settings,
    until_witnessed,
    witness_and_audit,
)

PASSWORD = "correct horse battery staple 9"
Metadata = tuple[tuple[str, str], ...]


@dataclass
class Callers:
    """Identity, shared by a module's tests, and its callers' tokens."""

    target: str
    identity_url: str
    gateway: Metadata
    council: Metadata
    auditor: Metadata
    practitioner: Metadata

    async def login(self, username: str, role: str) -> str:
        """A new person with `role`, logged in (as the gateway logs people in): their token."""
        user = create_user(self.identity_url, username, role, password=PASSWORD)
        async with grpc.aio.insecure_channel(self.target) as ch:
            resp = await identity_grpc.IdentityServiceStub(ch).AuthenticateUser(
                identity_pb.AuthenticateUserRequest(
                    username=username, password=PASSWORD, totp_code=pyotp.TOTP(user.totp_secret).now()
                ),
                metadata=self.gateway,
            )
        return resp.access_token


@dataclass
class Log:
    """One audit service under test and its callers."""

    stub: pb_grpc.AuditServiceStub
    gateway: Metadata
    auditor: Metadata
    practitioner: Metadata
    settings: AuditSettings
    running: RunningServer
    callers: Callers

    async def append(self, metadata: Metadata | None = None, **fields: object) -> int:
        values: dict[str, object] = {"action": "GetChild", "outcome": "ALLOWED", "severity": "INFO", **fields}
        event = pb.AuditEvent(**values)  # type: ignore[arg-type]
        resp = await self.stub.AppendEvent(
            pb.AppendEventRequest(event=event), metadata=metadata or self.gateway
        )
        return resp.leaf_index

    async def events(self, **filters: object) -> pb.ListEventsResponse:
        request = pb.ListEventsRequest(**filters)  # type: ignore[arg-type]
        return await self.stub.ListEvents(request, metadata=self.auditor)

    async def size(self) -> int:
        return (await self.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=self.auditor)).tree_size


async def _service_token(
    stub: identity_grpc.IdentityServiceStub, identity_url: str, name: str, role: str
) -> str:
    account = create_service_account(identity_url, name, role, org="contactpoint")
    request = identity_pb.IssueServiceTokenRequest(
        client_id=account.client_id, client_secret=account.client_secret
    )
    return (await stub.IssueServiceToken(request)).access_token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def callers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Callers]:
    tmp_path = tmp_path_factory.mktemp("identity")
    id_url = f"sqlite:///{tmp_path / 'identity.db'}"
    async with running_identity(identity_settings(id_url, tmp_path)) as (_, target):
        async with grpc.aio.insecure_channel(target) as ch:
            identity = identity_grpc.IdentityServiceStub(ch)
            gateway = await _service_token(identity, id_url, "gateway", "gateway")
            council = await _service_token(identity, id_url, "council-x", "council-system")
        found = Callers(target, id_url, bearer(gateway), bearer(council), (), ())
        found.auditor = bearer(await found.login("avery.auditor", "auditor"))
        found.practitioner = bearer(await found.login("pat.practitioner", "practitioner"))
        yield found


def audit_settings(callers: Callers, database_url: str, tmp_path: Path) -> AuditSettings:
    """An audit service's settings for a test."""
    return AuditSettings.model_validate(
        {
            "database_url": database_url,
            "listen": "127.0.0.1:0",
            "identity_target": callers.target,
            "signing_key_file": tmp_path / "keys" / "audit.pem",
            **platform_account(callers.identity_url, "audit"),
        }
    )


@pytest_asyncio.fixture(loop_scope="module")
async def log(callers: Callers, database_url: str, tmp_path: Path) -> AsyncIterator[Log]:
    settings = audit_settings(callers, database_url, tmp_path)
    async with (
        running_service("audit", MIGRATIONS, build, settings) as (running, target),
        grpc.aio.insecure_channel(target) as ch,
    ):
        yield Log(
            pb_grpc.AuditServiceStub(ch),
            callers.gateway,
            callers.auditor,
            callers.practitioner,
            settings,
            running,
            callers,
        )


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated audit database, straight (no service)."""
    migrate.upgrade("audit", MIGRATIONS, database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def violations(err: grpc.aio.AioRpcError) -> set[str]:
    """The fields named by an INVALID_ARGUMENT's BadRequest."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(bad)
    return {v.field for v in bad.field_violations}


def in_database(database_url: str, sql: str) -> None:
    """Run `sql` straight on a database (to tamper with it, as an attacker with access would)."""
    db = Database(database_url)
    try:
        db.run_sync(lambda c: c.execute(text(sql)))
    finally:
        db.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def witnessed(callers: Callers, databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Suite]:
    """A log of 64 events appended concurrently in two rounds (14, then 50: a head of size 14 is
    there to cut the log back to, however a busy machine gathers the appends into batches), all
    witnessed; the services stopped again."""
    suite = suite_settings(callers, databases, tmp_path)
    async with AsyncExitStack() as stack:
        stub = await witness_and_audit(stack, suite)
        indexes = await append_events(stub, callers.gateway, 14)
        indexes += await append_events(stub, callers.gateway, 50)
        assert sorted(indexes) == list(range(64))
        await until_witnessed(suite.witness_target, 64)
    yield suite
