"""One mapping from domain errors to google.rpc.Status with AIP-193 details."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2

from contactpoint.platform.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
)


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
