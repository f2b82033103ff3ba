"""What a flood of council feeds costs everyone else: another council's single records and a data
manager's shields, with and without the flood, on the suite `contactpoint up` runs.

One invocation, on this machine:

1. `contactpoint up` in a temporary folder (the embedded SQLite default; `--postgres` puts the
   four services' databases on PostgreSQL), `--records-replicas` untouched: one records process.
2. A quiet phase of `--seconds`: one council (the "other" council) submits records with
   `SubmitSourceRecord` from `--senders` callers at once (each a record at a time), and a data
   manager of that council shields and unshields one of its children with `SetShielded`, each
   back to back with a pause of `--pause` seconds.
3. A flood phase of the same length: the same two callers while `--councils` more councils each
   keep `--streams` `StreamSourceRecords` open, sending synthetic new children's records as fast
   as records takes them.

Prints the latency of each caller's calls (median, 90th percentile, worst, count) in each phase
and the flood's and the single records' records/s, as a markdown table; `--json F` writes them
too. The records are the generator's (`contactpoint.cli.synthetic`), new children each, and each
stream's and sender's record ids its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import grpc
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from contactpoint.cli.synthetic import synthetic_feed
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from tests.suite import Suite

TODAY = date(2026, 11, 25)
OTHER = "E08000099"  # the council that is not flooding, and its data manager's organisation
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Latencies:
    """One caller's calls in one phase: seconds each, and the failures by status."""

    seconds: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | dict[str, int]]:
        ordered = sorted(self.seconds)
        if not ordered:
            return {"calls": 0, "failed": self.failed}
        return {
            "calls": len(ordered),
            "median_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
            "worst_ms": round(ordered[-1] * 1000, 1),
            "failed": self.failed,
        }


def _records(count: int, seed: int) -> list[pb.SourceRecord]:
    return [s.record for s in synthetic_feed(count, seed, today=TODAY)]


async def _timed(latencies: Latencies, call: asyncio.Future[object] | object) -> None:
    started = time.perf_counter()
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        latencies.failed[exc.code().name] = latencies.failed.get(exc.code().name, 0) + 1
        return
    latencies.seconds.append(time.perf_counter() - started)


async def _other_council(
    stub: pb_grpc.RecordsServiceStub,
    token: str,
    records: Sequence[pb.SourceRecord],
    stop: asyncio.Event,
    pause: float,
    tag: str,
) -> Latencies:
    latencies = Latencies()
    n = 0
    while not stop.is_set():
        record = pb.SourceRecord()
        record.CopyFrom(records[n % len(records)])
        record.source_record_id = f"{tag}-{n}"
        call = stub.SubmitSourceRecord(
            pb.SubmitSourceRecordRequest(record=record, request_id=f"{tag}-{n}"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=120,
        )
        await _timed(latencies, call)
        n += 1
        await asyncio.sleep(pause)
    return latencies


async def _data_manager(
    stub: pb_grpc.RecordsServiceStub, token: str, child: str, stop: asyncio.Event, pause: float
) -> Latencies:
    latencies = Latencies()
    shielded = True
    while not stop.is_set():
        call = stub.SetShielded(
            pb.SetShieldedRequest(contactpoint_id=child, shielded=shielded, reason="bench"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=120,
        )
        await _timed(latencies, call)
        shielded = not shielded
        await asyncio.sleep(pause)
    return latencies


async def _flood_stream(
    stub: pb_grpc.RecordsServiceStub,
    token: str,
    records: Sequence[pb.SourceRecord],
    stop: asyncio.Event,
    tag: str,
    counts: list[int],
) -> None:
    async def requests() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        n = 0
        while not stop.is_set():
            record = pb.SourceRecord()
            record.CopyFrom(records[n % len(records)])
            record.source_record_id = f"{tag}-{n}"
            yield pb.SubmitSourceRecordRequest(record=record, request_id=f"{tag}-{n}")
            n += 1

    call = stub.StreamSourceRecords(requests(), metadata=(("authorization", f"Bearer {token}"),))

    async def cut_off() -> None:
        # At the phase's end the stream is cancelled: the records it has sent and not yet had
        # answered (buffered in flow control) are not waited for.
        await stop.wait()
        call.cancel()

    cutting = asyncio.create_task(cut_off())
    try:
        async for _ in call:
            counts[0] += 1
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        pass
    finally:
        cutting.cancel()


async def _phase(
    target: str,
    tokens: dict[str, str],
    child: str,
    records: list[pb.SourceRecord],
    others: list[pb.SourceRecord],
    *,
    flooders: list[str],
    streams: int,
    seconds: float,
    pause: float,
    senders: int,
    same_children: bool,
    phase: str,
) -> dict[str, object]:
    stop = asyncio.Event()
    counts = [0]
    async with (
        grpc.aio.insecure_channel(target) as callers,
        grpc.aio.insecure_channel(target) as flood,
    ):
        calls = pb_grpc.RecordsServiceStub(callers)
        floods = pb_grpc.RecordsServiceStub(flood)
        # Each council its own share of the children (a child's records from two systems may fall
        # to two councils, as a child who moved), or with --same-children every council all of
        # them at once (each batch then races the other councils' for the same children).
        shares = (
            [records] * len(flooders)
            if same_children
            else [records[i :: len(flooders) or 1] for i in range(len(flooders))]
        )
        tasks = [
            asyncio.create_task(
                _flood_stream(floods, tokens[org], share[k::streams], stop, f"{phase}-{org}-{k}", counts)
            )
            for org, share in zip(flooders, shares, strict=True)
            for k in range(streams)
        ]
        await asyncio.sleep(2 if tasks else 0)  # the flood under way first
        started = time.perf_counter()
        before = counts[0]
        measured = [
            asyncio.create_task(_data_manager(calls, tokens["manager"], child, stop, pause)),
            *(
                asyncio.create_task(
                    _other_council(calls, tokens[OTHER], others[k::senders], stop, pause, f"{phase}-other{k}")
                )
                for k in range(senders)
            ),
        ]
        await asyncio.sleep(seconds)
        stop.set()
        manager, *others = await asyncio.gather(*measured)
        elapsed = time.perf_counter() - started
        flood_rate = (counts[0] - before) / elapsed
        await asyncio.gather(*tasks)
    other = Latencies()
    for one in others:
        other.seconds += one.seconds
        for code, n in one.failed.items():
            other.failed[code] = other.failed.get(code, 0) + n
    return {
        "phase": phase,
        "flood_records_per_s": round(flood_rate, 1),
        "other_council_records_per_s": round(len(other.seconds) / elapsed, 1),
        "other_council_submit": other.summary(),
        "data_manager_set_shielded": manager.summary(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--councils", type=int, default=3, help="flooding councils")
    parser.add_argument("--streams", type=int, default=10, help="streams each flooding council keeps open")
    parser.add_argument("--seconds", type=float, default=30, help="each phase's measured seconds")
    parser.add_argument("--pause", type=float, default=0.25, help="between one caller's calls")
    parser.add_argument(
        "--senders", type=int, default=1, help="the other council's callers sending single records at once"
    )
    parser.add_argument("--postgres", action="store_true", help="the services' databases on PostgreSQL")
    parser.add_argument(
        "--same-children", action="store_true", help="every flooding council sends the same children at once"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    flooders = [f"E0800001{k}" for k in range(args.councils)]
    # New children, enough that no stream sends one twice in a phase (a record sent again under
    # another id is a second record of one system: a review, every time, and no flood's pattern).
    records = _records(20000, seed=7)
    others = _records(4000, seed=8)
    env: dict[str, str] = {}
    dropped: list[str] = []
    if args.postgres:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for service in ("identity", "records", "audit"):
                name = f"cp_flood_{service}_{int(time.time())}"
                conn.execute(f'CREATE DATABASE "{name}"')
                dropped.append(name)
                env[f"CONTACTPOINT_{service.upper()}_DATABASE_URL"] = (
                    f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
                )
    results = []
    with tempfile.TemporaryDirectory(prefix="cp-flood-") as tmp:
        suite = Suite(Path(tmp) / "data", env).start(timeout=120)
        try:
            tokens = {}
            for org in [*flooders, OTHER]:
                client_id, secret = suite.create_service_account(f"flood-{org.lower()}", org=org)
                tokens[org] = _service_token(suite.target(1), client_id, secret)
            manager = suite.create_user("bench-manager", "data-manager", org=OTHER)
            tokens["manager"] = suite.login(manager)
            with grpc.insecure_channel(suite.target(2)) as channel:
                first = pb_grpc.RecordsServiceStub(channel).SubmitSourceRecord(
                    pb.SubmitSourceRecordRequest(record=others[0], request_id="bench-child"),
                    metadata=(("authorization", f"Bearer {tokens[OTHER]}"),),
                    timeout=30,
                )
            for n, (phase, flooding) in enumerate((("quiet", []), ("flood", flooders))):
                results.append(
                    asyncio.run(
                        _phase(
                            suite.target(2),
                            tokens,
                            first.contactpoint_id,
                            records,
                            others[1:][n::2],
                            flooders=flooding,
                            streams=args.streams,
                            seconds=args.seconds,
                            pause=args.pause,
                            senders=args.senders,
                            same_children=args.same_children,
                            phase=phase,
                        )
                    )
                )
        finally:
            suite.stop()
    if dropped:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for name in dropped:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _print(results, args)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}))
    return 0


def _service_token(target: str, client_id: str, secret: str) -> str:
    from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
    from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc

    with grpc.insecure_channel(target) as channel:
        reply = identity_grpc.IdentityServiceStub(channel).IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret), timeout=10
        )
        return str(reply.access_token)


def _print(results: list[dict[str, object]], args: argparse.Namespace) -> None:
    engine = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{engine}; {args.councils} councils x {args.streams} streams"
        f"{' (the same children)' if args.same_children else ''}; {args.senders} single-record "
        f"senders; {args.seconds:g} s a phase\n"
    )
    print(
        "| phase | flood records/s | single records/s | caller | calls "
        "| median ms | p90 ms | worst ms | failed |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        for caller in ("other_council_submit", "data_manager_set_shielded"):
            s = r[caller]
            assert isinstance(s, dict)
            print(
                f"| {r['phase']} | {r['flood_records_per_s']} | {r['other_council_records_per_s']} | "
                f"{caller} | {s['calls']} | "
                f"{s.get('median_ms', '')} | {s.get('p90_ms', '')} | {s.get('worst_ms', '')} | "
                f"{s['failed'] or ''} |"
            )


if __name__ == "__main__":
    sys.exit(main())
