"""Matching at ingestion, on SQLite and PostgreSQL, through the one ingestion path: the same
child from many feeds becomes one child; different children never do; uncertain cases go to a
data manager; two transactions racing with the same new child still make one."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from google.type import date_pb2
from sqlalchemy import select

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.platform.errors import InvalidArgument, NotFound
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import children, ingestion, preparing, withdrawal
from services.records.linkage import Thresholds
from services.records.matching import Matcher
from services.records.model import ConcurrentChange, FindCriteria, Outcome, Submitted
from services.records.repository import children as child_repo
from services.records.tables import review_tasks, source_records
from tests.harness import bind_records_keys
from tests.services.records.conftest import BIRTH_YEAR, ORG_A, ORG_B, make_record

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def submit(
    db: Database, record: pb.SourceRecord, *, org: str = ORG_A, matcher: Matcher | None = None
) -> Submitted:
    rid = f"{org}-{record.source_system}-{record.source_record_id}-{record.SerializeToString().hex()[:16]}"
    return db.run_sync(
        lambda c: ingestion.submit(
            c, organisation=org, request_id=rid, record=record, matcher=matcher, now=NOW
        )
    )


def child_count(db: Database, *ids: str) -> int:
    return len(
        {
            db.run_sync(
                lambda c, i=i: children.get_child(c, contactpoint_id=i, today=NOW.date()), write=False
            ).contactpoint_id
            for i in ids
        }
    )


def test_one_child_from_two_systems_and_a_second_council(db: Database) -> None:
    first = submit(db, make_record("sc-1"))
    education = submit(db, make_record("ed-9", source_system="education"))
    other = submit(db, make_record("hv-4", source_system="health-visiting"), org=ORG_B)
    assert first.outcome is Outcome.CREATED
    assert education == Submitted(first.contactpoint_id, Outcome.LINKED)
    assert other == Submitted(first.contactpoint_id, Outcome.LINKED)
    record = make_record("x")
    criteria = FindCriteria("Okafor", "Amelia", (record.date_of_birth.year, 3, 14))
    found = db.run_sync(lambda c: children.find_child(c, criteria=criteria, today=NOW.date()), write=False)
    assert found.contactpoint_id == first.contactpoint_id
    reasons = db.run_sync(
        lambda c: c.execute(
            select(
                source_records.c.match_outcome, source_records.c.match_score, source_records.c.match_reasons
            )
        ).all(),
        write=False,
    )
    # Each decision keeps its score and the per-field reasons.
    linked = [r for r in reasons if r.match_outcome == "LINKED"]
    assert len(linked) == 2 and all(r.match_score is not None and r.match_reasons for r in linked)


def _typo(r: pb.SourceRecord) -> None:
    r.name.given_names = "Amelai"


def _phonetic(r: pb.SourceRecord) -> None:
    r.name.family_name = "Okafur"


def _capitals(r: pb.SourceRecord) -> None:
    r.name.given_names, r.name.family_name = "AMELIA", "OKAFOR"


def _middle_name(r: pb.SourceRecord) -> None:
    r.name.given_names = "Amelia Grace"


def _moved(r: pb.SourceRecord) -> None:
    r.address.CopyFrom(child_pb2.Address(lines=["22 Otley Road"], town="Leeds", postcode="LS6 2AB"))


def _missing(r: pb.SourceRecord) -> None:
    r.gender = child_pb2.GENDER_UNSPECIFIED
    r.nhs_number = ""
    r.ClearField("gp_practice")


@pytest.mark.parametrize("change", [_typo, _phonetic, _capitals, _middle_name, _moved, _missing])
def test_variants_of_one_child_link(db: Database, change: object) -> None:
    first = submit(db, make_record("sc-1"))
    record = make_record("ed-1", source_system="education")
    change(record)  # type: ignore[operator]
    assert submit(db, record) == Submitted(first.contactpoint_id, Outcome.LINKED)


def test_day_and_month_swapped_link(db: Database) -> None:
    born = make_record("sc-1")
    born.date_of_birth.month, born.date_of_birth.day = 4, 3
    first = submit(db, born)
    swapped = make_record("ed-1", source_system="education")
    swapped.date_of_birth.month, swapped.date_of_birth.day = 3, 4
    assert submit(db, swapped) == Submitted(first.contactpoint_id, Outcome.LINKED)


def test_a_surname_change_links_through_the_former_name(db: Database) -> None:
    first = submit(db, make_record("sc-1"))
    renamed = make_record(
        "ed-1",
        source_system="education",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Bennett"),
        former_names=[child_pb2.PersonName(given_names="Amelia", family_name="Okafor")],
    )
    assert submit(db, renamed) == Submitted(first.contactpoint_id, Outcome.LINKED)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("Holly", child_pb2.GENDER_FEMALE), ("Molly", child_pb2.GENDER_FEMALE)),  # rhyming names
        (("Louis", child_pb2.GENDER_MALE), ("Louise", child_pb2.GENDER_FEMALE)),  # a boy and a girl
        (("Lily", child_pb2.GENDER_FEMALE), ("Lola", child_pb2.GENDER_FEMALE)),  # one two-letter sound
        (("Millie", child_pb2.GENDER_FEMALE), ("Mollie", child_pb2.GENDER_FEMALE)),  # two common names
        (("Harvey", child_pb2.GENDER_MALE), ("Harley", child_pb2.GENDER_MALE)),
        (("Mia", child_pb2.GENDER_FEMALE), ("Millie", child_pb2.GENDER_FEMALE)),  # both short for Amelia
    ],
)
def test_twins_with_near_names_stay_apart(
    db: Database, first: tuple[str, int], second: tuple[str, int]
) -> None:
    """Twins' names are often near each other; found by trying: these were joined into one child."""
    records = []
    for n, (given, gender) in enumerate((first, second)):
        record = make_record(
            f"tw-{given}",
            source_system=("social-care", "education")[n],
            nhs_number="",
            name=child_pb2.PersonName(given_names=given, family_name="Okafor"),
            gender=gender,
        )
        record.date_of_birth.day = 9
        records.append(submit(db, record))
    assert [r.outcome for r in records] == [Outcome.CREATED, Outcome.CREATED]
    assert records[0].contactpoint_id != records[1].contactpoint_id


def test_twins_and_siblings_stay_apart(db: Database) -> None:
    amelia = submit(db, make_record("sc-1", nhs_number=""))
    twin = submit(
        db,
        make_record(
            "ed-1",
            source_system="education",
            nhs_number="",
            name=child_pb2.PersonName(given_names="Zara", family_name="Okafor"),
        ),
    )
    sibling = make_record(
        "ed-2",
        source_system="education",
        nhs_number="",
        name=child_pb2.PersonName(given_names="Daniel", family_name="Okafor"),
        gender=child_pb2.GENDER_MALE,
    )
    sibling.date_of_birth.year -= 2
    older = submit(db, sibling)
    assert twin.outcome is Outcome.CREATED and older.outcome is Outcome.CREATED
    assert len({amelia.contactpoint_id, twin.contactpoint_id, older.contactpoint_id}) == 3
    # No data manager is asked about them either.
    assert db.run_sync(lambda c: c.execute(select(review_tasks)).all(), write=False) == []


def test_same_source_system_is_never_joined_automatically(db: Database) -> None:
    first = submit(db, make_record("sc-1"))
    again = submit(db, make_record("sc-2"))  # the same system, another record id: a duplicate in its own feed
    assert again.outcome is Outcome.POSSIBLE_MATCH and again.contactpoint_id != first.contactpoint_id
    tasks = db.run_sync(lambda c: c.execute(select(review_tasks)).all(), write=False)
    assert [(t.new_child, t.candidate, t.status) for t in tasks] == [
        (again.contactpoint_id, first.contactpoint_id, "open")
    ]
    assert tasks[0].reasons


def test_a_systems_second_record_is_reviewed_whichever_record_of_the_child_it_finds(db: Database) -> None:
    # Found by review: the rule saw only the records of the child that blocking found. Social
    # care's second record of a child, her family name changed and moved, found only education's
    # record of her (by the NHS number) and joined the child, though it held social care's first.
    first = submit(db, make_record("sc-1", nhs_number=""))
    education = submit(db, make_record("ed-1", source_system="education"))
    assert education == Submitted(first.contactpoint_id, Outcome.LINKED)
    moved = make_record(
        "sc-2",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Brennan"),
        address=child_pb2.Address(lines=["9 Far Row"], town="Leeds", postcode="LS6 2AB"),
        carers=[],
    )
    second = submit(db, moved)
    assert second.outcome is Outcome.POSSIBLE_MATCH and second.contactpoint_id != first.contactpoint_id
    tasks = db.run_sync(lambda c: c.execute(select(review_tasks)).all(), write=False)
    assert [(t.new_child, t.candidate) for t in tasks] == [(second.contactpoint_id, first.contactpoint_id)]
    # Another system's record like it still joins (the rule is the system's, not the council's).
    health = submit(db, make_record("hv-1", source_system="health-visiting", name=moved.name, carers=[]))
    assert health.outcome is Outcome.LINKED


def test_auto_link_off_sends_every_would_be_link_to_review(db: Database) -> None:
    onboarding = Matcher(thresholds=Thresholds(auto_link=False))
    first = submit(db, make_record("sc-1"), matcher=onboarding)
    other = submit(db, make_record("ed-1", source_system="education"), matcher=onboarding)
    assert first.outcome is Outcome.CREATED and other.outcome is Outcome.POSSIBLE_MATCH


def test_same_nhs_number_with_another_birth_date_goes_to_review(db: Database) -> None:
    first = submit(db, make_record("sc-1"))
    record = make_record("ed-1", source_system="education")
    record.date_of_birth.year -= 5
    record.date_of_birth.month, record.date_of_birth.day = 11, 2  # not a slip of the pen
    second = submit(db, record)
    assert second.outcome is Outcome.POSSIBLE_MATCH and second.contactpoint_id != first.contactpoint_id


def test_a_possible_match_of_a_shielded_child_is_shown_shielded(db: Database) -> None:
    first = submit(db, make_record("sc-1"))
    db.run_sync(lambda c: child_repo.set_shielding(c, first.contactpoint_id, shielded=True, now=NOW))
    duplicate = submit(db, make_record("sc-2"))
    assert duplicate.outcome is Outcome.POSSIBLE_MATCH
    child = db.run_sync(
        lambda c: children.get_child(c, contactpoint_id=duplicate.contactpoint_id, today=NOW.date()),
        write=False,
    )
    assert child.shielded
    # A search by postcode never finds it either.
    record = make_record("x")
    criteria = FindCriteria("Okafor", "", (record.date_of_birth.year, 3, 14), postcode="M1 1AE")
    with pytest.raises(NotFound):
        db.run_sync(lambda c: children.find_child(c, criteria=criteria, today=NOW.date()), write=False)


NO_SUCH_DAY = date_pb2.Date(year=2015, month=2, day=30)


def test_a_batch_sees_its_own_earlier_records(db: Database) -> None:
    batch = [
        preparing.Submission("b-1", make_record("sc-1")),
        preparing.Submission("b-2", make_record("ed-1", source_system="education")),
        preparing.Submission("b-3", make_record("sc-1", gender=child_pb2.GENDER_UNSPECIFIED)),  # an update
        preparing.Submission("b-1", make_record("sc-1")),  # a retry within the batch
        preparing.Submission(
            "b-4", make_record("bad", date_of_birth=date_pb2.Date(year=2015, month=2, day=30))
        ),
    ]  # the last one bad
    results = db.run_sync(lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=batch, now=NOW))
    first, linked, updated, retried, bad = results
    assert isinstance(first, Submitted) and first.outcome is Outcome.CREATED
    assert linked == Submitted(first.contactpoint_id, Outcome.LINKED)
    assert updated == Submitted(first.contactpoint_id, Outcome.LINKED)
    assert retried == first
    assert isinstance(bad, InvalidArgument)


def test_a_held_record_sent_twice_in_one_batch_ends_as_its_last_version(db: Database) -> None:
    # Found by probing: the second version of a record already held was compared with the row as
    # the batch first read it, so a move and a move back were answered LINKED then UNCHANGED and
    # the registry kept the move; and an older snapshot after a newer one overwrote it.
    def version(rid: str, postcode: str, hour: int) -> pb.SourceRecord:
        record = make_record(rid, address=child_pb2.Address(lines=["1 High Street"], postcode=postcode))
        record.as_of.FromDatetime(NOW.replace(hour=hour))
        return record

    def postcode_of(cid: str) -> str:
        child = db.run_sync(
            lambda c: children.get_child(c, contactpoint_id=cid, today=NOW.date()), write=False
        )
        return child.address.postcode

    def stream(*records: pb.SourceRecord) -> list[Submitted]:
        submissions = [
            preparing.Submission(f"v-{i}-{r.source_record_id}-{r.as_of.seconds}", r)
            for i, r in enumerate(records)
        ]
        results = db.run_sync(
            lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=submissions, now=NOW)
        )
        assert all(isinstance(r, Submitted) for r in results)
        return results  # type: ignore[return-value]

    [held] = stream(version("twice-1", "L1 8JQ", 1))
    moved, back = stream(version("twice-1", "CH1 1AA", 2), version("twice-1", "L1 8JQ", 3))
    assert (moved.outcome, back.outcome) == (Outcome.LINKED, Outcome.LINKED)
    assert postcode_of(held.contactpoint_id) == "L1 8JQ"
    # Newer, then older, in one batch: the newer stands, as it does one request at a time.
    newer, older = stream(version("twice-1", "CH1 1AA", 5), version("twice-1", "WA1 1AB", 4))
    assert (newer.outcome, older.outcome) == (Outcome.LINKED, Outcome.UNCHANGED)
    assert postcode_of(held.contactpoint_id) == "CH1 1AA"
    # Two held records interleaved, each twice: each ends as its last version.
    [other] = stream(version("twice-2", "L1 8JQ", 1))
    stream(
        version("twice-1", "M1 1AE", 6),
        version("twice-2", "M1 1AE", 6),
        version("twice-1", "B1 1AA", 7),
        version("twice-2", "B1 1AA", 7),
    )
    assert postcode_of(held.contactpoint_id) == "B1 1AA"
    assert postcode_of(other.contactpoint_id) == "B1 1AA"


def test_a_feed_sent_again_replaces_each_changed_record_and_dates_each_unchanged_one(db: Database) -> None:
    # One batch brings three held records again: two moved, one unchanged but newer. Each is
    # replaced or dated on its own row (PostgreSQL writes them all in one statement of each kind).
    people = [("Amelia", "Okafor"), ("Ethan", "Corbridge"), ("Noor", "Haddad")]

    def version(n: int, postcode: str, hour: int) -> pb.SourceRecord:
        given, family = people[n]
        record = make_record(
            f"feed-{n}",
            name=child_pb2.PersonName(given_names=given, family_name=family),
            address=child_pb2.Address(lines=[f"{n + 1} High Street"], postcode=postcode),
            nhs_number="",
        )
        record.date_of_birth.day = 1 + n
        record.as_of.FromDatetime(NOW.replace(hour=hour))
        return record

    def stream(*records: pb.SourceRecord) -> list[Submitted]:
        submissions = [preparing.Submission(f"{r.source_record_id}-{r.as_of.seconds}", r) for r in records]
        results = db.run_sync(
            lambda c: ingestion.submit_many(c, organisation=ORG_A, submissions=submissions, now=NOW)
        )
        assert all(isinstance(r, Submitted) for r in results)
        return results  # type: ignore[return-value]

    first = stream(*(version(n, "L1 8JQ", 1) for n in range(3)))
    assert len({r.contactpoint_id for r in first}) == 3
    again = stream(version(0, "CH1 1AA", 2), version(1, "L1 8JQ", 2), version(2, "B1 1AA", 3))
    assert [r.outcome for r in again] == [Outcome.LINKED, Outcome.UNCHANGED, Outcome.LINKED]
    assert [r.contactpoint_id for r in again] == [r.contactpoint_id for r in first]

    def postcode_of(cid: str) -> str:
        child = db.run_sync(
            lambda c: children.get_child(c, contactpoint_id=cid, today=NOW.date()), write=False
        )
        return child.address.postcode

    postcodes = [postcode_of(r.contactpoint_id) for r in first]
    assert postcodes == ["CH1 1AA", "L1 8JQ", "B1 1AA"]
    rows = db.run_sync(
        lambda c: c.execute(
            select(source_records.c.source_record_id, source_records.c.as_of).order_by(
                source_records.c.source_record_id
            )
        ).all(),
        write=False,
    )
    assert [(rid, as_of.replace(tzinfo=dt.UTC).hour) for rid, as_of in rows] == [
        ("feed-0", 2),
        ("feed-1", 2),
        ("feed-2", 3),
    ]

    # A moved record is found under its new postcode, and no longer under the old one.
    def find(postcode: str) -> str:
        criteria = FindCriteria("Haddad", "Noor", (BIRTH_YEAR, 3, 3), postcode=postcode)
        child = db.run_sync(
            lambda c: children.find_child(c, criteria=criteria, today=NOW.date()), write=False
        )
        return child.contactpoint_id

    assert find("B1 1AA") == first[2].contactpoint_id
    with pytest.raises(NotFound):
        find("L1 8JQ")


def _race(
    replica: Database, barrier: threading.Barrier, answers: list[Submitted], *, org: str, system: str, n: int
) -> None:
    given = ["Amelia", "Zainab", "Oliver", "Chloe", "Mohammed", "Harriet"][n]
    record = make_record(
        f"race-{n}",
        source_system=system,
        name=child_pb2.PersonName(given_names=given, family_name="Okafor"),
        nhs_number="",
    )
    record.date_of_birth.day = 1 + n
    barrier.wait()
    for _ in range(5):
        try:
            answers.append(
                replica.run_sync(
                    lambda c: ingestion.submit(
                        c, organisation=org, request_id=f"race-{n}", record=record, now=NOW
                    )
                )
            )
            return
        except ConcurrentChange:
            continue


def test_two_councils_racing_with_one_new_child_make_one_child(database_url: str, db: Database) -> None:
    """Two transactions on two engines (as two records replicas would be), started together with
    the same new child: whichever commits second must see the first's child."""
    replicas = [Database(database_url), Database(database_url)]
    for replica in replicas:
        bind_records_keys(replica)
    try:
        for n in range(6):
            barrier = threading.Barrier(2)
            answers: list[Submitted] = []
            threads = [
                threading.Thread(
                    target=_race,
                    args=(replicas[0], barrier, answers),
                    kwargs={"org": ORG_A, "system": "social-care", "n": n},
                ),
                threading.Thread(
                    target=_race,
                    args=(replicas[1], barrier, answers),
                    kwargs={"org": ORG_B, "system": "education", "n": n},
                ),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(answers) == 2
            assert answers[0].contactpoint_id == answers[1].contactpoint_id
            assert sorted(a.outcome for a in answers) == [Outcome.CREATED, Outcome.LINKED]
    finally:
        for replica in replicas:
            replica.dispose()


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)  # SQLite: one writer, no gap
def test_a_child_filed_between_deciding_and_locking_is_seen(
    database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch decides before it takes its locks. A second council's record of the same new child,
    committed in that gap, must still be found: the batch looks again under the locks and decides
    again (one child, not two)."""
    from services.records.repository import candidates as candidate_repo

    record = make_record("gap-1", nhs_number="")
    record.name.given_names = "Gabriela"
    record.date_of_birth.day = 27
    other = pb.SourceRecord()
    other.CopyFrom(record)
    other.source_system, other.source_record_id = "education", "gap-9"
    replica = Database(database_url)
    bind_records_keys(replica)
    serialise = candidate_repo.serialise_on
    first: list[Submitted] = []
    gaps: list[object] = []

    def in_the_gap(conn: object, names: object) -> None:
        if not gaps:  # the other council commits while this batch is between deciding and locking
            gaps.append(conn)
            first.append(
                replica.run_sync(
                    lambda c: ingestion.submit(
                        c, organisation=ORG_B, request_id="gap-b", record=other, now=NOW
                    )
                )
            )
        serialise(conn, names)  # type: ignore[arg-type]

    monkeypatch.setattr(candidate_repo, "serialise_on", in_the_gap)
    try:
        second = db.run_sync(
            lambda c: ingestion.submit(c, organisation=ORG_A, request_id="gap-a", record=record, now=NOW)
        )
    finally:
        replica.dispose()
    assert first[0].outcome is Outcome.CREATED
    assert second == Submitted(first[0].contactpoint_id, Outcome.LINKED)


def test_blocking_keys_follow_their_record_through_change_and_withdrawal(db: Database) -> None:
    """The keys filed for a record are exactly its current ones: a changed record's old keys
    go, and a withdrawn record leaves none behind (they are derived from personal data)."""
    from services.records.linkage import blocking_keys, features_of
    from services.records.repository.sealing import vault_for
    from services.records.repository.writes import key_hash, unpack_hashes
    from services.records.tables import blocking_keys as keys_table
    from services.records.validation import checked_record

    def filed() -> set[int]:
        rows = db.run_sync(lambda c: c.execute(select(keys_table.c.key)).all(), write=False)
        return {r.key for r in rows}

    def expected(record: pb.SourceRecord) -> set[int]:
        normal, problems = checked_record(record, now=NOW)
        assert normal is not None and not problems
        return {key_hash(k, vault_for(db).ring.index) for k in blocking_keys(features_of(normal))}

    before = filed()
    original = make_record("keys-1")
    submit(db, original)
    assert filed() - before == expected(original)

    moved = make_record(
        "keys-1",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Okafor-Reid"),
        address=child_pb2.Address(lines=["9 Low Road"], town="Leeds", postcode="LS1 4AP"),
    )
    db.run_sync(
        lambda c: ingestion.submit(c, organisation=ORG_A, request_id="keys-1-moved", record=moved, now=NOW)
    )
    assert filed() - before == expected(moved)
    stored = db.run_sync(
        lambda c: c.execute(
            select(source_records.c.blocking).where(source_records.c.source_record_id == "keys-1")
        ).scalar_one(),
        write=False,
    )
    assert set(unpack_hashes(bytes(stored))) == expected(moved)

    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="keys-1", now=NOW
        )
    )
    assert filed() == before


def test_a_contactpoint_id_issued_twice_is_a_lost_race_and_nothing_is_kept(db: Database) -> None:
    """Random IDs collide at national scale (about 600 times in 11 million). A bulk insert that
    meets a used ID (binary COPY on PostgreSQL) must fail as a lost race, keeping nothing, so
    that the batch is retried with new IDs."""
    from services.records.repository import children as child_repo
    from services.records.tables import children as children_table

    db.run_sync(lambda c: child_repo.insert_children(c, [("000000000001", False, None)], now=NOW))
    with pytest.raises(ConcurrentChange):
        db.run_sync(
            lambda c: child_repo.insert_children(
                c, [("000000000002", False, None), ("000000000001", False, None)], now=NOW
            )
        )
    ids = db.run_sync(
        lambda c: c.execute(select(children_table.c.contactpoint_id)).scalars().all(), write=False
    )
    assert sorted(ids) == ["000000000001"]
