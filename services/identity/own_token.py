"""Identity's own machine token, issued by identity to itself (no call over the network): used
to append administrators' calls to the audit log."""

from __future__ import annotations

from contactpoint.platform.db import Database
from contactpoint.platform.peers import RenewedToken
from services.identity import domain
from services.identity.token_issuer import TokenIssuer


class OwnServiceToken(RenewedToken):
    """A `TokenSource` for identity's machine account, renewed well before it expires; an
    account whose credentials are wrong is Unauthenticated."""

    def __init__(self, db: Database, issuer: TokenIssuer, client_id: str, client_secret: str) -> None:
        super().__init__()
        self._db = db
        self._issuer = issuer
        self._client_id = client_id
        self._client_secret = client_secret

    async def _issue(self) -> tuple[str, float]:
        issued = await self._db.read(
            lambda conn: domain.issue_service_token(
                conn, client_id=self._client_id, client_secret=self._client_secret, issuer=self._issuer
            )
        )
        return issued.token, issued.expire_time.timestamp()
