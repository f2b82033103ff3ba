"""Which of records' writes wait behind others at SQLite's one write lock (`write_turns`): a
stream's batches are batches, and a council's single record shares
the lock's time with them rather than waiting behind a flood of streams (found by re-probing:
under three councils' floods another council's single record waited up to 17.8 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from contactpoint.platform.write_turns import Kind, current_kind
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin
from tests.services.records.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_streams_batches_are_batches_and_a_single_record_is_not(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Kind] = []
    store = admin.store

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(current_kind())
        return store(*args, **kwargs)

    monkeypatch.setattr(admin, "store", watched)
    await world.submit(world.record("single"), "single")
    assert seen == [Kind.RECORD]

    async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        yield pb.SubmitSourceRecordRequest(record=world.record("streamed"), request_id=world.id("streamed"))

    answers = [a async for a in world.records.StreamSourceRecords(feed(), metadata=world.council_a)]
    assert len(answers) == 1 and not answers[0].HasField("error")
    assert seen == [Kind.RECORD, Kind.BATCH]
