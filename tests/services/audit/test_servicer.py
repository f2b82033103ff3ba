"""The audit service over real gRPC on SQLite and PostgreSQL: append, list, proofs, signatures,
access rules, bad input, and `audit verify` catching tampering."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.db import Database
from services.audit import merkle
from services.audit.main import MIGRATIONS, build
from services.audit.settings import AuditSettings
from services.audit.verify import verify_from_settings
from tests.harness import (
    bearer,
    create_service_account,
    create_user,
    identity_settings,
    running_identity,
    running_service,
)

CP = "123456789018"


@dataclass
class Log:
    stub: pb_grpc.AuditServiceStub
    gateway: tuple[tuple[str, str], ...]
    auditor: tuple[tuple[str, str], ...]
    practitioner: tuple[tuple[str, str], ...]
    settings: AuditSettings

    async def append(self, **fields: object) -> int:
        event = pb.AuditEvent(action="GetChild", outcome="ALLOWED", severity="INFO", **fields)  # type: ignore[arg-type]
        return (
            await self.stub.AppendEvent(pb.AppendEventRequest(event=event), metadata=self.gateway)
        ).leaf_index


@pytest.fixture
async def log(database_url: str, tmp_path: Path) -> AsyncIterator[Log]:
    async with AsyncExitStack() as stack:
        id_url = f"sqlite:///{tmp_path / 'identity.db'}"
        _, identity_target = await stack.enter_async_context(
            running_identity(identity_settings(id_url, tmp_path))
        )
        settings = AuditSettings.model_validate(
            {
                "database_url": database_url,
                "listen": "127.0.0.1:0",
                "identity_target": identity_target,
                "signing_key_file": tmp_path / "keys" / "audit.pem",
            }
        )
        _, target = await stack.enter_async_context(running_service("audit", MIGRATIONS, build, settings))
        gw = create_service_account(id_url, "gateway", "gateway", org="contactpoint")
        tokens = {}
        id_ch = await stack.enter_async_context(grpc.aio.insecure_channel(identity_target))
        identity = identity_grpc.IdentityServiceStub(id_ch)
        gw_token = (
            await identity.IssueServiceToken(
                identity_pb.IssueServiceTokenRequest(client_id=gw.client_id, client_secret=gw.client_secret)
            )
        ).access_token
        for name, role in (("avery.auditor", "auditor"), ("pat.practitioner", "practitioner")):
            user = create_user(id_url, name, role)
            resp = await identity.AuthenticateUser(
                identity_pb.AuthenticateUserRequest(
                    username=name,
                    password="correct horse battery staple 9",
                    totp_code=pyotp.TOTP(user.totp_secret).now(),
                ),
                metadata=bearer(gw_token),
            )
            tokens[role] = resp.access_token
        ch = await stack.enter_async_context(grpc.aio.insecure_channel(target))
        yield Log(
            pb_grpc.AuditServiceStub(ch),
            bearer(gw_token),
            bearer(tokens["auditor"]),
            bearer(tokens["practitioner"]),
            settings,
        )


async def test_append_list_filter_page_and_reads_are_audited(log: Log) -> None:
    for i in range(5):
        assert await log.append(actor=f"user{i % 2}", contactpoint_id=CP if i % 2 else "", purpose=1) == i
    everything = await log.stub.ListEvents(pb.ListEventsRequest(), metadata=log.auditor)
    assert [e.leaf_index for e in everything.events] == [0, 1, 2, 3, 4]
    assert everything.events[1].actor == "user1" and everything.events[1].time.seconds > 0

    by_child = await log.stub.ListEvents(pb.ListEventsRequest(contactpoint_id=CP), metadata=log.auditor)
    assert [e.leaf_index for e in by_child.events] == [1, 3]
    by_actor = await log.stub.ListEvents(
        pb.ListEventsRequest(actor="user0", page_size=2), metadata=log.auditor
    )
    assert [e.leaf_index for e in by_actor.events] == [0, 2] and by_actor.next_page_token
    rest = await log.stub.ListEvents(
        pb.ListEventsRequest(actor="user0", page_size=2, page_token=by_actor.next_page_token),
        metadata=log.auditor,
    )
    assert [e.leaf_index for e in rest.events] == [4] and not rest.next_page_token

    reads = await log.stub.ListEvents(pb.ListEventsRequest(actor="avery.auditor"), metadata=log.auditor)
    assert [e.action for e in reads.events] == ["ListEvents"] * 4
    assert (
        reads.events[1].detail.startswith("filters: contactpoint_id=")
        and "auditor" in reads.events[0].actor_roles
    )


async def test_access_rules(log: Log) -> None:
    for metadata, code in (
        (log.practitioner, grpc.StatusCode.PERMISSION_DENIED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.stub.ListEvents(pb.ListEventsRequest(), metadata=metadata)
        assert err.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as append:
        await log.stub.AppendEvent(
            pb.AppendEventRequest(event=pb.AuditEvent(action="x")), metadata=log.auditor
        )
    assert append.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_tree_head_signature_and_proofs(log: Log) -> None:
    empty = await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)
    assert empty.tree_size == 0 and empty.root_hash == merkle.EMPTY_ROOT
    for i in range(7):
        await log.append(actor=f"u{i}")
    head = await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)
    key = (await log.stub.GetPublicKey(pb.GetPublicKeyRequest(), metadata=log.auditor)).public_key
    assert len(key) == 32 and head.tree_size == 7
    Ed25519PublicKey.from_public_bytes(key).verify(head.signature, head.checkpoint.encode())
    origin, size, root_b64, tail = head.checkpoint.split("\n")
    assert (origin, size, tail) == ("contactpoint.audit.v1", "7", "")
    assert base64.b64decode(root_b64) == head.root_hash
    for i in range(7):
        proof = await log.stub.GetInclusionProof(
            pb.GetInclusionProofRequest(leaf_index=i, tree_size=7), metadata=log.auditor
        )
        assert merkle.verify_inclusion(
            i, 7, merkle.leaf_hash(proof.leaf_data), proof.audit_path, head.root_hash
        )
        assert f'"actor":"u{i}"'.encode() in proof.leaf_data
    for first in range(1, 8):
        cons = await log.stub.GetConsistencyProof(
            pb.GetConsistencyProofRequest(first_size=first, second_size=7), metadata=log.auditor
        )
        leaves = []
        for i in range(first):
            p = await log.stub.GetInclusionProof(
                pb.GetInclusionProofRequest(leaf_index=i, tree_size=7), metadata=log.auditor
            )
            leaves.append(merkle.leaf_hash(p.leaf_data))
        assert merkle.verify_consistency(first, 7, merkle.root(leaves), head.root_hash, cons.proof)


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=5, tree_size=2), {"leaf_index"}),
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=0, tree_size=99), {"tree_size"}),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=0, second_size=2), {"first_size"}),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=1, second_size=99), {"second_size"}),
        ("ListEvents", pb.ListEventsRequest(page_size=-1, page_token="!!"), {"page_size", "page_token"}),
        ("ListEvents", pb.ListEventsRequest(contactpoint_id="123456789012"), {"contactpoint_id"}),
    ],
)
async def test_bad_input_is_invalid_argument_with_details(
    log: Log, method: str, request_: object, fields: set[str]
) -> None:
    await log.append(actor="a")
    await log.append(actor="b")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(log.stub, method)(request_, metadata=log.auditor)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert {v.field for v in bad.field_violations} == fields


async def test_bad_event_is_refused_and_nothing_stored(log: Log) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await log.stub.AppendEvent(
            pb.AppendEventRequest(event=pb.AuditEvent(severity="LOUD", contactpoint_id="42")),
            metadata=log.gateway,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    head = await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)
    assert head.tree_size == 0


async def test_concurrent_appends_get_distinct_contiguous_indexes(log: Log) -> None:
    indexes = await asyncio.gather(*(log.append(actor=f"c{i}") for i in range(20)))
    assert sorted(indexes) == list(range(20))
    assert verify_from_settings(log.settings).ok


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        ("UPDATE leaves SET leaf_data = :x WHERE leaf_index = 2", 2),
        ("DELETE FROM leaves WHERE leaf_index = 1", 1),
        ("UPDATE leaves SET actor = 'someone else' WHERE leaf_index = 3", 3),
        ("UPDATE tree_heads SET signature = :sig WHERE tree_size = 3", 2),
    ],
)
async def test_verify_catches_tampering(log: Log, tamper: str, first_bad: int) -> None:
    for i in range(5):
        await log.append(actor=f"t{i}")
    assert verify_from_settings(log.settings).ok
    db = Database(log.settings.database_url)
    try:
        db.run_sync(
            lambda c: c.execute(text(tamper), {"x": b'{"actor":"t2","forged":true}', "sig": bytes(64)})
        )
    finally:
        db.dispose()
    report = verify_from_settings(log.settings)
    assert not report.ok and report.first_bad_index == first_bad, report


async def test_verify_catches_swapped_entries(log: Log) -> None:
    for i in range(4):
        await log.append(actor=f"s{i}")
    db = Database(log.settings.database_url)
    try:
        db.run_sync(
            lambda c: c.execute(
                text("UPDATE leaves SET leaf_index = leaf_index + 100 WHERE leaf_index IN (1, 2)")
            )
        )
        db.run_sync(
            lambda c: c.execute(
                text("UPDATE leaves SET leaf_index = 103 - leaf_index WHERE leaf_index >= 100")
            )
        )
    finally:
        db.dispose()
    report = verify_from_settings(log.settings)
    assert not report.ok and report.first_bad_index == 1, report
