"""The data dir, its keys folder and the SQLite files are readable by their owner only, whatever
the umask: folders 0700, database files (and their -wal, -shm) 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from contactpoint.cli.data_dir import private_databases, private_dir
from contactpoint.platform.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 000: anything not created private on purpose would be world-writable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_sqlite_files_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "records.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.run_sync(lambda c: c.execute(text("CREATE TABLE t (x INTEGER)")))
        db.run_sync(lambda c: c.execute(text("INSERT INTO t VALUES (1)")))
        wal, shm = path.with_name("records.db-wal"), path.with_name("records.db-shm")
        assert wal.exists() and shm.exists()  # WAL mode, connections open
        assert {p.name: mode(p) for p in (path, wal, shm)} == dict.fromkeys(
            ("records.db", "records.db-wal", "records.db-shm"), 0o600
        )
        assert mode(path.parent) == 0o700
    finally:
        db.dispose()


def test_an_existing_sqlite_file_is_used_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    db = Database(f"sqlite:///{path}")
    db.run_sync(lambda c: c.execute(text("CREATE TABLE t (x INTEGER)")))
    db.dispose()
    again = Database(f"sqlite:///{path}")
    try:
        assert again.run_sync(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar_one()) == 0
    finally:
        again.dispose()


@pytest.mark.usefixtures("open_umask")
def test_private_dir_creates_and_tightens(tmp_path: Path) -> None:
    new = tmp_path / "a" / "var"
    assert private_dir(new) is None and mode(new) == 0o700
    assert private_dir(new) is None  # already private: nothing to say
    # An existing data dir of the suite's that is open to others is tightened.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "identity.db").write_bytes(b"")
    warning = private_dir(shared)
    assert mode(shared) == 0o700
    assert warning is not None and str(shared) in warning and "0755" in warning and "\n" not in warning
    # A folder that is not only the suite's (`--data-dir .`) keeps its mode, with a warning.
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "notes.txt").write_text("mine")
    (home / "other.db").write_bytes(b"")
    (home / "other.db").chmod(0o644)
    left = private_dir(home)
    assert mode(home) == 0o755 and left is not None and "left so" in left and "\n" not in left
    assert private_databases(home) == [] and mode(home / "other.db") == 0o644


def test_private_databases_tightens_open_database_files(tmp_path: Path) -> None:
    (tmp_path / "identity.db").write_bytes(b"")
    (tmp_path / "identity.db").chmod(0o644)
    (tmp_path / "records.db").write_bytes(b"")
    (tmp_path / "records.db").chmod(0o600)
    warnings = private_databases(tmp_path)
    assert mode(tmp_path / "identity.db") == 0o600 and mode(tmp_path / "records.db") == 0o600
    assert len(warnings) == 1 and "identity.db" in warnings[0] and "0644" in warnings[0]


def test_private_databases_tightens_open_key_files(tmp_path: Path) -> None:
    # Found by probing: key files written back 0644 (`cat > file`) stayed so, unremarked.
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "identity-signing.pem").write_bytes(b"")
    (keys / "identity-signing.pem").chmod(0o644)
    (keys / "audit-signing.pem").write_bytes(b"")
    (keys / "audit-signing.pem").chmod(0o600)
    warnings = private_databases(tmp_path)
    assert mode(keys / "identity-signing.pem") == 0o600 and mode(keys / "audit-signing.pem") == 0o600
    assert len(warnings) == 1 and "identity-signing.pem" in warnings[0]
