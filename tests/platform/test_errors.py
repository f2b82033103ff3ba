"""One mapping from domain errors to google.rpc.Status with AIP-193 details."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2

from contactpoint.platform.errors import (
    MAX_VIOLATIONS,
    ContactPointError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)


def _error_info(status: object) -> error_details_pb2.ErrorInfo:
    infos = []
    for detail in status.details:  # type: ignore[attr-defined]
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    assert len(infos) == 1
    return infos[0]


def test_invalid_argument_carries_one_violation_per_field() -> None:
    status = InvalidArgument(
        [FieldViolation("a", "is required"), FieldViolation("b.c", "too long")]
    ).to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("a", "is required"),
        ("b.c", "too long"),
    ]


def test_failed_precondition_carries_error_info() -> None:
    status = FailedPrecondition("more than one child matches", "TOO_MANY_MATCHES").to_status()
    info = error_details_pb2.ErrorInfo()
    assert status.code == code_pb2.FAILED_PRECONDITION and status.details[0].Unpack(info)
    assert info.reason == "TOO_MANY_MATCHES" and info.domain


def test_resource_exhausted_carries_retry_info() -> None:
    err = ResourceExhausted("slow down", retry_after_seconds=1.5)
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert err.to_status().details[0].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 1500


async def test_peer_errors_keep_their_code_and_details() -> None:
    """What a peer service answered is passed on as the same domain error, details and all."""
    from grpc_status import rpc_status

    from contactpoint.platform.errors import NotFound, from_rpc_error

    async def fail(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        status = FailedPrecondition("two match", "TOO_MANY_MATCHES").to_status()
        await context.abort_with_status(rpc_status.to_status(status))  # type: ignore[attr-defined]
        return b""

    async def missing(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such child")
        return b""

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "t.T",
                {
                    "Fail": grpc.unary_unary_rpc_method_handler(fail),
                    "Missing": grpc.unary_unary_rpc_method_handler(missing),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            for method, expected in (("Fail", FailedPrecondition), ("Missing", NotFound)):
                try:
                    await ch.unary_unary(f"/t.T/{method}")(b"")
                except grpc.aio.AioRpcError as exc:
                    mapped = from_rpc_error(exc)
                    assert isinstance(mapped, expected)
                    if isinstance(mapped, FailedPrecondition):
                        assert mapped.reason == "TOO_MANY_MATCHES"
                else:
                    raise AssertionError("the call should fail")
    finally:
        await server.stop(0)


def test_every_error_carries_one_error_info_after_its_own_details() -> None:
    # AIP-193: every error response includes an ErrorInfo; the kind's own detail stays first.
    errors: list[tuple[ContactPointError, str]] = [
        (NotFound("no child"), "NOT_FOUND"),
        (Unauthenticated("invalid token"), "UNAUTHENTICATED"),
        (PermissionDenied(), "PERMISSION_DENIED"),
        (PermissionDenied("no", "PERSON_TOKEN_REFUSED"), "PERSON_TOKEN_REFUSED"),
        (Unavailable("a dependency is unavailable"), "UNAVAILABLE"),
        (InvalidArgument([FieldViolation("a", "is required")]), "INVALID_ARGUMENT"),
        (ResourceExhausted("slow down", 1.0), "RESOURCE_EXHAUSTED"),
        (ResourceExhausted("slow down", 1.0, "RATE_LIMITED"), "RATE_LIMITED"),
        (FailedPrecondition("two match", "TOO_MANY_MATCHES"), "TOO_MANY_MATCHES"),
    ]
    for err, reason in errors:
        status = err.to_status()
        info = _error_info(status)
        assert info.reason == reason and info.domain == "contactpoint.gov.uk", err
    assert (
        InvalidArgument([FieldViolation("a", "x")])
        .to_status()
        .details[0]
        .Is(error_details_pb2.BadRequest.DESCRIPTOR)
    )
    assert ResourceExhausted("s", 1.0).to_status().details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_a_request_breaking_many_rules_gets_an_error_that_fits_in_the_trailers() -> None:
    # 10,000 badly named carers: the first violations are listed, the count is given.
    field = "record.carers[{}].name.given_names"
    many = [FieldViolation(field.format(i), "must not contain digits") for i in range(10_000)]
    status = InvalidArgument(many).to_status()
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad) and len(bad.field_violations) == MAX_VIOLATIONS
    assert _error_info(status).metadata["field_violations"] == "10000"
    assert len(status.SerializeToString()) < 8 * 1024
    assert "and 9995 more" in status.message
