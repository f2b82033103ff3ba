"""Where a benchmark's CPU goes: the CPU seconds each process spent in a window, read from
/proc (Linux), so that a run can say how many milliseconds of CPU each service spent a request.

On this 2-core machine every process of a run shares the cores, so CPU a request, not requests
a second, is the steadier measure of a change (requests a second swing ±15% with the load)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def children_of(pid: int) -> list[int]:
    """The direct children of a process."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def suite_processes(up_pid: int) -> dict[str, list[int]]:
    """The services `contactpoint up` started, by name (`serve <name>`)."""
    found: dict[str, list[int]] = {}
    for child in children_of(up_pid):
        args = _cmdline(child)
        if "serve" in args and args.index("serve") + 1 < len(args):
            found.setdefault(args[args.index("serve") + 1], []).append(child)
    return found


def postgres_processes() -> list[int]:
    """Every PostgreSQL server process on the machine (its backends included)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(f"/proc/{entry.name}/comm").read_text().strip() == "postgres":
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def snapshot(groups: Mapping[str, Callable[[], list[int]]]) -> dict[str, dict[int, float]]:
    """Each group's processes' CPU seconds now (the processes listed afresh, so that a backend
    PostgreSQL starts during the window counts from zero)."""
    return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in groups.items()}


def spent(
    before: Mapping[str, Mapping[int, float]], after: Mapping[str, Mapping[int, float]]
) -> dict[str, float]:
    """CPU seconds each group spent between two snapshots."""
    return {
        name: round(sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in now.items()), 3)
        for name, now in after.items()
    }


class Window:
    """Two snapshots of `groups`, `start` and `start + length` seconds from now (run beside a
    timed run: its warm-up, then its measured seconds)."""

    def __init__(self, groups: Mapping[str, Callable[[], list[int]]], start: float, length: float) -> None:
        self._groups = groups
        self._snaps: list[dict[str, dict[int, float]]] = []
        self._timers = [
            threading.Timer(start, self._take),
            threading.Timer(start + length, self._take),
        ]
        for timer in self._timers:
            timer.start()

    def _take(self) -> None:
        self._snaps.append(snapshot(self._groups))

    def result(self) -> dict[str, float]:
        """CPU seconds of each group in the window (after the run has ended)."""
        for timer in self._timers:
            timer.join()
        return spent(self._snaps[0], self._snaps[1]) if len(self._snaps) == 2 else {}
