"""How a request's ending becomes its audit outcome."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from contactpoint.platform.audited import outcome_of
from contactpoint.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)


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
