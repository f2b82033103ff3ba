"""The server interceptor over real gRPC: every kind of handler (unary, server-streaming,
bidirectional) is admitted, access-checked, reported to the refusal hook and error-mapped the same
way, and bytes that are not a valid request message are INVALID_ARGUMENT with a BadRequest, never
UNKNOWN or INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from contactpoint.platform.db import TransactionConflict
from contactpoint.platform.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from contactpoint.platform.interceptor import REQUEST_ID_KEY, request_id_of
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.platform.probe import (
    ECHO,
    MALFORMED,
    STREAM,
    UNLISTED,
    WATCH,
    WATCH_ANSWERS,
    Probe,
    running_probe,
    violations,
)

CODE = grpc.StatusCode
KINDS = (ECHO, WATCH, STREAM)
NOT_A_REQUEST = "is not a valid contactpoint.records.v1.SubmitSourceRecordRequest message"


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with running_probe() as running:
        yield running


async def call(probe: Probe, method: str, request: Any, metadata: Any = ()) -> list[Any]:
    """Call `method` with one request (bytes or a message): every answer, or the error raised."""
    stub = probe.raw(method) if isinstance(request, bytes) else probe.typed(method)
    if method == ECHO:
        return [await stub(request, metadata=metadata)]
    if method == WATCH:
        return [answer async for answer in stub(request, metadata=metadata)]
    return [answer async for answer in stub(iter([request]), metadata=metadata)]


def request(request_id: str) -> pb.SubmitSourceRecordRequest:
    return pb.SubmitSourceRecordRequest(request_id=request_id)


@pytest.mark.parametrize("method", KINDS)
async def test_every_kind_is_admitted_and_answered(probe: Probe, method: str) -> None:
    answers = await call(probe, method, request("r-1"), probe.metadata())
    expected = [f"r-1-{i}" for i in range(WATCH_ANSWERS)] if method == WATCH else ["r-1"]
    assert [a.contactpoint_id for a in answers] == expected
    assert probe.handled == ["r-1"] and probe.refusals == []


@pytest.mark.parametrize("method", KINDS)
async def test_every_kind_refuses_callers_and_tells_the_hook(probe: Probe, method: str) -> None:
    cases = [
        ((), CODE.UNAUTHENTICATED, Unauthenticated),
        ((("authorization", "Bearer not-a-token"),), CODE.UNAUTHENTICATED, Unauthenticated),
        (probe.metadata(role="gateway"), CODE.PERMISSION_DENIED, PermissionDenied),
    ]
    for metadata, code, error in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(probe, method, request("r-1"), metadata)
        assert refused.value.code() == code
        rpc, caller, exc = probe.refusals.pop()
        assert rpc == method.rsplit("/", 1)[-1] and isinstance(exc, error)
        # The hook hears who was refused whenever the token was valid.
        assert (caller is not None) == (error is PermissionDenied)
    assert probe.handled == []


@pytest.mark.parametrize("method", KINDS)
async def test_every_kind_maps_errors_to_status(probe: Probe, method: str) -> None:
    async def missing(_request: pb.SubmitSourceRecordRequest) -> pb.SubmitSourceRecordResponse:
        raise NotFound("no such child")

    async def bug(_request: pb.SubmitSourceRecordRequest) -> pb.SubmitSourceRecordResponse:
        raise KeyError("secret internals")

    async def unserialisable(_request: pb.SubmitSourceRecordRequest) -> Any:
        return "not a message"

    async def lost_race(_request: pb.SubmitSourceRecordRequest) -> pb.SubmitSourceRecordResponse:
        # A transaction that lost a race and was not run again (found by probing: INTERNAL).
        raise TransactionConflict("deadlock detected")

    lost = "the request lost a race with a concurrent one; nothing was stored: retry"
    cases = [
        (missing, CODE.NOT_FOUND, "no such child"),
        (bug, CODE.INTERNAL, "internal error"),
        (lost_race, CODE.UNAVAILABLE, lost),
    ]
    if method != WATCH:  # Watch's own answers are fine; the behaviour only raises there
        cases.append((unserialisable, CODE.INTERNAL, "internal error"))
    for behaviour, code, message in cases:
        probe.behaviour = behaviour
        answers: list[Any] = []
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            stub = probe.typed(method)
            if method == WATCH:  # a server stream fails after its first answer
                async for answer in stub(request("r-2"), metadata=probe.metadata()):
                    answers.append(answer)
            else:
                await call(probe, method, request("r-2"), probe.metadata())
        assert (failed.value.code(), failed.value.details()) == (code, message)
        assert len(answers) == (1 if method == WATCH else 0)


async def test_an_rpc_without_an_access_rule_cannot_be_called(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await probe.typed(UNLISTED)(request("r-1"), metadata=probe.metadata())
    assert refused.value.code() == CODE.PERMISSION_DENIED and probe.handled == []


@pytest.mark.parametrize("method", (ECHO, WATCH))
async def test_malformed_requests_are_invalid_argument(probe: Probe, method: str) -> None:
    assert len(MALFORMED) == 36
    for payload in MALFORMED:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await call(probe, method, payload, probe.metadata())
        assert bad.value.code() == CODE.INVALID_ARGUMENT, (payload, bad.value)
        assert violations(bad.value) == {"request": NOT_A_REQUEST}
        # What the parser said (and so the bytes sent) is not echoed back.
        assert "parsing" not in (bad.value.details() or "")
    assert probe.handled == []
    # Each was a refusal before the handler ran, told to the hook with the (valid) caller.
    assert len(probe.refusals) == len(MALFORMED)
    assert all(isinstance(exc, InvalidArgument) and caller for _, caller, exc in probe.refusals)
    # Without a token the call is refused for that first: nothing is said about the payload.
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await call(probe, method, MALFORMED[0])
    assert anonymous.value.code() == CODE.UNAUTHENTICATED
    # Bytes that are a valid message (here empty, and with an unknown field) are answered.
    for payload in (b"", b"\x78\x01", request("r-ok").SerializeToString()):
        answers = await call(probe, method, payload, probe.metadata())
        assert answers and all(isinstance(a, bytes) for a in answers)


async def test_a_malformed_frame_ends_a_stream_after_answering_the_frames_before_it(probe: Probe) -> None:
    """Frames are answered in order, and a frame that cannot be decoded has no request to answer
    in its place: the stream ends INVALID_ARGUMENT naming it (from 0), once every frame before it
    has been answered; nothing after it is read."""
    for payload in MALFORMED:
        probe.handled.clear()
        frames = [request(f"f-{i}").SerializeToString() for i in range(4)]
        frames[2] = payload

        def feed(frames: list[bytes] = frames) -> Iterator[bytes]:
            yield from frames

        answers: list[bytes] = []
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            async for answer in probe.raw(STREAM)(feed(), metadata=probe.metadata()):
                answers.append(answer)
        assert bad.value.code() == CODE.INVALID_ARGUMENT
        assert violations(bad.value) == {"requests[2]": NOT_A_REQUEST}
        decoded = [pb.SubmitSourceRecordResponse.FromString(a).contactpoint_id for a in answers]
        assert decoded == ["f-0", "f-1"] and probe.handled == ["f-0", "f-1"]


def test_a_request_id_is_taken_only_when_it_is_plain_text() -> None:
    """The caller's x-request-id goes into the audit log: kept when it is an ordinary id, replaced
    by a fresh one when it holds control or invisible characters, spaces, or is too long."""
    for kept in ("0f12075ddd9a563ba88b669fb885bff8", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "a/b+c=:d_e.f"):
        assert request_id_of(((REQUEST_ID_KEY, kept),)) == kept
    for replaced in ("", "abc\x01\x7f", "ÿþý", "two words", "a\u202eb", "x" * 129):
        fresh = request_id_of(((REQUEST_ID_KEY, replaced),))
        assert fresh != replaced and len(fresh) == 32 and all(c in "0123456789abcdef" for c in fresh)


def test_two_authorization_headers_are_no_credentials() -> None:
    """Which of two tokens a call is made with must never be a guess (found by probing: the
    first one won, so junk after a valid token passed)."""
    from contactpoint.platform.auth import bearer_token, on_behalf_of_token

    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "Bearer abc"), ("authorization", "Bearer junk")]) is None
    assert bearer_token([("authorization", "Bearer abc"), ("Authorization", "Bearer abc")]) is None
    assert on_behalf_of_token([("x-on-behalf-of", "Bearer a"), ("x-on-behalf-of", "Bearer b")]) is None
