"""Identity's own machine token, issued by identity to itself (no call over the network): used
to append administrators' calls to the audit log."""

from __future__ import annotations

import asyncio
import time

from contactpoint.platform.db import Database
from services.identity import domain


class OwnServiceToken:
    """A `TokenSource` for identity's machine account, renewed well before it expires."""

    def __init__(self, db: Database, issuer: domain.TokenIssuer, client_id: str, client_secret: str) -> None:
        self._db = db
        self._issuer = issuer
        self._client_id = client_id
        self._client_secret = client_secret
        self._token = ""
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid token (Unauthenticated when the account's credentials are wrong)."""
        async with self._lock:
            if time.time() >= self._renew_at:
                issued = await self._db.read(
                    lambda conn: domain.issue_service_token(
                        conn,
                        client_id=self._client_id,
                        client_secret=self._client_secret,
                        issuer=self._issuer,
                    )
                )
                life = issued.expire_time.timestamp() - time.time()
                self._token = issued.token
                self._renew_at = time.time() + max(0.0, life - min(60.0, life / 3))
            return self._token

    def invalidate(self) -> None:
        """Forget the token."""
        self._renew_at = 0.0

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token."""
        return (("authorization", f"Bearer {await self.get()}"),)
