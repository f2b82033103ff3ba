"""The key that seals people's TOTP secrets at rest, opened the same way by the identity service
and by `contactpoint admin create-user`: never a new key beside a database that already holds
secrets sealed with another, and never a key the database does not recognise.

The database keeps a key check (a constant sealed with the key, `totp_key_check`), written by
whichever first opens the key for it. Found by review: configured by environment alone,
create-user took the key's default path, made a new key there and sealed the first person's
secret with it; the service, holding the real key, answered that person's logins INTERNAL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from contactpoint.platform.settings import ConfigurationError
from services.identity import repository
from services.identity.sealing import Sealer, SealingError, is_sealed
from services.identity.tables import totp_key_check

_CHECK = "contactpoint-totp-key-check"
_CHECK_ID = "totp-key-check"
_WRONG_KEY = (
    "the TOTP key file {} does not open the TOTP secrets stored in identity's database (a lost or "
    "different CONTACTPOINT_IDENTITY_TOTP_KEY_FILE: give the one the identity service uses)"
)


def open_totp_sealer(conn: Connection, key_file: Path) -> Sealer:
    """The sealer for `key_file`, created when missing only for a database that holds nothing
    sealed yet; ConfigurationError (with what to do) for a missing or different key."""
    check = conn.execute(select(totp_key_check.c.sealed)).scalar()
    sealed_secrets = [(a, s) for a, s in repository.person_totp_secrets(conn) if is_sealed(s)]
    if not key_file.exists() and (check is not None or sealed_secrets):
        raise ConfigurationError(
            f"no TOTP key at {key_file}, but identity's database holds TOTP secrets sealed with one: "
            "restore the key file, or set CONTACTPOINT_IDENTITY_TOTP_KEY_FILE to the one the identity "
            "service uses"
        )
    sealer = Sealer.from_file(key_file)
    try:
        if check is not None:
            sealer.open(check, account_id=_CHECK_ID)
        for account_id, stored in sealed_secrets[:1]:
            sealer.open(stored, account_id=account_id)
    except SealingError as exc:
        raise ConfigurationError(_WRONG_KEY.format(key_file)) from exc
    if check is None:
        _write_check(conn, sealer, key_file)
    return sealer


def _write_check(conn: Connection, sealer: Sealer, key_file: Path) -> None:
    # Whoever comes first writes it; the other, if it holds another key, is refused.
    try:
        with conn.begin_nested():
            conn.execute(
                insert(totp_key_check).values(id=1, sealed=sealer.seal(_CHECK, account_id=_CHECK_ID))
            )
    except IntegrityError:
        written = conn.execute(select(totp_key_check.c.sealed)).scalar_one()
        try:
            sealer.open(written, account_id=_CHECK_ID)
        except SealingError as exc:
            raise ConfigurationError(_WRONG_KEY.format(key_file)) from exc


def seal_legacy_totp_secrets(conn: Connection, *, sealer: Sealer) -> int:
    """Seal every TOTP secret still stored in the clear (from before sealing existed); how many."""
    count = 0
    for account_id, stored in repository.person_totp_secrets(conn):
        if not is_sealed(stored):
            repository.update_account(
                conn, account_id, totp_secret=sealer.seal(stored, account_id=account_id)
            )
            count += 1
    return count
