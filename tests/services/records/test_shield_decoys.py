"""A council's insider (its system's credentials and a data manager's login) against another
council's shielded child, through records filed as decoys (found by re-probing): the other
council's own later records of the child must stay with it, shielded, and be decided by it."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.services.records.conftest import World
from tests.services.records.test_data_managers import never_offered, next_task

pytestmark = pytest.mark.asyncio(loop_scope="module")

LEEDS = child_pb2.Address(lines=["9 Park Road"], town="Leeds", postcode="LS1 4AP")
HIDDEN = child_pb2.Address(lines=["3 Hidden Close"], town="Manchester", postcode="M1 1AE")


def _name(world: World) -> child_pb2.PersonName:
    letters = "".join(chr(ord("a") + int(c, 16)) for c in world.prefix)
    return child_pb2.PersonName(given_names="Philippa", family_name=f"Gor{letters[:5]}")


def _bare(world: World, rid: str, **fields: object) -> pb.SourceRecord:
    fields.setdefault("as_of", timestamp_pb2.Timestamp(seconds=1_000_000_000))
    record = world.record(rid, **fields)
    for field in ("carers", "involvements", "education_setting", "gp_practice"):
        record.ClearField(field)  # type: ignore[arg-type]
    return record


async def _shield(world: World, contactpoint_id: str, manager: tuple[tuple[str, str], ...], on: bool) -> None:
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=contactpoint_id, shielded=on, reason="court order"),
        metadata=manager,
    )


async def _shielded_child_of_a(world: World) -> str:
    """A's child, filed without its NHS number, then shielded by A."""
    first = await world.submit(world.record("sc-1", name=_name(world), address=HIDDEN, nhs_number=""), "r1")
    await _shield(world, first.contactpoint_id, world.services.manager_a, True)
    return first.contactpoint_id


async def _as_next_record(world: World) -> pb.SubmitSourceRecordResponse:
    """A's next record of its shielded child, from another of A's systems, with the NHS number."""
    record = world.record("hv-1", source_system="health-visiting", name=_name(world), address=HIDDEN)
    return await world.submit(record, "r3")


async def _decoy_like_it(world: World) -> pb.SubmitSourceRecordResponse:
    """B's record with the child's name, date of birth and NHS number, at B's address."""
    record = _bare(world, "b-1", source_system="edu", name=_name(world), address=LEEDS)
    return await world.submit(record, "r2", metadata=world.council_b)


async def _b_never_sees(world: World, contactpoint_id: str) -> None:
    rows = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND (new_child = :c OR candidate = :c)",
        c=contactpoint_id,
    )
    for (task_id,) in rows:
        await never_offered(world, world.services.manager_b, str(task_id))


async def test_a_decoy_under_the_childs_nhs_number_does_not_draw_its_councils_next_record(
    world: World,
) -> None:
    # B files a child of its own under another name with the shielded child's NHS number and
    # date of birth: it drew A's next record into a new child, unshielded, that B decided.
    child = await _shielded_child_of_a(world)
    other = child_pb2.PersonName(given_names="Zachary", family_name="Quixwell")
    decoy = _bare(world, "b-1", source_system="edu", address=LEEDS, gender=child_pb2.GENDER_MALE, name=other)
    assert (await world.submit(decoy, "r2", metadata=world.council_b)).outcome == pb.MATCH_OUTCOME_CREATED
    next_record = await _as_next_record(world)
    assert (next_record.outcome, next_record.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, child)
    assert (await world.get(child)).shielded
    await _b_never_sees(world, child)


async def test_a_decoys_provisional_shield_stays_until_its_task_is_decided(world: World) -> None:
    # B's decoy (name, date of birth and NHS number) is a possible match shown shielded; B's data
    # manager unshielding it lifted that shield, and A's next record then joined the decoy.
    child = await _shielded_child_of_a(world)
    decoy = await _decoy_like_it(world)
    assert decoy.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH
    await _shield(world, decoy.contactpoint_id, world.services.manager_b, False)
    assert (await world.get(decoy.contactpoint_id)).shielded  # until A decides
    next_record = await _as_next_record(world)
    assert (next_record.outcome, next_record.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, child)
    await _b_never_sees(world, child)


async def test_after_a_keeps_a_decoy_apart_its_next_record_is_still_its_own_to_decide(world: World) -> None:
    # A rightly keeps B's decoy apart; A's next record fits both: it was reviewed against B's
    # decoy, a new child unshielded whose task B decided.
    child = await _shielded_child_of_a(world)
    decoy = await _decoy_like_it(world)
    task = await next_task(world, world.services.manager_a)
    assert task.new_child.contactpoint_id == decoy.contactpoint_id
    await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="two"
        ),
        metadata=world.services.manager_a,
    )
    next_record = await _as_next_record(world)
    if next_record.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH:
        assert (await world.get(next_record.contactpoint_id)).shielded
        await _b_never_sees(world, next_record.contactpoint_id)
        task = await next_task(world, world.services.manager_a)
        assert (task.new_child.contactpoint_id, task.candidate.contactpoint_id) == (
            next_record.contactpoint_id,
            child,
        )
    else:
        assert (next_record.outcome, next_record.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, child)
    await _b_never_sees(world, child)
