"""A bidirectional stream whose messages are answered each in a task of its own, answers going
back as they are ready, in any order (each names the message it answers): many callers' requests
over one long-lived stream, none waiting behind a slower one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Ended:
    """The end of the answers: the request stream ended (`error` None) or failed."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ConcurrentAnswers(Generic[T, R]):
    """Answers `requests` with `answer`, which must answer every request itself (an error is an
    answer: it must not raise).

    - At most `limit` requests are in hand at once, answers not yet taken counted. The stream is
      not read further meanwhile, so a caller sending faster than it takes its answers is held
      back by the transport's flow control.
    - `closing` (the service draining) stops the reading: the requests in hand are answered and
      the answers end. A request sent after it was set is not read, and the caller sends it again
      elsewhere.
    - A failure reading the stream (a refused caller, a message that cannot be decoded) cancels
      the requests in hand and is raised where the answers are read."""

    def __init__(
        self,
        requests: AsyncIterator[T],
        answer: Callable[[T], Awaitable[R]],
        *,
        limit: int,
        closing: asyncio.Event,
    ) -> None:
        self._requests = requests
        self._answer = answer
        self._slots = asyncio.Semaphore(limit)
        self._closing = closing
        self._answers: asyncio.Queue[R | _Ended] = asyncio.Queue()
        self._in_hand: set[asyncio.Task[None]] = set()
        self._reading = True

    async def _one(self, request: T) -> None:
        try:
            answer = await self._answer(request)
        except asyncio.CancelledError:
            self._slots.release()
            raise
        except Exception as exc:  # `answer` broke its promise: the answers end with the failure
            self._slots.release()
            self._answers.put_nowait(_Ended(exc))
            return
        # Its slot is freed once the answer is taken (`__call__`), not now: a caller that sends
        # but does not read its answers must not fill this process with them (found by probing).
        self._answers.put_nowait(answer)

    async def _read(self) -> None:
        error: BaseException | None = None
        try:
            while True:
                # The slot first, then the request: a request read is always answered, also
                # when `closing` stops the reading (found by review: one read while waiting for
                # a slot was dropped).
                await self._slots.acquire()
                try:
                    request = await anext(self._requests)
                except BaseException:
                    self._slots.release()
                    raise
                task = asyncio.get_running_loop().create_task(self._one(request))
                self._in_hand.add(task)
                task.add_done_callback(self._in_hand.discard)
        except StopAsyncIteration:
            pass
        except asyncio.CancelledError:
            pass  # closing: what is in hand is still answered
        except Exception as exc:
            error = exc
            for task in list(self._in_hand):
                task.cancel()
        self._reading = False
        while self._in_hand:
            await asyncio.gather(*self._in_hand, return_exceptions=True)
        self._answers.put_nowait(_Ended(error))

    async def __call__(self) -> AsyncIterator[R]:
        """The answers, as they are ready."""
        reading = asyncio.get_running_loop().create_task(self._read())

        async def stop_reading_on_close() -> None:
            await self._closing.wait()
            if self._reading:  # once the stream has ended, what is in hand is answered anyway
                reading.cancel()

        watching = asyncio.get_running_loop().create_task(stop_reading_on_close())
        try:
            while True:
                item = await self._answers.get()
                if isinstance(item, _Ended):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
                self._slots.release()
        finally:
            watching.cancel()
            reading.cancel()
            for task in list(self._in_hand):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(watching, reading, *self._in_hand, return_exceptions=True)
