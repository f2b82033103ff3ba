"""GetChild through the real gateway, against a bare two-hop grpc.aio relay, in one run.

    .venv/bin/python bench/gateway_getchild.py [--children 200] [--concurrency 8] [--duration 10]
        [--warmup 2] [--repeat 3] [--sqlite] [--only gateway|reference] [--json]

The gateway half starts `contactpoint up` as a subprocess on free ports in a temporary folder
(PostgreSQL databases on 127.0.0.1:5432, created and dropped here, or SQLite with `--sqlite`),
creates a council machine account and a practitioner with the CLI, submits N children through
the records service, logs in through the gateway with a TOTP code, and then drives GetChild from
C concurrent grpc.aio clients (one channel each) for D seconds. Every such request makes the
gateway verify the token, read the child from records and write one audit event (a Merkle append
and a signature) before it answers: that is the cost being measured.

The reference half is the least a two-hop gRPC read can cost on the same machine: a client →
a relay server (its own process) → a backend server (its own process) that does one SELECT by
primary key on the same database engine and returns a GetChildResponse of the same shape and
size. It is driven the same way, and the two alternate `--repeat` times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cpu_share  # bench/cpu_share.py, beside this file
import grpc
import psycopg
import pyotp
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as gateway_pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as records_pb
from contactpoint.records.v1 import records_service_pb2_grpc as records_grpc

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench horse battery staple 9"
PRACTITIONER = "bench.practitioner"
ORG = "E08000003"
CALL_TIMEOUT_SECONDS = 30.0
# Tunables that would throttle one practitioner's reads, raised for the run where the gateway has them.
LIMIT_OVERRIDES = {
    "CONTACTPOINT_GATEWAY_RATE_PER_MINUTE": "100000",  # the highest the settings accept
    "CONTACTPOINT_GATEWAY_DAILY_RECORD_LIMIT": "1000000",
}
RELAY_METHOD = "/bench.v1.Relay/GetChild"
BACKEND_METHOD = "/bench.v1.Backend/GetChild"
CONTACTPOINT = [sys.executable, "-m", "contactpoint"]

# ---------------------------------------------------------------------------------------------
# Synthetic children
# ---------------------------------------------------------------------------------------------

GIVEN = ["Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo", "Mia", "Arthur", "Freya", "Muhammad", "Lily"]
FAMILY = ["Okafor", "Smith", "Patel", "Jones", "Williams", "Khan", "Taylor", "Brown", "Evans", "Nowak", "Ali"]
TOWNS = [("Manchester", "M"), ("Leeds", "LS"), ("Bristol", "BS"), ("Norwich", "NR"), ("Leicester", "LE")]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True)
class Synthetic:
    """One synthetic child: what a council submits, and what a reader would be shown."""

    record: records_pb.SourceRecord
    child: child_pb2.Child


def _postcode(rng: random.Random, area: str) -> str:
    inward = f"{rng.randint(0, 9)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    return f"{area}{rng.randint(1, 20)} {inward}"


def _address(rng: random.Random) -> child_pb2.Address:
    town, area = rng.choice(TOWNS)
    return child_pb2.Address(
        lines=[f"{rng.randint(1, 200)} {rng.choice(['High', 'Church', 'Mill', 'Station'])} Street"],
        town=town,
        postcode=_postcode(rng, area),
    )


def synthetic_child(i: int, rng: random.Random) -> Synthetic:
    """Child `i`: unique by source id and by name + date of birth, with carers, school, GP and services."""
    today = dt.date.today()
    born = today - dt.timedelta(days=rng.randint(2 * 365, 15 * 365))
    dob = date_pb2.Date(year=born.year, month=born.month, day=born.day)
    # Double-barrelled names and a random date of birth keep the children apart (names take no digits).
    family = f"{FAMILY[i % len(FAMILY)]}-{FAMILY[(i // len(FAMILY)) % len(FAMILY)]}"
    name = child_pb2.PersonName(given_names=f"{rng.choice(GIVEN)} {rng.choice(GIVEN)}", family_name=family)
    address = _address(rng)
    carers = [
        child_pb2.Carer(
            name=child_pb2.PersonName(given_names=rng.choice(GIVEN), family_name=family),
            relationship=relationship,
            phone=f"0161 496 {rng.randint(0, 9999):04d}",
            email=f"carer{i}.{n}@example.org",
            address=address,
            parental_responsibility=True,
        )
        for n, relationship in enumerate(["mother", "father"])
    ]
    school = child_pb2.Setting(
        name=f"{rng.choice(['St Mary', 'Oakfield', 'Riverside'])} Primary School",
        urn=str(100000 + rng.randint(0, 899999)),
        phone=f"0113 496 {rng.randint(0, 9999):04d}",
        address=_address(rng),
    )
    gp = child_pb2.GpPractice(
        name="The Surgery",
        ods_code=f"Y{rng.randint(10000, 99999)}",
        phone=f"0117 496 {rng.randint(0, 9999):04d}",
        address=_address(rng),
    )
    start = date_pb2.Date(year=today.year - 1, month=rng.randint(1, 12), day=rng.randint(1, 28))
    services = [("School Nursing", "NHS Trust"), ("Early Help", "City Council")]
    record = records_pb.SourceRecord(
        source_system="bench-social-care",
        source_record_id=f"bench-{i:06d}",
        name=name,
        date_of_birth=dob,
        gender=rng.choice([child_pb2.GENDER_FEMALE, child_pb2.GENDER_MALE]),
        address=address,
        carers=carers,
        education_setting=school,
        gp_practice=gp,
        involvements=[
            records_pb.SourceInvolvement(
                service_name=svc,
                practitioner_name=f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                organisation=org,
                phone=f"0161 496 {rng.randint(0, 9999):04d}",
                email=f"team{n}@example.org",
                start_date=start,
                lead_professional=n == 0,
            )
            for n, (svc, org) in enumerate(services)
        ],
    )
    child = child_pb2.Child(
        contactpoint_id=f"{rng.randint(0, 10**12 - 1):012d}",
        name=name,
        date_of_birth=dob,
        gender=record.gender,
        address=address,
        carers=carers,
        education_setting=school,
        gp_practice=gp,
        involvements=[
            child_pb2.Involvement(
                service_name=inv.service_name,
                practitioner_name=inv.practitioner_name,
                organisation=inv.organisation,
                phone=inv.phone,
                email=inv.email,
                start_date=inv.start_date,
                lead_professional=inv.lead_professional,
            )
            for inv in record.involvements
        ],
        update_time=Timestamp(seconds=int(time.time())),
    )
    return Synthetic(record, child)


def synthetic_children(n: int, seed: int = 7) -> list[Synthetic]:
    """`n` synthetic children, the same for the same seed."""
    rng = random.Random(seed)
    return [synthetic_child(i, rng) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One timed run of one target."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    # Milliseconds of CPU a request, by process group, over the measured seconds (`cpu_share`).
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


Call = Callable[[random.Random], Awaitable[object]]


async def drive(
    target: str,
    make_call: Callable[[grpc.aio.Channel], Call],
    concurrency: int,
    duration: float,
    warmup: float,
) -> RunResult:
    """`concurrency` clients, each its own channel, call back to back for `warmup` + `duration`
    seconds; only calls that start after the warm-up and finish within the window count."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    begin = time.perf_counter() + warmup
    end = begin + duration

    async def client(n: int) -> None:
        rng = random.Random(n)
        async with grpc.aio.insecure_channel(target) as channel:
            call = make_call(channel)
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                try:
                    await call(rng)
                except grpc.aio.AioRpcError as exc:
                    if t0 >= begin:
                        errors[exc.code().name] += 1
                    continue
                t1 = time.perf_counter()
                if t0 >= begin and t1 <= end:
                    latencies.append(t1 - t0)

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    latencies.sort()
    return RunResult(
        requests=len(latencies),
        seconds=duration,
        rps=len(latencies) / duration,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        errors=dict(errors),
    )


def gateway_call(ids: Sequence[str], token: str) -> Callable[[grpc.aio.Channel], Call]:
    """GetChild of a random one of `ids` through the gateway, as the practitioner."""
    metadata = (("authorization", f"Bearer {token}"),)

    def make(channel: grpc.aio.Channel) -> Call:
        stub = gateway_grpc.GatewayServiceStub(channel)

        def call(rng: random.Random) -> Awaitable[object]:
            request = gateway_pb.GetChildRequest(
                contactpoint_id=rng.choice(ids),
                purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING,
                justification="benchmark",
            )
            return stub.GetChild(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)

        return call

    return make


def reference_call(ids: Sequence[str]) -> Callable[[grpc.aio.Channel], Call]:
    """GetChild of a random one of `ids` through the bare relay."""

    def make(channel: grpc.aio.Channel) -> Call:
        method = channel.unary_unary(
            RELAY_METHOD,
            request_serializer=gateway_pb.GetChildRequest.SerializeToString,
            response_deserializer=gateway_pb.GetChildResponse.FromString,
        )

        def call(rng: random.Random) -> Awaitable[object]:
            request = gateway_pb.GetChildRequest(
                contactpoint_id=rng.choice(ids),
                purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING,
                justification="benchmark",
            )
            return method(request, timeout=CALL_TIMEOUT_SECONDS)

        return call

    return make


# ---------------------------------------------------------------------------------------------
# The reference: relay and backend servers (each run as `_relay` / `_backend` in its own process)
# ---------------------------------------------------------------------------------------------


class Store:
    """Serialized Child messages by id, in PostgreSQL (async psycopg) or SQLite."""

    def __init__(self, dsn: str | None, sqlite_path: str | None, pool_size: int) -> None:
        self.dsn, self.sqlite_path, self.pool_size = dsn, sqlite_path, pool_size
        self.pool: asyncio.Queue[psycopg.AsyncConnection[tuple[bytes]]] = asyncio.Queue()
        self.sqlite: asyncio.Queue[sqlite3.Connection] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.pool_size):
            if self.dsn:
                self.pool.put_nowait(await psycopg.AsyncConnection.connect(self.dsn, autocommit=True))
            else:
                assert self.sqlite_path
                self.sqlite.put_nowait(sqlite3.connect(self.sqlite_path, check_same_thread=False))

    async def get(self, child_id: str) -> bytes | None:
        """The stored Child for `child_id`: one SELECT by primary key."""
        if self.dsn:
            conn = await self.pool.get()
            try:
                cur = await conn.execute("SELECT payload FROM children WHERE id = %s", (child_id,))
                row = await cur.fetchone()
            finally:
                self.pool.put_nowait(conn)
            return None if row is None else bytes(row[0])
        lite = await self.sqlite.get()
        try:
            found = await asyncio.to_thread(
                lambda: lite.execute("SELECT payload FROM children WHERE id = ?", (child_id,)).fetchone()
            )
        finally:
            self.sqlite.put_nowait(lite)
        return None if found is None else bytes(found[0])


def _unary_handler(
    method: str,
    behaviour: Callable[[gateway_pb.GetChildRequest, Context], Awaitable[object]],
) -> grpc.GenericRpcHandler[Any, Any]:
    service, name = method.strip("/").split("/")
    return grpc.method_handlers_generic_handler(
        service,
        {
            name: grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=gateway_pb.GetChildRequest.FromString,
                response_serializer=gateway_pb.GetChildResponse.SerializeToString,
            )
        },
    )


async def _serve(server: grpc.aio.Server, port: int) -> None:
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


async def run_backend(port: int, dsn: str | None, sqlite_path: str | None, pool_size: int) -> None:
    """The reference backend: GetChild by primary key from its database."""
    store = Store(dsn, sqlite_path, pool_size)
    await store.open()

    async def get_child(request: gateway_pb.GetChildRequest, context: Context) -> gateway_pb.GetChildResponse:
        payload = await store.get(request.contactpoint_id)
        if payload is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such child")
        return gateway_pb.GetChildResponse(child=child_pb2.Child.FromString(payload or b""))

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_unary_handler(BACKEND_METHOD, get_child)])
    await _serve(server, port)


async def run_relay(port: int, backend_target: str) -> None:
    """The reference relay: passes each request on to the backend over one channel."""
    async with grpc.aio.insecure_channel(backend_target) as channel:
        backend = channel.unary_unary(
            BACKEND_METHOD,
            request_serializer=gateway_pb.GetChildRequest.SerializeToString,
            response_deserializer=gateway_pb.GetChildResponse.FromString,
        )

        async def get_child(request: gateway_pb.GetChildRequest, context: Context) -> object:
            return await backend(request, timeout=CALL_TIMEOUT_SECONDS)

        server = grpc.aio.server()
        server.add_generic_rpc_handlers([_unary_handler(RELAY_METHOD, get_child)])
        await _serve(server, port)


# ---------------------------------------------------------------------------------------------
# Processes, ports, databases
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_base_port() -> int:
    """A base port with the next nine free as well (`contactpoint up` uses N..N+9: the services,
    the witness, and their metrics)."""
    for _ in range(200):
        base = free_port()
        if base > 60000:
            continue
        try:
            for port in range(base, base + 10):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no four free ports in a row")


def serving(target: str) -> bool:
    """Whether the server at `target` reports SERVING."""
    try:
        with grpc.insecure_channel(target) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM `proc` (and, if it will not go, SIGKILL its process group)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Postgres:
    """Fresh databases on the local server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def new(self, name: str, *, template: str = "") -> str:
        """The libpq URL of a new database: empty, or a copy of `template`.

        A copy is made file by file (PostgreSQL 15's default copies block by block through the
        WAL: for a 6 GB registry that is 6 GB of WAL, and a checkpoint flushing it all while the
        benchmark runs)."""
        db = f"cp_bench_{name}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            statement = f'CREATE DATABASE "{db}"'
            if template:
                statement += f' TEMPLATE "{template}"'
                if conn.info.server_version >= 150000:
                    statement += " STRATEGY = FILE_COPY"
            conn.execute(statement)
        self.created.append(db)
        return f"{self.admin_url.rsplit('/', 1)[0]}/{db}"

    def drop_all(self) -> None:
        """Drop every database made here."""
        if self.created:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for db in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def sqlalchemy_url(libpq_url: str) -> str:
    """`postgresql://…` as the SQLAlchemy URL the services take."""
    return libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


class Reference:
    """The reference backend and relay processes, and the data they serve."""

    def __init__(
        self, workdir: Path, pg: Postgres | None, children: Sequence[Synthetic], pool_size: int
    ) -> None:
        self.ids = [c.child.contactpoint_id for c in children]
        self.procs: list[subprocess.Popen[bytes]] = []
        rows = [(c.child.contactpoint_id, c.child.SerializeToString()) for c in children]
        self.db_args: list[str]
        if pg is not None:
            dsn = pg.new("reference")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE children (id text PRIMARY KEY, payload bytea NOT NULL)")
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO children VALUES (%s, %s)", rows)
                conn.execute("ANALYZE children")
            self.db_args = ["--dsn", dsn]
        else:
            path = workdir / "reference.db"
            with contextlib.closing(sqlite3.connect(path)) as lite, lite:
                lite.execute("CREATE TABLE children (id TEXT PRIMARY KEY, payload BLOB NOT NULL)")
                lite.executemany("INSERT INTO children VALUES (?, ?)", rows)
            self.db_args = ["--sqlite-path", str(path)]
        self.pool_size = pool_size
        self.target = ""

    def _spawn(self, *args: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, start_new_session=True
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"READY":
            raise RuntimeError(f"reference server {args[0]} did not start")

    def start(self) -> None:
        backend_port, relay_port = free_port(), free_port()
        self._spawn("_backend", "--port", str(backend_port), "--pool", str(self.pool_size), *self.db_args)
        self._spawn("_relay", "--port", str(relay_port), "--backend", f"127.0.0.1:{backend_port}")
        self.target = f"127.0.0.1:{relay_port}"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)


class Suite:
    """`contactpoint up` on free ports, its CLI, and the data the benchmark needs in it."""

    def __init__(self, workdir: Path, pg: Postgres | None) -> None:
        self.data_dir = workdir / "data"
        self.base = free_base_port()
        self.env = dict(os.environ)
        if pg is not None:
            # Every database on PostgreSQL: the gateway's allowances and the witness's checkpoints too.
            for svc in ("identity", "records", "audit", "gateway", "witness"):
                self.env[f"CONTACTPOINT_{svc.upper()}_DATABASE_URL"] = sqlalchemy_url(pg.new(svc))
        # A token must outlive the whole run.
        self.env["CONTACTPOINT_IDENTITY_TOKEN_TTL_SECONDS"] = "86400"
        self.raised_limits = self._raise_limits()
        self.log = workdir / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _raise_limits(self) -> list[str]:
        """Lift per-person read limits the gateway knows (the benchmark is one busy person)."""
        from contactpoint.platform.settings import variable_names
        from gateway.settings import GatewaySettings

        known = variable_names(GatewaySettings)
        raised = sorted(name for name in LIMIT_OVERRIDES if name in known)
        self.env.update({name: LIMIT_OVERRIDES[name] for name in raised})
        return raised

    def target(self, service: str) -> str:
        offset = {"gateway": 0, "identity": 1, "records": 2, "audit": 3}[service]
        return f"127.0.0.1:{self.base + offset}"

    def start(self, timeout: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*CONTACTPOINT, "up", "--data-dir", str(self.data_dir), "--base-port", str(self.base)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"contactpoint up exited {self.proc.returncode}:\n{self.tail()}")
            if b"Gateway:" in self.log.read_bytes() and serving(self.target("gateway")):
                return
            time.sleep(0.3)
        raise RuntimeError(f"contactpoint up not serving after {timeout:.0f}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def cli(self, *args: str, stdin: str | None = None) -> dict[str, str]:
        """Run `contactpoint ARGS --data-dir … --json` and return its JSON answer."""
        result = subprocess.run(
            [*CONTACTPOINT, *args, "--json", "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"contactpoint {' '.join(args)} failed: {result.stderr.strip()}")
        return dict(json.loads(result.stdout))

    def prepare(self, children: Sequence[Synthetic]) -> tuple[list[str], str]:
        """Accounts, N submitted children and a practitioner's token: (contactpoint ids, token)."""
        council = self.cli(
            "admin",
            "create-service-account",
            "--name",
            "bench-council",
            "--org",
            ORG,
            "--role",
            "council-system",
        )
        with grpc.insecure_channel(self.target("identity")) as ch:
            council_token = (
                identity_grpc.IdentityServiceStub(ch)
                .IssueServiceToken(
                    identity_pb.IssueServiceTokenRequest(
                        client_id=council["client_id"], client_secret=council["client_secret"]
                    ),
                    timeout=CALL_TIMEOUT_SECONDS,
                )
                .access_token
            )
        ids: set[str] = set()
        with grpc.insecure_channel(self.target("records")) as ch:
            records = records_grpc.RecordsServiceStub(ch)
            for c in children:
                reply = records.SubmitSourceRecord(
                    records_pb.SubmitSourceRecordRequest(
                        record=c.record, request_id=c.record.source_record_id
                    ),
                    metadata=(("authorization", f"Bearer {council_token}"),),
                    timeout=CALL_TIMEOUT_SECONDS,
                )
                ids.add(reply.contactpoint_id)
        return sorted(ids), self.practitioner_token()

    def practitioner_token(self) -> str:
        """A practitioner's account, logged in through the gateway: their token."""
        practitioner = self.cli(
            "admin",
            "create-user",
            "--username",
            PRACTITIONER,
            "--org",
            ORG,
            "--role",
            "practitioner",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        with grpc.insecure_channel(self.target("gateway")) as ch:
            return str(
                gateway_grpc.GatewayServiceStub(ch)
                .Login(
                    gateway_pb.LoginRequest(
                        username=PRACTITIONER,
                        password=PASSWORD,
                        totp_code=pyotp.TOTP(practitioner["totp_secret"]).now(),
                    ),
                    timeout=CALL_TIMEOUT_SECONDS,
                )
                .access_token
            )


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _cells(*values: float) -> str:
    return "".join(f"{v:>10.1f}" for v in values)


@dataclass
class Report:
    """Everything one invocation measured."""

    date: str
    machine: dict[str, object]
    config: dict[str, object]
    runs: list[dict[str, RunResult]] = field(default_factory=list)
    response_bytes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def median(self, which: str) -> dict[str, float] | None:
        results = [run[which] for run in self.runs if which in run]
        if not results:
            return None
        return {
            key: statistics.median(getattr(r, key) for r in results) for key in ("rps", "p50_ms", "p99_ms")
        }

    def ratio(self) -> float | None:
        gw, ref = self.median("gateway"), self.median("reference")
        if not gw or not ref or gw["rps"] == 0:
            return None
        return ref["rps"] / gw["rps"]

    def as_json(self) -> dict[str, object]:
        return {
            "date": self.date,
            "machine": self.machine,
            "config": self.config,
            "runs": [{k: asdict(v) for k, v in run.items()} for run in self.runs],
            "median": {k: self.median(k) for k in ("gateway", "reference") if self.median(k)},
            "ratio_reference_to_gateway_rps": self.ratio(),
            "response_bytes": self.response_bytes,
            "notes": self.notes,
        }

    def as_text(self) -> str:
        lines = [
            f"{self.date}  {self.machine['cpus']} CPUs  {self.config['database']}  "
            f"N={self.config['children']} C={self.config['concurrency']} D={self.config['duration_s']}s "
            f"x{self.config['repeat']}  load {self.machine['loadavg_1m_before']}"
            f"→{self.machine.get('loadavg_1m_after', '?')}",
            f"{'':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}   errors",
        ]
        for i, run in enumerate(self.runs, 1):
            for which, r in run.items():
                errs = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "-"
                lines.append(f"{f'run {i} {which}':<24}{_cells(r.rps, r.p50_ms, r.p99_ms)}   {errs}")
        for which in ("gateway", "reference"):
            m = self.median(which)
            if m:
                lines.append(f"{f'median {which}':<24}{_cells(m['rps'], m['p50_ms'], m['p99_ms'])}")
        ratio = self.ratio()
        if ratio is not None:
            lines.append(f"ratio: the reference serves {ratio:.1f}x the gateway's requests/s")
        for i, run in enumerate(self.runs, 1):
            for which, r in run.items():
                if r.cpu_ms_per_request:
                    total = sum(r.cpu_ms_per_request.values())
                    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.cpu_ms_per_request.items()))
                    lines.append(f"run {i} {which}: CPU ms a request {total:.2f} ({parts})")
        if self.response_bytes:
            lines.append("response size: " + ", ".join(f"{k} {v} B" for k, v in self.response_bytes.items()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


async def _one_response(target: str, make_call: Callable[[grpc.aio.Channel], Call]) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await make_call(channel)(random.Random(0))
    assert isinstance(reply, gateway_pb.GetChildResponse)
    return reply.ByteSize()


def _measured(
    args: argparse.Namespace,
    target: str,
    make: Callable[[grpc.aio.Channel], Call],
    groups: dict[str, Callable[[], list[int]]],
) -> RunResult:
    """One timed run, with the CPU each group of processes spent a request in its measured seconds."""
    window = cpu_share.Window(groups, args.warmup, args.duration)
    result = asyncio.run(drive(target, make, args.concurrency, args.duration, args.warmup))
    cpu = window.result()
    if result.requests:
        result.cpu_ms_per_request = {k: round(1000 * v / result.requests, 3) for k, v in cpu.items()}
    return result


def _cpu_groups(
    which: str, suite: Suite | None, reference: Reference | None, on_postgres: bool
) -> dict[str, Callable[[], list[int]]]:
    """The processes whose CPU a run of `which` counts: each service (or the reference's two
    servers), PostgreSQL, and this process (the clients)."""
    groups: dict[str, Callable[[], list[int]]] = {"clients": lambda: [os.getpid()]}
    if on_postgres:
        groups["postgres"] = cpu_share.postgres_processes
    if which == "gateway" and suite is not None and suite.proc is not None:
        up = suite.proc.pid
        for name in cpu_share.suite_processes(up):
            groups[name] = lambda name=name: cpu_share.suite_processes(up).get(name, [])  # type: ignore[misc]
    if which == "reference" and reference is not None:
        for name, proc in zip(("backend", "relay"), reference.procs, strict=False):
            groups[name] = lambda pid=proc.pid: [pid]  # type: ignore[misc]
    return groups


def benchmark(args: argparse.Namespace) -> Report:
    """Set up what `args` asks for, measure, tear everything down."""
    report = Report(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Anything else running on the machine shows here; the numbers are only as quiet as it.
            "loadavg_1m_before": round(os.getloadavg()[0], 2),
        },
        config={
            "database": "sqlite" if args.sqlite else "postgresql",
            "children": args.children,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
        },
    )
    children = synthetic_children(args.children)
    pg = None if args.sqlite else Postgres(args.postgres_url)
    suite: Suite | None = None
    reference: Reference | None = None
    targets: dict[str, tuple[str, Callable[[grpc.aio.Channel], Call]]] = {}
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        try:
            if args.only in (None, "reference"):
                reference = Reference(Path(tmp), pg, children, pool_size=args.concurrency)
                reference.start()
                targets["reference"] = (reference.target, reference_call(reference.ids))
            if args.only in (None, "gateway"):
                suite = Suite(Path(tmp), pg)
                suite.start()
                ids, token = suite.prepare(children)
                report.notes.append(f"{len(children)} source records submitted, {len(ids)} children")
                if suite.raised_limits:
                    report.notes.append("raised for the run: " + ", ".join(suite.raised_limits))
                else:
                    report.notes.append("the gateway has no per-person limits to raise")
                targets["gateway"] = (suite.target("gateway"), gateway_call(ids, token))
            for which, (target, make) in targets.items():
                report.response_bytes[which] = asyncio.run(_one_response(target, make))
            for _ in range(args.repeat):
                run: dict[str, RunResult] = {}
                for which in ("gateway", "reference"):
                    if which in targets:
                        target, make = targets[which]
                        groups = _cpu_groups(which, suite, reference, pg is not None)
                        window = cpu_share.Window(groups, args.warmup, args.duration)
                        result = asyncio.run(
                            drive(target, make, args.concurrency, args.duration, args.warmup)
                        )
                        cpu = window.result()
                        if result.requests:
                            result.cpu_ms_per_request = {
                                name: round(1000 * seconds / result.requests, 3)
                                for name, seconds in cpu.items()
                            }
                        run[which] = result
                report.runs.append(run)
        except Exception:
            if suite is not None and suite.proc is not None:
                print(suite.tail(), file=sys.stderr)
            raise
        finally:
            if suite is not None:
                suite.stop()
                if args.up_log is not None:
                    args.up_log.write_bytes(suite.log.read_bytes())
            if reference is not None:
                reference.stop()
            if pg is not None:
                pg.drop_all()
    report.machine["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return report


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--children", "-n", type=int, default=200, help="children submitted (N)")
    p.add_argument("--concurrency", "-c", type=int, default=8, help="concurrent clients (C)")
    p.add_argument("--duration", "-d", type=float, default=10.0, help="seconds measured per run (D)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each run that do not count")
    p.add_argument("--repeat", type=int, default=3, help="runs of each target, alternating")
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="a superuser's libpq URL")
    p.add_argument("--only", choices=["gateway", "reference"], help="measure one target only")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--up-log", type=Path, help="keep the log of `contactpoint up` (every RPC's time) here")
    return p.parse_args(argv)


def _server_main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["_backend", "_relay"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend")
    p.add_argument("--dsn")
    p.add_argument("--sqlite-path")
    p.add_argument("--pool", type=int, default=8)
    a = p.parse_args(argv)
    if a.role == "_backend":
        asyncio.run(run_backend(a.port, a.dsn, a.sqlite_path, a.pool))
    else:
        asyncio.run(run_relay(a.port, a.backend))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_backend", "_relay"):
        _server_main(argv)
        return 0
    args = parse_args(argv)
    report = benchmark(args)
    print(json.dumps(report.as_json(), indent=2) if args.json else report.as_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
