"""The data dir `contactpoint up` owns while it runs: one `up` per data dir (an exclusive lock
file), the folder and its SQLite files private to their user (0700 / 0600)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from contactpoint.cli.embedded import SERVICES

LOCK_FILE = "up.lock"
PRIVATE_DIR_MODE = 0o700


def _is_suite_dir(path: Path) -> bool:
    """Whether `path` holds nothing but a suite's data (its databases, keys, lock and logs), so
    that `up` may treat it as its own."""
    ours = tuple(f"{svc}.db" for svc in SERVICES)
    return all(
        entry.name.startswith(ours) or entry.name in ("keys", LOCK_FILE) or entry.name.endswith(".log")
        for entry in path.iterdir()
    )


def private_dir(path: Path) -> str | None:
    """Create `path` readable by its owner only (0700), or make an existing data dir so; a warning
    (one line) when it had been open to others. A folder that holds other things and no suite's data
    (say `--data-dir .`) keeps its mode: the files made in it are private anyway, and the warning
    says so."""
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    except FileExistsError:
        pass
    else:
        path.chmod(PRIVATE_DIR_MODE)  # whatever the umask
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 == 0:
        return None
    if not _is_suite_dir(path):
        return (
            f"{path} is open to other users (mode {mode:04o}) and left so, as it is not only the "
            "suite's; its databases and keys are private (0600/0700), but a folder of its own is better"
        )
    path.chmod(PRIVATE_DIR_MODE)
    return f"{path} was open to other users (mode {mode:04o}); it is now {PRIVATE_DIR_MODE:04o}"


def private_databases(data_dir: Path) -> list[str]:
    """Make the SQLite files in `data_dir` (databases, -wal, -shm) and the key files in its `keys`
    folder readable by their owner only; a warning for each that was not (found by probing: key
    files written back 0644 went unnoticed, while the warning said keys were private)."""
    warnings = []
    ours = tuple(f"{svc}.db" for svc in SERVICES)
    databases = [p for p in data_dir.glob("*.db*") if p.name.startswith(ours)]
    keys = list((data_dir / "keys").glob("*")) if (data_dir / "keys").is_dir() else []
    for path in sorted([*databases, *keys]):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_file() and mode & 0o077:
            path.chmod(0o600)
            warnings.append(f"{path} was open to other users (mode {mode:04o}); it is now 0600")
    return warnings


def lock_data_dir(data_dir: Path) -> int | None:
    """Take the data dir's lock (an exclusive flock on `LOCK_FILE`, released when this process
    ends however it ends): its file descriptor, or None when another `up` holds it."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # for the operator: who holds it
    return fd


def lock_holder(data_dir: Path) -> str:
    """ " (pid N)" naming the process that holds the data dir's lock, when its file says."""
    with contextlib.suppress(OSError):
        pid = (data_dir / LOCK_FILE).read_text().strip()
        if pid.isdigit():
            return f" (pid {pid})"
    return ""
