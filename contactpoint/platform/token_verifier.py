"""Token verification, done locally by every service.

Identity signs short-lived Ed25519 JWTs. Every other service fetches identity's public keys and
its current revocations (`GetVerificationState`) every `revocation_poll_seconds`, so a revoked
token or a suspended account stops working everywhere within about a second. If that state grows
older than `revocation_max_staleness_seconds` (identity unreachable) tokens are refused with
UNAVAILABLE: a registry of children fails closed. A call that finds the state stale first asks
identity once more itself (`catch_up`: one fetch for all such calls, bounded), so that a poll
that merely fell behind refuses nobody.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contactpoint.platform.auth import ALGORITHM, ISSUER, Principal
from contactpoint.platform.errors import INVALID_TOKEN, Unauthenticated, Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.tls import TLS_HINT, handshake_failed
from contactpoint.platform.verified_tokens import VerifiedTokens

log = get_logger(__name__)


@dataclass(frozen=True)
class VerificationState:
    """Identity's keys and revocations at one version."""

    version: int
    keys: Mapping[str, bytes]
    revoked_token_ids: frozenset[str]
    suspended_subjects: frozenset[str]
    # Per subject: tokens issued before these Unix milliseconds are refused (a suspension, a password
    # change or reset ended them).
    tokens_not_before: Mapping[str, int] = field(default_factory=dict)
    # Per subject ever suspended: when it last was, Unix milliseconds (kept once reinstated).
    suspended_since: Mapping[str, int] = field(default_factory=dict)
    # Per retired key: when it was retired, Unix milliseconds. A token it signed that claims to be
    # issued later (beyond RETIRED_SIGNING_SECONDS) is refused: a leaked key, rotated, signs no
    # new token that works (found by probing: forged tokens worked 21 minutes after rotation).
    retired_at_ms: Mapping[str, int] = field(default_factory=dict)
    # The longest a token may live (exp less iat), seconds; 0: no limit given. A token claiming
    # longer is refused (found by probing: one forged for a year was accepted).
    max_lifetime_seconds: int = 0


# Returns the current state, or None when `known_version` is still current.
StateSource = Callable[[int], Awaitable[VerificationState | None]]


class OutOfDateAnswer(Exception):
    """Identity answered with keys and revocations older than those already held (a replica that
    lags, a database restored from a backup), or "unchanged" about a version already replaced.
    The answer is ignored and counts as a failed fetch: retried at the poll's pace, logged as a
    failure, and the state stays as stale as it was."""


# How long after identity's return a service waits for a second answer before it verifies tokens
# again: longer than a peer channel's longest reconnect backoff (1 s, `peers.CHANNEL_OPTIONS`) and
# the gateway's retry of a pending revocation (0.1 s, `gateway.logouts`).
RECOVERY_CONFIRM_SECONDS = 1.2


class TokenVerifier:
    """Verifies bearer tokens against identity's keys and revocations, refreshed in the background."""

    def __init__(self, source: StateSource, *, poll_seconds: float = 0.5, max_staleness_seconds: float = 2.0):
        self._source = source
        self._poll = poll_seconds
        self._max_staleness = max_staleness_seconds
        self._state: VerificationState | None = None
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fresh_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._verified = VerifiedTokens()
        # The one fetch made for calls that found the state stale, and when it last failed.
        self._catching_up: asyncio.Future[None] | None = None
        self._catch_up_failed_at = float("-inf")
        self._stopped = False
        # Set once a state has been fetched: until then no token can be verified at all.
        self._has_state = asyncio.Event()
        # Whether a fetch failed since the state was last fresh (identity away).
        self._unreachable = False
        # Tokens ended here before identity heard (token id → its expiry, Unix seconds).
        self._ended_here: dict[str, float] = {}

    def has_state(self) -> bool:
        """Whether a state was ever fetched (before it, every token is refused)."""
        return self._state is not None

    async def first_state(self) -> None:
        """Return once a state has been fetched."""
        await self._has_state.wait()

    def stale(self) -> bool:
        """Whether the state is missing or older than tokens may be verified against."""
        return self._state is None or time.monotonic() - self._fresh_at > self._max_staleness

    async def refresh(self, *, confirming: bool = False) -> None:
        """Fetch the state once (raises if identity cannot be reached, or OutOfDateAnswer).

        After identity could not be reached for longer than tokens may be verified, its first
        answer is taken but does not make the state fresh: a second one, asked
        `RECOVERY_CONFIRM_SECONDS` later, does. Revocations that could not reach identity while it
        was away (a logout at the gateway) land in that time, so a token ended then is not
        accepted here again by a state identity served before it heard of them (found by
        re-probing: records and audit accepted a logged-out token for half a second after
        identity came back). Tokens stay refused until then, as they were while it was away."""
        known = self._state.version if self._state else 0
        # Fresh as of the request, not the answer: a slow reply must not pass for a new one.
        asked_at = time.monotonic()
        # Identity was away (a fetch failed), not merely a poll that fell behind.
        recovering = not confirming and self._unreachable and self._state is not None and self.stale()
        try:
            state = await self._source(known)
        except Exception:
            self._unreachable = True
            raise
        if asked_at < self._fresh_at:
            return  # a fetch asked later has answered already: keep its state
        current = self._state.version if self._state else 0
        if state is None and known != current:
            # "Unchanged" about a version already replaced says nothing about the new one.
            raise OutOfDateAnswer(f"unchanged since version {known}, while {current} is held")
        if state is not None and state.version < current:
            # Never go back to keys and revocations older than those already held.
            raise OutOfDateAnswer(f"version {state.version}, while {current} is held")
        if state is not None:
            self._keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in state.keys.items()}
            self._state = state
            self._has_state.set()
        if recovering:
            await asyncio.sleep(RECOVERY_CONFIRM_SECONDS)
            await self.refresh(confirming=True)
            return
        self._fresh_at = asked_at
        self._unreachable = False

    def _fetch_again(self, now: float) -> bool:
        """Whether a catch-up starts a fetch: none is under way, and the last one succeeded or
        ended in failure at least a poll ago (counted from when it failed, not when it began, so
        that an identity that hangs until the deadline is not asked again at once)."""
        fetch = self._catching_up
        if fetch is None:
            return True
        if not fetch.done():
            return False
        return now - self._catch_up_failed_at >= self._poll

    async def _catch_up_fetch(self) -> None:
        """One catch-up fetch; a failure's time is noted as it fails (no later, so that no call
        can slip in between and ask again at once)."""
        try:
            await self.refresh()
        except BaseException:
            self._catch_up_failed_at = time.monotonic()
            raise

    async def catch_up(self) -> None:
        """When the state has gone stale because the poll fell behind (its event loop held up for
        a moment, identity slow to answer one poll), fetch it now rather than refuse a call that
        the next poll would admit. One fetch serves every call waiting meanwhile, a failed one is
        not tried again sooner than the poll would, and none waits longer than half the
        staleness allowed. Never raises: `verify` still refuses while the state is stale."""
        if self._stopped or not self.stale():
            return
        if self._fetch_again(time.monotonic()):
            self._catching_up = asyncio.ensure_future(self._catch_up_fetch())
            # Its outcome is read here, whoever waits: a failure is never "never retrieved".
            self._catching_up.add_done_callback(_outcome_read)
        fetch = self._catching_up
        assert fetch is not None
        if fetch.done():
            return  # failed a moment ago: fail closed now, as the poll keeps trying
        # Waits without taking on the fetch's outcome: its failure, or its cancellation by
        # `stop`, leaves the state stale, and `verify` refuses.
        await asyncio.wait({fetch}, timeout=self._max_staleness / 2)

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                await self.refresh()
                if failures:
                    log.info("auth.state_refreshed_again", after_failures=failures)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep polling whatever went wrong; tokens fail closed meanwhile
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("auth.state_refresh_failed", failures=failures, **_why(exc))
            # After a failure try again sooner (0.1 s, doubling up to the poll): tokens fail closed
            # until a refresh succeeds, so a service that started before identity must not wait long.
            await asyncio.sleep(min(self._poll, 0.1 * 2 ** (failures - 1)) if failures else self._poll)

    def start(self) -> None:
        """Start polling in the background (on the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="token-verifier")

    async def stop(self) -> None:
        """Stop polling, and any catch-up fetch under way; no catch-up starts after this."""
        self._stopped = True
        pending = [t for t in (self._task, self._catching_up) if t is not None and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._task = None

    def end_here(self, token_id: str, expires_at: float) -> None:
        """Refuse a token in this process from now on, as if revoked (a logout whose revocation
        identity could not take yet: `gateway.logouts` sends it again until it does)."""
        now = time.time()
        self._ended_here = {jti: exp for jti, exp in self._ended_here.items() if exp > now}
        self._ended_here[token_id] = expires_at

    def suspended_since(self, subject: str) -> float | None:
        """When identity last suspended `subject`, Unix seconds, if it ever did. Not when it last
        cut their tokens off: a password change does that too (found by review: the gateway took
        a password change after a failed suspension for the suspension, and counted afresh)."""
        if self._state is None:
            return None
        ms = self._state.suspended_since.get(subject)
        return ms / 1000 if ms is not None else None

    def _decode(self, token: str, state: VerificationState) -> tuple[str, dict[str, Any]]:
        """The key id and claims of a token seen for the first time: its signature checked in
        full."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            key = self._keys.get(kid)
            if key is None:
                raise Unauthenticated(INVALID_TOKEN)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            # Only a correctly signed token gets this far: saying it expired tells nothing away,
            # and whose it was is for the audit log.
            raise Unauthenticated("token expired; log in again", holder=_holder(token, key)) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc
        self._verified.put(token, kid, state.keys[kid], claims)
        return kid, claims

    def verify(self, token: str) -> Principal:
        """The principal a token names; Unauthenticated when it is bad, expired or revoked."""
        state = self._state
        if state is None or self.stale():
            raise Unavailable("token verification is unavailable")
        verified = self._verified.get(token, state.keys) or self._decode(token, state)
        kid, claims = verified
        subject = str(claims["sub"])
        issued_ms = issued_at_ms(claims)
        now = time.time()
        # Checked on every use, not only the first: a token verified before its key was retired
        # is refused once all of that key's tokens must have expired (found by re-probing).
        check_key_use(kid, claims, state, now=now)
        if int(claims["exp"]) <= now:
            raise Unauthenticated("token expired; log in again", holder=_principal(claims, token, issued_ms))
        if (
            claims["jti"] in state.revoked_token_ids
            or claims["jti"] in self._ended_here
            or subject in state.suspended_subjects
            or issued_ms <= state.tokens_not_before.get(subject, -1)
        ):
            # Whose it is goes to the audit log only: the client hears no more than "invalid".
            raise Unauthenticated(INVALID_TOKEN, holder=_principal(claims, token, issued_ms))
        return _principal(claims, token, issued_ms)


def _why(exc: BaseException) -> dict[str, str]:
    """What a failed refresh says in the log: the error, the peer's status code, and a hint when
    the TLS handshake with identity failed (found by probing: a service with its CA missing stayed
    NOT_SERVING with only "Unavailable" in its log)."""
    why = {"error": type(exc).__name__}
    cause = exc if isinstance(exc, grpc.aio.AioRpcError) else exc.__cause__
    if isinstance(cause, grpc.aio.AioRpcError):
        why["code"] = cause.code().name
        details = cause.details() or ""
        if handshake_failed(details):
            why["hint"] = f"identity: {TLS_HINT}"
        elif "socket closed" in details.lower():
            # What a caller without TLS (or without a certificate of its own) hears from a
            # server that requires it (found by re-probing: no hint in that case).
            why["hint"] = (
                "identity closed the connection (if it serves TLS, check this service's TLS CA, "
                "certificate and key variables)"
            )
    return why


# A retired key signs on for a moment after its retirement (identity publishes a new key before it
# signs with it), and replicas' clocks differ: tokens issued this soon after are still its own.
RETIRED_SIGNING_SECONDS = 10
# Clock difference allowed between identity and a verifier in a token's lifetime.
LIFETIME_SKEW_SECONDS = 5


def issued_at_ms(claims: Mapping[str, Any]) -> int:
    """When a token says it was issued, Unix milliseconds: `iat_ms`, which must fall within the
    second `iat` (checked by the JWT library) names; Unauthenticated otherwise (found by
    re-probing: a forged `iat_ms` a year ahead escaped the lifetime check)."""
    iat = int(claims["iat"])
    ms = claims.get("iat_ms")
    if ms is None:
        return iat * 1000
    if not isinstance(ms, int) or ms // 1000 != iat:
        raise Unauthenticated(INVALID_TOKEN)
    return ms


# A retired key's tokens are accepted this long beyond the longest a token lives (as identity
# publishes it that long: clock differences between replicas).
RETIRED_KEY_GRACE_SECONDS = 60


def check_key_use(kid: str, claims: Mapping[str, Any], state: VerificationState, *, now: float) -> None:
    """Unauthenticated for a correctly signed token its key could not have signed or no longer
    vouches for: issued after the key was retired, living longer than identity issues tokens for,
    or signed by a retired key whose every token must have expired by `now`."""
    issued_ms = issued_at_ms(claims)
    retired_ms = state.retired_at_ms.get(kid)
    lifetime = state.max_lifetime_seconds
    if retired_ms is not None:
        if issued_ms > retired_ms + RETIRED_SIGNING_SECONDS * 1000:
            raise Unauthenticated(INVALID_TOKEN)
        if lifetime and now * 1000 > retired_ms + (lifetime + RETIRED_KEY_GRACE_SECONDS) * 1000:
            raise Unauthenticated(INVALID_TOKEN)
    if lifetime and int(claims["exp"]) - issued_ms / 1000 > lifetime + LIFETIME_SKEW_SECONDS:
        raise Unauthenticated(INVALID_TOKEN)


def _holder(token: str, key: Any) -> Principal | None:
    # Whom a correctly signed, expired token was issued to (its signature is checked again).
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[ALGORITHM], issuer=ISSUER, options={"verify_exp": False}
        )
        return _principal(claims, token, issued_at_ms(claims))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


def _principal(claims: dict[str, Any], token: str, issued_ms: int) -> Principal:
    return Principal(
        subject=str(claims["sub"]),
        name=str(claims.get("name", "")),
        organisation=str(claims.get("org", "")),
        roles=frozenset(str(r) for r in claims.get("roles", [])),
        kind=str(claims.get("kind", "")),
        token_id=str(claims["jti"]),
        expire_time=datetime.fromtimestamp(int(claims["exp"]), UTC),
        token=token,
        issued_at=issued_ms / 1000,
    )


def _outcome_read(fetch: asyncio.Future[None]) -> None:
    if not fetch.cancelled() and (exc := fetch.exception()) is not None:
        log.debug("auth.catch_up_failed", error=type(exc).__name__)
