"""How a request's ending becomes its audit outcome."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from sqlalchemy import text

from contactpoint.platform.audited import AuditedRequest, outcome_of
from contactpoint.platform.db import Database, TransactionConflict
from contactpoint.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from tests.harness import write_locked


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (None, ("ALLOWED", grpc.StatusCode.OK)),
        (Unauthenticated("x"), ("DENIED", grpc.StatusCode.UNAUTHENTICATED)),
        (PermissionDenied(), ("DENIED", grpc.StatusCode.PERMISSION_DENIED)),
        (NotFound("x"), ("NOT_FOUND", grpc.StatusCode.NOT_FOUND)),
        (ResourceExhausted("x", 1), ("RATE_LIMITED", grpc.StatusCode.RESOURCE_EXHAUSTED)),
        (InvalidArgument([]), ("INVALID", grpc.StatusCode.INVALID_ARGUMENT)),
        (
            FailedPrecondition("x", "TOO_MANY_MATCHES"),
            ("TOO_MANY_MATCHES", grpc.StatusCode.FAILED_PRECONDITION),
        ),
        (Unavailable("x"), ("UNAVAILABLE", grpc.StatusCode.UNAVAILABLE)),
        (asyncio.CancelledError(), ("CANCELLED", grpc.StatusCode.CANCELLED)),
        (ValueError("bug"), ("ERROR", grpc.StatusCode.INTERNAL)),
    ],
)
def test_outcomes(exc: BaseException | None, expected: tuple[str, grpc.StatusCode]) -> None:
    assert outcome_of(exc) == expected


class _FakeWriter:
    """What `AuditedRequest` asks of its writer; `append` is each fake's own."""

    def began(self) -> None:
        pass

    def ended(self) -> None:
        pass

    def enqueue(
        self, event: object, *, ends_request: bool = False, by: float | None = None
    ) -> asyncio.Future[None]:
        return asyncio.ensure_future(self.append(event))

    async def append(self, event: object) -> None:
        raise NotImplementedError


class _SlowLog(_FakeWriter):
    """An audit writer whose appends wait until released (or fail, when told to)."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.events: list[str] = []
        self.release = asyncio.Event()
        self.fail_first = fail_first

    async def append(self, event: object) -> None:
        if self.fail_first:
            self.fail_first = False
            raise Unavailable("the audit service could not record this request")
        await self.release.wait()
        self.events.append(event.outcome)  # type: ignore[attr-defined]


async def test_a_request_cancelled_while_its_event_is_on_its_way_is_recorded_once() -> None:
    """Found by probing: a client that gave up while audit was slow left ALLOWED and CANCELLED."""
    from contactpoint.platform.audited import AuditedRequest

    log = _SlowLog()

    async def handler() -> None:
        async with AuditedRequest(log, "SetShielded", "rid-1") as call:  # type: ignore[arg-type]
            await call.record()

    task = asyncio.create_task(handler())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    log.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log.events == ["ALLOWED"]


async def test_an_event_the_log_refused_is_written_again_as_the_failure() -> None:
    from contactpoint.platform.audited import AuditedRequest

    log = _SlowLog(fail_first=True)
    log.release.set()
    with pytest.raises(Unavailable):
        async with AuditedRequest(log, "Logout", "rid-2") as call:  # type: ignore[arg-type]
            await call.record()
    assert log.events == ["UNAVAILABLE"]


@pytest.mark.parametrize("said", ["\u202e" * 200, "\x00" * 200, "x" * 5000, "; account suspended"])
def test_what_a_caller_typed_never_pushes_the_services_own_words_out_of_the_event(said: str) -> None:
    # Found by probing: 200 hidden characters in a justification, escaped to 1,200, crowded out a
    # shield-override alert's own text.
    from contactpoint.platform.audited import MAX_DETAIL_LENGTH, AuditedRequest

    call = AuditedRequest(_SlowLog(), "GetChild", "req-1")  # type: ignore[arg-type]
    call.quoted.append(("justification", said))
    call.details.append("shielded record viewed with shield-override")
    detail = call.event(None).detail
    assert detail.startswith("shielded record viewed with shield-override; justification: ")
    assert len(detail) <= MAX_DETAIL_LENGTH
    assert "\u202e" not in detail and "\x00" not in detail


def test_a_callers_words_padded_with_spaces_of_any_width_keep_what_they_say() -> None:
    # Found by re-probing: 5,000 no-break spaces before a reason left "reason: " and blanks.
    from contactpoint.platform.audited import AuditedRequest

    call = AuditedRequest(_SlowLog(), "SetShielded", "req-1")  # type: ignore[arg-type]
    call.details.append("shield")
    call.quoted.append(("reason", "\u00a0" * 5000 + "REAL REASON" + "\u3000" * 3000 + "\u2800" * 100))
    assert call.event(None).detail == "shield; reason: REAL REASON"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a reason", True),
        ("\u3164", False),  # Hangul filler
        ("\u2800", False),  # blank braille
        ("\u115f\u1160", False),
        ("\u00a0\u3000 \u2028", False),
        ("\u200b", False),
        ("é", True),
        ("\u3164x", True),
        ("\u034f", False),  # grapheme joiner, variation selector, a lone accent (found by re-probing)
        ("\ufe0f", False),
        ("\u0301\u0302", False),
        ("\u17b4\u17b5", False),
        ("e\u0301", True),
    ],
)
def test_says_something(text: str, says: bool) -> None:
    from contactpoint.platform.text import says_something

    assert says_something(text) is says


_WALES = "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"


@pytest.mark.parametrize(
    ("text", "breaks"),
    [
        ("Safeguarding, S47", False),
        ("line one\nline two", True),
        ("left \u202eright", True),
        ("a\u200bb", True),
        ("\u067e\u06cc\u200c\u0688\u06cc", False),  # a joiner of Urdu writing
        (f"Cymru {_WALES}", False),  # the flag of Wales (found by probing: its tags were refused)
        (f"{_WALES}{_WALES}", False),
        ("tag \U000e0067\U000e007f", True),  # tag characters with no flag: hidden text
        ("\U0001f3f4\U000e007f", True),
        (f"{_WALES[:-1]} open", True),  # a flag's tags never ended
        (f"{_WALES}\U000e0041", True),
        # Only the three flags Unicode writes with tags (found by re-probing: a black flag with
        # any tags, Texas's or a hidden sentence, was accepted).
        ("\U0001f3f4\U000e0075\U000e0073\U000e0074\U000e0078\U000e007f", True),
        ("\U0001f3f4\U000e0063\U000e0075\U000e0072\U000e0069\U000e006f\U000e0075\U000e0073\U000e007f", True),
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", False),  # England
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", False),  # Scotland
    ],
)
def test_breaks_lines(text: str, breaks: bool) -> None:
    from contactpoint.platform.text import breaks_lines

    assert breaks_lines(text) is breaks


def test_the_log_keeps_a_flag_and_a_joiner_as_written() -> None:
    """Found by re-probing: Wales's flag reached the audit log as escapes, and at the end of a
    justification cut to a black flag."""
    from contactpoint.platform.audited import printable
    from contactpoint.platform.text import trimmed

    written = f"Cymru {_WALES} \u067e\u06cc\u200c\u0688"
    assert printable(written) == written
    assert printable("a\x00b\u202e") == "a\\u0000b\\u202e"
    assert printable("\U000e0067 hidden") == "\\ue0067 hidden"
    assert trimmed(f"  Cymru {_WALES}  ") == f"Cymru {_WALES}"
    assert printable("1\ufe0f\u20e3 \u1820\u180b") == "1\ufe0f\u20e3 \u1820\u180b"  # a keycap; Mongolian
    assert printable("\u0915\u094d\u200d\u0937 \U0001f468\u200d\U0001f469 \u2764\ufe0f\u200d\U0001f525") == (
        "\u0915\u094d\u200d\u0937 \U0001f468\u200d\U0001f469 \u2764\ufe0f\u200d\U0001f525"
    )


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        # Found by re-probing: joiners in a row, or between plain letters, carried a hidden message.
        ("pw\u200c\u200d\u200c\u200dx", "pw\\u200c\\u200d\\u200c\\u200dx"),
        ("a\u200db", "a\\u200db"),
        ("\u067e\u200c\u200c\u06cc", "\u067e\\u200c\\u200c\u06cc"),
        # What shows nothing: fillers, blank braille, the grapheme joiner, a selector on no symbol.
        ("ok\u3164\u115f\u2800x", "ok\\u3164\\u115f\\u2800x"),
        ("e\u034f\u034f", "e\\u034f\\u034f"),
        ("a\ufe0f\U000e0100", "a\\ufe0f\\ue0100"),
        # Found by a third re-probe: each of these carried hidden bytes past the reader.
        ("\u00e9\ufe01\u00e9\ufe02", "\u00e9\\ufe01\u00e9\\ufe02"),  # a selector on a letter
        ("routine\u180b\u180c check", "routine\\u180b\\u180c check"),  # Mongolian's, on no letter
        ("\u041f\u0440\u200d\u043e", "\u041f\u0440\\u200d\u043e"),  # a joiner in Cyrillic
        ("x\u17b4\U00016fe4", "x\\u17b4\\u16fe4"),
        ("\u845b\U000e0100\U000e0101", "\u845b\U000e0100\\ue0101"),  # one Han selector, not two
    ],
)
def test_the_log_shows_what_would_hide_text(text: str, logged: str) -> None:
    from contactpoint.platform.audited import printable

    assert printable(text) == logged


class _DeadlockingDb:
    """A database whose first `losses` write transactions lose a race (a deadlock)."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.runs = 0

    async def write(self, fn: object) -> object:
        self.runs += 1
        result = fn(None)  # type: ignore[operator]
        if self.runs <= self.losses:
            raise TransactionConflict("the transaction lost a race; retry it")
        return result


class _RecordingLog(_FakeWriter):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def append(self, event: object) -> None:
        self.events.append((event.outcome, event.detail))  # type: ignore[attr-defined]


async def test_a_write_that_lost_a_race_runs_again_and_is_recorded_once() -> None:
    """Found by probing: two data managers' calls on two records replicas deadlocked, and one was
    answered INTERNAL. A lost race runs again from the start; what it noted is not noted twice."""
    from contactpoint.platform.audited import AuditedRequest

    log = _RecordingLog()
    db = _DeadlockingDb(losses=2)

    def change(_conn: object) -> str:
        call.details.append("merged")
        call.others.append("503352916258")
        return "done"

    async with AuditedRequest(log, "MergeChildren", "rid-3") as call:  # type: ignore[arg-type]
        # The event is recorded inside the transaction: a lost race before it leaves none.
        call.record_before_commit = lambda *_a, **_k: None  # type: ignore[method-assign]
        assert await call.write(db, change) == "done"  # type: ignore[arg-type]
    assert db.runs == 3 and call.details == ["merged"] and call.others == ["503352916258"]
    assert log.events == [("ALLOWED", "merged")]


async def test_a_write_that_keeps_losing_is_unavailable_never_internal() -> None:
    from contactpoint.platform.audited import AuditedRequest

    log = _RecordingLog()
    with pytest.raises(Unavailable):
        async with AuditedRequest(log, "UnmergeChildren", "rid-4") as call:  # type: ignore[arg-type]
            call.record_before_commit = lambda *_a, **_k: None  # type: ignore[method-assign]
            await call.write(_DeadlockingDb(losses=99), lambda _c: None)  # type: ignore[arg-type]
    assert [outcome for outcome, _ in log.events] == ["UNAVAILABLE"]


@pytest.mark.parametrize("failure_still_on_its_way", [False, True])
async def test_a_write_still_waiting_when_its_request_ended_in_failure_is_not_committed(
    database_url: str, failure_still_on_its_way: bool
) -> None:
    """Found by probing: a data manager's call cancelled at its deadline while its write waited
    for the database was logged as failed, and the write, still queued, then committed: a child
    shielded (or merged) with the log saying it was not. Now the write rolls back, whether the
    failure is in the log already or still on its way when the write gets the database (found by
    re-probing)."""
    db = Database(database_url)
    try:
        db.run_sync(lambda c: c.execute(text("CREATE TABLE changes (x INTEGER)")))
        log = _SlowLog()
        if not failure_still_on_its_way:
            log.release.set()

        async def handler() -> None:
            async with AuditedRequest(log, "SetShielded", "rid-3") as call:  # type: ignore[arg-type]
                await call.write(db, lambda c: c.execute(text("INSERT INTO changes VALUES (1)")))

        with write_locked(database_url, "changes"):
            task = asyncio.create_task(handler())
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the write that waited has the database now
        log.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)
        assert db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM changes")).scalar_one()) == 0
        assert log.events == ["CANCELLED"]
    finally:
        db.dispose()
