"""When a service tells health checks it serves: once it can verify tokens (identity reached at
least once), while its own database answers, and while any peer it cannot answer without (the
gateway's audit service) reports SERVING.

Before, a service whose database was down went on reporting SERVING (found by an operations
probe), so a load balancer or `contactpoint health` sent callers to a replica that failed every
call. The database is asked every few seconds; a passing outage of identity, once tokens have
been verified, does not count (calls fail closed meanwhile; the check is about being able to)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from contactpoint.platform.logging import get_logger
from contactpoint.platform.token_verifier import TokenVerifier

log = get_logger(__name__)

# A check says why the service cannot serve now, or None; it runs in a thread of its own.
Check = Callable[[], str | None]
# How often the checks run; and how long one may take before it counts as failed (a database
# host that does not answer at all, rather than refusing).
CHECK_SECONDS = 5.0
CHECK_TIMEOUT_SECONDS = 4.0
# How long a peer service's health check may take (within CHECK_TIMEOUT_SECONDS).
PEER_CHECK_SECONDS = 3.0
# Failed checks in a row a serving service rides out before it says NOT_SERVING.
FAILURES_ALLOWED = 1

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def peer_serving(channel: grpc.aio.Channel, what: str) -> Check:
    """A check that the peer service on `channel` (named `what`) reports SERVING, for a service
    that can answer nothing without it (found by probing: a gateway whose audit service could not
    be reached reported SERVING, and failed every read UNAVAILABLE; a load balancer kept sending
    people to it). Made on the event loop that owns `channel`."""
    loop = asyncio.get_running_loop()
    stub = health_pb2_grpc.HealthStub(channel)

    async def ask() -> health_pb2.HealthCheckResponse:  # on the channel's loop, as grpc.aio needs
        return await stub.Check(health_pb2.HealthCheckRequest(), timeout=PEER_CHECK_SECONDS)

    def check() -> str | None:
        asked = asyncio.run_coroutine_threadsafe(ask(), loop)
        try:
            reply = asked.result(PEER_CHECK_SECONDS + 0.5)
        except Exception:
            asked.cancel()
            return f"{what} cannot be reached"
        if reply.status != _SERVING:
            return f"{what} is not serving"
        return None

    return check


class Readiness:
    """Keeps a server's health status (for every service name it hosts) to what it can do."""

    def __init__(
        self,
        health: HealthServicer,
        names: Sequence[str],
        *,
        port: int,
        verifier: TokenVerifier | None,
        checks: Sequence[Check] = (),
        interval: float = CHECK_SECONDS,
    ) -> None:
        self._health = health
        self._names = list(names)
        self._port = port
        self._verifier = verifier
        self._checks = list(checks)
        self._interval = interval
        self._serving: bool | None = None
        self._pending: dict[int, asyncio.Future[str | None]] = {}  # checks still running
        self._task: asyncio.Task[None] | None = None
        # A thread of their own: a busy service's worker threads are all at its database, and a
        # check queued behind them was taken for a database down (found by re-probing).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
        self._failed = 0  # checks failed in a row (one more than `FAILURES_ALLOWED` is down)

    async def start(self) -> None:
        """Report the status now, then keep it current until `stop`."""
        await self._update()
        if self._checks or not self._verifying():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="readiness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _verifying(self) -> bool:
        return self._verifier is None or self._verifier.has_state()

    async def _watch(self) -> None:
        while True:
            if self._verifying():
                await asyncio.sleep(self._interval)
            else:  # SERVING the moment identity is first reached, not at the next tick
                with contextlib.suppress(TimeoutError):
                    assert self._verifier is not None
                    await asyncio.wait_for(self._verifier.first_state(), self._interval)
            await self._update()

    async def _update(self) -> None:
        problem = await self._problem()
        if problem is not None and self._verifying() and self._serving:
            # One failed check of a serving service may be a moment's stall: the next decides.
            self._failed += 1
            if self._failed <= FAILURES_ALLOWED:
                return
        elif problem is None:
            self._failed = 0
        serving = problem is None
        if serving == self._serving:
            return
        for name in self._names:  # ignored by the servicer once it is shutting down
            await self._health.set(name, _SERVING if serving else _NOT_SERVING)
        first = self._serving is None
        self._serving = serving
        if serving:
            log.info("service.serving", port=self._port)
        elif first:
            log.info("service.not_ready", port=self._port, reason=problem)
        else:
            log.warning("service.not_serving", port=self._port, reason=problem)

    async def _problem(self) -> str | None:
        if not self._verifying():
            return "no token verification state from identity yet"
        for index, check in enumerate(self._checks):
            problem = await self._run(index, check)
            if problem is not None:
                return problem
        return None

    async def _run(self, index: int, check: Check) -> str | None:
        # A check that hangs (a database host that drops packets) is not started again while it
        # runs: it counts as failed until it returns.
        pending = self._pending.get(index)
        if pending is None or pending.done():
            pending = self._pending[index] = asyncio.get_running_loop().run_in_executor(self._thread, check)
        try:
            return await asyncio.wait_for(asyncio.shield(pending), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"the check did not answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as exc:  # a check that fails is a reason not to serve, never a crash
            return f"the check failed: {type(exc).__name__}"
