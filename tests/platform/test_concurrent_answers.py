"""`ConcurrentAnswers`: a stream's messages answered each in its own task, answers as they are
ready, at most `limit` in hand, reading stopped by `closing` with what is in hand still answered,
and a failure reading the stream cancelling what is in hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from contactpoint.platform.concurrent_answers import ConcurrentAnswers
from contactpoint.platform.errors import Unauthenticated

pytestmark = pytest.mark.asyncio


async def _requests(
    items: list[float], *, then: BaseException | None = None, hang: bool = False
) -> AsyncIterator[float]:
    for item in items:
        yield item
    if then is not None:
        raise then
    if hang:
        await asyncio.Event().wait()


async def _sleep_then(delay: float) -> float:
    await asyncio.sleep(delay)
    return delay


async def test_answers_go_back_as_they_are_ready() -> None:
    answers = ConcurrentAnswers(_requests([0.2, 0.0, 0.1]), _sleep_then, limit=8, closing=asyncio.Event())
    assert [a async for a in answers()] == [0.0, 0.1, 0.2]


async def test_at_most_limit_requests_are_in_hand() -> None:
    in_hand = most = 0

    async def answer(delay: float) -> float:
        nonlocal in_hand, most
        in_hand += 1
        most = max(most, in_hand)
        await asyncio.sleep(delay)
        in_hand -= 1
        return delay

    answers = ConcurrentAnswers(_requests([0.01] * 20), answer, limit=3, closing=asyncio.Event())
    assert len([a async for a in answers()]) == 20
    assert most == 3


async def test_closing_stops_the_reading_and_answers_what_is_in_hand() -> None:
    closing = asyncio.Event()
    answers = ConcurrentAnswers(_requests([0.2, 0.3], hang=True), _sleep_then, limit=8, closing=closing)
    asyncio.get_running_loop().call_later(0.05, closing.set)
    got = await asyncio.wait_for(_all(answers()), 5)
    assert got == [0.2, 0.3]


async def test_closing_once_the_stream_ended_cuts_nothing() -> None:
    closing = asyncio.Event()
    answers = ConcurrentAnswers(_requests([0.2]), _sleep_then, limit=8, closing=closing)
    asyncio.get_running_loop().call_later(0.05, closing.set)
    assert await asyncio.wait_for(_all(answers()), 5) == [0.2]


async def test_a_failure_reading_the_stream_cancels_what_is_in_hand_and_is_raised() -> None:
    finished = []

    async def answer(delay: float) -> float:
        await asyncio.sleep(delay)
        finished.append(delay)
        return delay

    refused = Unauthenticated("invalid token")
    answers = ConcurrentAnswers(_requests([0.0, 0.5], then=refused), answer, limit=8, closing=asyncio.Event())
    got = []
    with pytest.raises(Unauthenticated):
        async for a in answers():
            got.append(a)
    await asyncio.sleep(0.6)
    assert 0.5 not in finished


async def _all(answers: AsyncIterator[float]) -> list[float]:
    return [a async for a in answers]


class _Counted:
    """`count` requests of no delay, counting how many were read."""

    def __init__(self, count: int) -> None:
        self.pulled = 0
        self._count = count

    def __aiter__(self) -> _Counted:
        return self

    async def __anext__(self) -> float:
        if self.pulled == self._count:
            raise StopAsyncIteration
        self.pulled += 1
        return 0.0


async def test_answers_not_taken_hold_back_the_reading() -> None:
    # Found by probing: answers queued without bound while the caller sent and did not read.
    requests = _Counted(1_000)
    answers = ConcurrentAnswers(requests, _sleep_then, limit=3, closing=asyncio.Event())
    reading = answers()
    assert await reading.__anext__() == 0.0
    await asyncio.sleep(0.2)  # the caller takes no more answers
    assert requests.pulled <= 4
    assert len([a async for a in reading]) == 999


async def test_a_request_read_is_answered_even_when_closing_comes_first() -> None:
    # Found by review: closing while a read-ahead request waited for a slot dropped it unanswered.
    requests = _Counted(10)
    closing = asyncio.Event()
    answers = ConcurrentAnswers(requests, _sleep_then, limit=1, closing=closing)
    reading = answers()
    assert await reading.__anext__() == 0.0  # held: its slot is not free yet
    await asyncio.sleep(0.05)
    closing.set()
    rest = [a async for a in reading]
    assert 1 + len(rest) == requests.pulled


async def test_an_answer_that_raises_ends_the_answers_with_its_failure() -> None:
    async def answer(delay: float) -> float:
        if delay:
            raise RuntimeError("broken")
        return delay

    answers = ConcurrentAnswers(_requests([0.0, 1.0], hang=True), answer, limit=8, closing=asyncio.Event())
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(_all(answers()), 5)
