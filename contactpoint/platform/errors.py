"""One exception hierarchy for the whole suite and its single mapping to gRPC status.

Domain code raises these; the server interceptor (and StreamSourceRecords, per record) turns them
into a `google.rpc.Status` with the rich error details of AIP-193. Messages are for clients: they
never carry stack traces, SQL or a child's personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "contactpoint.gov.uk"
# A request may break many rules at once (20 carers, each badly named): the error names the first
# of them, so that it always fits in gRPC's trailers (8 KiB by default) and reaches the client.
MAX_VIOLATIONS = 25
MAX_VIOLATIONS_IN_MESSAGE = 5
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: `field` is its path (e.g. `record.name.family_name`)."""

    field: str
    description: str


# What every refused token is told, whatever was wrong with it (bad, forged, revoked).
INVALID_TOKEN = "invalid token"  # noqa: S105 (what a client is told, not a secret)


class ContactPointError(Exception):
    """Root of every error a client may see. Subclasses fix the gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The ErrorInfo's metadata. Between our own services only (records naming the shielded
        # children a search withheld, identity saying it recorded a login): whoever relays an
        # error to a person raises a fresh one without it.
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        """The google.rpc error details to send with this error: the kind's own (BadRequest,
        RetryInfo…) first, then an ErrorInfo as AIP-193 asks of every error (its reason the
        status code's name where the error has no more precise one)."""
        out = self._details()
        if not any(d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) for d in out):
            reason = getattr(self, "reason", "") or self.code.name
            info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=self.metadata)
            out.append(_pack(info))
        return out

    def _details(self) -> list[any_pb2.Any]:
        return []

    def to_status(self) -> status_pb2.Status:
        """This error as a google.rpc.Status (code, message and packed details)."""
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=self.details())


def _pack(msg: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)  # type: ignore[arg-type]
    return packed


class InvalidArgument(ContactPointError):
    """The request is malformed: one `BadRequest.FieldViolation` per bad field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation], message: str | None = None) -> None:
        self.violations = list(violations)
        if message is None:
            shown = self.violations[:MAX_VIOLATIONS_IN_MESSAGE]
            message = "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in shown)
            if len(self.violations) > len(shown):
                message += f"; and {len(self.violations) - len(shown)} more (see BadRequest)"
        super().__init__(message[:2000])

    def _details(self) -> list[any_pb2.Any]:
        shown = self.violations[:MAX_VIOLATIONS]
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field[:MAX_DESCRIPTION], description=v.description[:MAX_DESCRIPTION]
                )
                for v in shown
            ]
        )
        out = [_pack(bad)]
        if len(self.violations) > len(shown):
            # How many were left out, for a client that fixes one batch of fields at a time.
            info = error_details_pb2.ErrorInfo(
                reason="INVALID_ARGUMENT",
                domain=ERROR_DOMAIN,
                metadata={
                    **self.metadata,
                    "field_violations": str(len(self.violations)),
                    "listed": str(len(shown)),
                },
            )
            out.append(_pack(info))
        return out


# ErrorInfo metadata from records to the gateway, for its audit event only (stripped before any
# answer reaches a person): the shielded children a search by postcode matched and withheld, and
# the archived children a search matched (never shown), and the children a search that matched
# too many to answer matched.
WITHHELD_SHIELDED = "withheld_shielded"
MATCHED_ARCHIVED = "matched_archived"
MATCHED_TOO_MANY = "matched_too_many"
# ErrorInfo metadata from identity to the gateway on a failed login identity has put in the audit
# log itself (the gateway then writes no second event; the person hears "login failed" alone).
LOGIN_RECORDED = "login_recorded"
# ErrorInfo metadata from a service to the gateway relaying a person's own call (ChangePassword):
# the service has put the call in the audit log itself, so the gateway writes no second event.
CALL_RECORDED = "call_recorded"

# The reason a service gives (PERMISSION_DENIED) when the caller is fine but the person it calls
# for is not: their token (`x-on-behalf-of`) is bad, expired, revoked or their account suspended.
PERSON_TOKEN_REFUSED = "PERSON_TOKEN_REFUSED"  # noqa: S105 - an error reason, not a secret


class Unauthenticated(ContactPointError):
    """No, bad, expired, revoked or suspended token; a failed login. Says nothing more to the
    client; `holder` is, for the audit log only, whom a correctly signed but revoked, expired or
    suspended token was issued to (a `Principal`; None for anything else)."""

    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(
        self, message: str, holder: object | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, metadata)
        self.holder = holder


class PermissionDenied(ContactPointError):
    """Authenticated, but not allowed to do this."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, message: str = "permission denied", reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(ContactPointError):
    """The thing asked for does not exist, or is not visible to the caller."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ContactPointError):
    """The system is not in a state to do this; `reason` is a stable UPPER_SNAKE code."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, reason: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, metadata)
        self.reason = reason


class ResourceExhausted(ContactPointError):
    """A rate or volume limit was hit; `retry_after_seconds` tells the client when to try again
    (None: waiting will not help, e.g. an account suspended until an administrator acts, and no
    RetryInfo is sent)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_seconds: float | None, reason: str = "") -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.reason = reason

    def _details(self) -> list[any_pb2.Any]:
        out: list[any_pb2.Any] = []
        if self.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(int(self.retry_after_seconds * 1000))
            out.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        if self.reason:
            info = error_details_pb2.ErrorInfo(
                reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
            )
            out.append(_pack(info))
        return out


class Unavailable(ContactPointError):
    """A dependency is down: nothing was returned or stored."""

    code = grpc.StatusCode.UNAVAILABLE


class Internal(ContactPointError):
    """One of our own bugs, where it must be answered in place (one record of a stream)."""

    def __init__(self) -> None:
        super().__init__("internal error")

    def to_status(self) -> status_pb2.Status:
        return internal_status()


def _error_info(status: status_pb2.Status | None) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def _peer_error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    from grpc_status import rpc_status

    if not hasattr(err, "trailing_metadata"):
        return None
    return _error_info(rpc_status.from_call(err))  # type: ignore[arg-type]


def error_metadata(err: grpc.RpcError) -> dict[str, str]:
    """The ErrorInfo metadata of a status a peer service returned ({} when it has none)."""
    info = _peer_error_info(err)
    return dict(info.metadata) if info else {}


def error_reason(err: grpc.RpcError) -> str:
    """The ErrorInfo reason of a status a peer service returned ("" when it has none)."""
    info = _peer_error_info(err)
    return info.reason if info else ""


def internal_status() -> status_pb2.Status:
    """What a client sees for one of our own bugs: no detail that could leak internals."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def from_rpc_error(err: grpc.RpcError) -> ContactPointError | None:
    """Re-raise-able domain error for a status that a peer service returned, or None.

    Used where one of our services calls another and passes the answer on (the gateway relays
    records' INVALID_ARGUMENT/NOT_FOUND/FAILED_PRECONDITION as they are).
    """
    from grpc_status import rpc_status

    # Both grpc.Call (sync) and grpc.aio.AioRpcError carry code(), details() and trailers.
    if not (hasattr(err, "code") and hasattr(err, "trailing_metadata")):
        return None
    code = err.code()
    return _from_parts(code, rpc_status.from_call(err), err.details() or code.name.lower())  # type: ignore[arg-type]


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def from_status(status: status_pb2.Status) -> ContactPointError | None:
    """`from_rpc_error` for a status a peer sent inside a message (one answer of a stream that
    answers each message on its own): the same domain error, or None."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return _from_parts(code, status, status.message or code.name.lower())


def _from_parts(
    code: grpc.StatusCode, status: status_pb2.Status | None, message: str
) -> ContactPointError | None:
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable("a dependency is unavailable")
    info = _error_info(status)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, dict(info.metadata) if info else None)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations: list[FieldViolation] = []
        for detail in status.details if status else []:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        return InvalidArgument(violations, message)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if info is None:
            return FailedPrecondition(message, "FAILED_PRECONDITION")
        return FailedPrecondition(message, info.reason, dict(info.metadata))
    if code == grpc.StatusCode.PERMISSION_DENIED:
        # The peer refused the person the call was made for (their token revoked, expired or
        # suspended, as the peer knew before we did): to that person it is UNAUTHENTICATED.
        return Unauthenticated(INVALID_TOKEN) if info and info.reason == PERSON_TOKEN_REFUSED else None
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = 1.0
        for detail in status.details if status else []:
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(retry):
                delay = retry.retry_delay.ToTimedelta().total_seconds()
        return ResourceExhausted(message, delay, info.reason if info else "")
    return None
