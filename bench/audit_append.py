"""Audit appends a second with group commit, against one transaction per append, in one run.

    .venv/bin/python bench/audit_append.py [--concurrency 32] [--duration 8] [--warmup 1]
        [--repeat 3] [--sqlite] [--json]

In-process and without gRPC: this measures the log's storage side, which every audited request
waits for. C appenders on one event loop call `Sequencer.append` back to back for D seconds
against a fresh audit database (PostgreSQL on 127.0.0.1:5432, created and dropped here, or SQLite
with `--sqlite`):

- **batched**: `Sequencer(max_batch=256)`, the audit service's default
  (`CONTACTPOINT_AUDIT_APPEND_BATCH_MAX`);
- **one by one** (the reference): `Sequencer(max_batch=1)`, which is exactly the path every
  AppendEvent took before group commit: lock the tree state, insert one leaf, sign one head,
  commit.

The two alternate `--repeat` times on the same log. Each run reports appends/s, the p50 and p99
of one append's wait, and the events per signed head. At the end `audit verify` checks the whole
log (it must be intact). Events are realistic gateway events (an actor, a child's id, a purpose).

With `--grpc` it measures the whole path instead: `contactpoint up` (its audit service with its
default batch), and C clients in this process appending back to back for D seconds with the
gateway's machine token, `--repeat` times, in one of two ways (`--client`):

- **unary** (the default): C grpc.aio clients, each on its own channel, each calling
  `AppendEvent` for one event at a time;
- **writer**: C concurrent appenders sharing the platform's `AuditWriter` on one channel, exactly
  as a service's concurrent requests append (appends made while a call is in flight are gathered
  into one `AppendEvents` call; each appender is answered once its own event is stored).

Both alternate when `--client both`. The clients share the 2 cores with the suite, as every
benchmark here does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from gateway_getchild import DEFAULT_POSTGRES_URL, Postgres, sqlalchemy_url
from gateway_limits import uptime

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform import migrate
from contactpoint.platform.audit_writer import APPENDS_IN_FLIGHT, AuditWriter
from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unavailable
from services.audit import domain
from services.audit.main import MIGRATIONS
from services.audit.sequencer import Sequencer
from services.audit.verify import verify_log

BATCHED, ONE_BY_ONE = "batched", "one_by_one"
MAX_BATCH = {BATCHED: 256, ONE_BY_ONE: 1}


@dataclass
class Run:
    mode: str
    appends_per_s: float
    p50_ms: float
    p99_ms: float
    events_per_head: float


def gateway_event(i: int) -> pb.AuditEvent:
    return pb.AuditEvent(
        actor=f"practitioner{i % 50}",
        actor_organisation="E08000003",
        actor_roles=["practitioner"],
        action="GetChild",
        contactpoint_id="123456789018",
        purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING,
        outcome="ALLOWED",
        severity="INFO",
        status_code=0,
        request_id=f"bench-{i}",
    )


async def measure(db: Database, signer: domain.Signer, mode: str, args: argparse.Namespace) -> Run:
    sequencer = Sequencer(db, signer, max_batch=MAX_BATCH[mode])
    waits: list[float] = []
    measuring = False
    stop = False

    async def appender(n: int) -> None:
        i = 0
        while not stop:
            started = time.perf_counter()
            await sequencer.append(gateway_event(n * 1_000_000 + i), "gateway")
            if measuring:
                waits.append(time.perf_counter() - started)
            i += 1

    tasks = [asyncio.ensure_future(appender(n)) for n in range(args.concurrency)]
    await asyncio.sleep(args.warmup)
    measuring, batches0, events0 = True, sequencer.batches, sequencer.events
    began = time.perf_counter()
    await asyncio.sleep(args.duration)
    measuring, elapsed = False, time.perf_counter() - began
    batches, events = sequencer.batches - batches0, sequencer.events - events0
    stop = True
    await asyncio.gather(*tasks)
    await sequencer.close()
    waits.sort()
    return Run(
        mode,
        len(waits) / elapsed,
        1000 * statistics.median(waits),
        1000 * waits[min(len(waits) - 1, int(0.99 * len(waits)))],
        events / batches if batches else 0.0,
    )


def through_grpc(args: argparse.Namespace) -> dict[str, object]:
    """AppendEvent through `contactpoint up`'s audit service (see the module's doc)."""
    import grpc
    from gateway_getchild import drive
    from gateway_limits import LimitsSuite

    from contactpoint.audit.v1 import audit_service_pb2_grpc as audit_grpc
    from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
    from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc

    pg = None if args.sqlite else Postgres(args.postgres_url)
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="cp-bench-audit-grpc-") as tmp:
        suite = LimitsSuite(Path(tmp), pg)
        try:
            suite.start()
            with grpc.insecure_channel(suite.target("identity")) as channel:
                token = (
                    identity_grpc.IdentityServiceStub(channel)
                    .IssueServiceToken(
                        identity_pb.IssueServiceTokenRequest(
                            client_id=suite.env["CONTACTPOINT_GATEWAY_CLIENT_ID"],
                            client_secret=suite.env["CONTACTPOINT_GATEWAY_CLIENT_SECRET"],
                        ),
                        timeout=10,
                    )
                    .access_token
                )
            metadata = (("authorization", f"Bearer {token}"),)

            counter = iter(range(10**9))

            def unary(channel: grpc.aio.Channel):  # type: ignore[no-untyped-def]
                stub = audit_grpc.AuditServiceStub(channel)
                return lambda _rng: stub.AppendEvent(
                    pb.AppendEventRequest(event=gateway_event(next(counter))), metadata=metadata, timeout=30
                )

            def through_writer(run: dict[str, object]):  # type: ignore[no-untyped-def]
                # One writer for the run, on a channel of its own (the clients' own channels close
                # as each client ends); failures are counted (a writer raises Unavailable).
                def make(_channel: grpc.aio.Channel):  # type: ignore[no-untyped-def]
                    if "writer" not in run:
                        shared = grpc.aio.insecure_channel(suite.target("audit"))
                        run["writer"] = AuditWriter(shared, FixedToken(metadata), in_flight=args.in_flight)
                    writer = run["writer"]

                    async def call(_rng: object) -> None:
                        try:
                            await writer.append(gateway_event(next(counter)))  # type: ignore[attr-defined]
                        except Unavailable:
                            run["failed"] = int(run.get("failed", 0)) + 1  # type: ignore[call-overload]

                    return call

                return make

            clients = ["unary", "writer"] if args.client == "both" else [args.client]
            for _ in range(args.repeat):
                for client in clients:
                    run: dict[str, object] = {}
                    make = unary if client == "unary" else through_writer(run)
                    result = asyncio.run(
                        drive(suite.target("audit"), make, args.concurrency, args.duration, args.warmup)
                    )
                    writer = run.get("writer")
                    per_call = writer.events / writer.calls if isinstance(writer, AuditWriter) else 1.0
                    runs.append({"client": client, **asdict(result), "events_per_call": per_call,
                                 "failed": run.get("failed", 0)})  # fmt: skip
        finally:
            suite.stop()
            if pg is not None:
                pg.drop_all()
    medians: dict[str, object] = {}
    for client in sorted({str(r["client"]) for r in runs}):
        mine = [r for r in runs if r["client"] == client]
        medians[client] = {
            key: statistics.median(float(r[key]) for r in mine)  # type: ignore[arg-type]
            for key in ("rps", "p50_ms", "p99_ms", "events_per_call")
        }
    return {"runs": runs, "medians": medians}


class FixedToken:
    """The gateway's machine token, fetched once for the benchmark (a `TokenSource`)."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def get(self) -> str:
        return self._metadata[0][1].removeprefix("Bearer ")

    def invalidate(self) -> None:
        pass

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--concurrency", "-c", type=int, default=32)
    p.add_argument("--duration", "-d", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sqlite", action="store_true")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    p.add_argument("--json", action="store_true")
    p.add_argument("--grpc", action="store_true", help="AppendEvent through `contactpoint up`")
    p.add_argument("--client", choices=("unary", "writer", "both"), default="unary", help="with --grpc")
    p.add_argument(
        "--in-flight",
        type=int,
        default=APPENDS_IN_FLIGHT,
        help="the writer's calls at once (with --client writer)",
    )
    args = p.parse_args(argv)
    report: dict[str, object] = {
        "command": " ".join([".venv/bin/python", "bench/audit_append.py", *argv]),
        "machine": {"python": platform.python_version(), "uptime_before": uptime()},
    }
    if args.grpc:
        report.update(database="sqlite" if args.sqlite else "postgresql", concurrency=args.concurrency)
        report.update(through_grpc(args))
        report["machine"]["uptime_after"] = uptime()  # type: ignore[index]
        print(json.dumps(report, indent=1))
        return
    pg = None if args.sqlite else Postgres(args.postgres_url)
    with tempfile.TemporaryDirectory(prefix="cp-bench-audit-") as tmp:
        url = f"sqlite:///{tmp}/audit.db" if pg is None else sqlalchemy_url(pg.new("audit"))
        try:
            migrate.upgrade("audit", MIGRATIONS, url)
            key = Ed25519PrivateKey.generate()
            signer = domain.Signer(key, "bench/audit")
            db = Database(url)
            runs: list[Run] = []
            for i in range(args.repeat):
                for mode in [BATCHED, ONE_BY_ONE] if i % 2 == 0 else [ONE_BY_ONE, BATCHED]:
                    runs.append(asyncio.run(measure(db, signer, mode, args)))
            db.dispose()
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            verified = verify_log(url, public, origin="bench/audit")
        finally:
            if pg is not None:
                pg.drop_all()
    medians = {
        mode: {
            field: statistics.median(getattr(r, field) for r in runs if r.mode == mode)
            for field in ("appends_per_s", "p50_ms", "p99_ms", "events_per_head")
        }
        for mode in (BATCHED, ONE_BY_ONE)
    }
    report.update(
        database="sqlite" if args.sqlite else "postgresql",
        concurrency=args.concurrency,
        runs=[asdict(r) for r in runs],
        median=medians,
        ratio_batched_to_one_by_one=medians[BATCHED]["appends_per_s"] / medians[ONE_BY_ONE]["appends_per_s"],
        verify={"ok": verified.ok, "entries": verified.tree_size, "heads": verified.heads_checked},
    )
    report["machine"]["uptime_after"] = uptime()  # type: ignore[index]
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for r in runs:
        print(
            f"{r.mode:11} {r.appends_per_s:9.1f}/s  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  "
            f"{r.events_per_head:6.1f} events/head"
        )
    print(json.dumps({k: report[k] for k in ("median", "ratio_batched_to_one_by_one", "verify")}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
