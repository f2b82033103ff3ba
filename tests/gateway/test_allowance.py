"""Each person's allowance, straight on the gateway's database (SQLite and PostgreSQL): GCRA's
arithmetic, distinct children a day, re-reads, searches, trips and a fresh allowance after
reinstatement, and two writers never both spending the last read."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.statements import Statements
from gateway import allowance
from gateway.allowance import EXACT_UP_TO, Limits, Person, Verdict, gcra, sliding
from gateway.identity_client import IdentityClient
from gateway.limits import Allowances
from gateway.main import MIGRATIONS

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
# Deciding never calls identity (only enforcing a decision suspends through it).
NO_IDENTITY: IdentityClient = object()  # type: ignore[assignment]


def test_gcra_allows_a_minute_at_once_then_one_per_interval() -> None:
    tat, now = 0.0, 1000.0
    for _ in range(30):
        rate = gcra(tat, now, per_minute=30)
        assert rate.allowed
        tat = rate.tat
    refused = gcra(tat, now, per_minute=30)
    assert not refused.allowed and refused.retry_after == pytest.approx(2.0)
    assert refused.tat == tat  # a refusal spends nothing
    assert not gcra(tat, now + 1.9, per_minute=30).allowed
    assert gcra(tat, now + 2.0, per_minute=30).allowed


def test_at_most_the_rate_in_any_minute() -> None:
    """A whole minute's worth at once, then nothing until the first of them is a minute old (found
    by probing: GCRA let 59 reads through in a minute at 30 a minute)."""
    recent: tuple[float, ...] = ()
    now = 1000.0
    for i in range(30):
        rate = sliding(recent, now + i * 0.25, per_minute=30)
        assert rate.allowed
        recent = rate.recent
    refused = sliding(recent, now + 10, per_minute=30)
    assert not refused.allowed and refused.retry_after == pytest.approx(50.0)
    assert not sliding(recent, now + 59.9, per_minute=30).allowed
    assert sliding(recent, now + 60.0, per_minute=30).allowed
    # Read by read over two minutes, at four a second when allowed: never more than 30 in any minute.
    recent, allowed = (), []
    t = now
    while t < now + 120:
        rate = sliding(recent, t, per_minute=30)
        if rate.allowed:
            allowed.append(t)
            recent = rate.recent
        t += 0.25
    assert max(sum(1 for a in allowed if start <= a < start + 60) for start in allowed) == 30
    assert len(allowed) == 60


def test_a_steady_rate_is_never_refused() -> None:
    recent: tuple[float, ...] = ()
    for i in range(200):
        rate = sliding(recent, 5000.0 + i * 2.0, per_minute=30)
        assert rate.allowed
        recent = rate.recent
    assert len(recent) <= 30


def test_gcra_steady_rate_is_never_refused() -> None:
    tat = 0.0
    for i in range(200):
        rate = gcra(tat, 5000.0 + i * 2.0, per_minute=30)
        assert rate.allowed
        tat = rate.tat


@pytest.fixture
def db(database_url: str) -> Database:
    migrate.upgrade("gateway", MIGRATIONS, database_url)
    database = Database(database_url)
    yield database  # type: ignore[misc]
    database.dispose()


def decide(
    db: Database,
    item: str | None,
    *,
    now: float = NOON,
    issued_at: float = NOON - 60,
    suspended_at: float | None = None,
    found: bool = False,
    **limits: int,
) -> allowance.Decision:
    """One read as the gateway makes it (`Allowances.decide_read`): the rate in one statement,
    then, for a child not yet counted today, a transaction that counts it. With `found`, `item` is
    what a search found, counted after the read (`Allowances.decide_item`)."""
    values = {"rate_per_minute": 1000, "daily_records": 3, **limits}
    person = Person("p-1", issued_at, suspended_at)

    async def run() -> allowance.Decision:
        store = Statements(db)
        try:
            allowances = Allowances(
                store, Limits(**values), identity=NO_IDENTITY, suspended_since=lambda _s: suspended_at
            )
            if found:
                assert item is not None
                return await allowances.decide_item(person, item, now)
            return await allowances.decide_read(person, item, now)
        finally:
            await store.close()

    return asyncio.run(run())


def read(db: Database, item: str | None, **kwargs: float) -> Verdict:
    return decide(db, item, **kwargs).verdict  # type: ignore[arg-type]


def test_distinct_children_a_day_rereads_free_and_a_trip(db: Database) -> None:
    assert [read(db, f"child:{i}") for i in (1, 2, 3)] == [Verdict.ALLOWED] * 3
    # Re-reading a child already read today costs nothing more.
    assert read(db, "child:2") is Verdict.ALLOWED
    # The fourth distinct child goes over: a trip (the caller suspends the account).
    over = decide(db, "child:4")
    assert (over.verdict, over.suspend) == (Verdict.OVER_DAILY_LIMIT, True)
    # With the same token, still over, even for a child read before; the suspension is not asked
    # for again while it may still be on its way to the verifiers.
    again = decide(db, "child:1", now=NOON + 1)
    assert (again.verdict, again.suspend) == (Verdict.STILL_OVER_DAILY_LIMIT, False)
    # A new token while the suspension has not been seen (identity unreachable): still over, and
    # after a few seconds the suspension is asked for again.
    fresh = NOON + 600
    unseen = decide(db, "child:4", now=fresh, issued_at=fresh)
    assert (unseen.verdict, unseen.suspend) == (Verdict.STILL_OVER_DAILY_LIMIT, True)
    # Suspended (identity suspended the account just after the trip), reinstated, logged in again:
    # a fresh allowance from the trip on.
    cut = NOON + 0.2
    assert [read(db, f"child:{i}", now=fresh + i, issued_at=fresh, suspended_at=cut) for i in (4, 5, 6)] == [
        Verdict.ALLOWED
    ] * 3
    assert read(db, "child:7", now=fresh + 10, issued_at=fresh, suspended_at=cut) is Verdict.OVER_DAILY_LIMIT
    # Had no suspension been seen, even the next day: a trip is not forgotten overnight.
    tomorrow = NOON + 86_400
    assert read(db, "child:9", now=tomorrow, issued_at=tomorrow - 60) is Verdict.STILL_OVER_DAILY_LIMIT
    # With the suspension seen, the next day starts afresh.
    seen = fresh + 11
    next_day = read(db, "child:9", now=tomorrow + 1, issued_at=tomorrow - 60, suspended_at=seen)
    assert next_day is Verdict.ALLOWED


def test_searches_count_and_rate_refusals_do_not(db: Database) -> None:
    assert read(db, None, rate_per_minute=2) is Verdict.ALLOWED
    assert read(db, None, rate_per_minute=2) is Verdict.ALLOWED
    assert read(db, "child:1", rate_per_minute=2) is Verdict.RATE_LIMITED
    assert read(db, "child:1", rate_per_minute=2, now=NOON + 30) is Verdict.RATE_LIMITED
    assert read(db, "child:1", rate_per_minute=2, now=NOON + 60) is Verdict.ALLOWED
    for i in range(2):
        assert decide(db, f"search:{i}", now=NOON + 61, found=True).verdict is Verdict.ALLOWED
    assert read(db, "child:9", now=NOON + 62) is Verdict.OVER_DAILY_LIMIT


def test_two_writers_never_both_spend_the_last_read(database_url: str, db: Database) -> None:
    # Two databases handles (two gateway replicas), 20 threads each racing for 25 reads.
    other = Database(database_url)
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def worker(handle: Database, n: int) -> None:
        for i in range(n):
            verdict = read(
                handle, f"child:{threading.get_ident()}-{i}", rate_per_minute=25, daily_records=10_000
            )
            with lock:
                verdicts.append(verdict)

    threads = [threading.Thread(target=worker, args=(db if i % 2 else other, 5)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert verdicts.count(Verdict.ALLOWED) == 25
    assert verdicts.count(Verdict.RATE_LIMITED) == 15


def test_two_writers_never_both_count_the_last_child(database_url: str, db: Database) -> None:
    # Two replicas, 8 threads racing first reads of distinct children, and re-reads of one child
    # counted before: exactly the daily limit of distinct children is allowed, once each.
    other = Database(database_url)
    assert read(db, "child:shared", daily_records=10) is Verdict.ALLOWED
    verdicts: list[tuple[str, Verdict]] = []
    lock = threading.Lock()

    def worker(handle: Database, w: int, n: int) -> None:
        for i in range(n):
            item = "child:shared" if i % 2 else f"child:{w}-{i}"
            verdict = read(handle, item, daily_records=10, issued_at=NOON - 60)
            with lock:
                verdicts.append((item, verdict))

    threads = [threading.Thread(target=worker, args=(db if i % 2 else other, i, 6)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    firsts = [v for item, v in verdicts if item != "child:shared"]
    # 9 new children fit beside the shared one; exactly one read went over (the trip); every
    # read after the trip is refused, re-reads of the shared child included.
    assert firsts.count(Verdict.ALLOWED) == 9
    assert [v for _, v in verdicts].count(Verdict.OVER_DAILY_LIMIT) == 1
    counted = db.run_sync(lambda c: c.exec_driver_sql("SELECT count(*) FROM daily_reads").scalar())
    assert counted == 10


def test_a_search_is_refused_while_over_the_limit(db: Database) -> None:
    for i in (1, 2, 3):
        read(db, f"child:{i}")
    assert read(db, "child:4") is Verdict.OVER_DAILY_LIMIT
    # A search (no item known before it runs) does not reach records while the account is over.
    assert read(db, None, now=NOON + 1) is Verdict.STILL_OVER_DAILY_LIMIT


def test_old_days_are_forgotten(db: Database) -> None:
    read(db, "child:1", now=NOON - 3 * 86_400, issued_at=NOON - 4 * 86_400)
    read(db, "child:2")
    assert db.run_sync(lambda c: allowance.forget_old_days(c, now=NOON)) == 1


def test_trips_recorded_before_0003_still_refuse(database_url: str) -> None:
    migrate.upgrade("gateway", MIGRATIONS, database_url, revision="0002")
    database = Database(database_url)
    database.run_sync(
        lambda c: c.exec_driver_sql(
            "INSERT INTO limit_trips (subject, day, tripped_at) VALUES ('p-1', '2026-12-02', ?)"
            if database_url.startswith("sqlite")
            else "INSERT INTO limit_trips (subject, day, tripped_at) VALUES ('p-1', '2026-12-02', %s)",
            (NOON - 10,),
        )
    )
    migrate.upgrade("gateway", MIGRATIONS, database_url)
    try:
        assert read(database, "child:1") is Verdict.STILL_OVER_DAILY_LIMIT
    finally:
        database.dispose()


def _counted(db: Database) -> tuple[int, int]:
    """(the count on the person's rates row, their distinct reads in daily_reads) for p-1 today."""
    row = db.run_sync(lambda c: c.exec_driver_sql("SELECT counted FROM rates WHERE subject = 'p-1'").scalar())
    reads = db.run_sync(
        lambda c: c.exec_driver_sql("SELECT count(*) FROM daily_reads WHERE subject = 'p-1'").scalar()
    )
    return int(row), int(reads)


def test_the_days_count_on_the_rates_row_matches_the_reads(database_url: str, db: Database) -> None:
    # Distinct first reads from two replicas at once (one statement each on PostgreSQL): the
    # count kept on the person's row is exactly the reads counted.
    other = Database(database_url)

    def worker(handle: Database, w: int) -> None:
        for i in range(5):
            assert read(handle, f"child:{w}-{i}", daily_records=100) is Verdict.ALLOWED

    threads = [threading.Thread(target=worker, args=(db if i % 2 else other, i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert _counted(db) == (40, 40)


def test_a_new_day_starts_a_new_count(db: Database) -> None:
    assert [read(db, f"child:{i}") for i in (1, 2, 3)] == [Verdict.ALLOWED] * 3
    tomorrow = NOON + 86_400
    assert [read(db, f"child:{i}", now=tomorrow + i) for i in (1, 2, 3)] == [Verdict.ALLOWED] * 3
    assert read(db, "child:4", now=tomorrow + 5) is Verdict.OVER_DAILY_LIMIT


def test_counts_made_before_0004_carry_over(database_url: str) -> None:
    migrate.upgrade("gateway", MIGRATIONS, database_url, revision="0003")
    database = Database(database_url)
    day = datetime.fromtimestamp(NOON, UTC).date().isoformat()
    yesterday = datetime.fromtimestamp(NOON - 86_400, UTC).date().isoformat()
    insert_read = text("INSERT INTO daily_reads (subject, day, item, read_at) VALUES ('p-1', :d, :i, :t)")

    def seed(c: Connection) -> None:
        c.execute(text("INSERT INTO rates (subject, tat) VALUES ('p-1', 0.0)"))
        for d, item in ((yesterday, "child:0"), (day, "child:1"), (day, "child:2")):
            c.execute(insert_read, {"d": d, "i": item, "t": NOON - 100})

    database.run_sync(seed)
    migrate.upgrade("gateway", MIGRATIONS, database_url)
    try:
        # Two of today's three were read before the upgrade: one more fits, then the trip.
        assert read(database, "child:3") is Verdict.ALLOWED
        assert read(database, "child:4") is Verdict.OVER_DAILY_LIMIT
    finally:
        database.dispose()


def test_a_search_is_counted_under_a_keyed_hash() -> None:
    """The allowance table cannot be asked whether anyone searched for a name and date of birth:
    without the gateway's key, the stored item of a search cannot be recomputed."""
    import hashlib

    from contactpoint.records.v1 import records_service_pb2 as records_pb
    from gateway.limits import search_item

    search = records_pb.FindChildRecordRequest(family_name="Okafor", given_name="Amelia")
    search.date_of_birth.year, search.date_of_birth.month, search.date_of_birth.day = 2015, 3, 14
    same = records_pb.FindChildRecordRequest()
    same.CopyFrom(search)
    same.family_name = "  OKAFOR "
    key, other = b"k" * 32, b"o" * 32
    assert search_item(search, key) == search_item(same, key)  # what records compares, alike
    assert search_item(search, key) != search_item(search, other)
    unkeyed = "\x1f".join(("okafor", "amelia", "2015-03-14", "", "0", "False"))
    assert hashlib.sha256(unkeyed.encode()).hexdigest()[:40] not in search_item(search, key)


def test_a_rate_above_what_is_held_exactly_is_held_by_gcra(db: Database) -> None:
    # The benchmarks raise the rate to measure the bookkeeping alone; no person needs so many reads
    # a minute, and keeping that many times would cost each read more than the read.
    rate = EXACT_UP_TO + 1
    assert all(read(db, None, rate_per_minute=rate) is Verdict.ALLOWED for _ in range(rate))
    over = decide(db, None, rate_per_minute=rate)
    assert over.verdict is Verdict.RATE_LIMITED
    assert over.retry_after == pytest.approx(60 / rate, abs=1e-3)
    assert read(db, None, rate_per_minute=rate, now=NOON + 60 / rate) is Verdict.ALLOWED
