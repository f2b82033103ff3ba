"""An event that concerns more than one child (a review task's candidate, a merge's retired child)
names the others in `other_contactpoint_ids`, and is found under each of them: by ListEvents'
contactpoint_id filter and by the subject-access report, on SQLite and on PostgreSQL (where the
service appends in one statement). `audit verify` checks the index that finds them against the
hashed leaves, so deleting a row to hide an access from a report is caught."""

from __future__ import annotations

import grpc
import pytest

from contactpoint.audit.v1 import audit_service_pb2 as pb
from services.audit.verify_configured import verify_from_settings
from tests.harness import subject_access
from tests.services.audit.conftest import Log, in_database, violations

pytestmark = pytest.mark.asyncio(loop_scope="module")

A, B, C, D = "123456789018", "503352916258", "100000000001", "200000000007"


def reported(log: Log, contactpoint_id: str) -> list[int]:
    """The leaf indexes of the subject-access report on `contactpoint_id`."""
    return [a.leaf_index for a in subject_access(log.settings.database_url, contactpoint_id)]


async def _four_events(log: Log) -> None:
    """0: about A, naming B and C; 1: about B alone; 2: about nobody, naming D (in a batch with
    3); 3: about C, by another actor."""
    assert await log.append(actor="dee", contactpoint_id=A, other_contactpoint_ids=[B, C]) == 0
    assert await log.append(actor="dee", contactpoint_id=B) == 1
    batch = pb.AppendEventsRequest(
        events=[
            pb.AuditEvent(action="MergeChildren", outcome="ALLOWED", severity="INFO", actor="dee",
                          other_contactpoint_ids=[D]),
            pb.AuditEvent(action="GetChild", outcome="ALLOWED", severity="INFO", actor="pat",
                          contactpoint_id=C),
        ]
    )  # fmt: skip
    await log.stub.AppendEvents(batch, metadata=log.gateway)


async def test_an_event_is_found_under_every_child_it_names(log: Log) -> None:
    await _four_events(log)
    for child, expected in ((A, [0]), (B, [0, 1]), (C, [0, 3]), (D, [2])):
        listed = await log.events(contactpoint_id=child)
        assert [e.leaf_index for e in listed.events] == expected, child
        assert reported(log, child) == expected, child
    first = (await log.events(contactpoint_id=B)).events[0]
    assert (first.contactpoint_id, list(first.other_contactpoint_ids)) == (A, [B, C])
    # With the actor filter, and a page at a time.
    assert [e.leaf_index for e in (await log.events(contactpoint_id=C, actor="pat")).events] == [3]
    page = await log.events(contactpoint_id=C, page_size=1)
    assert [e.leaf_index for e in page.events] == [0] and page.next_page_token
    rest = await log.events(contactpoint_id=C, page_size=1, page_token=page.next_page_token)
    assert [e.leaf_index for e in rest.events] == [3] and not rest.next_page_token
    report_ = verify_from_settings(log.settings)
    assert report_.ok, report_


@pytest.mark.parametrize(
    ("others", "main"),
    [
        (["12345"], A),  # not an id
        (["123456789019"], A),  # wrong check digit
        ([B, B], A),  # twice
        ([A], A),  # the event's own child again
        ([B] * 9, ""),  # too many
    ],
)
async def test_bad_other_children_are_refused_and_nothing_is_stored(
    log: Log, others: list[str], main: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await log.append(contactpoint_id=main, other_contactpoint_ids=others)
    assert violations(err.value) == {"event.other_contactpoint_ids"}
    assert await log.size() == 0


# (B is 503352916258, D 200000000007.)
TAMPERING = {
    # Hiding an access from B's report.
    "a row deleted": ("DELETE FROM other_children WHERE contactpoint_id = '503352916258'", 0),
    # Moving it to another child's report.
    "a row's child changed": (
        "UPDATE other_children SET contactpoint_id = '200000000007' WHERE contactpoint_id = '503352916258'",
        0,
    ),
    # Listing an access that did not happen.
    "a row added": ("INSERT INTO other_children (leaf_index, contactpoint_id) VALUES (1, '200000000007')", 1),
    "a row for an entry not stored": (
        "INSERT INTO other_children (leaf_index, contactpoint_id) VALUES (99, '200000000007')",
        4,
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_verify_catches_an_edited_index_of_other_children(log: Log, case: str) -> None:
    statement, first_bad = TAMPERING[case]
    await _four_events(log)
    assert verify_from_settings(log.settings).ok
    in_database(log.settings.database_url, statement)
    found = verify_from_settings(log.settings)
    assert not found.ok and found.first_bad_index == first_bad, found
    assert "other child" in found.message, found


async def test_a_childs_report_holds_the_accesses_of_children_merged_into_it(log: Log) -> None:
    """Found by probing: reads of a retired child before its merge were missing from the
    survivor's subject-access report, though that record is part of the survivor's now."""
    survivor, retired, refused_one = A, B, C
    assert await log.append(actor="pat", contactpoint_id=retired) == 0
    assert await log.append(actor="pat", contactpoint_id=survivor) == 1
    assert await log.append(actor="pat", contactpoint_id=refused_one) == 2
    merge = {"action": "MergeChildren", "actor": "dee", "contactpoint_id": survivor}
    assert await log.append(**merge, outcome="DENIED", other_contactpoint_ids=[refused_one]) == 3
    assert await log.append(**merge, other_contactpoint_ids=[retired]) == 4
    # A read through the retired id after the merge names both (as the gateway writes it).
    assert await log.append(actor="pat", contactpoint_id=retired, other_contactpoint_ids=[survivor]) == 5
    assert reported(log, survivor) == [0, 1, 3, 4, 5]  # not the refused merge's other child's read
    assert reported(log, retired) == [0, 4, 5]
    assert reported(log, refused_one) == [2, 3]
    # Unmerged again: the retired child's history is its own once more.
    unmerge = {"action": "UnmergeChildren", "actor": "dee", "contactpoint_id": retired}
    assert await log.append(**unmerge, other_contactpoint_ids=[survivor]) == 6
    assert reported(log, survivor) == [1, 3, 4, 5, 6]


async def test_a_merged_childs_report_holds_the_reads_of_the_child_it_was_merged_into(log: Log) -> None:
    """Found by probing: once merged, a child's record is read through its survivor (GetChild of
    the survivor showed the merged child's name), yet those reads were in the merged child's
    report neither while merged nor after the unmerge."""
    survivor, retired = A, B
    assert await log.append(actor="pat", contactpoint_id=retired) == 0
    assert await log.append(actor="pat", contactpoint_id=survivor) == 1
    merge = {"action": "MergeChildren", "actor": "dee", "contactpoint_id": survivor}
    assert await log.append(**merge, other_contactpoint_ids=[retired]) == 2
    assert await log.append(actor="pat", contactpoint_id=survivor) == 3
    assert await log.append(action="FindChild", actor="sam", contactpoint_id=survivor) == 4
    assert reported(log, retired) == [0, 2, 3, 4]
    unmerge = {"action": "UnmergeChildren", "actor": "dee", "contactpoint_id": retired}
    assert await log.append(**unmerge, other_contactpoint_ids=[survivor]) == 5
    assert await log.append(actor="pat", contactpoint_id=survivor) == 6  # its own again
    assert reported(log, retired) == [0, 2, 3, 4, 5]
    assert reported(log, survivor) == [1, 2, 3, 4, 5, 6]


async def test_through_a_chain_of_merges_until_the_child_is_unmerged(log: Log) -> None:
    first, second, merged = A, C, B
    merge = {"action": "MergeChildren", "actor": "dee"}
    assert await log.append(**merge, contactpoint_id=first, other_contactpoint_ids=[merged]) == 0
    assert await log.append(**merge, contactpoint_id=second, other_contactpoint_ids=[first]) == 1
    assert await log.append(actor="pat", contactpoint_id=second) == 2  # B's record is in C's
    assert await log.append(action="UnmergeChildren", actor="dee", contactpoint_id=merged) == 3
    assert await log.append(actor="pat", contactpoint_id=second) == 4  # B's no longer
    assert await log.append(actor="pat", contactpoint_id=D) == 5
    assert reported(log, merged) == [0, 1, 2, 3]


async def test_a_review_task_decided_link_joins_two_children_as_a_merge_does(log: Log) -> None:
    """Found by probing: a new child linked to its candidate through a review task had its
    earlier reads left out of the candidate's report, which a merge kept."""
    candidate, new = A, B
    assert await log.append(actor="pat", contactpoint_id=new) == 0
    linked = {"action": "ResolveReviewTask", "actor": "dee", "contactpoint_id": candidate}
    assert await log.append(**linked, detail="task t1; decision KEEP_APART", other_contactpoint_ids=[C]) == 1
    assert await log.append(**linked, detail="task t2; decision LINK", other_contactpoint_ids=[new]) == 2
    assert await log.append(actor="pat", contactpoint_id=candidate) == 3
    assert reported(log, candidate) == [0, 1, 2, 3]  # not C's history: kept apart
    assert reported(log, new) == [0, 2, 3]
    assert await log.append(actor="pat", contactpoint_id=C) == 4
    assert reported(log, C) == [1, 4]
    refused = {"action": "ResolveReviewTask", "actor": "dee", "outcome": "DENIED", "contactpoint_id": D}
    assert await log.append(**refused, detail="task t3; decision LINK", other_contactpoint_ids=[C]) == 5
    assert reported(log, D) == [5]
    # Found by re-probing: a reason cannot make a KEEP_APART a join, nor is a retry one.
    planted = "task t4; decision KEEP_APART; reason: twins; decision LINK"
    assert await log.append(**linked, detail=planted, other_contactpoint_ids=[D]) == 6
    retry = "task t2; decision LINK; a retry: already decided so by this data manager; reason: one"
    assert await log.append(**{**linked, "contactpoint_id": D}, detail=retry, other_contactpoint_ids=[C]) == 7
    assert reported(log, D) == [5, 6, 7]
    assert await log.append(actor="pat", contactpoint_id=D) == 8
    assert reported(log, C) == [1, 4, 5, 7]
