"""The command line without the suite running: accounts, seed, bad configuration."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from contactpoint.platform.db import Database
from tests.conftest import DatabaseFactory
from tests.suite import CONTACTPOINT


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONTACTPOINT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def create_user(
    data_dir: Path, username: str, *roles: str, password: str
) -> subprocess.CompletedProcess[str]:
    role_args = [arg for role in roles for arg in ("--role", role)]
    return run(
        *("admin", "create-user", "--username", username, "--org", "E08000003", *role_args),
        *("--password-stdin", "--json", "--data-dir", str(data_dir)),
        stdin=password + "\n",
    )


def create_service_account(
    data_dir: Path, name: str, role: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return run(
        *("admin", "create-service-account", "--name", name, "--org", "E08000003", "--role", role, "--json"),
        *("--data-dir", str(data_dir)),
        env=env,
    )


def scalar(database_url: str, sql: str, **params: str) -> object:
    db = Database(database_url)
    try:
        return db.run_sync(lambda c: c.execute(text(sql), params).scalar_one())
    finally:
        db.dispose()


def test_create_user_and_service_account(tmp_path: Path) -> None:
    user = create_user(
        tmp_path, "sam.worker", "practitioner", "shield-override", password="a long enough password"
    )
    assert user.returncode == 0, user.stderr
    out = json.loads(user.stdout)
    assert set(out) == {"username", "totp_secret", "otpauth_uri"}
    assert out["otpauth_uri"].startswith("otpauth://totp/")
    again = create_user(tmp_path, "sam.worker", "practitioner", password="a long enough password")
    assert again.returncode != 0 and "already exists" in again.stderr
    weak = create_user(tmp_path, "kim.worker", "practitioner", password="short")
    assert weak.returncode != 0 and "password" in weak.stderr
    bad_role = create_service_account(tmp_path, "council-x", "admin")
    assert bad_role.returncode != 0 and "unknown role" in bad_role.stderr

    svc = create_service_account(tmp_path, "council-x", "council-system")
    assert svc.returncode == 0, svc.stderr
    creds = json.loads(svc.stdout)
    stored = str(
        scalar(
            f"sqlite:///{tmp_path / 'identity.db'}",
            "SELECT secret_hash FROM accounts WHERE client_id = :c",
            c=creds["client_id"],
        )
    )
    # Stored only as an Argon2id hash, never the secret itself.
    assert stored.startswith("$argon2id$") and creds["client_secret"] not in stored


def test_explicit_database_url_wins_over_data_dir(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.new("identity")
    result = create_service_account(
        tmp_path, "council-y", "council-system", CONTACTPOINT_IDENTITY_DATABASE_URL=url
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "identity.db").exists()
    assert scalar(url, "SELECT count(*) FROM accounts") == 1


@pytest.mark.parametrize("children", [25])
def test_seed_feeds_synthetic_children(databases: DatabaseFactory, tmp_path: Path, children: int) -> None:
    url = databases.new("records")

    def seed() -> subprocess.CompletedProcess[str]:
        args = ("seed", "--children", str(children), "--seed", "7", "--data-dir", str(tmp_path))
        return run(*args, env={"CONTACTPOINT_RECORDS_DATABASE_URL": url})

    result = seed()
    assert result.returncode == 0, result.stderr
    assert "rejected" not in result.stdout and "CREATED" in result.stdout
    sources = scalar(url, "SELECT count(*) FROM source_records")
    # Some children came from a second source system too.
    assert isinstance(sources, int) and sources > children
    # The same seed again changes nothing: every request id is a retry.
    again = seed()
    assert again.returncode == 0 and "CREATED" in again.stdout  # the first answers, replayed
    assert scalar(url, "SELECT count(*) FROM source_records") == sources
