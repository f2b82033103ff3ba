"""Ingestion with matching through StreamSourceRecords, against a bare batched insert.

In one invocation, on PostgreSQL (the production engine), on this machine:

1. **Preload.** `--preload N` synthetic children (about two source records each, several councils
   and systems, realistic corruption; `contactpoint.cli.synthetic`) go into a fresh records
   database through records' own ingestion function (`services.records.admin.ingest`: the same
   prepare → match → store path the RPC uses, in-process, batches of 1,000). About 30% of the
   preloaded children hold back one of their records, so that the measured stream links to them.
   `ANALYZE` runs every 100,000 records and at the end (the local server has autovacuum off; in
   production autovacuum keeps the statistics, and without them PostgreSQL plans the by-key
   lookups as scans that grow with the registry).
   With `--keep-database` the preloaded database is kept and printed, and `--reuse-database URL`
   measures on it again without loading (how the 1,000,000-children run was done).
2. **The suite's records service.** `contactpoint serve identity` and `contactpoint serve records`
   as two processes on free ports; one council machine account per organisation; then one
   `StreamSourceRecords` per organisation (`--streams` of them at a time), each sending its
   organisation's records as fast as the service takes them. Measured: records/s from the first
   request to the last answer, outcomes, and the records process's peak RSS (VmHWM) before and
   after the stream. With `--warmup N` the stream's first N records are sent the same way first,
   unmeasured (a service that has been taking records for a while: its caches filled, the pages
   it writes already logged once since the last checkpoint), and the rest are measured. With
   `--prewarm` the records database's indexes and its `source_records` and `children` tables are
   read into PostgreSQL's shared buffers first (`pg_prewarm`), as on a server that has been
   running: a copy of a template starts with none of its pages there.
3. **The reference.** The least a streamed, batched, durable insert costs here: a grpc.aio server
   (its own process) taking the same `StreamSourceRecords` messages, storing each batch of
   `--batch` serialised records in one transaction (`INSERT … SELECT unnest`), and answering each
   with an id. No validation, no matching.

Prints a markdown table and, with `--json`, one JSON object. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import psycopg

from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from contactpoint.platform.db import Database

sys.path.insert(0, str(Path(__file__).parent))
import cpu_share  # bench/cpu_share.py, beside this file
from gateway_getchild import Postgres, free_port, serving, sqlalchemy_url, stop_process

TODAY = date(2026, 11, 25)
HOLD_BACK = 0.3


@dataclass(frozen=True)
class Item:
    """One source record and the organisation that sends it."""

    organisation: str
    record: pb.SourceRecord
    person: int = -1  # the true child (the generator's truth)


def split_feed(preload: int, stream: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Records for the preload (children 0..preload-1, some held back) and for the stream (the
    held-back records, then records of `stream` new children's worth), in feed order."""
    from contactpoint.cli.synthetic import synthetic_feed

    rng = random.Random(seed)
    seen: set[int] = set()
    first: list[Item] = []
    later: list[Item] = []
    held: list[Item] = []
    for s in synthetic_feed(preload + stream, seed, today=TODAY):
        item = Item(s.organisation, s.record, s.person)
        if s.person < preload:
            if s.person in seen and rng.random() < HOLD_BACK:
                held.append(item)
            else:
                first.append(item)
            seen.add(s.person)
        else:
            later.append(item)
    rng.shuffle(held)
    # The stream mixes links to preloaded children with new children, as a day's feed would.
    mixed = later[:]
    for i, item in enumerate(held[: len(later) // 3]):
        mixed.insert((i * 3) % (len(mixed) + 1), item)
    return first, mixed


def feed(
    preload: int, stream: int, seed: int, *, template: str, postgres_url: str
) -> tuple[list[Item], list[Item]]:
    """`split_feed`, except that with a template already loaded only the stream is needed: it is
    kept beside the template (a file in the temporary directory) so that a 1,000,000-children run
    does not generate 1.7 million records again just to find its stream."""
    cached = Path(tempfile.gettempdir()) / f"cp_bench_stream_{template}_{preload}_{stream}_{seed}.bin"
    if template and cached.exists():
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            loaded = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone()
        if loaded:
            items = []
            for line in cached.read_text().splitlines():
                organisation, person, data = line.split(" ")
                items.append(Item(organisation, pb.SourceRecord.FromString(bytes.fromhex(data)), int(person)))
            return [], items
    first, stream_items = split_feed(preload, stream, seed)
    if template:
        cached.write_text(
            "".join(
                f"{i.organisation} {i.person} {i.record.SerializeToString().hex()}\n" for i in stream_items
            )
        )
    return first, stream_items


def key_file_for(database: str) -> Path:
    """The data key file a preloaded records database is sealed with (a copy of a template uses
    its template's): kept beside the cached feeds, for as long as the database is."""
    return Path(tempfile.gettempdir()) / f"cp_bench_keys_{database}.keys"


@contextmanager
def template_copy(template: str, prefix: str, admin_url: str) -> Iterator[Database]:
    """A records database on a fresh file copy of `template`, its data keys open; dropped after."""
    from contactpoint.platform.db import Database
    from services.records.data_keys import open_file_vault

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY = FILE_COPY')
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        open_file_vault(db, key_file_for(template))
        yield db
    finally:
        db.dispose()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def preload_records(url: str, items: Sequence[Item], batch: int = 1000) -> float:
    """Load `items` through records' ingestion function; records/s."""
    from contactpoint.platform import migrate
    from contactpoint.platform.db import Database
    from contactpoint.platform.logging import configure_logging
    from services.records import admin
    from services.records.data_keys import open_file_vault
    from services.records.main import MIGRATIONS
    from services.records.matching import Matcher
    from services.records.preparing import Submission

    configure_logging(level="warning", fmt="console")
    migrate.upgrade("records", MIGRATIONS, url)
    db = Database(url)
    open_file_vault(db, key_file_for(_database_name(url)))
    matcher = Matcher()
    pending: dict[str, list[Submission]] = defaultdict(list)
    started = time.perf_counter()
    done = 0
    try:
        for n, item in enumerate(items):
            pending[item.organisation].append(Submission(f"preload-{n}", item.record))
            if len(pending[item.organisation]) >= batch:
                admin.ingest(
                    db,
                    organisation=item.organisation,
                    submissions=pending.pop(item.organisation),
                    matcher=matcher,
                )
            done = n + 1
            if done % 100_000 == 0:
                # This server runs without autovacuum: keep the planner's statistics as it would.
                with db.writer.connect() as conn:
                    conn.exec_driver_sql("ANALYZE")
                    conn.commit()
            if done % 50_000 == 0:
                rate = done / (time.perf_counter() - started)
                print(
                    f"  preloaded {done:,}/{len(items):,} records, {rate:,.0f}/s", file=sys.stderr, flush=True
                )
        for organisation, submissions in pending.items():
            admin.ingest(db, organisation=organisation, submissions=submissions, matcher=matcher)
        with db.writer.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    finally:
        db.dispose()
    return len(items) / (time.perf_counter() - started)


def preload_by_truth(url: str, items: Sequence[Item], batch: int = 5000) -> float:
    """The fast path to a large registry: each record is checked, normalised and keyed by records'
    own functions (`ingestion.prepare_batch`, `placement.new_source`) and stored by its repository
    (`insert_children`, `insert_sources`, `insert_submissions`) exactly as ingestion stores it, but
    placed by the generator's truth instead of by matching (the first record of a child CREATED, the
    others LINKED; a child's records of one system, which ingestion would leave to a data manager,
    are joined too). Records/s."""
    import datetime as dt

    from contactpoint.platform import migrate
    from contactpoint.platform.db import Database
    from contactpoint.platform.ids import new_contactpoint_id
    from contactpoint.platform.logging import configure_logging
    from services.records import placement
    from services.records.children import archive_date
    from services.records.data_keys import open_file_vault
    from services.records.main import MIGRATIONS
    from services.records.model import DEFAULT_LIMITS, ConcurrentChange, Outcome
    from services.records.preparing import Submission, prepare_batch
    from services.records.repository import children as child_repo
    from services.records.repository import sources as source_repo
    from services.records.repository import submissions as submission_repo

    configure_logging(level="warning", fmt="console")
    migrate.upgrade("records", MIGRATIONS, url)
    db = Database(url)
    index_key = open_file_vault(db, key_file_for(_database_name(url))).ring.index
    child_of: dict[int, str] = {}
    started = time.perf_counter()
    by_org: dict[str, list[tuple[int, Item]]] = defaultdict(list)
    done = 0
    refused = [0]

    def store(organisation: str, chunk: list[tuple[int, Item]]) -> None:
        prepared = prepare_batch(
            organisation=organisation,
            submissions=[Submission(f"preload-{n}", item.record) for n, item in chunk],
            index_key=index_key,
        )
        for _ in range(5):  # a new ContactPoint ID may collide with one already issued: new ones
            now = dt.datetime.now(dt.UTC)
            fresh: dict[int, str] = {}
            new_children, sources, answers = [], [], []
            for (n, item), p, digest in zip(chunk, prepared.prepared, prepared.hashes, strict=True):
                if p is None:
                    # Refused as of the real date: the generator's fixed TODAY makes a child who has
                    # turned 18 since then, as ingestion would refuse it too.
                    refused[0] += 1
                    continue
                cid = child_of.get(item.person) or fresh.get(item.person)
                outcome = Outcome.LINKED
                if cid is None:
                    cid = fresh[item.person] = new_contactpoint_id()
                    outcome = Outcome.CREATED
                    new_children.append((cid, False, archive_date([p.record], DEFAULT_LIMITS)))
                sources.append(
                    placement.new_source(
                        p, cid, source_id=os.urandom(16).hex(), outcome=outcome, score=None, reasons=()
                    )
                )
                answers.append(
                    submission_repo.NewSubmission(
                        organisation, p.record.source_system, f"preload-{n}", digest, cid, outcome.value
                    )
                )
            try:
                with db.writer.begin() as conn:
                    child_repo.insert_children(conn, new_children, now=now)
                    source_repo.insert_sources(conn, sources, now=now)
                    submission_repo.insert_submissions(conn, answers, now=now)
            except ConcurrentChange:
                continue
            child_of.update(fresh)
            return
        raise RuntimeError("ContactPoint IDs kept colliding")

    # The blocking keys' index is built once at the end, as a bulk load would (fifteen random
    # index insertions a record is most of the cost of a load this size).
    with db.writer.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE blocking_keys DROP CONSTRAINT blocking_keys_pkey")
    try:
        for n, item in enumerate(items):
            by_org[item.organisation].append((n, item))
            if len(by_org[item.organisation]) >= batch:
                store(item.organisation, by_org.pop(item.organisation))
            done = n + 1
            if done % 100_000 == 0:
                rate = done / (time.perf_counter() - started)
                print(
                    f"  preloaded {done:,}/{len(items):,} records, {rate:,.0f}/s", file=sys.stderr, flush=True
                )
        for organisation, chunk in by_org.items():
            store(organisation, chunk)
        with db.writer.begin() as conn:
            conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
            conn.exec_driver_sql("ALTER TABLE blocking_keys ADD PRIMARY KEY (key, source_id)")
        # What autovacuum would have done by now (this server runs without it): statistics, and the
        # visibility map that lets the blocking-key lookups stay index-only.
        with db.writer.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        if refused[0]:
            print(f"  {refused[0]:,} records refused as of today (not loaded)", file=sys.stderr, flush=True)
    finally:
        db.dispose()
    return len(items) / (time.perf_counter() - started)


def prewarm(dsn: str) -> int:
    """Read a records database's indexes, `source_records` and `children` into shared buffers
    (`pg_prewarm`, from PostgreSQL's contrib); the pages read. The blocking and name keys' tables
    are left out: their lookups are index-only."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        row = conn.execute(
            "SELECT coalesce(sum(pg_prewarm(c.oid)), 0) FROM pg_class c"
            " WHERE c.relnamespace = 'public'::regnamespace"
            " AND (c.relkind = 'i' OR c.relname IN ('source_records', 'children'))"
        ).fetchone()
    return int(row[0]) if row else 0


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of a process (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def vm_rss_kib(pid: int) -> int:
    """Resident memory of a process (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class StreamResult:
    """One measured stream run."""

    records: int
    seconds: float
    rate: float
    outcomes: dict[str, int]
    rss_before_mib: float
    rss_after_mib: float
    peak_mib: float
    # Milliseconds of CPU a streamed record, by process group (`cpu_share`): where the time went.
    cpu_ms_per_record: dict[str, float] = field(default_factory=dict)
    # PostgreSQL's write-ahead log a streamed record (`pg_stat_wal`, the whole server): full page
    # images (a page's first change since the last checkpoint logs it whole) and bytes.
    wal_per_record: dict[str, float] = field(default_factory=dict)


def measured(
    records: int,
    seconds: float,
    outcomes: Counter[str],
    rss_before: int,
    pid: int,
    cpu: dict[str, float] | None = None,
    wal: dict[str, int] | None = None,
) -> StreamResult:
    """One run's figures, with the server process's memory now and at its peak, the CPU
    seconds each process group spent (`cpu`) as milliseconds a record, and the write-ahead log
    written meanwhile (`wal`) a record."""
    return StreamResult(
        records=records,
        seconds=round(seconds, 2),
        rate=round(records / seconds, 1),
        outcomes=dict(outcomes),
        rss_before_mib=round(rss_before / 1024, 1),
        rss_after_mib=round(vm_rss_kib(pid) / 1024, 1),
        peak_mib=round(vm_hwm_kib(pid) / 1024, 1),
        cpu_ms_per_record={name: round(1000 * t / records, 3) for name, t in (cpu or {}).items()},
        wal_per_record={name: round(n / records, 2) for name, n in (wal or {}).items()},
    )


def wal_counts(dsn: str) -> dict[str, int]:
    """PostgreSQL's write-ahead log so far, server-wide: records, full page images, bytes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    assert row is not None
    return {"records": int(row[0]), "full_page_images": int(row[1]), "bytes": int(row[2])}


async def drive(
    target: str | Sequence[str],
    tokens: dict[str, str],
    items: Sequence[Item],
    streams: int,
    *,
    first: int = 0,
) -> tuple[float, Counter[str]]:
    """One StreamSourceRecords per organisation, `streams` at a time; (seconds, outcomes). The
    request ids number the items from `first` (the stream's position of `items[0]`). With several
    targets (replicas of records), each organisation streams to one of them in turn, on a
    connection of its own, as separate council systems would."""
    targets = [target] if isinstance(target, str) else list(target)
    by_org: dict[str, list[pb.SubmitSourceRecordRequest]] = defaultdict(list)
    for n, item in enumerate(items, start=first):
        by_org[item.organisation].append(
            pb.SubmitSourceRecordRequest(record=item.record, request_id=f"stream-{n}")
        )
    outcomes: Counter[str] = Counter()
    # `streams` places; a stream takes a free one, and place k streams to targets[k % len].
    places: asyncio.Queue[int] = asyncio.Queue()
    for k in range(streams):
        places.put_nowait(k)
    channels = [grpc.aio.insecure_channel(t) for t in targets]

    async def one(organisation: str, requests: list[pb.SubmitSourceRecordRequest]) -> None:
        place = await places.get()
        try:
            stub = pb_grpc.RecordsServiceStub(channels[place % len(channels)])

            async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
                for r in requests:
                    yield r

            call = stub.StreamSourceRecords(
                feed(), metadata=(("authorization", f"Bearer {tokens[organisation]}"),)
            )
            async for answer in call:
                if answer.HasField("error"):
                    outcomes[f"error {answer.error.code}"] += 1
                else:
                    outcomes[pb.MatchOutcome.Name(answer.outcome)] += 1
        finally:
            places.put_nowait(place)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(org, reqs) for org, reqs in by_org.items()))
        return time.perf_counter() - started, outcomes
    finally:
        for channel in channels:
            await channel.close(None)


def run_suite(
    records_url: str,
    identity_url: str,
    items: Sequence[Item],
    streams: int,
    batch: int,
    workdir: Path,
    key_file: Path,
    warmup: int = 0,
    wal_dsn: str = "",
    replicas: int = 1,
) -> StreamResult:
    """The records service (and identity) as processes; the stream measured, after its first
    `warmup` records (sent the same way, unmeasured). With `replicas`, that many records
    processes on one database, as an operator may run them (figures for "records" sum them)."""
    identity_port, records_port = free_port(), free_port()
    replica_ports = [records_port, *(free_port() for _ in range(replicas - 1))]
    env = {
        **os.environ,
        "CONTACTPOINT_IDENTITY_DATABASE_URL": identity_url,
        "CONTACTPOINT_IDENTITY_LISTEN": f"127.0.0.1:{identity_port}",
        "CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE": str(workdir / "identity.pem"),
        "CONTACTPOINT_RECORDS_DATABASE_URL": records_url,
        "CONTACTPOINT_RECORDS_DATA_KEY_FILE": str(key_file),
        "CONTACTPOINT_RECORDS_LISTEN": f"127.0.0.1:{records_port}",
        "CONTACTPOINT_RECORDS_IDENTITY_TARGET": f"127.0.0.1:{identity_port}",
        "CONTACTPOINT_RECORDS_STREAM_BATCH_SIZE": str(batch),
        "CONTACTPOINT_RECORDS_LOG_LEVEL": "warning",
        "CONTACTPOINT_IDENTITY_LOG_LEVEL": "warning",
    }
    cli = str(Path(sys.executable).parent / "contactpoint")
    procs = []
    try:
        for service, port in (("identity", identity_port), ("records", records_port)):
            if service == "records":
                # Records' own machine account (role records-service): identity answers the
                # revocations only to the platform's accounts.
                own = subprocess.run(
                    [
                        *(cli, "admin", "create-service-account", "--name", "records"),
                        *("--org", "contactpoint", "--role", "records-service", "--json"),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                account = json.loads(own.stdout)
                env["CONTACTPOINT_RECORDS_CLIENT_ID"] = account["client_id"]
                env["CONTACTPOINT_RECORDS_CLIENT_SECRET"] = account["client_secret"]
            command = [cli, "serve", service]
            for p in replica_ports if service == "records" else [port]:
                own_env = {**env, "CONTACTPOINT_RECORDS_LISTEN": f"127.0.0.1:{p}"}
                proc = subprocess.Popen(
                    command, env=own_env, start_new_session=True, stdout=subprocess.DEVNULL
                )
                procs.append(proc)
                deadline = time.monotonic() + 60
                while not serving(f"127.0.0.1:{p}"):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"{service} did not start")
                    time.sleep(0.2)
        tokens = {}
        for organisation in sorted({i.organisation for i in items}):
            out = subprocess.run(
                [
                    cli,
                    "admin",
                    "create-service-account",
                    "--name",
                    f"bench-{organisation.lower()}",
                    "--org",
                    organisation,
                    "--role",
                    "council-system",
                    "--json",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            account = json.loads(out.stdout)
            tokens[organisation] = _token(
                f"127.0.0.1:{identity_port}", account["client_id"], account["client_secret"]
            )
        time.sleep(1.0)  # records has fetched identity's keys
        rss_before, pid = vm_rss_kib(procs[1].pid), procs[1].pid
        spy = None
        if os.environ.get("BENCH_PROFILE"):
            # py-spy (the bench extra) samples the records service during the stream only: raw
            # folded stacks, idle threads included (waiting on PostgreSQL or a lock shows), or
            # as BENCH_PROFILE_FLAGS says ("--gil": only the thread holding the GIL;
            # "--idle --subprocesses": the prepare workers too).
            flags = os.environ.get("BENCH_PROFILE_FLAGS", "--idle").split()
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    *("record", "--pid", str(pid), *flags, "-r", "100", "-f", "raw"),
                    *("-o", os.environ["BENCH_PROFILE"]),
                ]
            )
        # The records service and its prepare workers apart, identity, PostgreSQL (every server process:
        # backends, WAL writer, checkpointer) and this client.
        replica_pids = [proc.pid for proc in procs[1:]]
        groups = {
            "records": lambda: replica_pids,
            "records_workers": lambda: [w for r in replica_pids for w in cpu_share.children_of(r)],
            "identity": lambda: [procs[0].pid],
            "postgres": cpu_share.postgres_processes,
            "client": lambda: [os.getpid()],
        }
        target = [f"127.0.0.1:{p}" for p in replica_ports]
        if warmup:
            asyncio.run(drive(target, tokens, items[:warmup], streams))
        wal_before = wal_counts(wal_dsn) if wal_dsn else {}
        before = cpu_share.snapshot(groups)
        seconds, outcomes = asyncio.run(drive(target, tokens, items[warmup:], streams, first=warmup))
        cpu = cpu_share.spent(before, cpu_share.snapshot(groups))
        wal = {k: n - wal_before[k] for k, n in wal_counts(wal_dsn).items()} if wal_dsn else {}
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile and detaches
            spy.wait(60)
        return measured(len(items) - warmup, seconds, outcomes, rss_before, pid, cpu, wal)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def _token(target: str, client_id: str, secret: str) -> str:
    from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
    from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc

    with grpc.insecure_channel(target) as channel:
        reply = identity_grpc.IdentityServiceStub(channel).IssueServiceToken(
            identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret), timeout=10
        )
        return str(reply.access_token)


# --- the reference: a bare streamed, batched insert -----------------------------------------------


async def reference_server(port: int, dsn: str, batch: int) -> None:
    """StreamSourceRecords that only stores each batch of serialised records in one transaction."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=False)
    await conn.execute("CREATE TABLE IF NOT EXISTS sink (id text PRIMARY KEY, payload bytea NOT NULL)")
    await conn.commit()
    lock = asyncio.Lock()

    async def stream(
        requests: AsyncIterator[pb.SubmitSourceRecordRequest], context: object
    ) -> AsyncIterator[pb.SubmitSourceRecordResponse]:
        pending: list[pb.SubmitSourceRecordRequest] = []

        async def flush() -> list[pb.SubmitSourceRecordResponse]:
            ids = [os.urandom(6).hex() for _ in pending]
            async with lock:
                await conn.execute(
                    "INSERT INTO sink SELECT * FROM unnest(%s::text[], %s::bytea[])",
                    (ids, [r.record.SerializeToString() for r in pending]),
                )
                await conn.commit()
            pending.clear()
            return [
                pb.SubmitSourceRecordResponse(contactpoint_id=i, outcome=pb.MATCH_OUTCOME_CREATED)
                for i in ids
            ]

        async for request in requests:
            pending.append(request)
            if len(pending) >= batch:
                for answer in await flush():
                    yield answer
        if pending:
            for answer in await flush():
                yield answer

    handler = grpc.stream_stream_rpc_method_handler(
        stream,
        request_deserializer=pb.SubmitSourceRecordRequest.FromString,
        response_serializer=pb.SubmitSourceRecordResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "contactpoint.records.v1.RecordsService", {"StreamSourceRecords": handler}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("READY", flush=True)
    await server.wait_for_termination()


def run_reference(dsn: str, items: Sequence[Item], streams: int, batch: int) -> StreamResult:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "_reference", "--port", str(port), "--dsn", dsn, "--batch", str(batch)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"READY":
            raise RuntimeError("the reference server did not start")
        tokens = {i.organisation: "none" for i in items}
        rss_before = vm_rss_kib(proc.pid)
        seconds, outcomes = asyncio.run(drive(f"127.0.0.1:{port}", tokens, items, streams))
        return measured(len(items), seconds, outcomes, rss_before, proc.pid)
    finally:
        stop_process(proc)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "_reference":
        p = argparse.ArgumentParser()
        p.add_argument("--port", type=int)
        p.add_argument("--dsn")
        p.add_argument("--batch", type=int)
        a = p.parse_args(args[1:])
        asyncio.run(reference_server(a.port, a.dsn, a.batch))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preload", type=int, default=10_000, help="children in the registry before the stream")
    p.add_argument("--stream", type=int, default=10_000, help="new children's worth of records to stream")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--streams", type=int, default=2, help="organisations streaming at once")
    p.add_argument("--batch", type=int, default=200, help="CONTACTPOINT_RECORDS_STREAM_BATCH_SIZE")
    p.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep-database", action="store_true", help="keep the preloaded records database")
    p.add_argument(
        "--preload-by-truth",
        action="store_true",
        help="preload by the generator's truth instead of matching (the fast path to 1,000,000)",
    )
    p.add_argument(
        "--template",
        default="",
        help="keep the preloaded registry as this database (loaded only if missing) and measure on a copy",
    )
    p.add_argument("--reuse-database", default="", help="a kept records database (libpq URL): no preload")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--warmup", type=int, default=0, help="stream this many records first, unmeasured")
    p.add_argument(
        "--measure", type=int, default=0, help="measure this many records after the warm-up (0: the rest)"
    )
    p.add_argument(
        "--prewarm", action="store_true", help="read the records database into shared buffers first"
    )
    p.add_argument(
        "--records-replicas",
        type=int,
        default=1,
        help="records processes on the one database, the streams spread over them (one connection each)",
    )
    a = p.parse_args(args)
    pg = Postgres(a.postgres_url)
    result: dict[str, object] = {
        "argv": sys.argv,
        "started": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
    }
    try:
        first, stream_items = feed(
            a.preload, a.stream, a.seed, template=a.template, postgres_url=a.postgres_url
        )
        if a.measure:
            stream_items = stream_items[: a.warmup + a.measure]
        result["preload_records"], result["stream_records"] = len(first), len(stream_items)
        if a.reuse_database:
            records_dsn = a.reuse_database
            key_file = key_file_for(_database_name(records_dsn))
        elif a.template:
            with psycopg.connect(a.postgres_url, autocommit=True) as conn:
                held = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (a.template,)).fetchone()
                if held is None:
                    conn.execute(f'CREATE DATABASE "{a.template}"')
            if held is None:
                load = preload_by_truth if a.preload_by_truth else preload_records
                template_url = f"{a.postgres_url.rsplit('/', 1)[0]}/{a.template}"
                result["preload_rate"] = round(load(sqlalchemy_url(template_url), first), 1)
                result["preload_by_truth"] = a.preload_by_truth
            records_dsn = pg.new("records", template=a.template)
            key_file = key_file_for(a.template)
        else:
            records_dsn = pg.new("records")
            key_file = key_file_for(_database_name(records_dsn))
            if a.keep_database:
                pg.created.remove(records_dsn.rsplit("/", 1)[1])
            load = preload_by_truth if a.preload_by_truth else preload_records
            result["preload_rate"] = round(load(sqlalchemy_url(records_dsn), first), 1)
            result["preload_by_truth"] = a.preload_by_truth
        if a.prewarm:
            result["prewarmed_pages"] = prewarm(records_dsn)
        with psycopg.connect(records_dsn) as conn:
            result["children_before"] = conn.execute("SELECT count(*) FROM children").fetchone()[0]  # type: ignore[index]
        with tempfile.TemporaryDirectory() as work:
            suite = run_suite(
                sqlalchemy_url(records_dsn),
                sqlalchemy_url(pg.new("identity")),
                stream_items,
                a.streams,
                a.batch,
                Path(work),
                key_file,
                warmup=min(a.warmup, len(stream_items)),
                wal_dsn=records_dsn,
                replicas=a.records_replicas,
            )
        result["suite"] = asdict(suite)
        with psycopg.connect(records_dsn) as conn:
            # Why the stream's possible matches were raised: the rule, or the band of the weight.
            rows = conn.execute(
                "SELECT coalesce((SELECT r FROM json_array_elements_text(reasons) r WHERE r LIKE 'review:%'"
                " OR r LIKE 'rule:%' LIMIT 1), 'weight ' || (floor(score / 2) * 2)::text) AS why, count(*)"
                " FROM review_tasks GROUP BY 1 ORDER BY 2 DESC LIMIT 12"
            ).fetchall()
            result["review_reasons"] = {str(why): int(n) for why, n in rows}
        if not a.skip_reference:
            result["reference"] = asdict(run_reference(pg.new("reference"), stream_items, a.streams, a.batch))
        result["load_average"] = os.getloadavg()
        result["client_max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if a.keep_database and not a.reuse_database:
            result["kept_database"] = records_dsn
    finally:
        pg.drop_all()
    print(json.dumps(result, indent=2))
    suite_rate = result["suite"]["rate"]  # type: ignore[index]
    line = f"| {result['children_before']:,} children | {suite_rate} records/s |"
    if "reference" in result:
        ref = result["reference"]["rate"]  # type: ignore[index]
        line += f" reference {ref} records/s | ratio {ref / suite_rate:.2f} |"
    print(line)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
