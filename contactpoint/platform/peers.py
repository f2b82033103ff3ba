"""Calling the suite's other services: channels, identity's verification state, and a machine
account's own access token (fetched once, renewed before it expires)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc

from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.settings import VerifyingSettings
from contactpoint.platform.token_verifier import StateSource, TokenVerifier, VerificationState
from contactpoint.platform.tracing import Tracing

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    # A peer that was down is reached again within a second of its return, not after gRPC's
    # default backoff (up to two minutes): a logout's pending revocation, an audit write, a
    # token fetch all wait on it (`TokenVerifier.refresh`'s confirmation counts on this).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.enable_retries", 1),
    # A peer's name may resolve to several replicas (a scaled service): spread calls over all.
    ("grpc.lb_policy_name", "round_robin"),
]
# Calls between our services must not hang a client's request for long.
PEER_TIMEOUT_SECONDS = 5.0
R = TypeVar("R")
Metadata = tuple[tuple[str, str], ...]


def tls_name_options(target: str) -> list[tuple[str, str]]:
    """Channel options for TLS to `target`: a local socket (`unix:`, `unix-abstract:`, as `up`
    runs the witness on) has no host name, so its certificate is checked for "localhost"."""
    return [("grpc.ssl_target_name_override", "localhost")] if target.startswith("unix") else []


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None = None, *, tracing: Tracing | None = None
) -> grpc.aio.Channel:
    """A channel to one of the suite's services: TLS with `credentials` (the service's
    `TlsMaterial.channel_credentials()`), else plaintext; carrying the trace on when `tracing`
    is on."""
    interceptors = list(tracing.client_interceptors()) if tracing is not None else []
    if credentials is not None:
        return grpc.aio.secure_channel(
            target,
            credentials,
            options=[*CHANNEL_OPTIONS, *tls_name_options(target)],
            interceptors=interceptors or None,
        )
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors or None)


def remote_state_source(channel: grpc.aio.Channel, token: TokenSource) -> StateSource:
    """Identity's verification state, fetched over gRPC with the service's own machine token
    (identity answers only the platform's own accounts)."""
    stub = identity_grpc.IdentityServiceStub(channel)
    request_of = identity_pb.GetVerificationStateRequest

    async def fetch(known_version: int) -> VerificationState | None:
        resp = await with_service_token(
            token,
            lambda md: stub.GetVerificationState(
                request_of(known_version=known_version), metadata=md, timeout=PEER_TIMEOUT_SECONDS
            ),
        )
        if resp.unchanged:
            return None
        return VerificationState(
            version=resp.version,
            keys={k.key_id: k.public_key for k in resp.keys},
            revoked_token_ids=frozenset(resp.revoked_token_ids),
            suspended_subjects=frozenset(resp.suspended_subjects),
            tokens_not_before=dict(resp.tokens_not_before),
            suspended_since=dict(resp.suspended_since),
            retired_at_ms={k.key_id: k.retired_at_ms for k in resp.keys if k.retired_at_ms},
            max_lifetime_seconds=resp.max_token_lifetime_seconds,
        )

    return fetch


def remote_verifier(
    settings: VerifyingSettings, identity: grpc.aio.Channel, token: TokenSource
) -> TokenVerifier:
    """A token verifier fed by identity over `identity`, tuned by the service's settings."""
    return TokenVerifier(
        remote_state_source(identity, token),
        poll_seconds=settings.revocation_poll_seconds,
        max_staleness_seconds=settings.revocation_max_staleness_seconds,
    )


class TokenSource(Protocol):
    """Where a service gets its own machine token from (identity over gRPC, or identity itself)."""

    async def get(self) -> str:
        """A valid token; Unavailable when none can be issued."""
        ...

    def invalidate(self) -> None:
        """Forget the token (e.g. after a peer refused it)."""
        ...

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token."""
        ...


class RenewedToken:
    """A machine account's access token, issued on first use and renewed a minute (or a third of
    its life) before it expires. Subclasses say how a token is issued (`_issue`)."""

    def __init__(self) -> None:
        self._token = ""
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def _issue(self) -> tuple[str, float]:
        """A new token and when it expires (seconds since the epoch)."""
        raise NotImplementedError

    async def get(self) -> str:
        """A valid token; what `_issue` raises when none can be issued."""
        if time.time() < self._renew_at:
            return self._token
        async with self._lock:
            if time.time() < self._renew_at:
                return self._token
            token, expires_at = await self._issue()
            life = expires_at - time.time()
            self._token = token
            self._renew_at = time.time() + max(0.0, life - min(60.0, life / 3))
            return self._token

    def invalidate(self) -> None:
        """Forget the token (e.g. after a peer refused it)."""
        self._renew_at = 0.0

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token."""
        return (("authorization", f"Bearer {await self.get()}"),)


class ServiceToken(RenewedToken):
    """A machine account's access token from identity, over gRPC; Unavailable when identity
    cannot issue one."""

    def __init__(self, channel: grpc.aio.Channel, client_id: str, client_secret: str) -> None:
        super().__init__()
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._client_id = client_id
        self._client_secret = client_secret

    async def _issue(self) -> tuple[str, float]:
        try:
            request = identity_pb.IssueServiceTokenRequest(
                client_id=self._client_id, client_secret=self._client_secret
            )
            resp = await self._stub.IssueServiceToken(request, timeout=PEER_TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            raise Unavailable("identity is unavailable") from exc
        return resp.access_token, float(resp.expire_time.seconds)


def token_refused(exc: grpc.aio.AioRpcError) -> bool:
    """Whether a peer refused the caller's own token (expired, rotated, unknown key)."""
    return exc.code() == grpc.StatusCode.UNAUTHENTICATED


async def with_service_token(
    token: TokenSource,
    call: Callable[[Metadata], Awaitable[R]],
    *,
    refused: Callable[[grpc.aio.AioRpcError], bool] = token_refused,
) -> R:
    """Make one call to a peer with our machine token; if the peer refuses the token (expired,
    rotated: `refused` says which failures mean that), fetch a fresh one and try once more. Any
    other failure is the caller's to map. This is the suite's one token-retry helper."""
    try:
        return await call(await token.metadata())
    except grpc.aio.AioRpcError as exc:
        if not refused(exc):
            raise
        token.invalidate()
    return await call(await token.metadata())
