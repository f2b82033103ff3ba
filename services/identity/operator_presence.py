"""Whether a running identity service is putting command-line changes in the audit log.

A command-line account change (`operator_log`) reaches the audit log when a running identity
service forwards it. So that a command's record is in the log by the time the command returns (and
does not land among whatever an operator or a test does next: found by probing, an operator's
change arrived up to a second later, between two later requests), the command waits for it, but
only when a forwarder is there to wait for. Each identity service that forwards holds a shared
lock for as long as it runs, which its process's end releases however it ends:
- SQLite: a shared `flock` on a file beside the database (`<database>.forwarding`);
- PostgreSQL: a shared session advisory lock, on a connection kept for it, in identity's database.
A command asks whether anyone holds it, without ever waiting on it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from contactpoint.platform.db import HIDE_PARAMETERS
from contactpoint.platform.logging import get_logger

log = get_logger(__name__)

# The advisory lock's two keys ("CPID", 1): shown in pg_locks as classid and objid, objsubid 2.
_LOCK_CLASS = 0x43504944
_LOCK_OBJECT = 1
# The lead among replicas: an exclusive advisory lock ("CPID", 2), or an exclusive flock on
# `<database>.forwarding-leader`.
_LEADER_OBJECT = 2


def _lock_file(database_url: str) -> Path | None:
    """The file whose flock says a forwarder runs on this SQLite database (None: not SQLite, or a
    database in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.forwarding")


def _is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


class Presence:
    """Held by a forwarding identity service while it runs; `release` at shutdown. Of several
    replicas, one leads (`lead`): it alone forwards, so that no change is logged twice (found by
    re-probing: two replicas read the same waiting rows and both sent them)."""

    def __init__(
        self,
        fd: int | None = None,
        conn: Connection | None = None,
        engine: Engine | None = None,
        leader_file: Path | None = None,
    ):
        self._fd, self._conn, self._engine = fd, conn, engine
        self._leader_file = leader_file
        self._leader_fd: int | None = None
        self._leading = fd is None and conn is None  # nothing to share: this one forwards

    def lead(self) -> bool:
        """Whether this replica forwards: it takes the lead when no other holds it (a replica that
        ends, however it ends, leaves it to the next to ask), and keeps it."""
        if self._leading:
            return True
        if self._leader_file is not None:
            fd = os.open(self._leader_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._leader_fd, self._leading = fd, True
        elif self._conn is not None:
            taken = self._conn.execute(
                text("SELECT pg_try_advisory_lock(CAST(:c AS integer), CAST(:o AS integer))"),
                {"c": _LOCK_CLASS, "o": _LEADER_OBJECT},
            ).scalar()
            self._conn.commit()
            self._leading = bool(taken)
        return self._leading

    @classmethod
    def hold(cls, database_url: str) -> Presence:
        """Announce a forwarder on `database_url` (nothing is held on another kind of database:
        commands then do not wait)."""
        path = _lock_file(database_url)
        if path is not None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a command is looking (microseconds)
            return cls(fd=fd, leader_file=Path(f"{path}-leader"))
        if _is_postgres(database_url):
            engine = create_engine(database_url, poolclass=NullPool, hide_parameters=HIDE_PARAMETERS)
            conn = engine.connect()
            conn.execute(
                text("SELECT pg_advisory_lock_shared(CAST(:c AS integer), CAST(:o AS integer))"),
                {"c": _LOCK_CLASS, "o": _LOCK_OBJECT},
            )
            conn.commit()
            return cls(conn=conn, engine=engine)
        return cls()

    def release(self) -> None:
        """Stop announcing (the process's end does the same)."""
        for fd in (self._fd, self._leader_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._leader_fd = None
        self._leading = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                # Let go of the locks before the connection: its server process ends after the
                # close returns, and until then the next replica could not take the lead (seen in
                # CI under load: the next replica's first ask failed).
                self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
                self._conn.commit()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def forwarder_running(conn: Connection, database_url: str) -> bool:
    """Whether an identity service is forwarding command-line changes from this database (`conn`
    is a connection to it)."""
    path = _lock_file(database_url)
    if path is not None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the lock if it was taken
        return False
    if _is_postgres(database_url):
        held = conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid::bigint = :c AND objid::bigint = :o AND objsubid = 2 AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
            ),
            {"c": _LOCK_CLASS, "o": _LOCK_OBJECT},
        ).scalar()
        return bool(held)
    return False
