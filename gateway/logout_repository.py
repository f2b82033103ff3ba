"""The gateway's record of Logouts identity has not taken yet (`pending_logouts`): each token's id
and expiry, never the token itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from gateway.tables import pending_logouts


@dataclass(frozen=True, slots=True)
class PendingLogout:
    """A token its holder logged out of, not yet revoked by identity."""

    token_id: str
    expires_at: float


def keep(conn: Connection, *, token_id: str, expires_at: float, now: float) -> None:
    """Remember a Logout until identity has revoked its token (once; a second Logout of the same
    token changes nothing)."""
    found = conn.execute(select(pending_logouts.c.token_id).where(pending_logouts.c.token_id == token_id))
    if found.first() is None:
        conn.execute(
            insert(pending_logouts).values(token_id=token_id, expires_at=expires_at, logged_out_at=now)
        )


def pending(conn: Connection, *, now: float) -> list[PendingLogout]:
    """The Logouts whose tokens identity has not revoked and that have not expired."""
    rows = conn.execute(
        select(pending_logouts.c.token_id, pending_logouts.c.expires_at)
        .where(pending_logouts.c.expires_at > now)
        .order_by(pending_logouts.c.logged_out_at)
    ).all()
    return [PendingLogout(r.token_id, r.expires_at) for r in rows]


def done(conn: Connection, *, token_ids: Sequence[str], now: float) -> None:
    """Forget Logouts identity has taken, and any whose token has expired anyway."""
    if token_ids:
        conn.execute(delete(pending_logouts).where(pending_logouts.c.token_id.in_(list(token_ids))))
    conn.execute(delete(pending_logouts).where(pending_logouts.c.expires_at <= now))
