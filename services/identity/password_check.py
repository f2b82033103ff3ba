"""A person's password checked for a login: on the bounded Argon2 pool, after the per-username
throttle, outside any transaction."""

from __future__ import annotations

from contactpoint.platform.db import Database
from contactpoint.platform.errors import ResourceExhausted, Unauthenticated
from services.identity.hashing import Hashing, TurnNotReached
from services.identity.login import LOGIN_FAILED, PasswordCheck, password_hash_of


async def check_password(db: Database, hashing: Hashing, username: str, password: str) -> PasswordCheck:
    """The person's password, checked on the bounded Argon2 pool after the per-username
    throttle (full work even for an unknown username)."""
    try:
        await hashing.usernames.admit(username)
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
        return PasswordCheck(account_id, await hashing.people.verify(stored, password))
    finally:
        hashing.usernames.release(username)
