"""A child already split in two (filed twice before anything joined its records): the record that
links to one and would link to the other puts the pair before a data manager, over real gRPC on
SQLite and PostgreSQL, and fails safe around shielding while it waits."""

from __future__ import annotations

import grpc
import pytest

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.services.records.conftest import World
from tests.services.records.test_data_managers import never_offered, next_task

pytestmark = pytest.mark.asyncio(loop_scope="module")

LEEDS = child_pb2.Address(lines=["9 Park Road"], town="Leeds", postcode="LS1 4AP")


def names(world: World) -> tuple[child_pb2.PersonName, child_pb2.PersonName]:
    """The child's old and new names, made of this test's own letters so that no other test's
    children (at the same addresses) are candidates."""
    letters = "".join(chr(ord("a") + int(c, 16)) for c in world.prefix)
    given = letters[:5].capitalize()
    return (
        child_pb2.PersonName(given_names=given, family_name=f"Ok{letters[2:7]}"),
        child_pb2.PersonName(given_names=given, family_name=f"Me{letters[4:]}"),
    )


async def split_child(world: World) -> tuple[str, str]:
    """The same child twice: under its old name at the old home, and renamed after a move (no
    NHS number, no former name): (old, new)."""
    old_name, new_name = names(world)
    old = await world.submit(world.record("sc-1", name=old_name, nhs_number=""), "r1")
    new = await world.submit(
        world.record("ed-1", source_system="education", name=new_name, address=LEEDS, nhs_number=""), "r2"
    )
    assert (old.outcome, new.outcome) == (pb.MATCH_OUTCOME_CREATED, pb.MATCH_OUTCOME_CREATED)
    return old.contactpoint_id, new.contactpoint_id


async def bridge(world: World, system: str) -> pb.SubmitSourceRecordResponse:
    """Another system's record: the new name and home, and the old name as a former name."""
    rid = f"{system}-1"
    old_name, new_name = names(world)
    record = world.record(
        rid, source_system=system, name=new_name, address=LEEDS, nhs_number="", former_names=[old_name]
    )
    return await world.submit(record, rid)


def open_tasks(world: World, a: str, b: str) -> list[tuple[object, ...]]:
    return world.sql(
        "SELECT new_child, candidate FROM review_tasks WHERE status = 'open'"
        " AND new_child IN (:a, :b) AND candidate IN (:a, :b)",
        a=a,
        b=b,
    )


async def test_a_record_joining_a_split_child_raises_a_task_and_linking_merges(world: World) -> None:
    old, new = await split_child(world)
    linked = await bridge(world, "health-visiting")
    assert (linked.outcome, linked.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, new)
    assert open_tasks(world, old, new) == [(new, old)]
    # The same pair is not raised twice, however many records say so.
    assert (await bridge(world, "youth-justice")).contactpoint_id == new
    assert len(open_tasks(world, old, new)) == 1

    task = await next_task(world, world.services.manager_a)
    assert (task.new_child.contactpoint_id, task.candidate.contactpoint_id) == (new, old)
    assert "rule: a new record links to both children (review)" in task.reasons
    resolved = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="one child"
        ),
        metadata=world.services.manager_a,
    )
    assert resolved.contactpoint_id == old
    assert (await world.get(new)).contactpoint_id == old  # the retired id reads as its survivor


async def keep_next_apart(world: World) -> None:
    """A's data manager keeps the two children of this test's next task apart."""
    task = await next_task(world, world.services.manager_a)
    await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="two children"
        ),
        metadata=world.services.manager_a,
    )


async def test_kept_apart_is_not_raised_again(world: World) -> None:
    old, new = await split_child(world)
    await bridge(world, "health-visiting")
    await keep_next_apart(world)
    assert (await bridge(world, "youth-justice")).outcome == pb.MATCH_OUTCOME_LINKED
    assert open_tasks(world, old, new) == []


@pytest.mark.parametrize("shielded_side", ["old", "new"])
async def test_either_child_is_shown_shielded_while_the_other_is(world: World, shielded_side: str) -> None:
    old, new = await split_child(world)
    shielded, other = (old, new) if shielded_side == "old" else (new, old)
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=shielded, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    assert not (await world.get(other)).shielded
    await bridge(world, "health-visiting")
    # The unshielded copy may hold the shielded child's address: hidden until a manager decides.
    assert (await world.get(other)).shielded
    await keep_next_apart(world)
    assert not (await world.get(other)).shielded
    assert (await world.get(shielded)).shielded


async def test_a_record_like_two_children_kept_apart_is_reviewed_not_joined_to_either(world: World) -> None:
    # The same details twice from one system, kept apart by a data manager; a third system's
    # record just like them cannot say which child it is (found by probing: it joined the one
    # that happened to score first, silently).
    old_name, _ = names(world)
    first = await world.submit(world.record("sc-1", name=old_name, nhs_number=""), "r1")
    second = await world.submit(world.record("sc-2", name=old_name, nhs_number=""), "r2")
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH  # one system's second record
    await keep_next_apart(world)
    # Next door, as if moved: still the pair's street and postcode.
    next_door = child_pb2.Address(lines=["2 High Street"], town="Manchester", postcode="M1 1AE")
    third = await world.submit(
        world.record(
            "hv-1", source_system="health-visiting", name=old_name, nhs_number="", address=next_door
        ),
        "r3",
    )
    assert third.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH
    assert third.contactpoint_id not in {first.contactpoint_id, second.contactpoint_id}
    task = await next_task(world, world.services.manager_a)
    assert task.new_child.contactpoint_id == third.contactpoint_id
    assert task.candidate.contactpoint_id in {first.contactpoint_id, second.contactpoint_id}
    assert (
        "rule: a record that fits either of two children a data manager kept apart (review)" in task.reasons
    )
    # Another from next door fits the new child best, and still the kept-apart pair about as
    # well: reviewed too (found by re-probing: it joined the new child, as it scored first).
    fourth = await world.submit(
        world.record("yj-1", source_system="youth-justice", name=old_name, nhs_number="", address=next_door),
        "r4",
    )
    assert fourth.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH


async def test_a_record_like_a_kept_apart_pair_one_shielded_elsewhere_is_shown_shielded(world: World) -> None:
    # Found by review: A kept two children apart and shielded one; B's record fitted both, the
    # shielded one best. It could not join the shielded child (another organisation's), nor the
    # other (the pair was kept apart): it was reviewed against the unshielded one alone, and its
    # new child, perhaps the shielded child at its new address, was shown in full.
    old_name, _ = names(world)
    first = await world.submit(world.record("sc-1", name=old_name, nhs_number=""), "r1")
    next_door = child_pb2.Address(lines=["2 High Street"], town="Manchester", postcode="M1 1AE")
    second = await world.submit(world.record("sc-2", name=old_name, nhs_number="", address=next_door), "r2")
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH  # one system's second record
    await keep_next_apart(world)
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=second.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    record = world.record(
        "hv-1", source_system="health-visiting", name=old_name, nhs_number="", address=next_door
    )
    third = await world.submit(record, "r3", metadata=world.council_b)
    assert third.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH
    assert third.contactpoint_id not in {first.contactpoint_id, second.contactpoint_id}
    assert (await world.get(third.contactpoint_id)).shielded
    # The shielded child's data managers are asked too.
    pairs = world.sql(
        "SELECT candidate FROM review_tasks WHERE status = 'open' AND new_child = :n", n=third.contactpoint_id
    )
    assert second.contactpoint_id in {p[0] for p in pairs}


async def _shielded_in_a_renamed_in_b(
    world: World,
) -> tuple[pb.SubmitSourceRecordResponse, pb.SubmitSourceRecordResponse]:
    """A's child under the old name at a hidden address, shielded by A; B's under the new name."""
    old_name, new_name = names(world)
    hidden = child_pb2.Address(lines=["3 Hidden Close"], town="Manchester", postcode="M1 1AE")
    a_child = await world.submit(world.record("sc-1", name=old_name, nhs_number="", address=hidden), "r1")
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=a_child.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    b_child = await world.submit(
        world.record("ed-1", source_system="education", name=new_name, address=LEEDS, nhs_number=""),
        "r2",
        metadata=world.council_b,
    )
    assert b_child.outcome == pb.MATCH_OUTCOME_CREATED
    return a_child, b_child


async def test_a_split_across_councils_is_the_other_childs_council_to_decide(world: World) -> None:
    """B files its own child under a new name, then a record naming A's shielded child's name as a
    former one: the record joins B's child and would have joined A's. A decides; B, which sent the
    record, is never offered the task and cannot resolve it (found by probing: with the joined
    child as the task's candidate, B was handed A's shielded child in full and could merge it)."""
    a_child, b_child = await _shielded_in_a_renamed_in_b(world)
    old_name, new_name = names(world)
    bridge = world.record(
        "hv-1",
        source_system="health-visiting",
        name=new_name,
        address=LEEDS,
        nhs_number="",
        former_names=[old_name],
    )
    linked = await world.submit(bridge, "r3", metadata=world.council_b)
    assert (linked.outcome, linked.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, b_child.contactpoint_id)
    [(task_id,)] = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND new_child = :b AND candidate = :a",
        a=a_child.contactpoint_id,
        b=b_child.contactpoint_id,
    )
    await never_offered(world, world.services.manager_b, str(task_id))
    for decision in (pb.REVIEW_DECISION_LINK, pb.REVIEW_DECISION_KEEP_APART):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.records.ResolveReviewTask(
                pb.ResolveReviewTaskRequest(task_id=str(task_id), decision=decision, reason="x"),
                metadata=world.services.manager_b,
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id and task.candidate.contactpoint_id == a_child.contactpoint_id
    await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="two"
        ),
        metadata=world.services.manager_a,
    )
    assert (await world.get(a_child.contactpoint_id)).shielded


async def test_a_split_whose_joined_child_is_shielded_is_that_childs_council_to_decide(world: World) -> None:
    """The mirror of the test above: A's own record joins A's shielded child and would have joined
    B's unshielded one. The task's candidate is A's shielded child, so A decides and B's data
    managers never see it (with B's child as the candidate, B would be handed A's shielded child in
    full, as the task's new child)."""
    a_child, b_child = await _shielded_in_a_renamed_in_b(world)
    linked = await bridge(world, "health-visiting")
    assert (linked.outcome, linked.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, a_child.contactpoint_id)
    [(task_id,)] = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND new_child = :b AND candidate = :a",
        a=a_child.contactpoint_id,
        b=b_child.contactpoint_id,
    )
    assert (await world.get(b_child.contactpoint_id)).shielded  # shown so while the task waits
    await never_offered(world, world.services.manager_b, str(task_id))
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id and task.candidate.contactpoint_id == a_child.contactpoint_id
