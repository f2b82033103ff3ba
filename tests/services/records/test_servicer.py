"""Records over real gRPC on SQLite and PostgreSQL: outcomes, idempotency, validation, withdrawal
across organisations, streaming, who may read, and finding exactly one child."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_status import rpc_status
from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.errors import MATCHED_TOO_MANY, error_metadata
from contactpoint.platform.ids import contactpoint_id_problem, damm_digit
from contactpoint.records.v1 import records_service_pb2 as pb
from services.audit import leafcodec
from services.audit import repository as audit_repo
from services.records import withdrawal
from tests.harness import subject_access
from tests.services.records.conftest import (
    BIRTH_YEAR,
    TABLES,
    World,
    date,
    error_reason,
    status_violations,
    violations,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
CODE = grpc.StatusCode


async def _code(call: object) -> CODE:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return CODE.OK


async def test_created_unchanged_and_linked(world: World) -> None:
    before = world.counts()
    created = await world.submit(world.record("sc-1"), "r-1")
    cp = created.contactpoint_id
    assert created.outcome == pb.MATCH_OUTCOME_CREATED
    assert len(cp) == 12 and cp.isdigit() and contactpoint_id_problem(cp) is None
    assert damm_digit(cp) == 0

    # The same record again, under a new request id: nothing changed.
    again = await world.submit(world.record("sc-1"), "r-2")
    assert (again.contactpoint_id, again.outcome) == (cp, pb.MATCH_OUTCOME_UNCHANGED)
    # Whitespace and postcode spelling are normalised away: still unchanged.
    respelt = world.record("sc-1")
    respelt.address.postcode = " m11ae "
    respelt.name.family_name = " Okafor "
    assert (await world.submit(respelt, "r-3")).outcome == pb.MATCH_OUTCOME_UNCHANGED

    # Changed content updates the same child.
    moved = world.record("sc-1", address=child_pb2.Address(lines=["2 Low Road"], postcode="M2 2BB"))
    linked = await world.submit(moved, "r-4")
    assert (linked.contactpoint_id, linked.outcome) == (cp, pb.MATCH_OUTCOME_LINKED)
    child = await world.get(cp)
    assert child.address.postcode == "M2 2BB" and list(child.address.lines) == ["2 Low Road"]
    assert child.name.family_name == "Okafor" and child.date_of_birth == world.dob
    assert child.HasField("update_time") and not child.shielded

    # Another record of the same system is never joined to it automatically: a new child, with a
    # fresh random id, and a review task for a data manager.
    other = await world.submit(world.record("sc-2"), "r-5")
    assert other.outcome == pb.MATCH_OUTCOME_POSSIBLE_MATCH and other.contactpoint_id != cp
    # Another organisation's record with the same ids is a different source record of the same
    # child: it joins the child.
    org_b = await world.submit(world.record("sc-1"), "r-1", world.council_b)
    assert org_b.outcome == pb.MATCH_OUTCOME_LINKED and org_b.contactpoint_id in (cp, other.contactpoint_id)
    added = world.added(before)
    assert added["blocking_keys"] > 0
    del added["blocking_keys"]
    assert added == {
        "children": 2,
        "source_records": 3,
        "match_keys": 3,
        "submissions": 6,
        "review_tasks": 1,
        "kept_apart": 0,
        "merges": 0,
    }
    stored = world.sql("SELECT status, shielded FROM children WHERE contactpoint_id = :cp", cp=cp)
    assert stored == [("active", False)]


async def test_composed_child_flags_sensitive_services(world: World) -> None:
    record = world.record(
        "sc-sens",
        involvements=[
            pb.SourceInvolvement(service_name="Youth Offending Team", phone="0161 111 1111"),
            # Not flagged by the source, but its name says what it is.
            pb.SourceInvolvement(
                service_name="CAMHS",
                practitioner_name="Dr Y",
                consent_recorded=True,
                start_date=date(BIRTH_YEAR + 6, 1, 2),
            ),
        ],
    )
    cp = (await world.submit(record, "r-sens")).contactpoint_id
    child = await world.get(cp)
    flags = {i.service_name: i.sensitive for i in child.involvements}
    assert flags == {"Youth Offending Team": False, "CAMHS": True}
    camhs = next(i for i in child.involvements if i.sensitive)
    # Records returns it whole; the gateway is the one that strips it to its dates.
    assert camhs.practitioner_name == "Dr Y" and camhs.start_date.year == BIRTH_YEAR + 6
    assert child.carers[0].name.given_names == "Grace" and child.gp_practice.ods_code == "P84001"
    assert child.education_setting.urn == "105432"


async def test_a_flag_outlives_the_record_that_set_it(world: World) -> None:
    # Found by re-probing: when the council that flagged a service dropped the involvement or
    # withdrew its record, another council's unflagged copy of the service was shown in full.
    def willow(*, sensitive: bool) -> pb.SourceInvolvement:
        return pb.SourceInvolvement(
            service_name="Willow Project",
            practitioner_name="Sam Reed",
            sensitive=sensitive,
            consent_recorded=True,
        )

    async def shown() -> dict[str, bool]:
        # Both ways of reading a child: by id (the fast path) and by search (the general one).
        by_id = await world.get(cp)
        found = await world.find(family_name="Okafor", given_name="Amelia")
        assert [(i.service_name, i.sensitive) for i in by_id.involvements] == [
            (i.service_name, i.sensitive) for i in found.involvements
        ]
        return {i.service_name: i.sensitive for i in by_id.involvements}

    def youth_trust(service: str, *, sensitive: bool) -> pb.SourceInvolvement:
        # One name within the other, the same day at the same organisation (found by re-probing:
        # the flag was remembered by its name alone, which "Willowbrook Service" is not alike).
        return pb.SourceInvolvement(
            service_name=service,
            organisation="Salford Youth Trust",
            start_date=date(BIRTH_YEAR + 6, 1, 10),
            sensitive=sensitive,
            consent_recorded=sensitive,
        )

    flagged = world.record(
        "flag-a", involvements=[willow(sensitive=True), youth_trust("Willow", sensitive=True)]
    )
    cp = (await world.submit(flagged, "flag-a1")).contactpoint_id
    unflagged = world.record(
        "flag-b",
        involvements=[willow(sensitive=False), youth_trust("Willowbrook Service", sensitive=False)],
    )
    linked = await world.submit(unflagged, "flag-b1", world.council_b)
    assert (linked.contactpoint_id, linked.outcome) == (cp, pb.MATCH_OUTCOME_LINKED)
    hidden = {"Willow Project": True, "Willowbrook Service": True}
    assert await shown() == {**hidden, "Willow": True}

    # Council A's record drops the involvement: B's copy stays hidden.
    dropped = world.record("flag-a", involvements=[])
    assert (await world.submit(dropped, "flag-a2")).outcome == pb.MATCH_OUTCOME_LINKED
    assert await shown() == hidden
    # A withdraws its record altogether: still hidden.
    withdraw = pb.WithdrawSourceRecordRequest(
        source_system="social-care", source_record_id=world.id("flag-a")
    )
    await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_a)
    assert await shown() == hidden
    # What is remembered is sealed like the record itself.
    stored = world.sql(
        "SELECT sensitive_services FROM source_records WHERE source_record_id = :rid", rid=world.id("flag-a")
    )
    [(sealed,)] = stored
    assert sealed is not None and b"Willow" not in bytes(sealed)  # type: ignore[arg-type]

    # A sends the same service again without the flag: the council correcting itself is believed.
    corrected = world.record(
        "flag-a", involvements=[willow(sensitive=False), youth_trust("Willow", sensitive=False)]
    )
    assert (await world.submit(corrected, "flag-a3")).outcome == pb.MATCH_OUTCOME_LINKED
    assert await shown() == {"Willow Project": False, "Willowbrook Service": False, "Willow": False}


async def test_a_record_sent_again_that_is_now_another_childs_too_reaches_a_data_manager(
    world: World,
) -> None:
    # Found by probing: a council withdrew its only record of a child; another council's system
    # then fed the child (a new child: nothing active to join); the first council sent its record
    # again (revived, its own id). Two children alike, FindChild TOO_MANY_MATCHES, and no task.
    withdraw = pb.WithdrawSourceRecordRequest(
        source_system="social-care", source_record_id=world.id("again-a")
    )

    def tasks_between(a: str, b: str) -> int:
        return int(
            world.sql(
                "SELECT count(*) FROM review_tasks WHERE status = 'open' AND "
                "((new_child = :a AND candidate = :b) OR (new_child = :b AND candidate = :a))",
                a=a,
                b=b,
            )[0][0]  # type: ignore[call-overload]
        )

    first = (await world.submit(world.record("again-a"), "again-1")).contactpoint_id
    await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_a)
    second = await world.submit(world.record("again-b"), "again-2", world.council_b)
    assert second.outcome == pb.MATCH_OUTCOME_CREATED and second.contactpoint_id != first
    revived = await world.submit(world.record("again-a"), "again-3")
    assert (revived.contactpoint_id, revived.outcome) == (first, pb.MATCH_OUTCOME_LINKED)
    assert tasks_between(first, second.contactpoint_id) == 1
    # Sent once more unchanged: nothing new is raised.
    assert (await world.submit(world.record("again-a"), "again-4")).outcome == pb.MATCH_OUTCOME_UNCHANGED
    assert tasks_between(first, second.contactpoint_id) == 1

    # A correction: a first version unlike the child (another name, date and address), then
    # corrected to what the other council holds.
    wrong = world.record(
        "again-c",
        source_system="education",
        name=child_pb2.PersonName(given_names="Millie", family_name="Okafur"),
        address=child_pb2.Address(lines=["9 Low Road"], postcode="M2 2BB"),
        carers=[],  # nor its carers: a carer in common says "the same household, moved"
        nhs_number="",
    )
    wrong.date_of_birth.month = 1 + wrong.date_of_birth.month % 12
    wrong.date_of_birth.day = min(wrong.date_of_birth.day, 28)
    third = await world.submit(wrong, "again-5")
    assert third.outcome == pb.MATCH_OUTCOME_CREATED
    corrected = await world.submit(world.record("again-c", source_system="education"), "again-6")
    assert (corrected.contactpoint_id, corrected.outcome) == (third.contactpoint_id, pb.MATCH_OUTCOME_LINKED)
    assert (
        tasks_between(third.contactpoint_id, first)
        + tasks_between(third.contactpoint_id, second.contactpoint_id)
        >= 1
    )


async def test_retry_returns_the_first_answer_and_reuse_is_refused(world: World) -> None:
    first = await world.submit(world.record("sc-1"), "req-1")
    before = world.counts()
    retry = await world.submit(world.record("sc-1"), "req-1")
    assert retry == first and retry.outcome == pb.MATCH_OUTCOME_CREATED
    assert world.counts() == before

    # A later change, then a late retry of the first request: the first answer, nothing reverted.
    changed = world.record("sc-1", gender=child_pb2.GENDER_NOT_KNOWN)
    assert (await world.submit(changed, "req-2")).outcome == pb.MATCH_OUTCOME_LINKED
    late = await world.submit(world.record("sc-1"), "req-1")
    assert late == first
    assert (await world.get(first.contactpoint_id)).gender == child_pb2.GENDER_NOT_KNOWN

    # The same request id for a different record.
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await world.submit(world.record("sc-other"), "req-1")
    assert reused.value.code() == CODE.FAILED_PRECONDITION
    assert error_reason(reused.value) == "REQUEST_ID_REUSED"
    assert world.added(before)["source_records"] == 0

    # Request ids are per organisation (B's record is the same child, so it joins it)...
    assert (
        await world.submit(world.record("sc-other"), "req-1", world.council_b)
    ) == pb.SubmitSourceRecordResponse(contactpoint_id=first.contactpoint_id, outcome=pb.MATCH_OUTCOME_LINKED)
    # ...and per source system: each feeding system numbers its own requests (found by probing:
    # A's education system's "req-1" was refused as A's social-care system's).
    education = await world.submit(world.record("ed-1", source_system="education"), "req-1")
    assert education.outcome == pb.MATCH_OUTCOME_LINKED
    assert education.contactpoint_id == first.contactpoint_id
    assert await world.submit(world.record("ed-1", source_system="education"), "req-1") == education
    # The system as stored: padded, it is the same system (found by re-probing).
    with pytest.raises(grpc.aio.AioRpcError) as padded:
        await world.submit(world.record("ed-other", source_system="education\u00a0"), "req-1")
    assert error_reason(padded.value) == "REQUEST_ID_REUSED"


async def test_a_retry_that_says_the_same_once_normalised_is_a_retry(world: World) -> None:
    # Found by probing: an NHS number spaced as printed, a postcode in lower case without its
    # space, or an unknown field the service drops, made a retry REQUEST_ID_REUSED (final for the
    # client, which never heard the child's id), though the record is the same record.
    first_record = world.record("norm-1")
    first = await world.submit(first_record, "norm-req-1")
    before = world.counts()
    retry = pb.SourceRecord()
    retry.CopyFrom(first_record)
    number = retry.nhs_number
    retry.nhs_number = f"{number[:3]} {number[3:6]} {number[6:]}"
    retry.address.postcode = retry.address.postcode.replace(" ", "").lower()
    retry.name.family_name = f"  {retry.name.family_name} "
    unknown = retry.SerializeToString() + b"\xba\x3e\x03abc"  # field 999, length 3
    assert await world.submit(pb.SourceRecord.FromString(unknown), "norm-req-1") == first
    assert world.counts() == before
    # Another record is still another request.
    other = world.record("norm-1", gender=child_pb2.GENDER_NOT_KNOWN)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await world.submit(other, "norm-req-1")
    assert error_reason(reused.value) == "REQUEST_ID_REUSED"


async def test_a_request_id_is_optional_and_a_blank_one_is_refused(world: World) -> None:
    # CONTRACT §4 lists request_id with the request, not among the required fields.
    first = await world.submit(world.record("sc-3"), "")
    assert first.outcome == pb.MATCH_OUTCOME_CREATED
    before = world.counts()
    # Sent again without one: the same source record, not a second child.
    again = await world.submit(world.record("sc-3"), "")
    assert again == pb.SubmitSourceRecordResponse(
        contactpoint_id=first.contactpoint_id, outcome=pb.MATCH_OUTCOME_UNCHANGED
    )
    assert world.counts() == before
    # An invalid record without one names only its own bad fields.
    bad = world.record("sc-4")
    bad.name.family_name = ""
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await world.submit(bad, "")
    assert invalid.value.code() == CODE.INVALID_ARGUMENT
    assert set(violations(invalid.value)) == {"record.name.family_name"}
    # One given must say something.
    with pytest.raises(grpc.aio.AioRpcError) as blank:
        await world.records.SubmitSourceRecord(
            pb.SubmitSourceRecordRequest(record=world.record("sc-5"), request_id=" \u00a0 "),
            metadata=world.council_a,
        )
    assert blank.value.code() == CODE.INVALID_ARGUMENT
    assert set(violations(blank.value)) == {"request_id"}
    assert world.counts() == before

    # A stream without them: the same source record twice is one record, sent again.
    async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        for record_id in ("sc-6", "sc-6"):
            yield pb.SubmitSourceRecordRequest(record=world.record(record_id))

    answers = [a async for a in world.records.StreamSourceRecords(feed(), metadata=world.council_a)]
    assert [a.outcome for a in answers] == [pb.MATCH_OUTCOME_POSSIBLE_MATCH, pb.MATCH_OUTCOME_UNCHANGED]
    assert answers[0].contactpoint_id == answers[1].contactpoint_id
    assert world.added(before)["source_records"] == 1


async def test_a_record_is_named_alike_however_its_accents_are_written(world: World) -> None:
    # Text is stored composed (NFC): an id sent with an accent as a separate mark is the same id,
    # when the record is sent and when it is withdrawn.
    decomposed, composed = "zoe\u0308-1", "zo\u00eb-1"
    record = world.record("nfc")
    record.source_record_id = decomposed
    first = await world.submit(record, "")
    record.source_record_id = composed
    again = await world.submit(record, "")
    assert (again.contactpoint_id, again.outcome) == (first.contactpoint_id, pb.MATCH_OUTCOME_UNCHANGED)
    withdraw = pb.WithdrawSourceRecordRequest(source_system="social-care", source_record_id=decomposed)
    await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_a)
    assert world.sql("SELECT withdrawn FROM source_records WHERE source_record_id = :r", r=composed)[0][0]


async def test_ids_too_long_as_stored_are_invalid_on_either_engine(world: World) -> None:
    # Found by review: 60 accented letters, each written as a letter and a combining mark, read as
    # 60 characters but are 120 code points, more than the column holds: PostgreSQL refused the
    # insert and the call was INTERNAL. Counted as stored, they are INVALID_ARGUMENT, and nothing
    # is stored.
    before = world.counts()
    system = world.record("sc-7", source_system="q\u0301" * 60)
    record_id = world.record("sc-7")
    record_id.source_record_id = "q\u0301" * 120
    for record, request_id, field in (
        (system, world.id("r-long-1"), "record.source_system"),
        (record_id, world.id("r-long-2"), "record.source_record_id"),
        (world.record("sc-7"), "q\u0301" * 120, "request_id"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.records.SubmitSourceRecord(
                pb.SubmitSourceRecordRequest(record=record, request_id=request_id), metadata=world.council_a
            )
        assert err.value.code() == CODE.INVALID_ARGUMENT, field
        assert field in violations(err.value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.records.WithdrawSourceRecord(
            pb.WithdrawSourceRecordRequest(source_system="q\u0301" * 60, source_record_id="x"),
            metadata=world.council_a,
        )
    assert err.value.code() == CODE.INVALID_ARGUMENT
    assert world.counts() == before
    # The same name composed (60 characters) is within the limit.
    composed = world.record("sc-7", source_system="\u00e9" * 60)
    assert (await world.submit(composed, "r-long-3")).outcome == pb.MATCH_OUTCOME_CREATED


def _with_unknown_field(message: Message, text: bytes) -> None:
    """`text` in field 99 of `message`, a field no .proto of ours names (wire type 2)."""
    message.MergeFromString(b"\x9a\x06" + bytes([len(text)]) + text)


async def test_fields_the_contract_does_not_name_are_neither_stored_nor_shown(world: World) -> None:
    # Found by probing: text in unknown fields of a name, an address and a carer's name passed
    # every check, was stored, and was shown to practitioners, a shielded child's carers' names too.
    record = world.record("sc-8", name=child_pb2.PersonName(given_names="Ottilie", family_name="Vane"))
    secret = b"refuge at 1 Hidden Lane"
    for message in (record.name, record.address, record.carers[0].name, record):
        _with_unknown_field(message, secret)
    made = await world.submit(record, "r-unknown")
    child = await world.get(made.contactpoint_id)
    assert child.name.family_name == "Vane"
    assert secret not in child.SerializeToString()
    stored = world.sql("SELECT count(*) FROM source_records WHERE source_record_id = :r", r=world.id("sc-8"))
    assert stored == [(1,)]


def _invalid_records() -> list[tuple[str, Callable[[pb.SourceRecord], None]]]:
    def set_(path: str, value: object) -> Callable[[pb.SourceRecord], None]:
        def apply(record: pb.SourceRecord) -> None:
            *parents, leaf = path.split(".")
            target: object = record
            for p in parents:
                target = getattr(target, p)
            setattr(target, leaf, value)

        return apply

    def dob(year: int, month: int = 3, day: int = 14) -> Callable[[pb.SourceRecord], None]:
        def apply(record: pb.SourceRecord) -> None:
            record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = year, month, day

        return apply

    def unconsented(record: pb.SourceRecord) -> None:
        record.involvements[1].consent_recorded = False

    def unflagged_mental_health(record: pb.SourceRecord) -> None:
        record.involvements.add(service_name="Child and Adolescent Mental Health Service")

    return [
        ("record.source_system", set_("source_system", "")),
        ("record.source_record_id", set_("source_record_id", "   ")),
        ("record.name.family_name", set_("name.family_name", "")),
        ("record.name.given_names", set_("name.given_names", "")),
        ("record.name.family_name", set_("name.family_name", "O" * 36)),
        ("record.name.given_names", set_("name.given_names", "Ame\u0007lia")),
        ("record.date_of_birth", lambda r: r.ClearField("date_of_birth")),
        ("record.date_of_birth", dob(BIRTH_YEAR, 2, 30)),
        ("record.date_of_birth", dob(BIRTH_YEAR + 9)),  # in the future
        ("record.date_of_birth", dob(BIRTH_YEAR - 11)),  # 19: too old for a non-extended record
        ("record.address.postcode", set_("address.postcode", "")),
        ("record.address.postcode", set_("address.postcode", "NOT A POSTCODE")),
        ("record.nhs_number", set_("nhs_number", "943 476 5918")),  # wrong check digit
        ("record.nhs_number", set_("nhs_number", "94347")),
        ("record.involvements[1].consent_recorded", unconsented),
        ("record.involvements[2].consent_recorded", unflagged_mental_health),
        ("record.gender", set_("gender", 99)),
        ("record.carers[0].email", lambda r: setattr(r.carers[0], "email", "not an email")),
    ]


async def test_every_validation_rule_is_invalid_argument_and_stores_nothing(world: World) -> None:
    before = world.counts()
    for i, (field, mutate) in enumerate(_invalid_records()):
        record = world.record(f"bad-{i}")
        mutate(record)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await world.submit(record, f"bad-{i}")
        assert bad.value.code() == CODE.INVALID_ARGUMENT, field
        assert set(violations(bad.value)) == {field}, (field, violations(bad.value))
        # The message names fields, never the values sent.
        assert "Okafor" not in (bad.value.details() or "")
    assert world.added(before) == dict.fromkeys(TABLES, 0)

    # All problems at once, one violation per bad field.
    with pytest.raises(grpc.aio.AioRpcError) as everything:
        await world.records.SubmitSourceRecord(
            pb.SubmitSourceRecordRequest(request_id=world.id("empty")), metadata=world.council_a
        )
    assert set(violations(everything.value)) == {
        "record.source_system",
        "record.source_record_id",
        "record.name.family_name",
        "record.name.given_names",
        "record.date_of_birth",
        "record.address.postcode",
    }
    # An extended record may be up to 25.
    older = world.record("extended", extended=True)
    older.date_of_birth.year = BIRTH_YEAR - 11
    assert (await world.submit(older, "extended")).outcome == pb.MATCH_OUTCOME_CREATED


async def test_a_withdrawal_that_loses_a_race_is_run_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by probing (two replicas): a withdrawal racing a merge, an unmerge or a link of the
    # same child lost a deadlock and was answered INTERNAL, not applied.
    cp = (await world.submit(world.record("sc-lost"), "lost-1")).contactpoint_id
    withdraw = withdrawal.withdraw
    lost: list[bool] = []

    def loses_once(conn: Connection, **kwargs: Any) -> None:
        if not lost:
            lost.append(True)
            withdraw(conn, **kwargs)  # done, then the transaction loses: nothing of it is kept
            raise TransactionConflict("deadlock detected")
        withdraw(conn, **kwargs)

    monkeypatch.setattr(withdrawal, "withdraw", loses_once)
    request = pb.WithdrawSourceRecordRequest(
        source_system="social-care", source_record_id=world.id("sc-lost")
    )
    await world.records.WithdrawSourceRecord(request, metadata=world.council_a)
    assert lost
    assert await _code(world.get(cp)) == CODE.NOT_FOUND  # withdrawn: its only record


async def test_withdraw_own_records_only(world: World) -> None:
    cp = (await world.submit(world.record("sc-w"), "w-1")).contactpoint_id
    withdraw = pb.WithdrawSourceRecordRequest(source_system="social-care", source_record_id=world.id("sc-w"))

    # Another council cannot even name it: a record is named by its organisation too, so to
    # council B there is no such record (NOT_FOUND says nothing of who else holds that id).
    with pytest.raises(grpc.aio.AioRpcError) as other_org:
        await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_b)
    assert other_org.value.code() == CODE.NOT_FOUND
    assert (await world.get(cp)).contactpoint_id == cp
    # Nor can the gateway.
    assert await _code(world.records.WithdrawSourceRecord(withdraw, metadata=world.gateway)) == (
        CODE.PERMISSION_DENIED
    )
    unknown = pb.WithdrawSourceRecordRequest(source_system="social-care", source_record_id=world.id("nope"))
    assert (
        await _code(world.records.WithdrawSourceRecord(unknown, metadata=world.council_a)) == CODE.NOT_FOUND
    )
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await world.records.WithdrawSourceRecord(pb.WithdrawSourceRecordRequest(), metadata=world.council_a)
    assert set(violations(empty.value)) == {"source_system", "source_record_id"}

    await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_a)
    await world.records.WithdrawSourceRecord(withdraw, metadata=world.council_a)  # idempotent
    assert await _code(world.get(cp)) == CODE.NOT_FOUND
    assert await _code(world.find(family_name="Okafor", given_name="Amelia")) == CODE.NOT_FOUND
    # The child row stays, so its id is never issued again.
    assert world.sql("SELECT count(*) FROM children WHERE contactpoint_id = :cp", cp=cp) == [(1,)]

    # Submitting it again brings the same child back.
    back = await world.submit(world.record("sc-w"), "w-2")
    assert (back.contactpoint_id, back.outcome) == (cp, pb.MATCH_OUTCOME_LINKED)
    assert (await world.find(family_name="Okafor", given_name="Amelia")).contactpoint_id == cp


async def test_stream_answers_in_order_and_survives_bad_records(world: World) -> None:
    before = world.counts()
    bad = world.record("st-bad")
    bad.name.family_name = ""
    requests = [
        pb.SubmitSourceRecordRequest(record=world.record("st-1"), request_id=world.id("s-1")),
        pb.SubmitSourceRecordRequest(record=world.record("st-2"), request_id=world.id("s-2")),
        pb.SubmitSourceRecordRequest(record=bad, request_id=world.id("s-3")),
        pb.SubmitSourceRecordRequest(record=world.record("st-other"), request_id=world.id("s-1")),  # reused
        pb.SubmitSourceRecordRequest(record=world.record("st-1"), request_id=world.id("s-5")),
        pb.SubmitSourceRecordRequest(record=world.record("st-3"), request_id=world.id("s-6")),
    ]

    async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        for request in requests:
            yield request

    answers = [a async for a in world.records.StreamSourceRecords(feed(), metadata=world.council_a)]
    assert len(answers) == len(requests)
    # st-2 and st-3 are the same child again under other ids of the same system: never joined
    # automatically, so each is a new child with a review task.
    assert [a.outcome for a in answers] == [
        pb.MATCH_OUTCOME_CREATED,
        pb.MATCH_OUTCOME_POSSIBLE_MATCH,
        pb.MATCH_OUTCOME_UNSPECIFIED,
        pb.MATCH_OUTCOME_UNSPECIFIED,
        pb.MATCH_OUTCOME_UNCHANGED,
        pb.MATCH_OUTCOME_POSSIBLE_MATCH,
    ]
    assert answers[4].contactpoint_id == answers[0].contactpoint_id
    assert answers[2].error.code == CODE.INVALID_ARGUMENT.value[0] and not answers[2].contactpoint_id
    assert status_violations(answers[2].error) == {"record.name.family_name": "is required"}
    assert answers[3].error.code == CODE.FAILED_PRECONDITION.value[0]
    assert all(not a.HasField("error") for i, a in enumerate(answers) if i not in (2, 3))
    assert world.added(before)["source_records"] == 3

    # Without a token the stream is refused before any record is read.
    anonymous = world.records.StreamSourceRecords()
    assert await anonymous.code() == CODE.UNAUTHENTICATED


async def test_concurrent_submissions_of_one_record_make_one_child(world: World) -> None:
    before = world.counts()
    answers = await asyncio.gather(*(world.submit(world.record("sc-race"), f"race-{i}") for i in range(6)))
    assert len({a.contactpoint_id for a in answers}) == 1
    assert sorted(a.outcome for a in answers) == [pb.MATCH_OUTCOME_CREATED] + [pb.MATCH_OUTCOME_UNCHANGED] * 5
    retries = await asyncio.gather(*(world.submit(world.record("sc-race2"), "same") for _ in range(4)))
    assert len(set(map(bytes, (r.SerializeToString() for r in retries)))) == 1
    assert world.added(before)["children"] == 2


async def test_only_the_gateway_reads(world: World) -> None:
    cp = (await world.submit(world.record("sc-r"), "r")).contactpoint_id
    get = pb.GetChildRecordRequest(contactpoint_id=cp)
    find = pb.FindChildRecordRequest(family_name="Okafor", given_name="Amelia", date_of_birth=world.dob)
    assert (await world.records.GetChildRecord(get, metadata=world.reader)).child.contactpoint_id == cp
    assert (await world.records.FindChildRecord(find, metadata=world.reader)).child.contactpoint_id == cp
    person_token = world.person[0][1]
    for metadata, code in [
        # The gateway's machine token alone reads nothing: reads act for a practitioner.
        (world.gateway, CODE.PERMISSION_DENIED),
        ((*world.gateway, ("x-on-behalf-of", "Bearer not-a-token")), CODE.PERMISSION_DENIED),
        ((*world.gateway, ("x-on-behalf-of", world.services.manager_a[0][1])), CODE.PERMISSION_DENIED),
        ((*world.gateway, ("x-on-behalf-of", world.gateway[0][1])), CODE.PERMISSION_DENIED),
        # A person's token, or a council's, is not the gateway's, whoever it acts for.
        ((*world.person, ("x-on-behalf-of", person_token)), CODE.PERMISSION_DENIED),
        ((*world.council_a, ("x-on-behalf-of", person_token)), CODE.PERMISSION_DENIED),
        (world.council_a, CODE.PERMISSION_DENIED),
        (world.person, CODE.PERMISSION_DENIED),
        ((), CODE.UNAUTHENTICATED),
        ((("authorization", "Bearer not-a-token"),), CODE.UNAUTHENTICATED),
    ]:
        assert await _code(world.records.GetChildRecord(get, metadata=metadata)) == code
        assert await _code(world.records.FindChildRecord(find, metadata=metadata)) == code
    # Each read refused to a person's or a council's token is in the child's subject-access
    # report (an insider trying records directly); those the gateway's account made are the
    # gateway's requests, which it records itself (one event a request), and an anonymous call
    # names no child (anyone could fill a report so).
    refused = [a for a in subject_access(world.services.audit_url, cp) if a.outcome != "ALLOWED"]
    assert sorted((a.action, a.actor, a.outcome) for a in refused) == sorted(
        [("GetChildRecord", "pat.practitioner", "DENIED")] * 2
        + [("GetChildRecord", "council-a", "DENIED")] * 2
    )
    # As a refused read of the log is: WARNING, so a watch of warnings sees the attempts.
    db = Database(world.services.audit_url)
    try:
        leaves = db.run_sync(lambda c: audit_repo.leaves_about(c, contactpoint_id=cp), write=False)
        events = [leafcodec.decode(data, index) for index, data in leaves]
    finally:
        db.dispose()
    assert {e.severity for e in events if e.outcome == "DENIED"} == {"WARNING"}
    # Council systems submit; the gateway and people do not.
    for metadata in (world.gateway, world.person):
        assert await _code(world.submit(world.record("x"), "x", metadata)) == CODE.PERMISSION_DENIED


async def test_get_child_ids_and_visibility(world: World) -> None:
    cp = (await world.submit(world.record("sc-g"), "g")).contactpoint_id
    wrong_check = cp[:-1] + str((int(cp[-1]) + 1) % 10)
    for bad in ("", cp[:-1], wrong_check, "12345678901a"):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await world.get(bad)
        assert invalid.value.code() == CODE.INVALID_ARGUMENT
        assert set(violations(invalid.value)) == {"contactpoint_id"}
    unknown = "00000000001" + str(damm_digit("00000000001"))
    assert await _code(world.get(unknown)) == CODE.NOT_FOUND
    world.sql("UPDATE children SET status = 'archived' WHERE contactpoint_id = :cp", cp=cp)
    assert await _code(world.get(cp)) == CODE.NOT_FOUND
    assert await _code(world.find(family_name="Okafor", given_name="Amelia")) == CODE.NOT_FOUND


async def test_find_exactly_one_child(world: World) -> None:
    amelia = (await world.submit(world.record("f-1"), "f-1")).contactpoint_id
    twin = world.record(
        "f-2",
        name=child_pb2.PersonName(given_names="Zoë Anne-Marie", family_name="O'Brien-Smith"),
        address=child_pb2.Address(postcode="LS1 4AP"),
        gender=child_pb2.GENDER_MALE,
    )
    zoe = (await world.submit(twin, "f-2")).contactpoint_id

    async def finds(**criteria: object) -> str:
        return (await world.find(**criteria)).contactpoint_id

    assert await finds(family_name="Okafor", given_name="Amelia") == amelia
    assert await finds(family_name="Okafor", postcode="m11ae") == amelia
    # Case, accents, punctuation and surrounding spaces are ignored.
    assert await finds(family_name="  o'BRIEN smith ", given_name="ZOE") == zoe
    assert await finds(family_name="OBrienSmith", given_name="anne marie") == zoe
    assert await finds(family_name="O\u2019Brien-Smith", given_name="Marie", postcode=" ls1 4ap") == zoe
    # Gender narrows when given.
    assert await finds(family_name="Okafor", given_name="Amelia", gender=child_pb2.GENDER_FEMALE) == amelia
    assert (
        await _code(world.find(family_name="Okafor", given_name="Amelia", gender=child_pb2.GENDER_MALE))
        == CODE.NOT_FOUND
    )

    # Spelling variants only with fuzzy; the date of birth stays exact.
    assert await _code(world.find(family_name="Okafur", given_name="Emelia")) == CODE.NOT_FOUND
    assert await finds(family_name="Okafur", given_name="Emelia", fuzzy=True) == amelia
    assert (
        await _code(
            world.find(
                family_name="Okafur",
                given_name="Emelia",
                fuzzy=True,
                date_of_birth=date(world.dob.year, world.dob.month, world.dob.day + 1),
            )
        )
        == CODE.NOT_FOUND
    )
    assert (
        await _code(world.find(family_name="Okafor", given_name="Bartholomew", fuzzy=True)) == CODE.NOT_FOUND
    )

    # Two children answer: refused, saying nothing about them but, for the gateway's log alone
    # (it strips them from its answer), their ids: the search is in their subject-access reports.
    other = (
        await world.submit(world.record("f-3", address=child_pb2.Address(postcode="M2 2BB")), "f-3")
    ).contactpoint_id
    with pytest.raises(grpc.aio.AioRpcError) as many:
        await world.find(family_name="Okafor", given_name="Amelia")
    assert many.value.code() == CODE.FAILED_PRECONDITION
    assert error_reason(many.value) == "TOO_MANY_MATCHES"
    status = rpc_status.from_call(many.value)
    assert status is not None and "M2 2BB" not in str(status) and "Okafor" not in str(status)
    assert status.message == "more than one child matches; give more criteria"
    assert error_metadata(many.value)[MATCHED_TOO_MANY] == ",".join(sorted({amelia, other}))
    # A postcode tells them apart.
    assert await finds(family_name="Okafor", given_name="Amelia", postcode="M1 1AE") == amelia

    assert await _code(world.find(family_name="Nobody", given_name="Amelia")) == CODE.NOT_FOUND


async def test_find_criteria_are_validated(world: World) -> None:
    async def problems(**criteria: object) -> set[str]:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await world.find(**criteria)
        assert bad.value.code() == CODE.INVALID_ARGUMENT
        return set(violations(bad.value))

    for wildcard in "*%?_":
        assert await problems(family_name=f"Oka{wildcard}", given_name="Amelia") == {"family_name"}
        assert await problems(family_name="Okafor", given_name=f"Am{wildcard}") == {"given_name"}
    assert await problems(family_name="Okafor", postcode="M1*") == {"postcode"}
    assert await problems(family_name="O" * 36, given_name="Amelia") == {"family_name"}
    assert await problems(family_name="Okafor", given_name="A" * 36) == {"given_name"}
    assert await problems(family_name="", given_name="Amelia") == {"family_name"}
    assert await problems(family_name="Okafor") == {"given_name"}  # given_name or postcode
    assert await problems(family_name="Okafor", given_name="Amelia", date_of_birth=date(0, 0, 0)) == {
        "date_of_birth"
    }
    assert await problems(family_name="Okafor", given_name="Amelia", date_of_birth=date(2015, 2, 30)) == {
        "date_of_birth"
    }
    assert await problems(family_name="Okafor", postcode="nowhere") == {"postcode"}


async def test_a_search_may_take_the_name_and_the_postcode_from_two_records_of_a_child(world: World) -> None:
    # Found by probing: "McDonald" at the postcode that only a newer record, misspelt "Mceonald",
    # carried was NOT_FOUND. A child with a record at the postcode is found by any of its names.
    cp = (await world.submit(world.record("pc-1"), "pc-1")).contactpoint_id
    moved = world.record(
        "pc-2",
        source_system="education",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Okafro"),
        address=child_pb2.Address(lines=["4 Park Road"], town="Leeds", postcode="LS1 4AP"),
    )
    assert (await world.submit(moved, "pc-2")).contactpoint_id == cp  # the same NHS number and date
    for fuzzy in (False, True):
        found = await world.find(family_name="Okafor", postcode="LS1 4AP", fuzzy=fuzzy)
        assert found.contactpoint_id == cp, fuzzy
        assert (await world.find(family_name="Okafro", postcode="M1 1AE", fuzzy=fuzzy)).contactpoint_id == cp
    # A name none of its records gives is still no match.
    assert await _code(world.find(family_name="Okoro", postcode="LS1 4AP")) == CODE.NOT_FOUND
    # Nor does a postcode make a shielded child findable.
    world.sql("UPDATE children SET shielded = :t WHERE contactpoint_id = :cp", t=True, cp=cp)
    assert await _code(world.find(family_name="Okafor", postcode="LS1 4AP")) == CODE.NOT_FOUND


async def test_a_postcode_search_never_finds_a_shielded_child(world: World) -> None:
    cp = (await world.submit(world.record("sh-1"), "sh-1")).contactpoint_id
    world.sql("UPDATE children SET shielded = :t WHERE contactpoint_id = :cp", t=True, cp=cp)
    assert await _code(world.find(family_name="Okafor", postcode="M1 1AE")) == CODE.NOT_FOUND
    assert (
        await _code(world.find(family_name="Okafor", given_name="Amelia", postcode="M1 1AE"))
        == CODE.NOT_FOUND
    )
    # Without a postcode it is found, marked shielded (the gateway hides the location).
    found = await world.find(family_name="Okafor", given_name="Amelia")
    assert found.contactpoint_id == cp and found.shielded
    assert (await world.get(cp)).shielded
