"""What one read's rate costs the gateway's database: the exact sliding minute (`allowance.sliding`,
the times of the last minute's reads kept on the person's row) against GCRA (one number), each
statement as `Allowances.decide_read` runs it, on PostgreSQL or SQLite, in one run.

    .venv/bin/python bench/rate_statement.py [--people 200] [--reads 30] [--rounds 20] [--sqlite]

`--people` people each make `--reads` reads a minute (their window holds that many times, the
steady state of a person reading at the rate); every round each person reads once more, a minute
later in all. The two ways alternate round by round; the medians of the mean time a statement are
printed, with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.statements import Statements
from gateway import allowance_repository as repo
from gateway.allowance import MINUTE, SLACK, minute_before
from gateway.main import MIGRATIONS

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _round(store: Statements, people: int, now: float, per_minute: int, gcra: bool) -> float:
    started = time.perf_counter()
    for p in range(people):
        taken = await repo.take_rate(
            store,
            f"{'g' if gcra else 's'}-{p}",
            now=now,
            since=minute_before(now),
            per_minute=per_minute,
            gcra=(MINUTE / per_minute, MINUTE + SLACK) if gcra else None,
            day="2026-12-07",
            item=f"child:{p}",
        )
        assert taken.allowed
    return (time.perf_counter() - started) / people * 1000


async def run(url: str, people: int, reads: int, rounds: int) -> dict[str, list[float]]:
    migrate.upgrade("gateway", MIGRATIONS, url)
    db = Database(url)
    store = Statements(db)
    times: dict[str, list[float]] = {"sliding": [], "gcra": []}
    try:
        now, step = 1_800_000_000.0, MINUTE / reads + 0.01
        for _ in range(reads):  # fill each window to the steady state
            now += step
            for way in (False, True):
                await _round(store, people, now, reads, way)
        for r in range(rounds):
            now += step
            for way in (False, True) if r % 2 == 0 else (True, False):
                times["gcra" if way else "sliding"].append(await _round(store, people, now, reads, way))
    finally:
        await store.close()
        db.dispose()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=200)
    p.add_argument("--reads", type=int, default=30, help="reads a minute each (the rate)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--sqlite", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url, name = f"sqlite:///{Path(tmp) / 'gateway.db'}", None
        else:
            name = f"cp_bench_rate_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        try:
            times = asyncio.run(run(url, args.people, args.reads, args.rounds))
        finally:
            if name:
                with psycopg.connect(ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sliding, gcra = statistics.median(times["sliding"]), statistics.median(times["gcra"])
    engine = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{engine}, {args.people} people at {args.reads} reads a minute, {args.rounds} rounds each")
    print(f"sliding minute: {sliding:.3f} ms a read (median of rounds)")
    print(f"GCRA:           {gcra:.3f} ms a read")
    print(f"ratio sliding/GCRA: {sliding / gcra:.2f}")


if __name__ == "__main__":
    main()
