"""A verifier whose poll fell behind (its event loop held up, identity slow to answer one poll)
fetches the state when a call needs it, instead of refusing a token the next poll would admit;
and still fails closed when identity cannot answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.token_verifier import OutOfDateAnswer, TokenVerifier, VerificationState
from contactpoint.records.v1 import records_service_pb2 as pb
from services.identity.token_issuer import TokenIssuer
from tests.platform.probe import ECHO, STREAM, WATCH, running_probe, service_account

STALENESS = 0.2


class Identity:
    """A verification state source that counts its calls, and can be made to fail or hang."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.keys = {issuer.key_id: issuer.public_key}
        self.calls = 0
        self.failing = False
        self.delay = 0.0

    async def source(self, _known: int) -> VerificationState:
        self.calls += 1
        state = VerificationState(self.calls, dict(self.keys), frozenset(), frozenset())  # as asked
        await asyncio.sleep(self.delay)
        if self.failing:
            raise ConnectionError("identity unreachable")
        return state


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)


def _token(issuer: TokenIssuer) -> str:
    return issuer.issue(service_account(), now=dt.datetime.now(dt.UTC)).token


async def _gone_stale(verifier: TokenVerifier) -> None:
    await verifier.refresh()
    time.sleep(STALENESS * 1.5)  # noqa: ASYNC251 - the event loop held up: no poll ran meanwhile
    assert verifier.stale()


async def test_a_stale_state_is_fetched_for_the_call_that_needs_it(issuer: TokenIssuer) -> None:
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    token = _token(issuer)
    with pytest.raises(Unavailable):
        verifier.verify(token)  # what a call met before catching up
    await verifier.catch_up()
    assert verifier.verify(token).name == service_account().name
    assert identity.calls == 2
    await verifier.catch_up()  # fresh: nothing fetched
    assert identity.calls == 2


async def test_calls_waiting_together_share_one_fetch(issuer: TokenIssuer) -> None:
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    identity.delay = 0.02
    await asyncio.gather(*(verifier.catch_up() for _ in range(20)))
    assert identity.calls == 2  # the first refresh and one catch-up for all twenty
    assert not verifier.stale()


async def test_identity_unreachable_still_fails_closed_and_is_not_hammered(issuer: TokenIssuer) -> None:
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    identity.failing = True
    await verifier.catch_up()  # never raises
    with pytest.raises(Unavailable):
        verifier.verify(_token(issuer))
    for _ in range(10):  # a failed fetch is not tried again before the poll would
        await verifier.catch_up()
    assert identity.calls == 2


async def test_a_hanging_identity_holds_a_call_at_most_half_the_staleness(issuer: TokenIssuer) -> None:
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    identity.delay = 30.0
    started = time.monotonic()
    await verifier.catch_up()
    assert time.monotonic() - started < STALENESS * 5  # bounded (STALENESS / 2), not 30 s
    with pytest.raises(Unavailable):
        verifier.verify(_token(issuer))


async def test_a_fetch_that_hung_then_failed_is_not_asked_again_at_once(issuer: TokenIssuer) -> None:
    """The wait before asking again counts from when the failed fetch ended: an identity that
    hangs until its deadline is not asked again by the very next call."""
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=0.3, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    identity.failing, identity.delay = True, 0.4
    await verifier.catch_up()  # gives up waiting after STALENESS / 2; the fetch hangs on
    await asyncio.sleep(0.35)  # the fetch has now failed, 0.45 s after it began
    await verifier.catch_up()
    assert identity.calls == 2
    await asyncio.sleep(0.5)  # more than a poll's time after the failure: asked again
    identity.delay = 0.0
    await verifier.catch_up()
    assert identity.calls == 3
    await verifier.stop()


class Scripted:
    """A verification state source that answers what it is told to, in order."""

    def __init__(self, issuer: TokenIssuer, answers: list[int | None]) -> None:
        self.keys = {issuer.key_id: issuer.public_key}
        self.answers = answers
        self.asked: list[int] = []

    async def source(self, known: int) -> VerificationState | None:
        self.asked.append(known)
        version = self.answers.pop(0)
        return (
            None if version is None else VerificationState(version, dict(self.keys), frozenset(), frozenset())
        )


async def test_an_older_version_never_replaces_a_newer_one(issuer: TokenIssuer) -> None:
    """An answer from behind (an identity replica that lags, a restored backup) cannot bring back
    keys or revocations older than the ones already held."""
    identity = Scripted(issuer, [5, 3, 3])
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await verifier.refresh()
    identity.keys = {}
    with pytest.raises(OutOfDateAnswer):  # a failed fetch: the poll logs it and tries again later
        await verifier.refresh()
    assert verifier.verify(_token(issuer)).name == service_account().name  # still version 5
    # Gone stale, a catch-up meets the same old answer: a failure, not asked again before the poll.
    time.sleep(STALENESS * 1.5)  # noqa: ASYNC251 - no poll runs meanwhile
    for _ in range(5):
        await verifier.catch_up()
    assert identity.asked == [0, 5, 5]
    assert verifier.stale()


async def test_unchanged_about_a_replaced_version_does_not_freshen_the_state(issuer: TokenIssuer) -> None:
    """Two fetches overlap, both asked about version 0: the first brings version 2; the second,
    from a replica that lags, says "unchanged", which says nothing about version 2 and must not
    make it look fresher than it is."""
    verifier = TokenVerifier(Scripted(issuer, []).source, poll_seconds=60, max_staleness_seconds=STALENESS)
    gates = [asyncio.Event(), asyncio.Event()]
    answers: list[VerificationState | None] = [
        VerificationState(2, {issuer.key_id: issuer.public_key}, frozenset(), frozenset()),
        None,
    ]
    calls = 0

    async def overlapping(_known: int) -> VerificationState | None:
        nonlocal calls
        mine, calls = calls, calls + 1
        await gates[mine].wait()
        return answers[mine]

    verifier._source = overlapping
    first = asyncio.ensure_future(verifier.refresh())
    await asyncio.sleep(0)
    time.sleep(STALENESS * 1.5)  # noqa: ASYNC251 - the second is asked well after the first
    second = asyncio.ensure_future(verifier.refresh())
    await asyncio.sleep(0)
    gates[0].set()
    await first  # version 2, fresh as of when the first was asked: already stale
    assert verifier.stale()
    gates[1].set()
    with pytest.raises(OutOfDateAnswer):
        await second  # asked about version 0: must not make version 2 look fresh as of its asking
    assert verifier.stale()


async def test_stop_cancels_a_catch_up_under_way(issuer: TokenIssuer) -> None:
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=STALENESS)
    await _gone_stale(verifier)
    identity.delay = 30.0
    await verifier.catch_up()
    fetch = verifier._catching_up
    assert fetch is not None and not fetch.done()
    waiting = asyncio.ensure_future(verifier.catch_up())  # a call waiting on that fetch
    await asyncio.sleep(0)
    await verifier.stop()
    assert fetch.cancelled()
    await waiting  # returns, does not raise the cancellation into the call
    await verifier.catch_up()  # stopped: starts nothing
    assert verifier._catching_up is fetch and identity.calls == 2


async def test_a_late_answer_does_not_replace_a_newer_one(issuer: TokenIssuer) -> None:
    """Two fetches overlap (the poll and a catch-up): the one asked later wins, whichever lands
    last, so a slow old answer cannot bring back revoked keys or make the state look fresher."""
    identity = Identity(issuer)
    verifier = TokenVerifier(identity.source, poll_seconds=60, max_staleness_seconds=3600)
    identity.delay = 0.1
    slow = asyncio.ensure_future(verifier.refresh())
    await asyncio.sleep(0.02)
    identity.delay = 0.0
    identity.keys = {}  # the key retired meanwhile
    await verifier.refresh()
    await slow
    with pytest.raises(Exception, match="invalid token"):
        verifier.verify(_token(issuer))


async def test_every_kind_of_call_is_admitted_after_its_server_was_held_up() -> None:
    """Through the real interceptor: the server's verifier does not poll and has gone stale (as
    after a pause of its event loop longer than the staleness allowed); each kind of call is
    admitted, not refused UNAVAILABLE."""
    async with running_probe(max_staleness_seconds=STALENESS) as probe:
        request = pb.SubmitSourceRecordRequest(request_id="r-1")
        for method in (ECHO, WATCH, STREAM):
            await asyncio.sleep(STALENESS * 1.5)
            call = probe.typed(method)
            if method == ECHO:
                answers = [await call(request, metadata=probe.metadata())]
            elif method == WATCH:
                answers = [a async for a in call(request, metadata=probe.metadata())]
            else:
                answers = [a async for a in call(iter([request]), metadata=probe.metadata())]
            assert answers and answers[0].contactpoint_id.startswith("r-1"), method
        assert probe.handled == ["r-1"] * 3


async def test_a_call_without_a_token_does_not_make_the_server_ask_identity() -> None:
    """Refused UNAUTHENTICATED whatever the state: a stale server does not fetch identity's state
    for it (nor for a flood of them); a call with a token then does."""
    async with running_probe(max_staleness_seconds=STALENESS) as probe:
        await asyncio.sleep(STALENESS * 1.5)
        request = pb.SubmitSourceRecordRequest(request_id="r-1")
        for _ in range(5):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe.typed(ECHO)(request)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert probe.state_fetches == [1]  # the fetch before serving only
        await probe.typed(ECHO)(request, metadata=probe.metadata())
        assert probe.state_fetches == [2]
