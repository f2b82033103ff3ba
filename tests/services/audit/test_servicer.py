"""The audit service over real gRPC with a real identity service, on SQLite and PostgreSQL:
append, list with filters and pages, audited reads, signed tree heads, proofs, access rules and
bad input."""

from __future__ import annotations

import asyncio
import base64
import time

import grpc
import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform import merkle
from contactpoint.platform.auth import SERVICE
from contactpoint.platform.db import Database
from services.audit.servicer import ACCESS
from services.audit.verify_configured import verify_from_settings
from tests.harness import bearer
from tests.services.audit.conftest import Log, in_database, violations

CP = "123456789018"
# One event loop for the module, so that the shared identity service serves every test.
pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVICE_ITSELF = "(audit service)"


async def test_append_list_filter_page_and_reads_are_audited(log: Log) -> None:
    before = time.time()
    for i in range(5):
        assert await log.append(actor=f"user{i % 2}", contactpoint_id=CP if i % 2 else "", purpose=1) == i
    # The service stamps the time and who appended the event; whatever the caller sent is ignored.
    given = Timestamp(seconds=1_700_000_000, nanos=123_000)
    assert await log.append(actor="user9", time=given, appended_by="someone", leaf_index=99) == 5

    everything = await log.events()
    assert [e.leaf_index for e in everything.events] == [0, 1, 2, 3, 4, 5]
    assert not everything.next_page_token
    first = everything.events[1]
    assert (first.actor, first.contactpoint_id, first.purpose, first.action) == ("user1", CP, 1, "GetChild")
    for e in everything.events:
        assert before - 1 <= e.time.ToDatetime().timestamp() <= time.time() + 1
        assert e.appended_by == "gateway"
    # Stamped under the append lock: times follow the log's order.
    times = [e.time.ToDatetime() for e in everything.events]
    assert times == sorted(times)

    by_child = await log.events(contactpoint_id=CP)
    assert [e.leaf_index for e in by_child.events] == [1, 3]
    page = await log.events(actor="user0", page_size=2)
    assert [e.leaf_index for e in page.events] == [0, 2] and page.next_page_token
    rest = await log.events(actor="user0", page_size=2, page_token=page.next_page_token)
    assert [e.leaf_index for e in rest.events] == [4] and not rest.next_page_token
    both = await log.events(actor="user1", contactpoint_id=CP, page_size=1)
    assert [e.leaf_index for e in both.events] == [1] and both.next_page_token
    # A token continues the request it came from only (AIP-158): with other filters it is refused.
    with pytest.raises(grpc.aio.AioRpcError) as other_filters:
        await log.events(actor="user0", page_size=2, page_token=both.next_page_token)
    assert violations(other_filters.value) == {"page_token"}

    # Each of those five reads was itself appended to the log, after the page it returned.
    reads = [e for e in (await log.events(actor="avery.auditor")).events if e.outcome == "ALLOWED"]
    assert [e.leaf_index for e in reads] == [6, 7, 8, 9, 10]
    for e in reads:
        assert (e.action, e.outcome, e.severity, e.contactpoint_id) == ("ListEvents", "ALLOWED", "INFO", "")
        assert e.actor_organisation == "E08000003" and list(e.actor_roles) == ["auditor"]
        assert e.request_id and e.appended_by == SERVICE_ITSELF
    assert f"contactpoint_id={CP}" in reads[1].detail
    assert "actor=user1" in reads[4].detail and f"contactpoint_id={CP}" in reads[4].detail
    assert await log.size() == 13  # with the refused read, and the read that listed those reads

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
    # Only the suite's auditing services append: not an auditor (who cannot write to the log
    # they audit), nor any other machine account.
    for metadata in (log.auditor, log.callers.council):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.stub.AppendEvent(calls[3][1], metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    append = ACCESS["AppendEvent"]
    assert append.roles == {"gateway", "records-service", "identity-service"} and append.kind == SERVICE
    # Authenticated callers who were refused are in the log; anonymous refusals are not (no
    # token, no way to fill the log).
    assert await log.size() == 6
    refused = (await log.stub.ListEvents(pb.ListEventsRequest(), metadata=log.auditor)).events
    assert [(e.actor, e.action, e.outcome, e.status_code, e.severity) for e in refused] == [
        *[("pat.practitioner", m, "DENIED", code_pb2.PERMISSION_DENIED, "WARNING") for m, _ in calls],
        ("avery.auditor", "AppendEvent", "DENIED", code_pb2.PERMISSION_DENIED, "WARNING"),
        ("council-x", "AppendEvent", "DENIED", code_pb2.PERMISSION_DENIED, "WARNING"),
    ]
    assert {e.appended_by for e in refused} == {SERVICE_ITSELF}

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

    # Every proof handed out was logged first, as a read by the auditor.
    reads = (await log.events(actor="avery.auditor", page_size=100)).events
    inclusion = [e for e in reads if e.action == "GetInclusionProof"]
    consistency = [e for e in reads if e.action == "GetConsistencyProof"]
    assert len(inclusion) == size + 1 and len(consistency) == size
    assert inclusion[0].detail == f"inclusion proof: leaf_index=0, tree_size={size}"
    assert consistency[0].detail == f"consistency proof: first_size=1, second_size={size}"
    for e in inclusion + consistency:
        assert (e.outcome, e.severity, e.contactpoint_id, e.appended_by) == (
            "ALLOWED",
            "INFO",
            "",
            SERVICE_ITSELF,
        )
        assert list(e.actor_roles) == ["auditor"] and e.request_id
    # The reads come after the leaves they proved: each was appended before its answer left.
    assert inclusion[0].leaf_index == size and consistency[-1].leaf_index == 3 * size


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
            action="GetChild", outcome="ALLOWED", severity="INFO", purpose=99, status_code=99)),
         {"event.purpose", "event.status_code"}),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(
            action="Get\x1b[2JChild", outcome="OK\u202e", severity="INFO", actor="a\x00b",
            actor_organisation="E08\n", actor_roles=["auditor", "x\x85"], request_id="r\x7f", detail="\x00")),
         {"event.action", "event.outcome", "event.actor", "event.actor_organisation", "event.actor_roles",
          "event.request_id", "event.detail"}),
        ("AppendEvent", pb.AppendEventRequest(event=pb.AuditEvent(
            action="GetChild", outcome="ALLOWED", severity="INFO", actor="x" * 129, detail="d" * 1001)),
         {"event.actor", "event.detail"}),
    ]  # fmt: skip
    for method, request, fields in cases:
        metadata = log.gateway if method == "AppendEvent" else log.auditor
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(log.stub, method)(request, metadata=metadata)
        assert violations(err.value) == fields, (method, request)
    # Nothing bad was stored; each refused read was logged as refused (not as a read), before
    # its refusal was answered.
    reads = sum(method != "AppendEvent" for method, _, _ in cases)
    assert await log.size() == 2 + reads
    refusals = (await log.events(actor="avery.auditor", page_size=100)).events
    assert [(e.action, e.outcome, e.severity) for e in refusals] == [
        (method, "INVALID", "WARNING") for method, _, _ in cases if method != "AppendEvent"
    ]
    # Above the maximum, a page size is lowered to it rather than refused (AIP-158).
    size = await log.size()
    assert len((await log.events(page_size=10_000)).events) == size


async def test_text_is_stored_as_sent_but_control_characters_are_refused(log: Log) -> None:
    # A failed login's actor is the username someone typed: quotes, markup, any script.
    odd = '<b>"\u0645\u0631\u062d\u0628\u0627"</b> \\ \U0001f600'
    detail = "line one\r\n\tline two\n"  # free text may hold tabs and line breaks
    huge = Timestamp(seconds=10**13)  # no valid time at all: ignored, as any time sent is
    assert await log.append(actor=odd, outcome="DENIED", detail=detail, time=huge) == 0
    found = (await log.events(actor=odd)).events
    assert [(e.actor, e.detail) for e in found] == [(odd, detail)]
    assert found[0].time.seconds < 10**13
    # NUL, escape sequences, C1 controls, bidirectional overrides, line separators: a line that
    # hides or disguises what it says is refused, field by field, and nothing is stored.
    for actor in ("a\x00b", "\x1b[31mred", "x\x85", "x\u202edcba", "a\u2028b", "zero\u200bwidth"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.append(actor=actor)
        assert violations(err.value) == {"event.actor"}, actor
    for text in ("\x00", "\x1b[2J", "\x07"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await log.append(detail=text)
        assert violations(err.value) == {"event.detail"}, text
    assert await log.size() == 2  # the event and the read that listed it
    # An auditor may still look for any text (events stored before text was checked); the
    # record of that read escapes it.
    assert not (await log.events(actor="a\x00b\x1b")).events
    read = (await log.events(actor="avery.auditor")).events[-1]
    assert read.detail == "filters: actor=a\\u0000b\\u001b; events returned: 0"
    assert verify_from_settings(log.settings).ok


def read_heads(database_url: str) -> list[int]:
    """The sizes of the stored signed tree heads, smallest first."""
    db = Database(database_url)
    try:
        query = sqlalchemy.text("SELECT tree_size FROM tree_heads ORDER BY 1")
        return db.run_sync(lambda c: [int(n) for n in c.execute(query).scalars()])
    finally:
        db.dispose()


async def test_concurrent_appends_get_distinct_contiguous_indexes(log: Log) -> None:
    # 64 appends at once are gathered into batches (group commit): each gets its own index, none
    # is lost, and every signed head covers exactly the leaves before it (audit verify).
    indexes = await asyncio.gather(*(log.append(actor=f"c{i}") for i in range(64)))
    assert sorted(indexes) == list(range(64))
    report = verify_from_settings(log.settings)
    assert report.ok and report.tree_size == 64, report
    # Fewer heads than events: appends in flight together shared a transaction and a head.
    assert 1 <= report.heads_checked < 64, report
    heads = read_heads(log.settings.database_url)
    assert heads[-1] == 64 and heads == sorted(set(heads))
    # Each caller's index holds its own event (reading them appends one more: the read itself).
    stored = {event.leaf_index: event.actor for event in (await log.events(page_size=100)).events}
    assert {i: stored[i] for i in indexes} == {index: f"c{i}" for i, index in enumerate(indexes)}


async def test_an_actor_filter_reads_a_username_as_a_login_does(log: Log) -> None:
    """Found by probing: ListEvents by actor "PRAC1" or " prac1 " answered nothing, silently, where
    prac1 had events; a username is read as Login reads it. An actor stored with capitals (an
    operator's system account) is still found as written."""
    await log.append(actor="pat.smith")
    await log.append(actor="JSmith")
    await log.append(actor="pat.smithers")
    for typed in ("pat.smith", " Pat.Smith ", "PAT.SMITH"):
        assert [e.leaf_index for e in (await log.events(actor=typed)).events] == [0], typed
        assert [e.leaf_index for e in (await log.events(actor=typed, contactpoint_id=CP)).events] == []
    again = await log.append(actor="pat.smith")
    first = await log.events(actor="pat.smith", page_size=1)
    # A page token goes on with the same actor typed another way.
    rest = await log.events(actor=" PAT.SMITH ", page_size=1, page_token=first.next_page_token)
    assert [e.leaf_index for e in rest.events] == [again]
    assert [e.leaf_index for e in (await log.events(actor="JSmith")).events] == [1]
    assert [e.leaf_index for e in (await log.events(actor="jsmith")).events] == []
