"""Logouts identity could not take at once.

A Logout is written to the audit log first, then identity revokes the token. If identity cannot be
reached (found by probing: the log said the person had logged out, and the token went on reading
children once identity was back), the gateway refuses the token itself from that moment and asks
identity again, every `RETRY_SECONDS`, to revoke it by its id (`RevokeLoggedOutToken`) until
identity takes it or the token expires. So the logout the log records is true: the token is
refused here at once, and everywhere as soon as identity is reachable again (while it is not, no
service accepts any token for more than 2 s, and once it is back they wait for a second answer
before they do: `TokenVerifier.refresh`, time for this revocation to land).

What is pending is kept in the gateway's database (the token's id and expiry, never the token), and
every gateway reads it every `WATCH_SECONDS`, so a gateway restarted meanwhile, and every other
replica, refuses the token and carries on asking (found by probing: a restart lost the revocation,
and the logged-out token read children until it expired; found by re-probing: while the gateway
that took the Logout stayed down, another replica served the token again)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from contactpoint.platform.auth import Principal
from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unauthenticated, Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.token_verifier import TokenVerifier
from gateway import logout_repository as repo
from gateway.identity_client import IdentityClient

log = get_logger(__name__)

# Between two tries while identity cannot be reached (a try that hangs on a stopped identity is
# answered the moment it is back, and the next goes at once).
RETRY_SECONDS = 0.1
# How often a gateway reads the Logouts other replicas left pending.
WATCH_SECONDS = 0.5


class Logouts:
    """Revokes people's tokens at their logout, refusing them here until identity has."""

    def __init__(self, identity: IdentityClient, verifier: TokenVerifier, db: Database | None = None) -> None:
        self._identity = identity
        self._verifier = verifier
        self._db = db
        self._pending: dict[str, float] = {}  # token id → when the token expires
        self._retrying: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        # Revoked by identity at this replica's asking (until they expire): not taken up again from
        # a row read just before it was cleared.
        self._revoked: dict[str, float] = {}
        # Revocations under way for Logouts whose callers may have gone (`end`).
        self._ending: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Revocations identity has not taken yet."""
        return len(self._pending)

    async def resume(self) -> None:
        """At start, and every `WATCH_SECONDS` from then on: refuse the tokens of the Logouts left
        pending (by a gateway before this one, or another replica), and ask identity to revoke
        them."""
        if self._db is None:
            return
        await self._take_up()
        self._watching = asyncio.get_running_loop().create_task(self._watch(), name="logout-watch")

    async def _take_up(self) -> None:
        assert self._db is not None
        try:
            left = await self._db.read(lambda conn: repo.pending(conn, now=time.time()))
        except Exception:  # the gateway still starts; identity's own state stands
            log.exception("logout.pending_unreadable")
            return
        now = time.time()
        self._revoked = {token_id: exp for token_id, exp in self._revoked.items() if exp > now}
        new = [
            logout
            for logout in left
            if logout.token_id not in self._pending and logout.token_id not in self._revoked
        ]
        for logout in new:
            self._verifier.end_here(logout.token_id, logout.expires_at)
            self._pending[logout.token_id] = logout.expires_at
        if new:
            log.warning("logout.revocations_taken_up", pending=len(new))
            self._start_retrying()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            await self._take_up()

    async def end(self, person: Principal) -> None:
        """End the person's token: refused here at once, and revoked by identity now or as soon as
        it can be (found by re-probing: after an ordinary Logout the token read children here
        for a further 0.1 to 0.3 s, until this gateway's next poll of identity)."""
        expires_at = person.expire_time.timestamp()
        self._verifier.end_here(person.token_id, expires_at)
        # Carried through though the caller goes (found by review: a Logout its client cancelled
        # while identity was asked was logged as done, and the token, refused only in this
        # process's memory, read children through every other replica until it expired).
        revoking = self._revoke(person, expires_at)
        ending = asyncio.get_running_loop().create_task(revoking, name="logout-revoke")
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)
        await asyncio.shield(ending)

    async def _revoke(self, person: Principal, expires_at: float) -> None:
        try:
            await self._identity.revoke(person.token)
        except Unauthenticated:
            # Identity refuses the token already (revoked, its holder suspended): it works nowhere.
            return
        except Unavailable:
            self._pending[person.token_id] = expires_at
            await self._keep(person.token_id, expires_at)
            log.warning("logout.revocation_pending", pending=len(self._pending))
            self._start_retrying()

    def _start_retrying(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry(), name="logout-retry")

    async def _keep(self, token_id: str, expires_at: float) -> None:
        if self._db is None:
            return
        try:
            await self._db.write(
                lambda conn: repo.keep(conn, token_id=token_id, expires_at=expires_at, now=time.time())
            )
        except Exception:  # still refused here and retried; only a restart would forget it
            log.exception("logout.pending_unrecorded")

    async def _forget(self, token_ids: list[str]) -> None:
        if self._db is None:
            return
        try:
            await self._db.write(lambda conn: repo.done(conn, token_ids=token_ids, now=time.time()))
        except Exception:  # revoked again at the next start: harmless
            log.exception("logout.pending_not_cleared")

    async def _retry(self) -> None:
        # The first try goes at once: every moment identity is back without the revocation, the
        # other services may take a fresh state that lacks it (found by re-probing: records and
        # audit accepted the token for half a second after identity came back).
        while self._pending:
            revoked: list[str] = []
            for token_id, expires_at in list(self._pending.items()):
                if expires_at > time.time():
                    try:
                        await self._identity.revoke_by_id(token_id, expires_at)
                    except Unavailable:
                        break  # identity still unreachable: try them all again later
                    log.info("logout.revoked_late", pending=len(self._pending) - 1)
                del self._pending[token_id]  # revoked, or expired: it works nowhere either
                self._revoked[token_id] = expires_at
                revoked.append(token_id)
            if revoked:
                await self._forget(revoked)
            if self._pending:
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        """Stop retrying (on shutdown); what is still pending is kept for the next start."""
        if self._ending:  # revocations under way: finished, or kept pending
            await asyncio.gather(*self._ending, return_exceptions=True)
        if self._pending:
            log.warning("logout.revocations_left_pending", pending=len(self._pending))
        for task in (self._watching, self._retrying):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
