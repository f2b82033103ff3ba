"""Logouts identity could not take at once.

A Logout is written to the audit log first, then identity revokes the token. If identity cannot be
reached (found by probing: the log said the person had logged out, and the token went on reading
children once identity was back), the gateway refuses the token itself from that moment and sends
the revocation again, every `RETRY_SECONDS`, until identity takes it or the token expires. So the
logout the log records is true: the token is refused here at once, and everywhere as soon as
identity is reachable again (while it is not, no service accepts any token for more than 2 s, and
once it is back they wait for a second answer before they do: `TokenVerifier.refresh`, time for
this revocation to land).
What is pending lives in this process: a gateway restarted meanwhile leaves such a token to expire
by itself (at most the token lifetime, 15 minutes by default) — logged, never silent."""

from __future__ import annotations

import asyncio
import contextlib
import time

from contactpoint.platform.auth import Principal
from contactpoint.platform.errors import Unauthenticated, Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.token_verifier import TokenVerifier
from gateway.identity_client import IdentityClient

log = get_logger(__name__)

# Between two tries while identity cannot be reached (a try that hangs on a stopped identity is
# answered the moment it is back, and the next goes at once).
RETRY_SECONDS = 0.1


class Logouts:
    """Revokes people's tokens at their logout, refusing them here until identity has."""

    def __init__(self, identity: IdentityClient, verifier: TokenVerifier) -> None:
        self._identity = identity
        self._verifier = verifier
        self._pending: dict[str, Principal] = {}
        self._retrying: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Revocations identity has not taken yet."""
        return len(self._pending)

    async def end(self, person: Principal) -> None:
        """End the person's token: refused here at once, and revoked by identity now or as soon as
        it can be (found by re-probing: after an ordinary Logout the token read children here
        for a further 0.1 to 0.3 s, until this gateway's next poll of identity)."""
        self._verifier.end_here(person.token_id, person.expire_time.timestamp())
        try:
            await self._identity.revoke(person.token)
        except Unauthenticated:
            # Identity refuses the token already (revoked, its holder suspended): it works nowhere.
            return
        except Unavailable:
            self._pending[person.token_id] = person
            log.warning("logout.revocation_pending", pending=len(self._pending))
            if self._retrying is None or self._retrying.done():
                self._retrying = asyncio.get_running_loop().create_task(self._retry(), name="logout-retry")

    async def _retry(self) -> None:
        # The first try goes at once: every moment identity is back without the revocation, the
        # other services may take a fresh state that lacks it (found by re-probing: records and
        # audit accepted the token for half a second after identity came back).
        while self._pending:
            for token_id, person in list(self._pending.items()):
                if person.expire_time.timestamp() <= time.time():
                    del self._pending[token_id]  # expired: it works nowhere either
                    continue
                try:
                    await self._identity.revoke(person.token)
                except Unavailable:
                    break  # identity still unreachable: try them all again later
                except Unauthenticated:
                    pass
                del self._pending[token_id]
                log.info("logout.revoked_late", pending=len(self._pending))
            if self._pending:
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        """Stop retrying (on shutdown); what is still pending is logged."""
        if self._pending:
            log.warning("logout.revocations_left_pending", pending=len(self._pending))
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
