"""Audited GetChild as the registry grows: latency at a steady rate, and CPU a request, at 10,000,
100,000 and 1,000,000 children (issue 7).

    .venv/bin/python bench/getchild_scale.py [--sizes 10000,100000,1000000] [--rate 50]
        [--duration 60] [--warmup 5] [--closed 16] [--json]

For each size, on PostgreSQL (every service's database):

1. **The registry.** A records database loaded through the documented fast path
   (`bench/ingest_stream.py`'s `preload_by_truth`: every record checked, normalised and keyed by
   records' own functions and stored by its repository, placed by the generator's truth; then
   `VACUUM ANALYZE`), kept as the template `cp_bench_tpl_getchild_<N>` for later invocations (drop
   it by hand when done). Each run reads a fresh copy of it.
2. **The suite.** `contactpoint up` with that copy as the records database and fresh databases for
   the others; one practitioner, the per-person limits raised (the benchmark is one busy person).
3. **Steady rate.** `--rate` requests a second for `--duration` seconds (after `--warmup`), open
   loop: request i starts at i/rate seconds whatever the others are doing, and its latency counts
   from that moment, so a stall shows in the percentiles instead of slowing the clock. Each reads a
   child drawn at random from `--sample` (9,000) visible children of the registry, the same number
   at every size. p50, p95, p99, max.
4. **Closed loop** (`--closed C`, 0 to skip): C clients back to back for `--duration` seconds,
   requests a second, and the CPU each process spent a request (`cpu_share`), so that growth in
   cost shows even where latency hides it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cpu_share  # bench/cpu_share.py, beside this file
import grpc
import psycopg
from gateway_getchild import (
    DEFAULT_POSTGRES_URL,
    Postgres,
    RunResult,
    Suite,
    _cpu_groups,
    _measured,
    _percentile,
    gateway_call,
    sqlalchemy_url,
)

TEMPLATE = "cp_bench_tpl_getchild_{n}"
SAMPLE = 9_000  # fewer than the smallest registry's visible children: the same reads at every size
CHANNELS = 8


@dataclass
class SteadyResult:
    """One steady-rate run."""

    rate: float
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


def ensure_template(admin_url: str, size: int) -> tuple[str, float | None]:
    """The template database of `size` children, loaded now if it is not there: (name, records/s
    of the load, None when it was already there)."""
    from ingest_stream import preload_by_truth, split_feed

    name = TEMPLATE.format(n=size)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name, None
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(f"{admin_url.rsplit('/', 1)[0]}/{name}")
    items, _ = split_feed(size, 0, seed=11)
    print(f"loading {len(items):,} records of {size:,} children into {name}", file=sys.stderr, flush=True)
    try:
        rate = preload_by_truth(url, items)
    except BaseException:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        raise
    return name, rate


def visible_children(libpq_url: str, sample: int) -> list[str]:
    """Up to `sample` children a practitioner can read today, at random."""
    with psycopg.connect(libpq_url) as conn:
        rows = conn.execute(
            "SELECT contactpoint_id FROM children WHERE status = 'active' "
            "AND (archive_on IS NULL OR archive_on > current_date) ORDER BY random() LIMIT %s",
            (sample,),
        ).fetchall()
    return [r[0] for r in rows]


async def steady(
    target: str, ids: Sequence[str], token: str, rate: float, duration: float, warmup: float
) -> SteadyResult:
    """Open-loop GetChild at `rate` a second (see the module's doc)."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(CHANNELS)]
    calls = [gateway_call(ids, token)(ch) for ch in channels]
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, due: float) -> None:
        try:
            await calls[i % CHANNELS](random.Random(i))
        except grpc.aio.AioRpcError as exc:
            if due - start >= warmup:
                errors[exc.code().name] += 1
            return
        if due - start >= warmup:
            latencies.append(loop.time() - due)

    i = 0
    while True:
        due = start + i / rate
        if due >= start + warmup + duration:
            break
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(one(i, due)))
        i += 1
    await asyncio.gather(*tasks)
    for ch in channels:
        await ch.close(None)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return SteadyResult(
        rate=rate,
        requests=len(ms),
        p50_ms=round(_percentile(ms, 0.50), 2),
        p95_ms=round(_percentile(ms, 0.95), 2),
        p99_ms=round(_percentile(ms, 0.99), 2),
        max_ms=round(ms[-1], 2) if ms else 0.0,
        errors=dict(errors),
    )


def run_size(args: argparse.Namespace, size: int) -> dict[str, object]:
    """Everything measured at one size."""
    from ingest_stream import key_file_for

    template, load_rate = ensure_template(args.postgres_url, size)
    pg = Postgres(args.postgres_url)
    out: dict[str, object] = {"children": size, "template": template}
    if load_rate is not None:
        out["load_records_per_s"] = round(load_rate, 1)
    with tempfile.TemporaryDirectory(prefix="cp-bench-scale-") as tmp:
        suite = Suite(Path(tmp), pg)
        records_url = pg.new("records", template=template)
        suite.env["CONTACTPOINT_RECORDS_DATABASE_URL"] = sqlalchemy_url(records_url)
        suite.env["CONTACTPOINT_RECORDS_DATA_KEY_FILE"] = str(key_file_for(template))
        try:
            suite.start()
            token = suite.practitioner_token()
            ids = visible_children(records_url, args.sample)
            out["children_sampled"] = len(ids)
            target = suite.target("gateway")
            groups = _cpu_groups("gateway", suite, None, True)
            window = cpu_share.Window(groups, args.warmup, args.duration)
            result = asyncio.run(steady(target, ids, token, args.rate, args.duration, args.warmup))
            cpu = window.result()
            if result.requests:
                result.cpu_ms_per_request = {k: round(1000 * v / result.requests, 3) for k, v in cpu.items()}
            out["steady"] = asdict(result)
            if args.closed:
                closed: RunResult = _measured(
                    argparse.Namespace(concurrency=args.closed, duration=args.duration, warmup=args.warmup),
                    target,
                    gateway_call(ids, token),
                    groups,
                )
                out["closed"] = asdict(closed)
        except Exception:
            print(suite.tail(), file=sys.stderr)
            raise
        finally:
            suite.stop()
            pg.drop_all()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000,1000000", help="registry sizes, comma-separated")
    p.add_argument("--rate", type=float, default=50.0, help="steady requests a second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before that do not count")
    p.add_argument("--closed", type=int, default=16, help="clients of the closed-loop run (0: none)")
    p.add_argument(
        "--sample",
        type=int,
        default=SAMPLE,
        help="visible children read, at random (the same number at every size: the first read of a "
        "child in a day costs the gateway's limits more than a re-read)",
    )
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="a superuser's libpq URL")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = p.parse_args(argv)
    report: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/getchild_scale.py", *(argv or sys.argv[1:])]),
        "load_before": round(os.getloadavg()[0], 2),
        "sizes": [],
    }
    sizes: list[dict[str, object]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        sizes.append(run_size(args, size))
        print(f"{size:,} children done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    report["sizes"] = sizes
    report["load_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['date']}  load {report['load_before']} → {report['load_after']}  rate {args.rate}/s")
    heading = ("children", "p50", "p95", "p99", "max", "errors", "closed req/s", "CPU ms/req")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heading, (10, 8, 8, 8, 8, 7, 13, 11), strict=True)))
    for s in sizes:
        st = s["steady"]
        assert isinstance(st, dict)
        closed = s.get("closed")
        rps = closed["rps"] if isinstance(closed, dict) else 0.0
        cpu = sum(closed["cpu_ms_per_request"].values()) if isinstance(closed, dict) else 0.0
        print(
            f"{s['children']:>10,} {st['p50_ms']:>8} {st['p95_ms']:>8} {st['p99_ms']:>8} {st['max_ms']:>8} "
            f"{sum(st['errors'].values()):>7} {rps:>13.1f} {cpu:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
