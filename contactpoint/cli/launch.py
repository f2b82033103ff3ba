"""`contactpoint serve` (one service in this process) and `contactpoint up` (all four, and the
audit log's witness, each its
own OS process, supervised: a taken port or a crashed service is a clear message and a non-zero
exit, never a hang; SIGINT/SIGTERM stops everything gracefully).

`up` owns its data dir while it runs: one `up` per data dir (a lock file), the folder private to
its user (0700), each service given only its own variables, and no service outliving `up` (on
Linux the kernel sends each a SIGTERM when `up` dies, even by SIGKILL: see `die_with_supervisor`)."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from contactpoint.cli import accounts
from contactpoint.cli.data_dir import lock_data_dir, lock_holder, private_databases, private_dir
from contactpoint.cli.embedded import SERVICES, layered_env, service_env
from contactpoint.cli.health import check_credentials, health_problem, port_in_use
from contactpoint.cli.options import DATABASE_EXIT
from contactpoint.cli.tls_names import call_by_name, dial_target
from contactpoint.cli.tls_sides import plaintext_beyond_loopback, tls_file_problems, tls_mismatches
from contactpoint.cli.witness_pin import pin_witnessed_log
from contactpoint.platform.db import failure_line
from contactpoint.platform.lifetime import stop_with_parent
from contactpoint.platform.settings import ConfigurationError

# Identity and the audit log's witness first (they depend on no other service), then the rest.
FIRST = ("identity", "witness")
START_ORDER = (*FIRST, "records", "audit", "gateway")
# Stopped one at a time, callers before what they call, so that whatever is in flight finishes
# (found by probing: stopped all at once, identity was gone in 0.4 s and a council's stream into
# records ended UNAVAILABLE at its next token check, gateway reads found no audit log). The witness
# is last, once audit has sent it the final checkpoint.
STOP_ORDER = ("gateway", "records", "audit", "identity", "witness")
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
# Held (flock) by the one `contactpoint up` running on a data dir.
# CONTACTPOINT_<SERVICE>_SUPERVISOR_PID: `up`'s pid, given to each service it starts.
SUPERVISOR_PID = "SUPERVISOR_PID"


def supervisor_variable(service: str) -> str:
    """The variable through which `up` gives `service` its own pid."""
    return f"CONTACTPOINT_{service.upper()}_{SUPERVISOR_PID}"


def die_with_supervisor(service: str, env: Mapping[str, str]) -> None:
    """When `up` started this service (its pid in `supervisor_variable`), stop when `up` ends,
    however it ends: on Linux the kernel sends this process SIGTERM (the graceful stop) when its
    parent dies (PR_SET_PDEATHSIG); if `up` is already gone, exit at once.

    The service sets this itself, first thing, rather than `up` in a `preexec_fn`: a fork that
    does not exec at once runs gRPC's fork handlers in the child, which (grpcio >= 1.81, with
    `up`'s health-check channels open) can abort it before it starts (grpc/grpc#43055). It is
    chosen over a child that polls its parent's pid: nothing has to keep running in the service
    for it to work, and it is immediate. A service started by hand (`contactpoint serve`) is
    never affected."""
    supervisor = env.get(supervisor_variable(service))
    if supervisor is None:
        return
    problem = stop_with_parent(signal.SIGTERM)
    if problem is not None:
        typer.echo(f"contactpoint serve {service}: cannot follow `contactpoint up`: {problem}", err=True)
    if str(os.getppid()) != supervisor:  # `up` died before the prctl: nobody would stop us
        typer.echo(f"contactpoint serve {service}: `contactpoint up` (pid {supervisor}) has ended", err=True)
        raise typer.Exit(1)


def run_one(service: str, env: Mapping[str, str]) -> None:
    """Run one service until SIGTERM/SIGINT; bad configuration or a taken port exit non-zero."""
    die_with_supervisor(service, env)
    module = importlib.import_module("gateway.main" if service == "gateway" else f"services.{service}.main")
    try:
        module.run(env)
    except ValidationError as exc:
        prefix = f"CONTACTPOINT_{service.upper()}_"
        for e in exc.errors():
            name = prefix + "_".join(str(p) for p in e["loc"]).upper()
            typer.echo(f"contactpoint serve {service}: {name}: {e['msg']}", err=True)
        raise typer.Exit(2) from None
    except ConfigurationError as exc:
        typer.echo(f"contactpoint serve {service}: {exc}", err=True)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        # Say which database without echoing credentials or SQL.
        typer.echo(f"contactpoint serve {service}: cannot use the database: {failure_line(exc)}", err=True)
        raise typer.Exit(DATABASE_EXIT) from None
    except OSError as exc:
        typer.echo(f"contactpoint serve {service}: cannot serve: {exc}", err=True)
        raise typer.Exit(3) from None
    except RuntimeError as exc:
        # grpc reports a taken or unusable address as a RuntimeError ("Failed to bind ...").
        if "bind" not in str(exc).lower():
            raise
        typer.echo(f"contactpoint serve {service}: cannot serve: {exc}", err=True)
        raise typer.Exit(3) from None


def _target(env: Mapping[str, str], service: str) -> str:
    return env[f"CONTACTPOINT_{service.upper()}_LISTEN"]


def _on_port(env: Mapping[str, str], service: str) -> bool:
    return not _target(env, service).startswith(("unix:", "unix-abstract:"))


def _address(env: Mapping[str, str], service: str) -> tuple[str, int]:
    host, _, port = env[f"CONTACTPOINT_{service.upper()}_LISTEN"].rpartition(":")
    return host or "127.0.0.1", int(port)


class Suite:
    """The child processes of `contactpoint up`: the four services and the witness."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str) -> None:
        """Start `service` with only its own variables (`service_env`), to die with this process."""
        env = {**service_env(self.env, service), supervisor_variable(service): str(os.getpid())}
        # In a process group of its own: a Ctrl-C at the terminal reaches `up` alone, which stops
        # the services in order (they still end with `up` however it ends: `stop_with_parent`).
        self.procs[service] = subprocess.Popen(  # noqa: S603 — our own interpreter and module
            [sys.executable, "-m", "contactpoint", "serve", service], env=env, process_group=0
        )

    def crashed(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def wait_serving(
        self, services: tuple[str, ...], deadline: float, stopping: Callable[[], bool]
    ) -> str | None:
        """None once all `services` are SERVING (or a stop was asked for); otherwise why not."""
        pending = list(services)
        problems: dict[str, str] = {}
        while pending and not stopping():
            crash = self.crashed()
            if crash:
                return (
                    f"the {crash[0]} service exited with code {crash[1]} during start-up (see its log above)"
                )
            if time.monotonic() > deadline:
                why = "; ".join(f"{s}: {problems[s]}" for s in pending if s in problems)
                return f"not SERVING after {STARTUP_TIMEOUT_SECONDS:.0f}s: {', '.join(pending)}" + (
                    f" ({why})" if why else ""
                )
            for s in pending:
                problem = health_problem(dial_target(self.env, s), check_credentials(self.env, s))
                if problem is None:
                    problems.pop(s, None)
                else:
                    problems[s] = problem
            pending = [s for s in pending if s in problems]
            if pending:
                time.sleep(0.2)
        return None

    def stop(self) -> None:
        """Stop the children in `STOP_ORDER`, each with SIGTERM and a wait for its graceful
        shutdown (SIGKILL after `STOP_TIMEOUT_SECONDS`) before the next: what a service has in
        flight can still reach the services it calls."""
        for name in sorted(self.procs, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else -1):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                # Said, not silent (found by re-probing): what it had in flight is lost.
                typer.echo(
                    f"contactpoint up: the {name} service did not stop within "
                    f"{STOP_TIMEOUT_SECONDS:.0f} s; killed",
                    err=True,
                )
                proc.kill()
                proc.wait()


def run_suite(data_dir: Path, base_port: int, environ: Mapping[str, str]) -> int:
    """`contactpoint up`: returns the exit code."""
    if data_dir.exists() and not data_dir.is_dir():
        typer.echo(f"contactpoint up: --data-dir {data_dir} is a file, not a folder", err=True)
        return 2
    # TLS files the services would refuse: said before anything is made or started.
    layered = layered_env(environ, data_dir, base_port)
    unusable = tls_file_problems(layered) + plaintext_beyond_loopback(layered)
    for reason in unusable:
        typer.echo(f"contactpoint up: {reason}", err=True)
    if unusable:
        return 2
    try:
        warning = private_dir(data_dir)
    except OSError as exc:
        typer.echo(f"contactpoint up: cannot use --data-dir {data_dir}: {exc.strerror or exc}", err=True)
        return 2
    if warning:
        typer.echo(f"contactpoint up: warning: {warning}", err=True)
    lock = lock_data_dir(data_dir)
    if lock is None:
        typer.echo(
            f"contactpoint up: another `contactpoint up`{lock_holder(data_dir)} is already running on "
            f"{data_dir.resolve()}; stop it first, or choose another --data-dir",
            err=True,
        )
        return 2
    for warning in filter(None, [private_dir(data_dir / "keys"), *private_databases(data_dir)]):
        typer.echo(f"contactpoint up: warning: {warning}", err=True)
    try:
        return _run_locked(data_dir, base_port, environ)
    finally:
        os.close(lock)


def _metrics_ports_free(env: dict[str, str], environ: Mapping[str, str]) -> tuple[list[str], str]:
    """Warnings for each metrics port already in use that `up` chose by default (the ports after
    the four services', which the contract does not name): that service's metrics are left off,
    so that another suite a few ports away never stops this one from starting (found by review:
    `up` exited 1, "address already in use", naming no port). And the refusal for one set
    explicitly, as for any taken port ("" when none)."""
    warnings: list[str] = []
    for service in SERVICES:
        key = f"CONTACTPOINT_{service.upper()}_METRICS_LISTEN"
        host, _, port = env.get(key, "").rpartition(":")
        if not port.isdigit() or not port_in_use(host or "127.0.0.1", int(port)):
            continue
        if key in environ:
            return warnings, f"port {port} ({service}'s metrics, {key}) is already in use"
        env[key] = ""
        warnings.append(f"port {port} ({service}'s metrics) is already in use: its metrics are off")
    return warnings, ""


def _run_locked(data_dir: Path, base_port: int, environ: Mapping[str, str]) -> int:
    """`contactpoint up` once it holds the data dir's lock: returns the exit code."""
    env = layered_env(environ, data_dir, base_port)
    for service in filter(lambda svc: _on_port(env, svc), SERVICES):
        host, port = _address(env, service)
        if port_in_use(host, port):
            typer.echo(
                f"contactpoint up: port {port} ({service}) is already in use; choose another --base-port",
                err=True,
            )
            return 2
    warnings, taken = _metrics_ports_free(env, environ)
    for warning in warnings:
        typer.echo(f"contactpoint up: warning: {warning}", err=True)
    if taken:
        typer.echo(f"contactpoint up: {taken}", err=True)
        return 2
    for service in accounts.SUITE_ACCOUNTS:
        prefix = f"CONTACTPOINT_{service.upper()}_"
        if prefix + "CLIENT_ID" not in env:
            creds = accounts.suite_credentials(env, service)
            env[prefix + "CLIENT_ID"] = creds.client_id
            env[prefix + "CLIENT_SECRET"] = creds.client_secret

    pin_witnessed_log(env)
    call_by_name(env, environ)
    mismatched = tls_mismatches(env)
    for mismatch in mismatched:
        typer.echo(f"contactpoint up: {mismatch}", err=True)
    if mismatched:
        return 2
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    suite = Suite(env)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    try:
        # Identity first: the others fetch its keys as they start.
        for service in FIRST:
            suite.start(service)
        problem = suite.wait_serving(FIRST, deadline, lambda: stopping)
        if problem is None and not stopping:
            for service in START_ORDER[len(FIRST) :]:
                suite.start(service)
            problem = suite.wait_serving(START_ORDER[len(FIRST) :], deadline, lambda: stopping)
        if stopping:
            return 0
        if problem is not None:
            typer.echo(f"contactpoint up: {problem}", err=True)
            return 1
        typer.echo(f"ContactPoint is up. Gateway: {dial_target(env, 'gateway')}", err=False)
        sys.stdout.flush()
        while not stopping:
            crash = suite.crashed()
            if crash:
                typer.echo(
                    f"contactpoint up: the {crash[0]} service exited with code {crash[1]}; stopping", err=True
                )
                return 1
            time.sleep(0.2)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        suite.stop()
