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


def test_create_user_and_service_account(tmp_path: Path) -> None:
    user = run(
        "admin",
        "create-user",
        "--username",
        "sam.worker",
        "--org",
        "E08000003",
        "--role",
        "practitioner",
        "--role",
        "shield-override",
        "--password-stdin",
        "--json",
        "--data-dir",
        str(tmp_path),
        stdin="a long enough password\n",
    )
    assert user.returncode == 0, user.stderr
    out = json.loads(user.stdout)
    assert set(out) == {"username", "totp_secret", "otpauth_uri"} and out["otpauth_uri"].startswith(
        "otpauth://totp/"
    )
    again = run(
        "admin",
        "create-user",
        "--username",
        "sam.worker",
        "--org",
        "E08000003",
        "--role",
        "practitioner",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        stdin="a long enough password\n",
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    weak = run(
        "admin",
        "create-user",
        "--username",
        "kim.worker",
        "--org",
        "E08000003",
        "--role",
        "practitioner",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        stdin="short\n",
    )
    assert weak.returncode != 0 and "password" in weak.stderr
    bad_role = run(
        "admin",
        "create-service-account",
        "--name",
        "council-x",
        "--org",
        "E08000003",
        "--role",
        "admin",
        "--json",
        "--data-dir",
        str(tmp_path),
    )
    assert bad_role.returncode != 0 and "unknown role" in bad_role.stderr

    svc = run(
        "admin",
        "create-service-account",
        "--name",
        "council-x",
        "--org",
        "E08000003",
        "--role",
        "council-system",
        "--json",
        "--data-dir",
        str(tmp_path),
    )
    assert svc.returncode == 0, svc.stderr
    creds = json.loads(svc.stdout)
    db = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    try:
        stored = db.run_sync(
            lambda c: c.execute(
                text("SELECT secret_hash FROM accounts WHERE client_id = :c"), {"c": creds["client_id"]}
            ).scalar_one()
        )
    finally:
        db.dispose()
    # Stored only as an Argon2id hash, never the secret itself.
    assert stored.startswith("$argon2id$") and creds["client_secret"] not in stored


def test_explicit_database_url_wins_over_data_dir(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.new("identity")
    result = run(
        "admin",
        "create-service-account",
        "--name",
        "council-y",
        "--org",
        "E08000003",
        "--role",
        "council-system",
        "--json",
        "--data-dir",
        str(tmp_path),
        env={"CONTACTPOINT_IDENTITY_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "identity.db").exists()
    db = Database(url)
    try:
        assert db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM accounts")).scalar_one()) == 1
    finally:
        db.dispose()


@pytest.mark.parametrize("children", [25])
def test_seed_feeds_synthetic_children(databases: DatabaseFactory, tmp_path: Path, children: int) -> None:
    url = databases.new("records")
    result = run(
        "seed",
        "--children",
        str(children),
        "--seed",
        "7",
        "--data-dir",
        str(tmp_path),
        env={"CONTACTPOINT_RECORDS_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr
    assert "rejected" not in result.stdout and "CREATED" in result.stdout
    db = Database(url)
    try:
        sources = db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM source_records")).scalar_one())
    finally:
        db.dispose()
    assert sources > children  # some children came from a second source system too
    # The same seed again changes nothing: every request id is a retry.
    again = run(
        "seed",
        "--children",
        str(children),
        "--seed",
        "7",
        "--data-dir",
        str(tmp_path),
        env={"CONTACTPOINT_RECORDS_DATABASE_URL": url},
    )
    assert again.returncode == 0 and "CREATED" in again.stdout  # the first answers, replayed
    db = Database(url)
    try:
        assert (
            db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM source_records")).scalar_one())
            == sources
        )
    finally:
        db.dispose()
