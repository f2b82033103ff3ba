"""`contactpoint up` as a real subprocess, and the CLI, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyotp

from contactpoint.cli.health import serving_at
from contactpoint.gateway.v1 import gateway_service_pb2 as gateway_pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc
from tests.conftest import DatabaseFactory
from tests.harness import free_ports

PASSWORD = "correct horse battery staple 9"
CONTACTPOINT = [sys.executable, "-m", "contactpoint"]


def run_in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`contactpoint ARGS` in `cwd`, with no ContactPoint variable but `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTPOINT_")}
    return subprocess.run(
        [*CONTACTPOINT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **env},
    )


def free_base_port() -> int:
    """A base port with the next nine free as well (the four services, the witness where it takes
    the port after audit's, and the five metrics ports), below the ephemeral range (`free_ports`)."""
    return free_ports(10)


class Suite:
    """One `contactpoint up` run."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = data_dir
        # The name the four services are called by (a certificate may name only "localhost").
        self.host = host
        # How to reach the four services' health checks: plaintext, or TLS with these.
        self.credentials = credentials
        self.base = free_base_port()
        self.env = {**os.environ, **(env or {})}
        self.log = data_dir / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def target(self, offset: int) -> str:
        """gateway 0, identity 1, records 2, audit 3."""
        return f"{self.host}:{self.base + offset}"

    def start(self, timeout: float = 60) -> Suite:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*CONTACTPOINT, "up", "--data-dir", str(self.data_dir), "--base-port", str(self.base)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"up exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if (
                all(serving_at(self.target(i), self.credentials) for i in range(4))
                and b"Gateway:" in self.log.read_bytes()
            ):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"not SERVING after {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM `up` and return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return self.proc.returncode

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONTACTPOINT, *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )

    def create_user(self, username: str, *roles: str, org: str = "E08000003") -> dict[str, str]:
        args = ["admin", "create-user", "--username", username, "--org", org]
        for role in roles:
            args += ["--role", role]
        result = self.cli(*args, "--password-stdin", "--json", stdin=PASSWORD + "\n")
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        return {"username": username, "password": PASSWORD, "totp_secret": out["totp_secret"]}

    def create_service_account(
        self, name: str, role: str = "council-system", org: str = "E08000003"
    ) -> tuple[str, str]:
        result = self.cli(
            "admin", "create-service-account", "--name", name, "--org", org, "--role", role, "--json"
        )
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        return out["client_id"], out["client_secret"]

    def login(self, user: dict[str, str]) -> str:
        target = self.target(0)
        channel = (
            grpc.secure_channel(target, self.credentials)
            if self.credentials
            else grpc.insecure_channel(target)
        )
        with channel as ch:
            return str(
                gateway_grpc.GatewayServiceStub(ch)
                .Login(
                    gateway_pb.LoginRequest(
                        username=user["username"],
                        password=user["password"],
                        totp_code=pyotp.TOTP(user["totp_secret"]).now(),
                    ),
                    timeout=10,
                )
                .access_token
            )


@contextlib.contextmanager
def running_suite(
    databases: DatabaseFactory, tmp_path: Path, env: dict[str, str] | None = None
) -> Iterator[Suite]:
    """`contactpoint up` on the backend of `databases` (identity, records and audit on PostgreSQL
    for its run), stopped at the end."""
    env = dict(env or {})
    if databases.backend == "postgresql":
        env |= {
            f"CONTACTPOINT_{svc}_DATABASE_URL": databases.new(svc.lower())
            for svc in ("IDENTITY", "RECORDS", "AUDIT")
        }
    s = Suite(tmp_path / "data", env).start()
    try:
        yield s
    finally:
        if s.proc and s.proc.poll() is None:
            s.stop()
