"""What the per-person limits add to an audited GetChild: the gateway with them against the same
gateway without them, serving the same suite, in one run.

    .venv/bin/python bench/gateway_limits.py [--children 200] [--concurrency 16] [--duration 10]
        [--warmup 2] [--repeat 3] [--practitioners 1] [--sqlite] [--json] [--profile DIR]

It starts `contactpoint up` on free ports in a temporary folder exactly as
bench/gateway_getchild.py does (whose helpers it uses), except that the gateway's own database
(`CONTACTPOINT_GATEWAY_DATABASE_URL`, where the allowances live) is on the same engine as the
others: a fresh PostgreSQL database on 127.0.0.1:5432, or with `--sqlite` the embedded default
`gateway.db`. The gateway's machine account is made here before `up` starts (the same account
`up` would make, `contactpoint.cli.accounts.suite_credentials`) and given to `up`, so that a
second gateway can be started with the very same configuration:

- **limits on**: the gateway of `contactpoint up`. Every GetChild first spends one read of the
  person's rate (at the benchmark's raised rate, by GCRA: `allowance.EXACT_UP_TO`) and counts
  the child for the day (`Allowances.take_read`: one write transaction on the gateway's
  database), then reads the child from records and writes its audit event.
- **limits off**: a second gateway process, `bench/gateway_nolimits.py`: the same settings (the
  same identity, records and audit, the same account, its own empty gateway database), with
  `Allowances.take_read` and `take_item` replaced by no-ops.

The per-minute rate and the daily limit are raised to the highest values the settings accept, so
nothing is refused: what is measured is the bookkeeping. C concurrent grpc.aio clients (one
channel each) call GetChild on random ones of the N children for D seconds, as one practitioner
or as `--practitioners P` (client i as practitioner i mod P); the two gateways alternate
(on, off, then off, on, …) `--repeat` times. Each run reports requests/s, p50 and p99, the CPU
time per request of the gateway process and of all the benchmark's processes (the clients, the
four services, the second gateway and their PostgreSQL backends), the share of the cores busy with
anything else during the run (other work on a shared machine), and the ratios limits-on /
limits-off of the medians; afterwards, the rows in each gateway's allowance tables (the limits-off
one must have none). With `--profile DIR`, one more run of each gateway (not counted) is sampled
with py-spy (threads holding the GIL, raw folded stacks in DIR) and summarised: the share of the
samples in the allowance code and its transactions, and the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import psycopg
import pyotp
from gateway_getchild import (
    CALL_TIMEOUT_SECONDS,
    ORG,
    PASSWORD,
    Call,
    Postgres,
    RunResult,
    Suite,
    drive,
    free_port,
    gateway_call,
    serving,
    sqlalchemy_url,
    stop_process,
    synthetic_children,
)

from contactpoint.gateway.v1 import gateway_service_pb2 as gateway_pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NOLIMITS_RUNNER = Path(__file__).with_name("gateway_nolimits.py")
# Asked for; capped at the highest value GatewaySettings accepts.
WANTED_LIMITS = {
    "CONTACTPOINT_GATEWAY_RATE_PER_MINUTE": 10_000_000,
    "CONTACTPOINT_GATEWAY_DAILY_RECORD_LIMIT": 10_000_000,
}
ON, OFF = "limits_on", "limits_off"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The suite, and the second gateway
# ---------------------------------------------------------------------------------------------


def highest_limits() -> dict[str, str]:
    """WANTED_LIMITS, each capped at the bound GatewaySettings puts on it."""
    from gateway.settings import GatewaySettings

    values = {}
    for name, wanted in WANTED_LIMITS.items():
        model_field = GatewaySettings.model_fields[name.removeprefix("CONTACTPOINT_GATEWAY_").lower()]
        bounds = [getattr(m, "le", None) for m in model_field.metadata]
        values[name] = str(min([wanted, *(b for b in bounds if isinstance(b, int))]))
    return values


class LimitsSuite(Suite):
    """`contactpoint up` with the gateway's database on the bench's engine, the limits raised, and
    the gateway's machine account made here (so a second gateway can share it)."""

    def __init__(self, workdir: Path, pg: Postgres | None) -> None:
        super().__init__(workdir, pg)
        self.workdir = workdir
        self.pg = pg
        # Where each gateway keeps its allowances: a libpq URL, or an SQLite file.
        self.gateway_db: dict[str, str] = {}
        if pg is not None:
            self.gateway_db[ON] = pg.new("gateway")
            self.gateway_db[OFF] = pg.new("gateway_off")
            self.env["CONTACTPOINT_GATEWAY_DATABASE_URL"] = sqlalchemy_url(self.gateway_db[ON])
        else:
            self.gateway_db[ON] = str(self.data_dir / "gateway.db")  # the embedded default
            self.gateway_db[OFF] = str(self.data_dir / "gateway-nolimits.db")

    def _raise_limits(self) -> list[str]:
        self.limits = highest_limits()
        self.env.update(self.limits)
        return sorted(self.limits)

    def _layered(self) -> dict[str, str]:
        from contactpoint.cli.embedded import layered_env

        return layered_env(self.env, self.data_dir, self.base)

    def start(self, timeout: float = 90) -> None:
        """Make the gateway's account (as `up` would, the same name and role), then `up`."""
        from contactpoint.cli.accounts import suite_credentials

        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        creds = suite_credentials(self._layered(), "gateway")
        self.env["CONTACTPOINT_GATEWAY_CLIENT_ID"] = creds.client_id
        self.env["CONTACTPOINT_GATEWAY_CLIENT_SECRET"] = creds.client_secret
        super().start(timeout)

    def gateway_pid(self) -> int:
        """The pid of `up`'s gateway process."""
        assert self.proc is not None
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if cmdline[-3:-1] == [b"serve", b"gateway"]:
                    return int(pid)
        raise RuntimeError("the gateway of `contactpoint up` was not found")

    def second_gateway_env(self, port: int) -> dict[str, str]:
        """What `up` gives its gateway (`service_env`), listening on `port`, with its own database."""
        from contactpoint.cli.embedded import service_env
        from contactpoint.cli.launch import supervisor_variable

        env = service_env(self._layered(), "gateway")
        env["CONTACTPOINT_GATEWAY_LISTEN"] = f"127.0.0.1:{port}"
        off = self.gateway_db[OFF]
        env["CONTACTPOINT_GATEWAY_DATABASE_URL"] = sqlalchemy_url(off) if self.pg else f"sqlite:///{off}"
        # Like `up`'s services, it stops when this process ends, however it ends.
        env[supervisor_variable("gateway")] = str(os.getpid())
        return env

    def add_practitioners(self, first_token: str, count: int) -> list[str]:
        """`count` practitioners' tokens: the one `prepare` logged in, and `count - 1` more."""
        tokens = [first_token]
        for n in range(2, count + 1):
            user = f"bench.practitioner{n}"
            made = self.cli(
                "admin",
                "create-user",
                *("--username", user, "--org", ORG, "--role", "practitioner", "--password-stdin"),
                stdin=PASSWORD + "\n",
            )
            with grpc.insecure_channel(self.target("gateway")) as ch:
                reply = gateway_grpc.GatewayServiceStub(ch).Login(
                    gateway_pb.LoginRequest(
                        username=user, password=PASSWORD, totp_code=pyotp.TOTP(made["totp_secret"]).now()
                    ),
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            tokens.append(reply.access_token)
        return tokens


class SecondGateway:
    """`bench/gateway_nolimits.py` as its own process: the gateway with its limits switched off."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.target = env["CONTACTPOINT_GATEWAY_LISTEN"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(NOLIMITS_RUNNER)],
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the limits-off gateway exited {self.proc.returncode}:\n{self.tail()}")
            if serving(self.target):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the limits-off gateway is not serving after {timeout:.0f}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def allowance_rows(db: str, postgres: bool) -> dict[str, int]:
    """How many rows each allowance table of a gateway's database holds."""
    queries = {
        "rates": "SELECT count(*) FROM rates",
        "daily_reads": "SELECT count(*) FROM daily_reads",
        "limit_trips": "SELECT count(*) FROM limit_trips",
    }
    if postgres:
        with psycopg.connect(db) as conn:
            counts = {t: conn.execute(q).fetchone() for t, q in queries.items()}
    else:
        with contextlib.closing(sqlite3.connect(db)) as lite:
            counts = {t: lite.execute(q).fetchone() for t, q in queries.items()}
    return {t: int(row[0]) if row else 0 for t, row in counts.items()}


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def round_robin(ids: Sequence[str], tokens: Sequence[str]) -> Callable[[grpc.aio.Channel], Call]:
    """GetChild of random ones of `ids`; the i-th client made reads as practitioner i mod P."""
    makers = [gateway_call(ids, token) for token in tokens]
    counter = itertools.count()

    def make(channel: grpc.aio.Channel) -> Call:
        return makers[next(counter) % len(makers)](channel)

    return make


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent not idle (all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def our_processes(databases: Sequence[str]) -> list[int]:
    """This process, every process it started (however deep: `up`, its services, the second
    gateway), and the PostgreSQL backends connected to `databases`."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if any(db.encode() in cmdline for db in databases):
            parent[pid] = os.getpid()  # a backend of ours: counted as if we had started it
    ours = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, ppid in parent.items() if ppid in ours} - ours
        ours |= found
        grew = bool(found)
    return sorted(ours)


@dataclass
class Measured:
    """One timed run of one gateway, and the CPU used per request: by the gateway process, and
    by all of the benchmark's processes (the clients, the four services and the second gateway,
    their PostgreSQL backends); and the share of the machine's cores busy with anything else."""

    result: RunResult
    gateway_cpu_ms_per_request: float
    suite_cpu_ms_per_request: float
    others_cpu_share: float


async def measure(
    target: str,
    make: Callable[[grpc.aio.Channel], Call],
    pid: int,
    databases: Sequence[str],
    args: argparse.Namespace,
) -> Measured:
    """`drive` the gateway at `target`, and take CPU times at the ends of its measured window."""

    def sample(pids: Sequence[int]) -> tuple[float, float, float]:
        return process_cpu_seconds(pid), sum(map(process_cpu_seconds, pids)), machine_busy_seconds()

    async def sample_window() -> tuple[tuple[float, float, float], tuple[float, float, float], float]:
        await asyncio.sleep(args.warmup)
        pids = our_processes(databases)
        began, start = time.perf_counter(), sample(pids)
        await asyncio.sleep(args.duration)
        end = sample(pids)
        return start, end, time.perf_counter() - began

    result, (start, end, seconds) = await asyncio.gather(
        drive(target, make, args.concurrency, args.duration, args.warmup), sample_window()
    )
    per_request = 1000 / max(result.requests, 1)
    gateway, suite, machine = (b - a for a, b in zip(start, end, strict=True))
    return Measured(
        result,
        gateway * per_request,
        suite * per_request,
        max(0.0, machine - suite) / (seconds * (os.cpu_count() or 1)),
    )


def measure_sync(
    target: str,
    make: Callable[[grpc.aio.Channel], Call],
    pid: int,
    databases: Sequence[str],
    args: argparse.Namespace,
) -> Measured:
    """`measure`, in an event loop of its own."""
    return asyncio.run(measure(target, make, pid, databases, args))


def profile(pid: int, out: Path, run: Callable[[], Measured]) -> Measured:
    """Sample `pid` with py-spy while `run` runs: only threads holding the GIL (where the
    process's Python time goes), 100 Hz, raw folded stacks to `out`."""
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            *("record", "--pid", str(pid), "--gil", "-r", "100", "-f", "raw", "-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached
    try:
        return run()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile and detaches
        spy.wait(60)


# Frames under which everything runs (threads, the event loop, the CLI): left out of the top list.
PLUMBING = (
    "threading.py:",
    "<frozen runpy>:",
    "asyncio/",
    "typer/",
    "_click/",
    "futures/thread.py:",
    "contactpoint/__main__.py:",
    "cli/",
    "gateway/main.py:",
    "platform/service.py:",
    "gateway_nolimits.py:",
)
# The allowance's code, and its transactions: the gateway's only database is the allowances'
# (a transaction's BEGIN and COMMIT run under `Database.run_sync`, outside gateway/limits.py).
ALLOWANCE_FRAMES = (
    "gateway/limits.py:",
    "gateway/allowance.py:",
    "gateway/allowance_repository.py:",
    "platform/db.py:",
)


def profile_summary(path: Path, top: int = 15) -> dict[str, object]:
    """From py-spy's raw output: samples in all, the share under the allowance code and its
    transactions, the functions (dir/file:function) most often running (self) and most often
    under way (inclusive, without `PLUMBING`)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = allowance = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            filename = where.rsplit(":", 1)[0]
            frames.append(f"{'/'.join(filename.split('/')[-2:])}:{name}")
        own[frames[-1]] += count
        inclusive.update(dict.fromkeys((f for f in frames if not f.startswith(PLUMBING)), count))
        if any(f.startswith(ALLOWANCE_FRAMES) for f in frames):
            allowance += count
    return {
        "samples": total,
        "allowance_share": allowance / total if total else 0.0,
        "self": [(name, n / total) for name, n in own.most_common(top)],
        "inclusive": [(name, n / total) for name, n in inclusive.most_common(top)],
    }


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------

METRICS = (
    "rps",
    "p50_ms",
    "p99_ms",
    "gateway_cpu_ms_per_request",
    "suite_cpu_ms_per_request",
    "others_cpu_share",
)


def _flat(m: Measured) -> dict[str, float]:
    return {
        "rps": m.result.rps,
        "p50_ms": m.result.p50_ms,
        "p99_ms": m.result.p99_ms,
        "gateway_cpu_ms_per_request": m.gateway_cpu_ms_per_request,
        "suite_cpu_ms_per_request": m.suite_cpu_ms_per_request,
        "others_cpu_share": m.others_cpu_share,
    }


def uptime() -> str:
    """`uptime`'s one line."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@dataclass
class Report:
    """Everything one invocation measured."""

    date: str
    command: str
    machine: dict[str, object]
    config: dict[str, object]
    runs: list[dict[str, Measured]] = field(default_factory=list)
    orders: list[list[str]] = field(default_factory=list)
    allowance_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    profiles: dict[str, dict[str, object]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def median(self, which: str) -> dict[str, float]:
        flats = [_flat(run[which]) for run in self.runs]
        return {k: statistics.median(f[k] for f in flats) for k in METRICS}

    def ratios(self) -> dict[str, float]:
        """limits-on / limits-off of the medians (of each metric but the others' share)."""
        on, off = self.median(ON), self.median(OFF)
        return {k: on[k] / off[k] if off[k] else float("nan") for k in METRICS[:-1]}

    def paired_rps_ratios(self) -> list[float]:
        """limits-on / limits-off requests/s of each run (the two measured back to back)."""
        return [
            r[ON].result.rps / r[OFF].result.rps if r[OFF].result.rps else float("nan") for r in self.runs
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "date": self.date,
            "command": self.command,
            "machine": self.machine,
            "config": self.config,
            "runs": [
                {"order": order, **{k: {**asdict(v.result), **_flat(v)} for k, v in run.items()}}
                for run, order in zip(self.runs, self.orders, strict=True)
            ],
            "median": {ON: self.median(ON), OFF: self.median(OFF)},
            "ratio_on_to_off": self.ratios(),
            "paired_rps_ratios": self.paired_rps_ratios(),
            "allowance_rows": self.allowance_rows,
            "profiles": self.profiles,
            "notes": self.notes,
        }

    def as_text(self) -> str:
        head = f"{'':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'gw CPU':>9}{'all CPU':>9}{'others':>9}"
        lines = [
            f"{self.date}  {self.machine['cpus']} CPUs  {self.config['database']}  "
            f"N={self.config['children']} C={self.config['concurrency']} D={self.config['duration_s']}s "
            f"x{self.config['repeat']} P={self.config['practitioners']}",
            f"before: {self.machine['uptime_before']}",
            f"after:  {self.machine.get('uptime_after', '?')}",
            "CPU: ms per request, of the gateway process / of all the benchmark's processes; others: the "
            "share of the cores busy with other work",
            head + "   errors",
        ]

        def cells(values: dict[str, float]) -> str:
            return "".join(
                f"{values[k]:>9.{3 if k == 'others_cpu_share' else 2 if 'cpu' in k else 1}f}" for k in METRICS
            )

        for i, (run, order) in enumerate(zip(self.runs, self.orders, strict=True), 1):
            for which in order:
                m = run[which]
                errs = ", ".join(f"{k} {v}" for k, v in m.result.errors.items()) or "-"
                lines.append(f"{f'run {i} {which}':<22}{cells(_flat(m))}   {errs}")
        for which in (ON, OFF):
            lines.append(f"{f'median {which}':<22}{cells(self.median(which))}")
        r = self.ratios()
        lines.append(f"{'ratio on/off':<22}" + "".join(f"{v:>9.3f}" for v in r.values()))
        lines.append("paired req/s ratios on/off: " + ", ".join(f"{x:.3f}" for x in self.paired_rps_ratios()))
        for which, rows in self.allowance_rows.items():
            lines.append(f"{which} gateway database: " + ", ".join(f"{t} {n}" for t, n in rows.items()))
        for which, prof in self.profiles.items():
            share = prof["allowance_share"]
            assert isinstance(share, float)
            lines.append(f"profile {which}: {prof['samples']} samples, {share:.1%} under the allowance code")
            for kind in ("self", "inclusive"):
                top = prof[kind]
                assert isinstance(top, list)
                lines.append(f"  {kind}:")
                lines += [f"  {share_:6.1%}  {name}" for name, share_ in top]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, command: str) -> Report:
    """Set up what `args` asks for, measure, tear everything down."""
    report = Report(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Anything else running on the machine shows here; the numbers are only as quiet as it.
            "uptime_before": uptime(),
        },
        config={
            "database": "sqlite" if args.sqlite else "postgresql",
            "children": args.children,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "practitioners": args.practitioners,
        },
    )
    children = synthetic_children(args.children)
    pg = None if args.sqlite else Postgres(args.postgres_url)
    suite: LimitsSuite | None = None
    second: SecondGateway | None = None
    with tempfile.TemporaryDirectory(prefix="cp-bench-limits-") as tmp:
        workdir = Path(tmp)
        try:
            suite = LimitsSuite(workdir, pg)
            report.config["limits"] = dict(suite.limits)
            suite.start()
            second_env = suite.second_gateway_env(free_port())
            if args.same_both:
                second_env["CONTACTPOINT_BENCH_KEEP_LIMITS"] = "1"
                report.notes.append("calibration (--same-both): the second gateway keeps its limits ON")
            second = SecondGateway(second_env, workdir / "gateway-nolimits.log")
            second.start()
            ids, token = suite.prepare(children)
            tokens = suite.add_practitioners(token, args.practitioners)
            report.notes.append(f"{len(children)} source records submitted, {len(ids)} children")
            make = round_robin(ids, tokens)
            databases = list(pg.created) if pg is not None else []
            targets = {
                ON: (suite.target("gateway"), suite.gateway_pid()),
                OFF: (second.target, second.proc.pid if second.proc else 0),
            }
            for i in range(args.repeat):
                order = [ON, OFF] if i % 2 == 0 else [OFF, ON]
                run: dict[str, Measured] = {}
                for which in order:
                    target, pid = targets[which]
                    run[which] = measure_sync(target, make, pid, databases, args)
                report.runs.append(run)
                report.orders.append(order)
            report.allowance_rows = {
                which: allowance_rows(suite.gateway_db[which], pg is not None) for which in (ON, OFF)
            }
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                for which in (ON, OFF):
                    target, pid = targets[which]
                    out = args.profile / f"{which}-{report.config['database']}.txt"
                    sampled = profile(
                        pid, out, functools.partial(measure_sync, target, make, pid, databases, args)
                    )
                    report.profiles[which] = {
                        "file": str(out),
                        "rps_while_sampled": sampled.result.rps,
                        **profile_summary(out),
                    }
        except Exception:
            if suite is not None and suite.proc is not None:
                print(suite.tail(), file=sys.stderr)
            if second is not None and second.proc is not None:
                print(second.tail(), file=sys.stderr)
            raise
        finally:
            if second is not None:
                second.stop()
            if suite is not None:
                suite.stop()
            if pg is not None:
                pg.drop_all()
    report.machine["uptime_after"] = uptime()
    return report


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--children", "-n", type=int, default=200, help="children submitted (N)")
    p.add_argument("--concurrency", "-c", type=int, default=16, help="concurrent clients (C)")
    p.add_argument("--duration", "-d", type=float, default=10.0, help="seconds measured per run (D)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each run that do not count")
    p.add_argument("--repeat", type=int, default=3, help="runs of each gateway, alternating")
    p.add_argument("--practitioners", "-p", type=int, default=1, help="practitioners the clients read as (P)")
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="a superuser's libpq URL")
    p.add_argument("--profile", type=Path, help="also sample one extra run of each gateway with py-spy here")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--same-both",
        action="store_true",
        help="calibration: the second gateway keeps its limits on too (the ratio then shows the bias "
        "between the two gateway processes, not the limits)",
    )
    a = p.parse_args(argv)
    if a.practitioners < 1 or a.repeat < 1:
        p.error("--practitioners and --repeat must be at least 1")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/gateway_limits.py", *argv])
    report = benchmark(args, command)
    print(json.dumps(report.as_json(), indent=2) if args.json else report.as_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
