"""A probe service behind the real server interceptor, on a real in-process gRPC server.

It has one RPC of each kind our services use (unary, server-streaming, bidirectional streaming),
reads and answers records' messages, and verifies tokens signed here with identity's own
`TokenIssuer`; tests send it well-formed messages or raw bytes."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactpoint.platform.auth import SERVICE, Access, Principal, roles
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.interceptor import ServiceInterceptor
from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from contactpoint.records.v1 import records_service_pb2 as pb
from services.identity.repository import Account
from services.identity.token_issuer import TokenIssuer

SERVICE_NAME = "contactpoint.test.v1.Probe"
ECHO = f"/{SERVICE_NAME}/Echo"  # unary
WATCH = f"/{SERVICE_NAME}/Watch"  # server-streaming
STREAM = f"/{SERVICE_NAME}/Stream"  # bidirectional streaming
UNLISTED = f"/{SERVICE_NAME}/Unlisted"  # no access rule
ROLE = "council-system"
WATCH_ANSWERS = 3

# What a probe handler does with a request: answer it, or raise (a domain error or a bug).
Behaviour = Callable[[pb.SubmitSourceRecordRequest], Awaitable[pb.SubmitSourceRecordResponse]]


async def echo_behaviour(request: pb.SubmitSourceRecordRequest) -> pb.SubmitSourceRecordResponse:
    """The default: answer with the request id."""
    return pb.SubmitSourceRecordResponse(contactpoint_id=request.request_id)


def service_account(role: str = ROLE) -> Account:
    """A machine account, as identity would read it from its database, to issue tokens for."""
    return Account(
        id="acct-1",
        kind=SERVICE,
        name="probe-caller",
        client_id="client-1",
        organisation="E08000003",
        roles=(role,),
        secret_hash="",
        totp_secret=None,
        totp_last_step=0,
        failed_logins=0,
        locked_until=None,
        suspended=False,
        tokens_not_before=None,
    )


@dataclass
class Probe:
    """The running probe: its channel, tokens and what its handlers and refusal hook saw."""

    channel: grpc.aio.Channel
    issuer: TokenIssuer
    behaviour: Behaviour = echo_behaviour
    handled: list[str] = field(default_factory=list)
    refusals: list[tuple[str, Principal | None, ContactPointError]] = field(default_factory=list)
    # How many times the server's verifier has fetched identity's state (once before serving).
    state_fetches: list[int] = field(default_factory=list)

    def token(self, *, role: str = ROLE, now: dt.datetime | None = None) -> str:
        """A machine account's token issued at `now` (default: now) for identity's usual 900 s."""
        return self.issuer.issue(service_account(role), now=now or dt.datetime.now(dt.UTC)).token

    def metadata(self, **kwargs: Any) -> tuple[tuple[str, str], ...]:
        """Call metadata with a fresh valid token (or as `token` says)."""
        return (("authorization", f"Bearer {self.token(**kwargs)}"),)

    def raw(self, method: str) -> Any:
        """A callable of `method` of the right kind that sends and returns bytes as they are."""
        if method == WATCH:
            return self.channel.unary_stream(method)
        if method == STREAM:
            return self.channel.stream_stream(method)
        return self.channel.unary_unary(method)

    def typed(self, method: str) -> Any:
        """A callable of `method` that sends and reads records' messages."""
        kwargs: dict[str, Any] = {
            "request_serializer": pb.SubmitSourceRecordRequest.SerializeToString,
            "response_deserializer": pb.SubmitSourceRecordResponse.FromString,
        }
        if method == WATCH:
            return self.channel.unary_stream(method, **kwargs)
        if method == STREAM:
            return self.channel.stream_stream(method, **kwargs)
        return self.channel.unary_unary(method, **kwargs)


def malformed_payloads() -> list[bytes]:
    """36 byte strings that are not a SubmitSourceRecordRequest: broken varints, lengths past the
    end, invalid wire types and field numbers, unbalanced and too deeply nested groups, invalid
    UTF-8 in a string field (the request id, or a nested name), and seeded random noise."""
    crafted = [
        b"\x00",  # field number 0
        b"\xff",  # a varint that never ends
        b"\x80",
        b"\x0a",  # a length-delimited field with no length
        b"\x0a\x05ab",  # a length past the end
        b"\x12\x02\xff\xfe",  # request_id: invalid UTF-8
        b"\x0a\x03\x12\x01",  # a record cut short
        b"\x0b",  # a group that never ends
        b"\x0c",  # the end of a group that never began
        b"\x0e",  # wire type 6
        b"\x0f",  # wire type 7
        b"\x08" + b"\xff" * 10 + b"\x01",  # an 11-byte varint
        b"\x0a\xff\xff\xff\xff\x0f",  # a 4 GiB record
        b"\x0d\x01\x02",  # a cut fixed32
        b"\x09\x01",  # a cut fixed64
        b"\x7b" * 200 + b"\x7c" * 200,  # groups nested past the recursion limit
        b"\x0a\x02\x1a\x00\x12\x01",
        b"\x0a\x04\x1a\x02\x0a\xff",  # record.name.given_names: invalid UTF-8
        b"\x0a\x03\x1a\x01\x0a",
    ]
    rng = random.Random(6)
    noise = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(17)]
    payloads = crafted + noise
    for payload in payloads:  # each is malformed, as protobuf itself says
        try:
            pb.SubmitSourceRecordRequest.FromString(payload)
        except Exception:  # noqa: S112 - DecodeError, whichever protobuf implementation
            continue
        raise AssertionError(f"{payload!r} is a valid message")
    return payloads


MALFORMED = malformed_payloads()


def violations(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    """The BadRequest field violations of a failed call, by field."""
    status = rpc_status.from_call(exc)
    out: dict[str, str] = {}
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


@asynccontextmanager
async def running_probe(
    *, max_staleness_seconds: float = 3600, **interceptor_options: Any
) -> AsyncIterator[Probe]:
    """The probe serving on a free port behind a `ServiceInterceptor` (its verifier fetched once,
    not polling)."""
    key = Ed25519PrivateKey.generate()
    issuer = TokenIssuer(key, ttl_seconds=900)
    state = VerificationState(1, {issuer.key_id: issuer.public_key}, frozenset(), frozenset())

    fetches = [0]

    async def source(_known: int) -> VerificationState:
        fetches[0] += 1
        return state

    verifier = TokenVerifier(source, max_staleness_seconds=max_staleness_seconds)
    await verifier.refresh()
    probe: Probe | None = None

    async def hook(
        rpc: str, caller: Principal | None, exc: ContactPointError, /, *, request: Any = None
    ) -> None:
        assert probe is not None
        probe.refusals.append((rpc, caller, exc))

    async def echo(request: pb.SubmitSourceRecordRequest, _context: Any) -> pb.SubmitSourceRecordResponse:
        assert probe is not None
        probe.handled.append(request.request_id)
        return await probe.behaviour(request)

    async def watch(
        request: pb.SubmitSourceRecordRequest, _context: Any
    ) -> AsyncIterator[pb.SubmitSourceRecordResponse]:
        assert probe is not None
        probe.handled.append(request.request_id)
        for i in range(WATCH_ANSWERS):
            if i == 1:  # the behaviour's error, if any, comes after the first answer
                await probe.behaviour(request)
            yield pb.SubmitSourceRecordResponse(contactpoint_id=f"{request.request_id}-{i}")

    async def stream(
        requests: AsyncIterator[pb.SubmitSourceRecordRequest], _context: Any
    ) -> AsyncIterator[pb.SubmitSourceRecordResponse]:
        assert probe is not None
        async for request in requests:
            probe.handled.append(request.request_id)
            yield await probe.behaviour(request)

    deserialize = pb.SubmitSourceRecordRequest.FromString
    serialize = pb.SubmitSourceRecordResponse.SerializeToString
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, deserialize, serialize),
        "Watch": grpc.unary_stream_rpc_method_handler(watch, deserialize, serialize),
        "Stream": grpc.stream_stream_rpc_method_handler(stream, deserialize, serialize),
        "Unlisted": grpc.unary_unary_rpc_method_handler(echo, deserialize, serialize),
    }
    access: dict[str, Access] = dict.fromkeys((ECHO, WATCH, STREAM), roles(ROLE, kind=SERVICE))
    interceptor = ServiceInterceptor(access, verifier, dict.fromkeys(access, hook), **interceptor_options)
    server = grpc.aio.server(interceptors=[interceptor])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            probe = Probe(channel, issuer, state_fetches=fetches)
            yield probe
    finally:
        await server.stop(0)
