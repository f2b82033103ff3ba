"""What `contactpoint up` tells the witness the audit log's key is."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import Connection, make_url
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key


def pin_witnessed_log(env: dict[str, str]) -> None:
    """Give the witness the audit log's public key (the pinned one, else the key file's, made
    here when the log has none yet). The witness starts from that key and then follows only
    rotations logged in the log: a key file swapped in beside the log is not one of them, so the
    witness says so at start and cosigns nothing that key signs."""
    if "CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY" in env:
        return
    first = _first_log_key(env["CONTACTPOINT_AUDIT_DATABASE_URL"])
    if first is not None:
        # A log whose key was rotated: the witness starts from its first key (found by probing:
        # given the current key, a new witness refused the log's early heads and cosigned nothing).
        env["CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY"] = base64.b64encode(first).decode()
        return
    pinned = env.get("CONTACTPOINT_AUDIT_PUBLIC_KEY")
    key_file = Path(env["CONTACTPOINT_AUDIT_SIGNING_KEY_FILE"])
    if pinned is None and (key_file.exists() or _log_is_empty(env["CONTACTPOINT_AUDIT_DATABASE_URL"])):
        # Made here only for an empty log: a log's missing key is audit's to refuse, not ours to
        # replace (found by probing). A broken key file is audit's to refuse too.
        try:
            pinned = base64.b64encode(raw_public_key(load_or_create_signing_key(key_file))).decode()
        except ValueError:
            return
    if pinned is not None:
        env["CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY"] = pinned


def _first_log_key(database_url: str) -> bytes | None:
    """The audit log's first signing key when its key was ever rotated (None otherwise, or when
    the log cannot be read yet: a new one)."""
    from services.audit import keychain

    if not _may_hold_a_log(database_url):
        return None
    db = Database(database_url)
    try:
        found = db.run_sync(keychain.rotations, write=False)
    except (SQLAlchemyError, ContactPointError):
        return None
    finally:
        db.dispose()
    return found[0][1].old_key if found else None


def _may_hold_a_log(database_url: str) -> bool:
    # A SQLite file not made yet holds nothing (and is not made here).
    url = make_url(database_url)
    return url.get_backend_name() != "sqlite" or bool(url.database and Path(url.database).exists())


def _log_is_empty(database_url: str) -> bool:

    if not _may_hold_a_log(database_url):
        return True
    db = Database(database_url)
    try:
        return db.run_sync(_holds_nothing, write=False)
    except ProgrammingError:
        return True  # PostgreSQL: its tables not made yet
    except (SQLAlchemyError, ContactPointError) as exc:
        # SQLite's tables not made yet; anything else (the database unreachable, locked) says
        # nothing, and a log that may hold entries gets no new key (found by re-probing).
        return "no such table" in str(exc.__cause__ or exc)
    finally:
        db.dispose()


def _holds_nothing(conn: Connection) -> bool:
    from services.audit import repository

    return not repository.holds_entries(conn)
