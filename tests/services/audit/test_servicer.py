"""The audit service over real gRPC with a real identity service, on SQLite and PostgreSQL:
append, list with filters and pages, audited reads, signed tree heads, proofs, access rules and
bad input."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2
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
PASSWORD = "correct horse battery staple 9"
# One event loop for the module, so that the shared identity service serves every test.
pytestmark = pytest.mark.asyncio(loop_scope="module")
Metadata = tuple[tuple[str, str], ...]


@dataclass
class Log:
    stub: pb_grpc.AuditServiceStub
    gateway: Metadata
    auditor: Metadata
    practitioner: Metadata
    settings: AuditSettings

    async def append(self, **fields: object) -> int:
        values: dict[str, object] = {"action": "GetChild", "outcome": "ALLOWED", "severity": "INFO", **fields}
        event = pb.AuditEvent(**values)  # type: ignore[arg-type]
        resp = await self.stub.AppendEvent(pb.AppendEventRequest(event=event), metadata=self.gateway)
        return resp.leaf_index

    async def events(self, **filters: object) -> pb.ListEventsResponse:
        request = pb.ListEventsRequest(**filters)  # type: ignore[arg-type]
        return await self.stub.ListEvents(request, metadata=self.auditor)

    async def size(self) -> int:
        return (await self.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=self.auditor)).tree_size


@dataclass
class Callers:
    """Identity, shared by the module's tests (accounts cost Argon2 work), and its callers' tokens."""

    target: str
    gateway: Metadata
    auditor: Metadata
    practitioner: Metadata


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def callers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Callers]:
    tmp_path = tmp_path_factory.mktemp("identity")
    id_url = f"sqlite:///{tmp_path / 'identity.db'}"
    async with running_identity(identity_settings(id_url, tmp_path)) as (_, target):
        gw = create_service_account(id_url, "gateway", "gateway", org="contactpoint")
        async with grpc.aio.insecure_channel(target) as ch:
            identity = identity_grpc.IdentityServiceStub(ch)
            gw_token = (
                await identity.IssueServiceToken(
                    identity_pb.IssueServiceTokenRequest(
                        client_id=gw.client_id, client_secret=gw.client_secret
                    )
                )
            ).access_token
            tokens = {}
            for name, role in (("avery.auditor", "auditor"), ("pat.practitioner", "practitioner")):
                user = create_user(id_url, name, role)
                resp = await identity.AuthenticateUser(
                    identity_pb.AuthenticateUserRequest(
                        username=name, password=PASSWORD, totp_code=pyotp.TOTP(user.totp_secret).now()
                    ),
                    metadata=bearer(gw_token),
                )
                tokens[role] = resp.access_token
        yield Callers(target, bearer(gw_token), bearer(tokens["auditor"]), bearer(tokens["practitioner"]))


@pytest_asyncio.fixture(loop_scope="module")
async def log(callers: Callers, database_url: str, tmp_path: Path) -> AsyncIterator[Log]:
    settings = AuditSettings.model_validate(
        {
            "database_url": database_url,
            "listen": "127.0.0.1:0",
            "identity_target": callers.target,
            "signing_key_file": tmp_path / "keys" / "audit.pem",
        }
    )
    async with (
        running_service("audit", MIGRATIONS, build, settings) as (_, target),
        grpc.aio.insecure_channel(target) as ch,
    ):
        yield Log(
            pb_grpc.AuditServiceStub(ch), callers.gateway, callers.auditor, callers.practitioner, settings
        )


def violations(err: grpc.aio.AioRpcError) -> set[str]:
    """The fields named by an INVALID_ARGUMENT's BadRequest."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(bad)
    return {v.field for v in bad.field_violations}


def in_database(database_url: str, sql: str) -> None:
    db = Database(database_url)
    try:
        db.run_sync(lambda c: c.execute(text(sql)))
    finally:
        db.dispose()


async def test_append_list_filter_page_and_reads_are_audited(log: Log) -> None:
    before = time.time()
    for i in range(5):
        assert await log.append(actor=f"user{i % 2}", contactpoint_id=CP if i % 2 else "", purpose=1) == i
    given = Timestamp(seconds=1_700_000_000, nanos=123_000)
    assert await log.append(actor="user9", time=given) == 5

    everything = await log.events()
    assert [e.leaf_index for e in everything.events] == [0, 1, 2, 3, 4, 5]
    assert not everything.next_page_token
    first = everything.events[1]
    assert (first.actor, first.contactpoint_id, first.purpose, first.action) == ("user1", CP, 1, "GetChild")
    # An event without a time is stamped on arrival; a given time is kept.
    assert before - 1 <= first.time.ToDatetime().timestamp() <= time.time() + 1
    assert everything.events[5].time == given

    by_child = await log.events(contactpoint_id=CP)
    assert [e.leaf_index for e in by_child.events] == [1, 3]
    page = await log.events(actor="user0", page_size=2)
    assert [e.leaf_index for e in page.events] == [0, 2] and page.next_page_token
    rest = await log.events(actor="user0", page_size=2, page_token=page.next_page_token)
    assert [e.leaf_index for e in rest.events] == [4] and not rest.next_page_token
    both = await log.events(actor="user1", contactpoint_id=CP, page_size=1)
    assert [e.leaf_index for e in both.events] == [1] and both.next_page_token

    # Each of those five reads was itself appended to the log, after the page it returned.
    reads = (await log.events(actor="avery.auditor")).events
    assert [e.leaf_index for e in reads] == [6, 7, 8, 9, 10]
    for e in reads:
        assert (e.action, e.outcome, e.severity, e.contactpoint_id) == ("ListEvents", "ALLOWED", "INFO", "")
        assert e.actor_organisation == "E08000003" and list(e.actor_roles) == ["auditor"]
        assert e.request_id
    assert f"contactpoint_id={CP}" in reads[1].detail
    assert "actor=user1" in reads[4].detail and f"contactpoint_id={CP}" in reads[4].detail
    assert await log.size() == 12  # including the read that listed those reads

    # Events come from the hashed leaf data, not from the columns kept for filtering.
    in_database(log.settings.database_url, "UPDATE leaves SET actor = 'someone-else' WHERE leaf_index = 0")
    assert (await log.events(page_size=1)).events[0].actor == "user0"
    assert verify_from_settings(log.settings).first_bad_index == 0


async def test_a_read_that_cannot_be_audited_returns_nothing(log: Log) -> None:
    await log.append(actor="user0", contactpoint_id=CP)
    in_database(log.settings.database_url, "DELETE FROM tree_state")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await log.events(contactpoint_id=CP)
    assert err.value.code() == grpc.StatusCode.INTERNAL and err.value.details() == "internal error"


async def test_access_rules(log: Log) -> None:
    calls: list[tuple[str, Message]] = [
        ("ListEvents", pb.ListEventsRequest()),
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=0, tree_size=1)),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=1, second_size=1)),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(action="x", outcome="y", severity="INFO"))),
    ]
    for method, request in calls:
        for metadata, code in (
            (log.practitioner, grpc.StatusCode.PERMISSION_DENIED),
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (bearer("not-a-token"), grpc.StatusCode.UNAUTHENTICATED),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await getattr(log.stub, method)(request, metadata=metadata)
            assert err.value.code() == code, (method, code)
    # Only the gateway appends; an auditor cannot write to the log they audit.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await log.stub.AppendEvent(calls[3][1], metadata=log.auditor)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Authenticated callers who were refused are in the log; anonymous refusals are not (no
    # token, no way to fill the log).
    assert await log.size() == 5
    refused = (await log.stub.ListEvents(pb.ListEventsRequest(), metadata=log.auditor)).events
    assert [(e.actor, e.action, e.outcome, e.status_code, e.severity) for e in refused] == [
        *[("pat.practitioner", m, "DENIED", code_pb2.PERMISSION_DENIED, "WARNING") for m, _ in calls],
        ("avery.auditor", "AppendEvent", "DENIED", code_pb2.PERMISSION_DENIED, "WARNING"),
    ]

    # Any valid token may read the tree head and the key; no token may not.
    for metadata in (log.practitioner, log.gateway):
        await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=metadata)
        await log.stub.GetPublicKey(pb.GetPublicKeyRequest(), metadata=metadata)
    for method, request in (
        ("GetTreeHead", pb.GetTreeHeadRequest()),
        ("GetPublicKey", pb.GetPublicKeyRequest()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(log.stub, method)(request)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_tree_heads_are_signed_and_proofs_verify(log: Log) -> None:
    key = Ed25519PublicKey.from_public_bytes(
        (await log.stub.GetPublicKey(pb.GetPublicKeyRequest(), metadata=log.practitioner)).public_key
    )
    empty = await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)
    assert empty.tree_size == 0 and empty.root_hash == merkle.EMPTY_ROOT
    key.verify(empty.signature, empty.checkpoint.encode())

    size = 7
    for i in range(size):
        await log.append(actor=f"u{i}")
    head = await log.stub.GetTreeHead(pb.GetTreeHeadRequest(), metadata=log.auditor)
    assert head.tree_size == size
    # Ed25519 over exactly the checkpoint bytes (raises InvalidSignature otherwise).
    key.verify(head.signature, head.checkpoint.encode())
    assert head.checkpoint == f"contactpoint.audit.v1\n{size}\n{base64.b64encode(head.root_hash).decode()}\n"

    leaves = []
    for i in range(size):
        proof = await log.stub.GetInclusionProof(
            pb.GetInclusionProofRequest(leaf_index=i, tree_size=size), metadata=log.auditor
        )
        assert f'"actor":"u{i}"'.encode() in proof.leaf_data
        leaves.append(merkle.leaf_hash(proof.leaf_data))
        assert merkle.verify_inclusion(i, size, leaves[i], proof.audit_path, head.root_hash)
    assert merkle.root(leaves) == head.root_hash
    # Proofs for an earlier tree size verify against that tree's root.
    older = await log.stub.GetInclusionProof(
        pb.GetInclusionProofRequest(leaf_index=1, tree_size=3), metadata=log.auditor
    )
    assert merkle.verify_inclusion(1, 3, leaves[1], older.audit_path, merkle.root(leaves[:3]))
    for first in range(1, size + 1):
        cons = await log.stub.GetConsistencyProof(
            pb.GetConsistencyProofRequest(first_size=first, second_size=size), metadata=log.auditor
        )
        assert merkle.verify_consistency(first, size, merkle.root(leaves[:first]), head.root_hash, cons.proof)


async def test_bad_input_is_invalid_argument_with_field_violations(log: Log) -> None:
    for i in range(2):
        await log.append(actor=f"a{i}")
    huge_token = base64.urlsafe_b64encode(b"v1:99999999999999999999999").decode()
    odd_digits = base64.urlsafe_b64encode("v1:²".encode()).decode()
    cases: list[tuple[str, Message, set[str]]] = [
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=5, tree_size=2), {"leaf_index"}),
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=0, tree_size=99), {"tree_size"}),
        ("GetInclusionProof", pb.GetInclusionProofRequest(), {"tree_size", "leaf_index"}),
        ("GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=2**64 - 1, tree_size=2**64 - 1),
         {"tree_size", "leaf_index"}),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=0, second_size=2), {"first_size"}),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=2, second_size=1), {"first_size"}),
        ("GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=1, second_size=99), {"second_size"}),
        ("ListEvents", pb.ListEventsRequest(page_size=-1, page_token="!!"), {"page_size", "page_token"}),
        ("ListEvents", pb.ListEventsRequest(page_token=huge_token), {"page_token"}),
        ("ListEvents", pb.ListEventsRequest(page_token=odd_digits), {"page_token"}),
        ("ListEvents", pb.ListEventsRequest(contactpoint_id="123456789012"), {"contactpoint_id"}),
        ("ListEvents", pb.ListEventsRequest(actor="x" * 129), {"actor"}),
        ("AppendEvent", pb.AppendEventRequest(), {"event"}),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(severity="LOUD", contactpoint_id="42")),
         {"event.action", "event.outcome", "event.severity", "event.contactpoint_id"}),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(
            action="GetChild", outcome="ALLOWED", severity="INFO", time=Timestamp(seconds=10**13))),
         {"event.time"}),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(
            action="GetChild", outcome="ALLOWED", severity="INFO", actor="x" * 129, detail="d" * 1001)),
         {"event.actor", "event.detail"}),
    ]  # fmt: skip
    for method, request, fields in cases:
        metadata = log.gateway if method == "AppendEvent" else log.auditor
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(log.stub, method)(request, metadata=metadata)
        assert violations(err.value) == fields, (method, request)
    # Nothing bad was stored, and no refused read was logged as a read.
    assert await log.size() == 2
    # Above the maximum, a page size is lowered to it rather than refused (AIP-158).
    assert len((await log.events(page_size=10_000)).events) == 2


async def test_whatever_a_caller_typed_is_stored_as_sent(log: Log) -> None:
    # A failed login's actor is the username someone typed: NUL, quotes, any script.
    odd = 'a\x00b "\u0645\u0631\u062d\u0628\u0627" \\ \U0001f600'
    assert await log.append(actor=odd, outcome="DENIED", detail="\n\t") == 0
    found = (await log.events(actor=odd)).events
    assert [(e.actor, e.detail) for e in found] == [(odd, "\n\t")]
    assert verify_from_settings(log.settings).ok


async def test_concurrent_appends_get_distinct_contiguous_indexes(log: Log) -> None:
    indexes = await asyncio.gather(*(log.append(actor=f"c{i}") for i in range(20)))
    assert sorted(indexes) == list(range(20))
    report = verify_from_settings(log.settings)
    assert report.ok and report.tree_size == 20 and report.heads_checked == 20, report
