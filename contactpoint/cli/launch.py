"""`contactpoint serve` (one service in this process) and `contactpoint up` (all four, each its
own OS process, supervised: a taken port or a crashed service is a clear message and a non-zero
exit, never a hang; SIGINT/SIGTERM stops everything gracefully)."""

from __future__ import annotations

import importlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from contactpoint.cli import accounts
from contactpoint.cli.embedded import SERVICES, layered_env

START_ORDER = ("identity", "records", "audit", "gateway")
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


def run_one(service: str, env: Mapping[str, str]) -> None:
    """Run one service until SIGTERM/SIGINT; bad configuration or a taken port exit non-zero."""
    module = importlib.import_module("gateway.main" if service == "gateway" else f"services.{service}.main")
    try:
        module.run(env)
    except ValidationError as exc:
        prefix = f"CONTACTPOINT_{service.upper()}_"
        for e in exc.errors():
            name = prefix + "_".join(str(p) for p in e["loc"]).upper()
            typer.echo(f"contactpoint serve {service}: {name}: {e['msg']}", err=True)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        # Say which database without echoing credentials or SQL.
        typer.echo(
            f"contactpoint serve {service}: cannot use the database: {type(exc).__name__}: "
            f"{str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0][:200]}",
            err=True,
        )
        raise typer.Exit(4) from None
    except OSError as exc:
        typer.echo(f"contactpoint serve {service}: cannot serve: {exc}", err=True)
        raise typer.Exit(3) from None
    except RuntimeError as exc:
        # grpc reports a taken or unusable address as a RuntimeError ("Failed to bind ...").
        if "bind" not in str(exc).lower():
            raise
        typer.echo(f"contactpoint serve {service}: cannot serve: {exc}", err=True)
        raise typer.Exit(3) from None


def _address(env: Mapping[str, str], service: str) -> tuple[str, int]:
    host, _, port = env[f"CONTACTPOINT_{service.upper()}_LISTEN"].rpartition(":")
    return host or "127.0.0.1", int(port)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def serving(host: str, port: int) -> bool:
    """Whether the server at host:port answers its health check with SERVING."""
    try:
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


class Suite:
    """The four child processes of `contactpoint up`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str) -> None:
        self.procs[service] = subprocess.Popen(  # noqa: S603 — our own interpreter and module
            [sys.executable, "-m", "contactpoint", "serve", service], env=self.env
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
        while pending and not stopping():
            crash = self.crashed()
            if crash:
                return (
                    f"the {crash[0]} service exited with code {crash[1]} during start-up (see its log above)"
                )
            if time.monotonic() > deadline:
                return f"not SERVING after {STARTUP_TIMEOUT_SECONDS:.0f}s: {', '.join(pending)}"
            pending = [s for s in pending if not serving(*_address(self.env, s))]
            if pending:
                time.sleep(0.2)
        return None

    def stop(self) -> None:
        """SIGTERM every child, wait for graceful shutdown, SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_suite(data_dir: Path, base_port: int, environ: Mapping[str, str]) -> int:
    """`contactpoint up`: returns the exit code."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = layered_env(environ, data_dir, base_port)
    for service in SERVICES:
        host, port = _address(env, service)
        if _port_taken(host, port):
            typer.echo(
                f"contactpoint up: port {port} ({service}) is already in use; choose another --base-port",
                err=True,
            )
            return 2
    for service in accounts.SUITE_ACCOUNTS:
        prefix = f"CONTACTPOINT_{service.upper()}_"
        if prefix + "CLIENT_ID" not in env:
            creds = accounts.suite_credentials(env, service)
            env[prefix + "CLIENT_ID"] = creds.client_id
            env[prefix + "CLIENT_SECRET"] = creds.client_secret

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
        suite.start("identity")
        problem = suite.wait_serving(("identity",), deadline, lambda: stopping)
        if problem is None and not stopping:
            for service in START_ORDER[1:]:
                suite.start(service)
            problem = suite.wait_serving(START_ORDER[1:], deadline, lambda: stopping)
        if stopping:
            return 0
        if problem is not None:
            typer.echo(f"contactpoint up: {problem}", err=True)
            return 1
        host, port = _address(env, "gateway")
        typer.echo(f"ContactPoint is up. Gateway: {host}:{port}", err=False)
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
