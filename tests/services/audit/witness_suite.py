"""A witnessed audit log for tests: the audit service and its witness over real gRPC, each with its
own database and key, and helpers to append to the log and wait for the witness."""

from __future__ import annotations

import asyncio
import base64
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.witness.v1 import witness_service_pb2 as witness_pb
from contactpoint.witness.v1 import witness_service_pb2_grpc as witness_grpc
from services.audit.main import MIGRATIONS, build
from services.audit.settings import AuditSettings
from services.audit.verify import VerifyReport
from services.audit.verify_configured import verify_from_settings
from services.audit.witness_view import witness_view
from services.witness.main import MIGRATIONS as WITNESS_MIGRATIONS
from services.witness.main import build as build_witness
from services.witness.settings import WitnessSettings
from tests.harness import free_port, platform_account, running_service

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.services.audit.conftest import Callers


def head_size_at_most(database_url: str, size: int) -> int:
    db = Database(database_url)
    try:
        query = text("SELECT max(tree_size) FROM tree_heads WHERE tree_size <= :n")
        return int(db.run_sync(lambda c: c.execute(query, {"n": size}).scalar_one()))
    finally:
        db.dispose()


@dataclass
class Suite:
    audit: AuditSettings
    witness: WitnessSettings
    witness_target: str

    def env(self) -> dict[str, str]:
        """What `audit verify` is given: the witness's own variables beside audit's."""
        return {
            "CONTACTPOINT_WITNESS_DATABASE_URL": self.witness.database_url,
            "CONTACTPOINT_WITNESS_SIGNING_KEY_FILE": str(self.witness.signing_key_file),
        }

    def verify(self, env: dict[str, str] | None = None) -> VerifyReport:
        return verify_from_settings(
            self.audit, witness=witness_view(self.env() if env is None else env, self.audit)
        )


def suite_settings(callers: Callers, databases: DatabaseFactory, tmp_path: Path) -> Suite:
    witness_target = f"127.0.0.1:{free_port()}"
    audit_key = load_or_create_signing_key(tmp_path / "keys" / "audit.pem")
    audit = AuditSettings.model_validate(
        {
            "database_url": databases.new("audit"),
            "listen": "127.0.0.1:0",
            "identity_target": callers.target,
            "signing_key_file": tmp_path / "keys" / "audit.pem",
            "witness_target": witness_target,
            **platform_account(callers.identity_url, "audit"),
        }
    )
    witness = WitnessSettings.model_validate(
        {
            "database_url": databases.new("witness"),
            "listen": witness_target,
            "signing_key_file": tmp_path / "witness-keys" / "witness.pem",
            "log_public_key": base64.b64encode(raw_public_key(audit_key)).decode(),
        }
    )
    return Suite(audit, witness, witness_target)


async def witnessed_size(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as ch:
        try:
            resp = await witness_grpc.WitnessServiceStub(ch).GetCheckpoint(witness_pb.GetCheckpointRequest())
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return 0
    return int(resp.checkpoint.split("\n")[1])


async def until_witnessed(target: str, size: int) -> None:
    for _ in range(200):  # the witness client sends each head at once; allow 10 s on a slow machine
        if await witnessed_size(target) == size:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the witness did not reach size {size}: at {await witnessed_size(target)}")


async def append_events(
    stub: pb_grpc.AuditServiceStub, gateway: tuple[tuple[str, str], ...], n: int
) -> list[int]:
    async def one(i: int) -> int:
        event = pb.AuditEvent(actor=f"user{i}", action="GetChild", outcome="ALLOWED", severity="INFO")
        resp = await stub.AppendEvent(pb.AppendEventRequest(event=event), metadata=gateway)
        return int(resp.leaf_index)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def witness_and_audit(stack: AsyncExitStack, suite: Suite) -> pb_grpc.AuditServiceStub:
    """The witness, then audit sending it each head, running until `stack` closes: audit's stub."""
    await stack.enter_async_context(
        running_service("witness", WITNESS_MIGRATIONS, build_witness, suite.witness)
    )
    _, target = await stack.enter_async_context(running_service("audit", MIGRATIONS, build, suite.audit))
    return pb_grpc.AuditServiceStub(await stack.enter_async_context(grpc.aio.insecure_channel(target)))


async def with_witnessed_events(
    stack: AsyncExitStack, suite: Suite, gateway: tuple[tuple[str, str], ...], n: int
) -> pb_grpc.AuditServiceStub:
    """The witness and audit running until `stack` closes, `n` events appended and witnessed:
    audit's stub."""
    stub = await witness_and_audit(stack, suite)
    await append_events(stub, gateway, n)
    await until_witnessed(suite.witness_target, n)
    return stub
