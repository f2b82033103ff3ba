"""What a service's log says when it cannot fetch identity's keys and revocations. Found by
probing: a gateway started without the CA identity's certificate needed stayed NOT_SERVING for
good, its log saying only "Unavailable"; now it names the status and, when the TLS handshake
failed, says to check the TLS variables."""

from __future__ import annotations

import grpc

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.tls import TLS_HINT
from contactpoint.platform.token_verifier import _why


def _failed(details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details
    )


def _wrapped(cause: BaseException) -> Unavailable:
    try:
        raise Unavailable("identity is unavailable") from cause
    except Unavailable as exc:
        return exc


def test_a_failed_handshake_is_named_with_what_to_check() -> None:
    cause = _failed(
        "failed to connect to all addresses; last error: UNKNOWN: Ssl handshake failed: SSL_ERROR_SSL"
    )
    assert _why(_wrapped(cause)) == {
        "error": "Unavailable",
        "code": "UNAVAILABLE",
        "hint": f"identity: {TLS_HINT}",
    }
    assert _why(cause)["hint"] == f"identity: {TLS_HINT}"


def test_other_failures_say_their_status_and_no_hint() -> None:
    assert _why(_wrapped(_failed("failed to connect to all addresses; Connection refused"))) == {
        "error": "Unavailable",
        "code": "UNAVAILABLE",
    }
    assert _why(ValueError("x")) == {"error": "ValueError"}


def test_a_connection_closed_by_identity_hints_at_tls() -> None:
    """A gateway calling a mutual-TLS identity in plaintext, or with no certificate of its own,
    hears only "Socket closed" (found by re-probing)."""
    why = _why(
        _wrapped(_failed("failed to connect to all addresses; last error: UNAVAILABLE: Socket closed"))
    )
    assert why["code"] == "UNAVAILABLE" and "if it serves TLS" in why["hint"]
