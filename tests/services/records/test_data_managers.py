"""Data managers over real gRPC, on SQLite and PostgreSQL: the review queue one task at a time,
link and keep apart, merge and unmerge, shielding — scoped to the manager's organisation, each
call audited before it answers."""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_status import rpc_status
from sqlalchemy import text

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.records.main import MIGRATIONS, build
from services.records.settings import RecordsSettings
from tests.harness import platform_account, records_keys, running_service, subject_access
from tests.services.records.conftest import World, error_reason

pytestmark = pytest.mark.asyncio(loop_scope="module")


def audit_events(world: World, actor: str) -> list[str]:
    """Each audit event of `actor`, as its leaf data (oldest first)."""
    db = Database(world.services.audit_url)
    try:
        rows = db.run_sync(
            lambda c: c.execute(
                text("SELECT leaf_data FROM leaves WHERE actor = :a ORDER BY leaf_index"), {"a": actor}
            ).all(),
            write=False,
        )
    finally:
        db.dispose()
    return [bytes(r[0]).decode("utf-8", "replace") for r in rows]


def accesses(world: World, contactpoint_id: str) -> list[str]:
    """The actions of the subject-access report on `contactpoint_id` (oldest first)."""
    return [a.action for a in subject_access(world.services.audit_url, contactpoint_id)]


def _unique(given: str, family: str) -> child_pb2.PersonName:
    """A name no other test uses (shielding one child must not shield another test's)."""
    return child_pb2.PersonName(given_names=given, family_name=family)


async def possible_match(world: World) -> tuple[str, str]:
    """A child and its duplicate in the same feed (never joined automatically): (candidate, new)."""
    first = await world.submit(world.record("sc-1"), "r1")
    second = await world.submit(world.record("sc-2"), "r2")
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH
    return first.contactpoint_id, second.contactpoint_id


def another_child(world: World) -> pb.SourceRecord:
    """A record of another child than `world.record`'s (another name, no NHS number), from the
    same council's education system: created, never joined to it."""
    return world.record(
        "ed-1",
        source_system="education",
        name=child_pb2.PersonName(given_names="Zara", family_name="Mensah"),
        nhs_number="",
    )


async def next_task(
    world: World, manager: tuple[tuple[str, str], ...], *, task_id: str = ""
) -> pb.ReviewTask:
    """The next task for `manager` (`task_id`, when given) of this test's children, keeping other
    tests' tasks apart on the way (they share the services)."""
    for _ in range(50):
        task = (await world.records.NextReviewTask(pb.NextReviewTaskRequest(), metadata=manager)).task
        ours = task.new_child.date_of_birth == world.dob and task.candidate.date_of_birth == world.dob
        if task.task_id == task_id or (ours and not task_id):
            return task
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(
                task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="another test's task"
            ),
            metadata=manager,
        )
    raise AssertionError("this test's task never came")


async def never_offered(world: World, manager: tuple[tuple[str, str], ...], task_id: str) -> None:
    """Go through `manager`'s whole queue (keeping other tests' tasks apart) and never meet `task_id`."""
    while True:
        try:
            task = (await world.records.NextReviewTask(pb.NextReviewTaskRequest(), metadata=manager)).task
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return
        assert task.task_id != task_id
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(
                task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="another test's task"
            ),
            metadata=manager,
        )


async def test_link_a_possible_match_and_the_retired_id_reads_as_the_survivor(world: World) -> None:
    candidate, new = await possible_match(world)
    task = await next_task(world, world.services.manager_a)
    assert (task.candidate.contactpoint_id, task.new_child.contactpoint_id) == (candidate, new)
    assert task.score != 0 and task.reasons and task.candidate.address.postcode == "M1 1AE"
    resolved = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="same child"
        ),
        metadata=world.services.manager_a,
    )
    assert resolved.contactpoint_id == candidate
    assert (await world.get(new)).contactpoint_id == candidate
    # Both children were shown and decided on: each one's subject-access report lists both calls.
    for child in (candidate, new):
        assert accesses(world, child) == ["NextReviewTask", "ResolveReviewTask"], child
    # A retry of the same decision gives the same answer; another decision is refused.
    again = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="same child"
        ),
        metadata=world.services.manager_a,
    )
    assert again.contactpoint_id == candidate
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(
                task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="changed my mind"
            ),
            metadata=world.services.manager_a,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "TASK_ALREADY_RESOLVED"


async def test_a_task_is_decided_only_by_the_data_manager_it_was_handed_to(world: World) -> None:
    # Found by probing: a task id read elsewhere (here, from the database) was decided by a data
    # manager who had never been shown it. One task at a time, as the queue hands them out.
    candidate, new = await possible_match(world)
    [(task_id,)] = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND new_child = :n AND candidate = :c",
        n=new,
        c=candidate,
    )
    request = pb.ResolveReviewTaskRequest(task_id=task_id, decision=pb.REVIEW_DECISION_LINK, reason="unseen")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(request, metadata=world.services.manager_a)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "TASK_NOT_HANDED_OUT"
    assert (await world.get(new)).contactpoint_id == new  # nothing was done
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id
    resolved = await world.records.ResolveReviewTask(request, metadata=world.services.manager_a)
    assert resolved.contactpoint_id == candidate


async def test_keep_apart_sticks(world: World) -> None:
    candidate, new = await possible_match(world)
    task = await next_task(world, world.services.manager_a)
    resolved = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(
            task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="twins"
        ),
        metadata=world.services.manager_a,
    )
    assert resolved.contactpoint_id == new
    # Updates of either record never bring the pair back together or before a manager again.
    changed = world.record("sc-2", gender=child_pb2.GENDER_UNSPECIFIED)
    again = await world.submit(changed, "r3")
    assert (again.contactpoint_id, again.outcome) == (new, pb.MATCH_OUTCOME_LINKED)
    assert (await world.get(candidate)).contactpoint_id == candidate
    assert (await world.get(new)).contactpoint_id == new
    pairs = world.sql(
        "SELECT count(*) FROM kept_apart"
        " WHERE (child_a = :a AND child_b = :b) OR (child_a = :b AND child_b = :a)",
        a=candidate,
        b=new,
    )
    assert pairs == [(1,)]
    waiting = world.sql(
        "SELECT count(*) FROM review_tasks WHERE status = 'open' AND new_child IN (:a, :b)",
        a=candidate,
        b=new,
    )
    assert waiting == [(0,)]


async def test_merge_then_unmerge_round_trip(world: World) -> None:
    first = await world.submit(world.record("sc-1"), "r1")
    other = another_child(world)
    second = await world.submit(other, "r2")
    assert second.outcome == pb.MATCH_OUTCOME_CREATED
    before = [await world.get(first.contactpoint_id), await world.get(second.contactpoint_id)]
    merged = await world.records.MergeChildren(
        pb.MergeChildrenRequest(
            survivor_id=first.contactpoint_id, retired_id=second.contactpoint_id, reason="duplicate"
        ),
        metadata=world.services.manager_a,
    )
    assert merged.child.contactpoint_id == first.contactpoint_id
    names = {merged.child.name.family_name, *(n.family_name for n in merged.child.former_names)}
    assert names == {"Mensah", "Okafor"}
    assert (await world.get(second.contactpoint_id)).contactpoint_id == first.contactpoint_id
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id, reason="not the same"),
        metadata=world.services.manager_a,
    )
    after = [await world.get(first.contactpoint_id), await world.get(second.contactpoint_id)]
    # The merge and the unmerge changed both children: each one's report lists both.
    for child in (first.contactpoint_id, second.contactpoint_id):
        assert accesses(world, child) == ["MergeChildren", "UnmergeChildren"], child
    # Both exactly as before the merge, update times included (nothing changed them meanwhile).
    assert after == before
    # The same manager's retry (its answer lost) answers as the first did and changes nothing;
    # another organisation's manager is told there is no merge to undo.
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id, reason="not the same"),
        metadata=world.services.manager_a,
    )
    assert [await world.get(first.contactpoint_id), await world.get(second.contactpoint_id)] == before
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.UnmergeChildren(
            pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id, reason="again"),
            metadata=world.services.manager_b,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # An unmerged pair is kept apart for ever.
    pairs = world.sql(
        "SELECT count(*) FROM kept_apart"
        " WHERE (child_a = :a AND child_b = :b) OR (child_a = :b AND child_b = :a)",
        a=first.contactpoint_id,
        b=second.contactpoint_id,
    )
    assert pairs == [(1,)]


async def _merged_into_a_shared_child(world: World, name: child_pb2.PersonName) -> tuple[str, str]:
    """X, held by A and B; Y (`name`: each test its own, as Y is shielded), A's only, shielded by A
    and merged by A into X: (X, Y)."""
    x = await world.submit(world.record("sc-1"), "r1")
    linked = await world.submit(world.record("b-1"), "r2", metadata=world.council_b)
    assert (linked.outcome, linked.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, x.contactpoint_id)
    other = another_child(world)
    other.name.CopyFrom(name)
    y = await world.submit(other, "r3")
    assert y.outcome == pb.MATCH_OUTCOME_CREATED
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=y.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=x.contactpoint_id, retired_id=y.contactpoint_id, reason="same"),
        metadata=world.services.manager_a,
    )
    return x.contactpoint_id, y.contactpoint_id


async def test_holding_the_merged_child_alone_does_not_let_a_council_unmerge_anothers(world: World) -> None:
    """B holds X; A merged its shielded Y into X. B may act on X, but an unmerge puts back Y, which
    B holds nothing of: NOT_FOUND, and nothing changes (found by probing: B unmerged A's shielded
    child back out of X)."""
    x, y = await _merged_into_a_shared_child(world, _unique("Ottoline", "Quennell"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.UnmergeChildren(
            pb.UnmergeChildrenRequest(retired_id=y, reason="not the same"), metadata=world.services.manager_b
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.get(y)).contactpoint_id == x  # still merged
    # A, which made the merge and holds Y's record, undoes it: Y comes back shielded.
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=y, reason="not the same"), metadata=world.services.manager_a
    )
    back = await world.get(y)
    assert back.contactpoint_id == y and back.shielded


async def test_a_merge_from_before_0015_is_undone_by_its_maker_or_a_holder_of_the_child_put_back(
    world: World,
) -> None:
    """A merge made before merges remembered their maker's organisation: its maker (by name) may
    undo it, and so may an organisation holding a record of the child put back; B, holding only
    the merged child, may not."""
    _, y = await _merged_into_a_shared_child(world, _unique("Wilhelmina", "Prothero"))
    world.sql("UPDATE merges SET merged_by_organisation = NULL WHERE retired_id = :y", y=y)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.UnmergeChildren(
            pb.UnmergeChildrenRequest(retired_id=y, reason="x"), metadata=world.services.manager_b
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    world.sql("UPDATE merges SET merged_by = 'someone.else' WHERE retired_id = :y", y=y)
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=y, reason="not the same"), metadata=world.services.manager_a
    )
    assert (await world.get(y)).contactpoint_id == y


async def test_a_child_changed_while_merged_is_dated_by_its_unmerge(world: World) -> None:
    first = await world.submit(world.record("sc-1"), "r1")
    other = another_child(world)
    second = await world.submit(other, "r2")
    before = await world.get(first.contactpoint_id)
    await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=first.contactpoint_id, retired_id=second.contactpoint_id),
        metadata=world.services.manager_a,
    )
    # A new version of the survivor's record arrives while the two are one child.
    moved = world.record("sc-1", address=child_pb2.Address(lines=["2 New Road"], postcode="M2 2BB"))
    assert (await world.submit(moved, "r3")).contactpoint_id == first.contactpoint_id
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id), metadata=world.services.manager_a
    )
    after = await world.get(first.contactpoint_id)
    assert after.address.postcode == "M2 2BB"
    assert after.update_time.ToDatetime() > before.update_time.ToDatetime()


async def test_a_retired_child_changed_while_merged_is_dated_by_its_unmerge(world: World) -> None:
    # Found by review: the retired child's row is never touched while it is merged, so a change
    # to its own record meanwhile (here a move sent by its system) was hidden by its old update
    # time. Each child's time comes back only if its record is as it was; the survivor's is.
    first = await world.submit(world.record("sc-1"), "r1")
    second = await world.submit(another_child(world), "r2")
    before = [await world.get(first.contactpoint_id), await world.get(second.contactpoint_id)]
    await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=first.contactpoint_id, retired_id=second.contactpoint_id),
        metadata=world.services.manager_a,
    )
    moved = another_child(world)
    moved.address.CopyFrom(child_pb2.Address(lines=["5 Far Lane"], town="Leeds", postcode="LS1 4AP"))
    assert (await world.submit(moved, "r3")).contactpoint_id == first.contactpoint_id
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id), metadata=world.services.manager_a
    )
    survivor, retired = await world.get(first.contactpoint_id), await world.get(second.contactpoint_id)
    assert retired.address.postcode == "LS1 4AP"
    assert retired.update_time.ToDatetime() > before[1].update_time.ToDatetime()
    assert survivor == before[0]


async def test_a_merge_an_unmerge_and_a_shield_need_no_reason(world: World) -> None:
    # CONTRACT §4 marks the reason required on ResolveReviewTask only: a merge, an unmerge and a
    # shield without one are done (and audited), a task's decision without one is refused.
    first = await world.submit(world.record("sc-1", name=_unique("Ottoline", "Brackenbury")), "r1")
    other = world.record(
        "ed-1", source_system="education", name=_unique("Wilhelmina", "Treadwell"), nhs_number=""
    )
    second = await world.submit(other, "r2")
    manager = world.services.manager_a
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=first.contactpoint_id, shielded=True), metadata=manager
    )
    assert (await world.get(first.contactpoint_id)).shielded
    merged = await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=first.contactpoint_id, retired_id=second.contactpoint_id),
        metadata=manager,
    )
    assert merged.child.contactpoint_id == first.contactpoint_id
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=second.contactpoint_id), metadata=manager
    )
    assert (await world.get(second.contactpoint_id)).contactpoint_id == second.contactpoint_id
    for child in (first.contactpoint_id, second.contactpoint_id):
        assert accesses(world, child)[-2:] == ["MergeChildren", "UnmergeChildren"], child


async def test_a_decision_without_a_reason_is_refused(world: World) -> None:
    manager = world.services.manager_a
    candidate, _ = await possible_match(world)
    task = await next_task(world, manager)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK),
            metadata=manager,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await world.get(candidate)).contactpoint_id == candidate


async def test_an_unknown_task_id_is_not_found_and_a_missing_one_invalid(world: World) -> None:
    for task_id, code in (
        ("no-such-task", grpc.StatusCode.NOT_FOUND),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", grpc.StatusCode.NOT_FOUND),
        ("0" * 32, grpc.StatusCode.NOT_FOUND),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.records.ResolveReviewTask(
                pb.ResolveReviewTaskRequest(
                    task_id=task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="twins"
                ),
                metadata=world.services.manager_a,
            )
        assert err.value.code() == code, task_id


async def test_reasons_too_long_as_stored_are_refused_on_either_engine(world: World) -> None:
    # Found by review: 400 accented letters, each a letter and a combining mark, are 800 code
    # points, more than the column holds: PostgreSQL refused the insert and the call was INTERNAL.
    first = await world.submit(world.record("sc-1"), "r1")
    other = another_child(world)
    second = await world.submit(other, "r2")
    long_reason = "e\u0301" * 400
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.MergeChildren(
            pb.MergeChildrenRequest(
                survivor_id=first.contactpoint_id, retired_id=second.contactpoint_id, reason=long_reason
            ),
            metadata=world.services.manager_a,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await world.get(second.contactpoint_id)).contactpoint_id == second.contactpoint_id
    await possible_match(world)
    task = await next_task(world, world.services.manager_a)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(
                task_id=task.task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason=long_reason
            ),
            metadata=world.services.manager_a,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_child_due_for_archiving_is_no_data_managers_to_act_on(world: World) -> None:
    # Dead a year and a day ago: archived now, though the hourly run has not come round yet. It is
    # gone from GetChild and the queue; shielding it, or merging it either way, is NOT_FOUND too
    # (found by review: it was merged into, its record returned, and shielded).
    died = dt.date.today() - dt.timedelta(days=367)
    dead = await world.submit(
        world.record("sc-1", date_of_death=date_pb2.Date(year=died.year, month=died.month, day=died.day)),
        "r1",
    )
    other = another_child(world)
    living = await world.submit(other, "r2")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.get(dead.contactpoint_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    manager = world.services.manager_a
    calls = [
        world.records.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=dead.contactpoint_id, shielded=True, reason="x"),
            metadata=manager,
        ),
        world.records.MergeChildren(
            pb.MergeChildrenRequest(
                survivor_id=dead.contactpoint_id, retired_id=living.contactpoint_id, reason="x"
            ),
            metadata=manager,
        ),
        world.records.MergeChildren(
            pb.MergeChildrenRequest(
                survivor_id=living.contactpoint_id, retired_id=dead.contactpoint_id, reason="x"
            ),
            metadata=manager,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.get(living.contactpoint_id)).contactpoint_id == living.contactpoint_id


async def test_shield_and_unshield(world: World) -> None:
    child = await world.submit(world.record("sc-1"), "r1")
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    assert (await world.get(child.contactpoint_id)).shielded
    # A new duplicate of a shielded child is shown shielded until a data manager decides.
    duplicate = await world.submit(world.record("sc-2"), "r2")
    assert duplicate.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH
    assert (await world.get(duplicate.contactpoint_id)).shielded
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=False, reason="order lifted"),
        metadata=world.services.manager_a,
    )
    assert not (await world.get(child.contactpoint_id)).shielded


async def _shield(world: World, child: str, shielded: bool, manager: tuple[tuple[str, str], ...]) -> None:
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=child, shielded=shielded, reason="safeguarding"),
        metadata=manager,
    )


async def test_only_an_organisation_that_shielded_a_child_lifts_the_shield(world: World) -> None:
    """A and B hold the child; A shields it. B may act on the child but not lift A's shield
    (FAILED_PRECONDITION, SHIELDED_BY_ANOTHER_ORGANISATION, not naming A; nothing changes). Where both
    shielded it, each lifts its own shield, and the child is unshielded once both have; once A
    holds no record of it, B may lift it (found by probing: B unshielded A's shield, and A's address
    for the child was shown to every practitioner)."""
    child = (
        await world.submit(world.record("sc-1", name=_unique("Isolde", "Farquharson")), "r1")
    ).contactpoint_id
    linked = await world.submit(
        world.record("b-1", name=_unique("Isolde", "Farquharson")), "r2", metadata=world.council_b
    )
    assert linked.contactpoint_id == child
    await _shield(world, child, True, world.services.manager_a)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _shield(world, child, False, world.services.manager_b)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "SHIELDED_BY_ANOTHER_ORGANISATION"
    infos = [error_details_pb2.ErrorInfo() for _ in rpc_status.from_call(err.value).details]
    unpacked = [i for i, d in zip(infos, rpc_status.from_call(err.value).details, strict=True) if d.Unpack(i)]
    # How many organisations shielded it, not which: that may give away where the child lives
    # (found by review: the refusal named A).
    assert dict(unpacked[0].metadata) == {"shielding_organisations": "1"}
    assert "E08000003" not in str(err.value.details()) + str(err.value.trailing_metadata())
    assert (await world.get(child)).shielded
    # B shields it too, then lifts its shield: A's still stands (found by re-probing: B's lift
    # cleared every shield on the child), and the audit event says so (found by review: it read
    # as the shield lifted, at high severity).
    await _shield(world, child, True, world.services.manager_b)
    await _shield(world, child, False, world.services.manager_b)
    assert (await world.get(child)).shielded
    lifted = audit_events(world, "bea.manager")[-1]
    assert "still shielded by another organisation" in lifted and '"severity":"WARNING"' in lifted
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _shield(world, child, False, world.services.manager_b)
    assert error_reason(err.value) == "SHIELDED_BY_ANOTHER_ORGANISATION"
    # Both shield it: the first to lift withdraws its own shield, the child is unshielded once both have.
    await _shield(world, child, True, world.services.manager_b)
    await _shield(world, child, False, world.services.manager_a)
    assert (await world.get(child)).shielded
    await _shield(world, child, False, world.services.manager_b)
    assert not (await world.get(child)).shielded
    lifted = audit_events(world, "bea.manager")[-1]
    assert "still shielded" not in lifted and '"severity":"HIGH"' in lifted
    # A shields it again, then withdraws its record: A's shield no longer stands in B's way.
    await _shield(world, child, True, world.services.manager_a)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _shield(world, child, False, world.services.manager_b)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await world.records.WithdrawSourceRecord(
        pb.WithdrawSourceRecordRequest(source_system="social-care", source_record_id=world.id("sc-1")),
        metadata=world.council_a,
    )
    await _shield(world, child, False, world.services.manager_b)
    assert not (await world.get(child)).shielded


async def test_a_child_shielded_after_its_task_was_raised_is_decided_by_its_own_organisation(
    world: World,
) -> None:
    """A's record, B's child's NHS number with a day of the birth date out, made A's new child N
    and a task (N, B's child) that B decides. A then shields N: the task is A's to decide, N the
    candidate; B is never shown it (found by review: B was handed N's address and carers in full,
    and could join it to B's child)."""
    name = _unique("Seraphina", "Quartermaine")
    held_by_b = await world.submit(world.record("b-1", name=name), "r1", metadata=world.council_b)
    b_child = held_by_b.contactpoint_id
    born = date_pb2.Date(year=world.dob.year, month=world.dob.month, day=world.dob.day % 27 + 1)
    new = await world.submit(world.record("sc-1", name=name, date_of_birth=born), "r2")
    assert new.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH and new.contactpoint_id != b_child
    [(task_id,)] = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND new_child = :n AND candidate = :c",
        n=new.contactpoint_id,
        c=b_child,
    )
    await _shield(world, new.contactpoint_id, True, world.services.manager_a)
    await never_offered(world, world.services.manager_b, str(task_id))
    task = await next_task(world, world.services.manager_a, task_id=str(task_id))
    assert (task.candidate.contactpoint_id, task.new_child.contactpoint_id) == (new.contactpoint_id, b_child)


async def test_a_shield_merged_in_stands_on_the_merged_child(world: World) -> None:
    """A's shielded Y merged into X, which B holds too: B cannot lift the shield that now stands on X."""
    x, _ = await _merged_into_a_shared_child(world, _unique("Leopoldine", "Abernethy"))
    assert (await world.get(x)).shielded
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _shield(world, x, False, world.services.manager_b)
    assert error_reason(err.value) == "SHIELDED_BY_ANOTHER_ORGANISATION"
    assert (await world.get(x)).shielded
    await _shield(world, x, False, world.services.manager_a)
    assert not (await world.get(x)).shielded


async def test_a_shield_kept_by_an_unmerge_is_the_shielding_organisations_to_lift(world: World) -> None:
    """A shielded X, which B holds too; B merged X into a child of its own, D, and A's new record of
    the child (a new address) joined the merged child; B undid its merge. D keeps a shield for what
    it received while merged, and that shield is A's: B cannot lift it while A holds D (found by
    re-probing: it named no organisation, B lifted it, and A's new address was read by anyone)."""
    name = _unique("Philippa", "Ravenscroft")
    x = (await world.submit(world.record("sc-1", name=name, nhs_number=""), "r1")).contactpoint_id
    linked = await world.submit(world.record("b-1", name=name, nhs_number=""), "r2", metadata=world.council_b)
    assert linked.contactpoint_id == x
    await _shield(world, x, True, world.services.manager_a)
    own = world.record(
        "b-2",
        source_system="education",
        name=_unique("Barnabas", "Ottershaw"),
        nhs_number="",
        address=child_pb2.Address(lines=["3 Mill Row"], town="Leeds", postcode="LS6 2AB"),
    )
    d = (await world.submit(own, "r3", metadata=world.council_b)).contactpoint_id
    await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=d, retired_id=x, reason="same"), metadata=world.services.manager_b
    )
    moved = world.record(
        "sch-1",
        source_system="school",
        name=name,
        nhs_number="",
        address=child_pb2.Address(lines=["77 Refuge Lane"], town="Sheffield", postcode="S9 3HZ"),
    )
    assert (await world.submit(moved, "r4")).contactpoint_id == d
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=x, reason="not the same"), metadata=world.services.manager_b
    )
    assert (await world.get(d)).shielded
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _shield(world, d, False, world.services.manager_b)
    assert error_reason(err.value) == "SHIELDED_BY_ANOTHER_ORGANISATION"
    assert (await world.get(d)).shielded
    await _shield(world, d, False, world.services.manager_a)
    assert not (await world.get(d)).shielded


async def test_a_task_showing_a_shielded_child_in_full_is_a_high_severity_event(world: World) -> None:
    child = await world.submit(world.record("sc-1", name=_unique("Perpetua", "Arkwright")), "r1")
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    await world.submit(world.record("sc-2", name=_unique("Perpetua", "Arkwright")), "r2")
    before = len(audit_events(world, "dee.manager"))
    task = await next_task(world, world.services.manager_a)
    assert task.candidate.shielded and task.candidate.address.postcode  # shown in full
    shown = [e for e in audit_events(world, "dee.manager")[before:] if task.task_id in e]
    assert len(shown) == 1 and '"severity":"HIGH"' in shown[0]


async def test_another_organisations_manager_cannot_touch_the_child(world: World) -> None:
    candidate, new = await possible_match(world)
    b = world.services.manager_b
    calls = [
        world.records.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=candidate, shielded=False, reason="x"), metadata=b
        ),
        world.records.MergeChildren(
            pb.MergeChildrenRequest(survivor_id=candidate, retired_id=new, reason="x"), metadata=b
        ),
        world.records.UnmergeChildren(pb.UnmergeChildrenRequest(retired_id=new, reason="x"), metadata=b),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    task_id = world.sql("SELECT task_id FROM review_tasks WHERE new_child = :n", n=new)[0][0]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(task_id=str(task_id), decision=pb.REVIEW_DECISION_LINK, reason="x"),
            metadata=b,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await never_offered(world, b, str(task_id))  # B's queue never offers A's tasks
    assert (await world.get(candidate)).contactpoint_id == candidate


async def test_only_data_managers_and_bad_input(world: World) -> None:
    child = await world.submit(world.record("sc-1"), "r1")
    request = pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="x")
    for metadata in (world.person, world.council_a, world.gateway):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.records.SetShielded(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = [
        pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="x" * 501),
        pb.SetShieldedRequest(contactpoint_id="123456789012", shielded=True, reason="x"),
    ]
    for req in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.records.SetShielded(req, metadata=world.services.manager_a)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.MergeChildren(
            pb.MergeChildrenRequest(
                survivor_id=child.contactpoint_id, retired_id=child.contactpoint_id, reason="x"
            ),
            metadata=world.services.manager_a,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not (await world.get(child.contactpoint_id)).shielded


async def test_every_call_is_audited_once(world: World) -> None:
    before = len(audit_events(world, "dee.manager"))
    child = await world.submit(world.record("sc-1", name=_unique("Tobiah", "Quennell")), "r1")
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await world.records.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="x" * 501),
            metadata=world.services.manager_a,
        )
    events = audit_events(world, "dee.manager")[before:]
    assert len(events) == 2
    assert all("SetShielded" in e and child.contactpoint_id in e for e in events)
    refused_before = len(audit_events(world, "pat.practitioner"))
    with pytest.raises(grpc.aio.AioRpcError):
        await world.records.NextReviewTask(pb.NextReviewTaskRequest(), metadata=world.person)
    assert len(audit_events(world, "pat.practitioner")) == refused_before + 1


async def test_without_the_audit_service_nothing_is_done(world: World) -> None:
    """A records replica whose audit service is unreachable refuses data managers' calls
    UNAVAILABLE, and changes nothing."""
    child = await world.submit(world.record("sc-1", name=_unique("Ottoline", "Vasquez-Brennan")), "r1")
    settings = RecordsSettings.model_validate(
        {
            "listen": "127.0.0.1:0",
            "identity_target": world.services.identity_target,
            "database_url": world.services.records_url,
            "audit_target": "127.0.0.1:9",
            **records_keys(world.services.records_url),
            **platform_account(world.services.identity_url, "records"),
        }
    )
    async with AsyncExitStack() as stack:
        _, target = await stack.enter_async_context(running_service("records", MIGRATIONS, build, settings))
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(target))
        stub = pb_grpc.RecordsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetShielded(
                pb.SetShieldedRequest(contactpoint_id=child.contactpoint_id, shielded=True, reason="x"),
                metadata=world.services.manager_a,
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not (await world.get(child.contactpoint_id)).shielded


async def test_a_task_shows_sensitive_services_by_their_dates_only(world: World) -> None:
    """As the gateway shows a child to a shield-override reader: a sensitive involvement keeps its
    dates, never its service, practitioner or contacts; in a task and in a merge's answer alike."""
    await possible_match(world)
    task = await next_task(world, world.services.manager_a)
    for child in (task.new_child, task.candidate):
        sensitive = [i for i in child.involvements if i.sensitive]
        assert len(sensitive) == 1 and len(child.involvements) == 2
        assert not (sensitive[0].service_name or sensitive[0].practitioner_name or sensitive[0].phone)
        assert any(i.service_name == "School Nursing" for i in child.involvements)
    merged = await world.records.MergeChildren(
        pb.MergeChildrenRequest(
            survivor_id=task.candidate.contactpoint_id,
            retired_id=task.new_child.contactpoint_id,
            reason="same",
        ),
        metadata=world.services.manager_a,
    )
    assert [i.service_name for i in merged.child.involvements if i.sensitive] == [""]
    assert "Sexual Health Clinic" not in str(merged.child)


async def _across_organisations(
    world: World, address: child_pb2.Address, *, shielded: bool = False
) -> tuple[str, str, str]:
    """A's child, then B's record that may be it, at `address` (each test its own: B's record
    must not be another test's child's): (A's child, B's new child, the task's id)."""
    first = await world.submit(world.record("sc-1", nhs_number=""), "r1")
    if shielded:
        await world.records.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=first.contactpoint_id, shielded=True, reason="court order"),
            metadata=world.services.manager_a,
        )
    variant = world.record(
        "b-1",
        nhs_number="",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Okoro"),
        gender=child_pb2.GENDER_UNSPECIFIED,
        address=address,
    )
    second = await world.submit(variant, "r2", metadata=world.council_b)
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH, second
    task_id = str(
        world.sql("SELECT task_id FROM review_tasks WHERE new_child = :n", n=second.contactpoint_id)[0][0]
    )
    return first.contactpoint_id, second.contactpoint_id, task_id


async def test_a_possible_match_across_organisations_is_the_candidates_organisations_to_decide(
    world: World,
) -> None:
    """A's child and B's record that may be it: A, whose child may have been filed twice, is
    offered the task and links them; B, which sent the record, is never offered it and cannot
    resolve it (NOT_FOUND). Before, neither was, and the task waited for ever."""
    address = child_pb2.Address(lines=["9 Low Road"], town="Salford", postcode="M5 4WT")
    first, second, task_id = await _across_organisations(world, address)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(task_id=task_id, decision=pb.REVIEW_DECISION_LINK, reason="x"),
            metadata=world.services.manager_b,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await never_offered(world, world.services.manager_b, task_id)
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id
    assert (task.new_child.contactpoint_id, task.candidate.contactpoint_id) == (second, first)
    assert task.new_child.name.given_names == "Amelia"
    resolved = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(task_id=task_id, decision=pb.REVIEW_DECISION_LINK, reason="same child"),
        metadata=world.services.manager_a,
    )
    assert resolved.contactpoint_id == first
    assert (await world.get(second)).contactpoint_id == first
    # A undoes its link: B's child is put back; A's retry (its answer lost) is answered as the
    # first was, though the child put back holds only B's record (found by review: NOT_FOUND).
    for _ in range(2):
        await world.records.UnmergeChildren(
            pb.UnmergeChildrenRequest(retired_id=second, reason="not the same"),
            metadata=world.services.manager_a,
        )
    assert (await world.get(second)).contactpoint_id == second
    # B's manager did not make it, and is told there is no merge of its child to undo.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.UnmergeChildren(
            pb.UnmergeChildrenRequest(retired_id=second), metadata=world.services.manager_b
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_where_one_organisation_holds_both_children_no_other_is_shown_the_task(world: World) -> None:
    """A's child, also fed by B; then A's second system sends a record that may be it. A holds
    both children and decides; B, which holds only the candidate, is never offered the task and
    cannot resolve it (NOT_FOUND): it would be shown A's new child, address and all, and act on a
    child it holds no record of (found by probing: B's data manager was handed the task and
    linked it)."""
    first = await world.submit(world.record("sc-1"), "r1")
    by_b = world.record("ed-1", source_system="education")
    fed_by_b = await world.submit(by_b, "r2", metadata=world.council_b)
    assert (fed_by_b.outcome, fed_by_b.contactpoint_id) == (pb.MATCH_OUTCOME_LINKED, first.contactpoint_id)
    variant = world.record(
        "hl-1",
        source_system="health",
        nhs_number="",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Okoro"),
        gender=child_pb2.GENDER_UNSPECIFIED,
        address=child_pb2.Address(lines=["3 Brook Row"], town="Salford", postcode="M7 2JH"),
    )
    second = await world.submit(variant, "r3")
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH, second
    query = "SELECT task_id FROM review_tasks WHERE new_child = :n"
    [(task_id,)] = world.sql(query, n=second.contactpoint_id)
    await never_offered(world, world.services.manager_b, str(task_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(task_id=str(task_id), decision=pb.REVIEW_DECISION_LINK, reason="x"),
            metadata=world.services.manager_b,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    task = await next_task(world, world.services.manager_a)
    assert (task.task_id, task.candidate.contactpoint_id) == (task_id, first.contactpoint_id)
    resolved = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="same"),
        metadata=world.services.manager_a,
    )
    assert resolved.contactpoint_id == first.contactpoint_id


async def test_a_record_crafted_like_another_councils_shielded_child_shows_its_sender_nothing(
    world: World,
) -> None:
    """B's record that may be A's shielded child: B's data manager never sees A's child through
    the task (a council system's insider with a data manager's login cannot probe another
    council's children with crafted records); A's decides, keeping them apart."""
    address = child_pb2.Address(lines=["14 Mill Lane"], town="Salford", postcode="M6 5PR")
    first, second, task_id = await _across_organisations(world, address, shielded=True)
    await never_offered(world, world.services.manager_b, task_id)
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id and task.candidate.shielded and task.candidate.contactpoint_id == first
    kept = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(task_id=task_id, decision=pb.REVIEW_DECISION_KEEP_APART, reason="two"),
        metadata=world.services.manager_a,
    )
    assert kept.contactpoint_id == second
    assert (await world.get(second)).contactpoint_id == second


@pytest.mark.parametrize("with_nhs_number", [False, True])
async def test_another_councils_first_record_of_a_shielded_child_is_reviewed_by_its_council(
    world: World, with_nhs_number: bool
) -> None:
    """B's record with nothing but A's shielded child's name and date of birth (or its NHS number
    too), from another city: found by probing, it joined A's child, told B the child's id, and
    let B's data managers see the child in full (MergeChildren's answer), merge it and lift its
    shield. Now it is a possible match that A's data managers decide, shown shielded meanwhile."""
    # Each run its own child: another test's child must not be the candidate.
    name = _unique("Philippa", "Fairweather" if with_nhs_number else "Gorringe")
    hidden = child_pb2.Address(
        lines=[f"{3 + with_nhs_number} Hidden Close"], town="Manchester", postcode="M1 1AE"
    )
    number = world.nhs_number if with_nhs_number else ""
    first = await world.submit(world.record("sc-1", name=name, address=hidden, nhs_number=number), "r1")
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=first.contactpoint_id, shielded=True, reason="court order"),
        metadata=world.services.manager_a,
    )
    leeds = child_pb2.Address(lines=["9 Park Road"], town="Leeds", postcode="LS1 4AP")
    bare = world.record("b-1", source_system="edu", name=name, address=leeds, nhs_number=number)
    for field in ("carers", "involvements"):
        bare.ClearField(field)  # type: ignore[arg-type]
    for field in ("education_setting", "gp_practice"):
        bare.ClearField(field)  # type: ignore[arg-type]
    second = await world.submit(bare, "r2", metadata=world.council_b)
    assert second.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH, second
    assert second.contactpoint_id != first.contactpoint_id
    assert (await world.get(second.contactpoint_id)).shielded  # until A decides
    [(task_id,)] = world.sql(
        "SELECT task_id FROM review_tasks WHERE status = 'open' AND new_child = :n AND candidate = :c",
        n=second.contactpoint_id,
        c=first.contactpoint_id,
    )
    await never_offered(world, world.services.manager_b, str(task_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=first.contactpoint_id, shielded=False, reason="x"),
            metadata=world.services.manager_b,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    task = await next_task(world, world.services.manager_a)
    assert task.task_id == task_id
    assert any("shielded child" in reason for reason in task.reasons)
    linked = await world.records.ResolveReviewTask(
        pb.ResolveReviewTaskRequest(task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="one"),
        metadata=world.services.manager_a,
    )
    assert linked.contactpoint_id == first.contactpoint_id
    assert (await world.get(second.contactpoint_id)).contactpoint_id == first.contactpoint_id
    # Once A's data manager has joined them, B's further records of the child link as any do.
    again = world.record("b-2", source_system="health", name=name, address=leeds, nhs_number=number)
    assert (await world.submit(again, "r3", metadata=world.council_b)).outcome == pb.MATCH_OUTCOME_LINKED
