"""A person's password checked for a login: on the bounded Argon2 pool, after the per-username
throttle, outside any transaction."""

from __future__ import annotations

import time

from contactpoint.platform.db import Database
from contactpoint.platform.errors import ResourceExhausted, Unauthenticated
from services.identity.hashing import BUSY, Hashing, TurnNotReached
from services.identity.login import LOGIN_FAILED, PasswordCheck, password_hash_of


async def check_password(
    db: Database, hashing: Hashing, username: str, password: str, *, within: float | None = None
) -> PasswordCheck:
    """The person's password, checked on the bounded Argon2 pool after the per-username
    throttle (full work even for an unknown username), within `within` seconds when given: the
    caller's deadline less what the rest of the login needs. Past it, the attempt is refused
    RESOURCE_EXHAUSTED (retry) and nothing of it is stored: the gateway has given up on it, so a
    token issued or a failure counted then would reach no one (found by review: turns of 8 s and a
    longer queue let identity commit logins after the gateway's 11 s deadline)."""
    deadline = None if within is None else time.monotonic() + within
    try:
        await hashing.usernames.admit(username, wait=within)
    except TurnNotReached:
        # Never checked, so no failed login: counted, it would let a client's own parallel
        # sign-ins on a busy host lock its person out. Busy, retry (RetryInfo).
        raise
    except ResourceExhausted:
        # Over the username's rate: refused unchecked, and says only "login failed". Not
        # counted as a failure either: the attempts checked are (a flood of wrong passwords
        # locks the account on its first checked ones), and counting these let a client's own
        # parallel sign-ins with the right credentials lock its person out (found by probing).
        raise Unauthenticated(LOGIN_FAILED) from None
    try:
        account_id, stored = await db.read(lambda conn: password_hash_of(conn, username=username))
        ok = await hashing.people.verify(stored, password)
    finally:
        hashing.usernames.release(username)
    if deadline is not None and time.monotonic() > deadline:
        raise ResourceExhausted(BUSY, 1.0, reason="SIGN_IN_BUSY")
    return PasswordCheck(account_id, ok)
