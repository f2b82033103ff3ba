"""A child whose archive date has come (dead over a year, or 18) is gone before the hourly
lifecycle run archives it: for matching as for data managers, as it is for the gateway (found by
probing, on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.type import date_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.services.records.conftest import World, error_reason
from tests.services.records.test_data_managers import next_task, possible_match

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _dead_over_a_year() -> date_pb2.Date:
    died = dt.date.today() - dt.timedelta(days=367)
    return date_pb2.Date(year=died.year, month=died.month, day=died.day)


async def _gone(world: World, contactpoint_id: str) -> bool:
    try:
        await world.get(contactpoint_id)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return True
    return False


async def test_a_task_whose_child_came_due_meanwhile_is_obsolete(world: World) -> None:
    # The task is handed out; then the candidate's council reports a death over a year ago. Linking
    # would merge the living new child into a child hidden as dead (it answered OK and did).
    candidate, new = await possible_match(world)
    manager = world.services.manager_a
    task = await next_task(world, manager)
    died = await world.submit(world.record("sc-1", date_of_death=_dead_over_a_year()), "r3")
    assert died.contactpoint_id == candidate
    assert await _gone(world, candidate)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.ResolveReviewTask(
            pb.ResolveReviewTaskRequest(
                task_id=task.task_id, decision=pb.REVIEW_DECISION_LINK, reason="same"
            ),
            metadata=manager,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "TASK_OBSOLETE"
    # Nothing was merged: the living child still reads as itself.
    assert (await world.get(new)).contactpoint_id == new
    assert world.sql("SELECT status FROM children WHERE contactpoint_id = :c", c=new) == [("active",)]


async def test_a_record_that_may_be_a_due_childs_is_a_new_child_with_no_task(world: World) -> None:
    # A council's second record of a child dead over a year (its own system: never joined
    # automatically) would be a review, but no data manager may see that child: the record is
    # decided among living children, so it is a new child, and says so. It answered
    # POSSIBLE_MATCH, with a task no data manager would ever be handed.
    name = child_pb2.PersonName(given_names="Philippa", family_name="Quennell")  # no other test's
    dead = await world.submit(world.record("sc-1", name=name, date_of_death=_dead_over_a_year()), "r1")
    assert await _gone(world, dead.contactpoint_id)
    again = await world.submit(world.record("sc-2", name=name, nhs_number=""), "r2")
    assert again.outcome == pb.MATCH_OUTCOME_CREATED
    assert again.contactpoint_id != dead.contactpoint_id
    rows = world.sql(
        "SELECT count(*) FROM review_tasks WHERE new_child = :n OR candidate = :n", n=again.contactpoint_id
    )
    assert rows == [(0,)]
    # Another council's record that is surely the child joins it, and stays hidden.
    joined = await world.submit(
        world.record("hs-1", name=name, source_system="health"), "r3", world.council_b
    )
    assert joined.outcome == pb.MATCH_OUTCOME_LINKED
    assert joined.contactpoint_id == dead.contactpoint_id
    assert await _gone(world, dead.contactpoint_id)
