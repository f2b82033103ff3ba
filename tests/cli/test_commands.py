"""The command line without the suite running: accounts, seed, bad configuration."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key
from services.records.values import today_in_england
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
    # Stored only as a hash (SHA-256 of a 256-bit random secret), never the secret itself.
    assert stored.startswith("sha256$") and creds["client_secret"] not in stored


def test_explicit_database_url_wins_over_data_dir(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.new("identity")
    result = create_service_account(
        tmp_path, "council-y", "council-system", CONTACTPOINT_IDENTITY_DATABASE_URL=url
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "identity.db").exists()
    assert scalar(url, "SELECT count(*) FROM accounts") == 1


def test_create_user_never_seals_with_a_key_the_service_does_not_hold(tmp_path: Path) -> None:
    # Found by review: configured by environment alone, create-user took the TOTP key's default
    # path beside another data dir, made a new key there, and sealed the user's secret with it:
    # every login of that user was INTERNAL. It refuses instead (exit 2), making no key.
    first = create_user(tmp_path, "sam.worker", "practitioner", password="a long enough password")
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    second = run(
        *("admin", "create-user", "--username", "kim.worker", "--org", "E08000003", "--role", "practitioner"),
        *("--password-stdin", "--json", "--data-dir", str(elsewhere)),
        stdin="another long enough password\n",
        env={"CONTACTPOINT_IDENTITY_DATABASE_URL": url},
    )
    assert second.returncode == 2, second.stderr
    assert "TOTP" in second.stderr and "Traceback" not in second.stderr
    assert not list(elsewhere.rglob("identity-totp.key"))
    # A key file that is not the one the secrets were sealed with is refused the same way.
    (elsewhere / "keys").mkdir(exist_ok=True)
    other_key = elsewhere / "keys" / "identity-totp.key"
    other_key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    other_key.chmod(0o600)
    third = run(
        *("admin", "create-user", "--username", "kim.worker", "--org", "E08000003", "--role", "practitioner"),
        *("--password-stdin", "--json", "--data-dir", str(elsewhere)),
        stdin="another long enough password\n",
        env={"CONTACTPOINT_IDENTITY_DATABASE_URL": url},
    )
    assert third.returncode == 2, third.stderr
    assert scalar(url, "SELECT count(*) FROM accounts WHERE name = 'kim.worker'") == 0


def test_the_first_person_is_sealed_with_the_key_the_service_opened(tmp_path: Path) -> None:
    # Found by review: with no person yet, nothing sealed told create-user its key was not the
    # service's; it made one and sealed the first person's secret with it. The service writes a
    # key check when it first opens its key; another key is refused before it seals anything.
    from contactpoint.platform import migrate
    from services.identity.main import MIGRATIONS
    from services.identity.totp_key import open_totp_sealer

    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate.upgrade("identity", MIGRATIONS, url)
    service_key = tmp_path / "service-keys" / "identity-totp.key"
    db = Database(url)
    try:
        db.run_sync(lambda c: open_totp_sealer(c, service_key))  # as the service does at start
    finally:
        db.dispose()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = (
        "admin",
        "create-user",
        "--username",
        "kim.worker",
        "--org",
        "E08000003",
        "--role",
        "practitioner",
    )
    refused = run(
        *args,
        *("--password-stdin", "--json", "--data-dir", str(elsewhere)),
        stdin="another long enough password\n",
        env={"CONTACTPOINT_IDENTITY_DATABASE_URL": url},
    )
    assert refused.returncode == 2, refused.stderr
    assert "TOTP" in refused.stderr and not list(elsewhere.rglob("identity-totp.key"))
    # With the service's key file it is made.
    made = run(
        *args,
        *("--password-stdin", "--json", "--data-dir", str(elsewhere)),
        stdin="another long enough password\n",
        env={
            "CONTACTPOINT_IDENTITY_DATABASE_URL": url,
            "CONTACTPOINT_IDENTITY_TOTP_KEY_FILE": str(service_key),
        },
    )
    assert made.returncode == 0, made.stderr


@pytest.mark.parametrize("children", [60])
def test_seed_feeds_synthetic_children(databases: DatabaseFactory, tmp_path: Path, children: int) -> None:
    url = databases.new("records")
    truth = tmp_path / "truth.csv"
    # Both runs make the feeds as of one day: CI's second run once began after midnight, made other
    # records from the same seed, and found a quarter of them unchanged.
    day = today_in_england().isoformat()

    def seed() -> subprocess.CompletedProcess[str]:
        args = ("seed", "--children", str(children), "--seed", "7", "--today", day, "--json")
        args += ("--truth", str(truth))
        return run(*args, "--data-dir", str(tmp_path), env={"CONTACTPOINT_RECORDS_DATABASE_URL": url})

    result = seed()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sources = scalar(url, "SELECT count(*) FROM source_records")
    held = scalar(url, "SELECT count(*) FROM children WHERE status = 'active'")
    # What really happened: every record accounted for, and the children the registry now holds.
    assert (
        report["records"] == sources == sum(report.get(k, 0) for k in ("created", "linked", "possible_match"))
    )
    assert report["children"] == held and report["created"] + report.get("possible_match", 0) == held
    assert report["linked"] > 0 and not any(k.startswith("rejected") for k in report)
    # The truth: which source records are the same child (about two records a child).
    rows = truth.read_text().splitlines()
    assert rows[0] == "organisation,source_system,source_record_id,person"
    assert len(rows) - 1 == sources and len({r.rsplit(",", 1)[1] for r in rows[1:]}) == children
    # The same seed again changes nothing, and says so: every record is unchanged (found by
    # probing: a second run reported them all created again).
    again = json.loads(seed().stdout)
    assert again["unchanged"] == again["records"] == sources
    assert not again.get("created") and not again.get("linked") and again["children"] == held
    assert scalar(url, "SELECT count(*) FROM source_records") == sources


def test_seed_refuses_a_day_that_is_not_one_or_is_ahead_of_today(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.new("records")
    env = {"CONTACTPOINT_RECORDS_DATABASE_URL": url}
    # Two days ahead: still ahead if the clock passes midnight while the test runs.
    ahead = (today_in_england() + dt.timedelta(days=2)).isoformat()
    for wrong, said in [
        *[(w, "--today must be a date, YYYY-MM-DD") for w in ("2026-13-01", "20261204", "", "yesterday")],
        (ahead, "--today must not be after today"),
    ]:
        bad = run("seed", "--children", "5", "--today", wrong, "--data-dir", str(tmp_path), env=env)
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    # Checked before anything is done: the database was not even given its tables.
    db = Database(url)
    try:
        assert db.run_sync(lambda c: inspect(c).get_table_names()) == []
    finally:
        db.dispose()


def test_seed_says_why_another_days_feed_of_the_same_seed_is_refused(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    # Found by probing: the same seed a year apart made other children under the same record ids;
    # the registry refused them (one record id is one child's for life) and nothing said why.
    env = {"CONTACTPOINT_RECORDS_DATABASE_URL": databases.new("records")}
    today = today_in_england()
    days = [(today - dt.timedelta(days=400)).isoformat(), today.isoformat()]
    first, second = (
        run("seed", "--children", "40", "--today", day, "--json", "--data-dir", str(tmp_path), env=env)
        for day in days
    )
    assert "held for other children" not in first.stderr, first.stderr
    refused = json.loads(second.stdout)["rejected (failed_precondition)"]
    assert refused > 0 and second.returncode == 1
    assert f"{refused} records' ids are held for other children" in second.stderr
    assert "--today" in second.stderr and "Traceback" not in second.stderr


def test_seed_refuses_a_truth_file_it_cannot_write_before_feeding_anything(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    # Found by probing: a traceback, after records had been fed.
    url = databases.new("records")
    env = {"CONTACTPOINT_RECORDS_DATABASE_URL": url}
    assert run("seed", "--children", "5", "--data-dir", str(tmp_path), env=env).returncode == 0
    before = scalar(url, "SELECT count(*) FROM source_records")
    for path in (str(tmp_path / "missing" / "truth.csv"), "/dev/full"):
        args = ("seed", "--children", "5", "--seed", "2", "--truth", path)
        result = run(*args, "--data-dir", str(tmp_path), env=env)
        assert result.returncode == 2 and result.stderr.startswith("contactpoint seed: cannot write --truth")
        assert result.stderr.count("\n") == 1, result.stderr
        assert scalar(url, "SELECT count(*) FROM source_records") == before


def test_records_lifecycle_command(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.new("records")
    env = {"CONTACTPOINT_RECORDS_DATABASE_URL": url}
    assert run("seed", "--children", "20", "--data-dir", str(tmp_path), env=env).returncode == 0
    held = scalar(url, "SELECT count(*) FROM children WHERE status = 'active'")
    # Nothing is due today; in 26 years every child (extended ones too) is past its archive date.
    today = run("records", "lifecycle", "--json", "--data-dir", str(tmp_path), env=env)
    assert today.returncode == 0, today.stderr
    assert json.loads(today.stdout) == {"archived": 0, "purged": 0}
    # A dry run counts what a date far ahead would do, and changes nothing.
    dry = run(
        "records",
        "lifecycle",
        "--today",
        "2052-12-01",
        "--dry-run",
        "--json",
        "--data-dir",
        str(tmp_path),
        env=env,
    )
    # Six years after its own archive date a child is purged too, in the same run: most of them
    # (18 before 2047), not the extended records archived at 25 after that.
    predicted = json.loads(dry.stdout)
    assert predicted["archived"] == held and predicted.pop("dry_run") is True, dry.stderr
    assert 0 < predicted["purged"] <= held
    assert scalar(url, "SELECT count(*) FROM children WHERE status = 'active'") == held
    later = run(
        "records", "lifecycle", "--today", "2052-12-01", "--json", "--data-dir", str(tmp_path), env=env
    )
    assert json.loads(later.stdout) == predicted
    assert "days ahead of today" in later.stderr  # archiving cannot be undone: said so
    dry_purge = run(
        "records",
        "lifecycle",
        "--today",
        "2058-12-01",
        "--dry-run",
        "--json",
        "--data-dir",
        str(tmp_path),
        env=env,
    )
    rest = held - predicted["purged"]
    assert json.loads(dry_purge.stdout) == {"archived": 0, "purged": rest, "dry_run": True}
    purge = run(
        "records", "lifecycle", "--today", "2058-12-01", "--json", "--data-dir", str(tmp_path), env=env
    )
    assert json.loads(purge.stdout) == {"archived": 0, "purged": rest}
    assert scalar(url, "SELECT count(*) FROM source_records") == 0
    # Year 1 has no six years before it to purge from; the others are not YYYY-MM-DD (an empty
    # value must not quietly mean today).
    for wrong in ("yesterday", "0001-01-01", "", "20261204", "2026-W49-5"):
        bad = run("records", "lifecycle", "--today", wrong, "--data-dir", str(tmp_path), env=env)
        assert bad.returncode == 2 and "--today" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_data_key_commands_rotate_reseal_and_retire(databases: DatabaseFactory, tmp_path: Path) -> None:
    """`records data-keys`, `rotate-data-key` and `retire-data-key`: a new key seals, the old
    one retires only once nothing uses it and every replica has had time to re-read the file."""
    url = databases.new("records")
    env = {"CONTACTPOINT_RECORDS_DATABASE_URL": url, "CONTACTPOINT_RECORDS_RESEAL_INTERVAL_SECONDS": "0.01"}
    data_dir = ("--data-dir", str(tmp_path))
    assert run("seed", "--children", "10", *data_dir, env=env).returncode == 0
    key_file = tmp_path / "keys" / "records-data.keys"
    assert key_file.stat().st_mode & 0o777 == 0o600

    def status() -> dict[str, object]:
        result = run("records", "data-keys", "--json", *data_dir, env=env)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    before = status()
    assert before["sealing"] == 1 and before["keys"] == [1] and set(before["rows"]) == {"1"}  # type: ignore[arg-type]
    rotated = run("records", "rotate-data-key", "--json", *data_dir, env=env)
    assert rotated.returncode == 0 and json.loads(rotated.stdout)["key"] == 2
    assert status()["sealing"] == 2
    refused = run("records", "retire-data-key", "1", *data_dir, env=env)
    assert refused.returncode == 1 and "still seals" in refused.stderr  # nothing re-sealed yet
    # A command opening the database is a replica too: the key is registered; re-sealing it here.
    from contactpoint.platform.db import Database
    from services.records import data_keys

    db = Database(url)
    try:
        vault = data_keys.open_file_vault(db, key_file)
        assert data_keys.reseal(db, vault) > 0
    finally:
        db.dispose()
    assert set(status()["rows"]) == {"2"}  # type: ignore[arg-type]
    retired = run("records", "retire-data-key", "1", *data_dir, env=env)
    assert retired.returncode == 0, retired.stderr
    assert status()["keys"] == [2]
    # Without the key file, nothing starts: the database holds sealed data.
    key_file.rename(tmp_path / "elsewhere.keys")
    lost = run("records", "data-keys", *data_dir, env=env)
    assert lost.returncode == 2 and "missing" in lost.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("admin", "suspend", "--username", "pat"), "Missing option '--reason'"),
        (("audit", "report"), "Missing option '--child'"),
        (("seed", "--children", "0"), "Invalid value for '--children'"),
        # Found by probing: a traceback, or services on ports 1 to 9.
        (("up", "--base-port", "65533"), "Invalid value for '--base-port'"),
        (("up", "--base-port", "0"), "Invalid value for '--base-port'"),
        (("admin", "suspend", "--username", "pat", "--reason", "r", "--bogus"), "No such option: --bogus"),
    ],
)
def test_a_mistyped_command_is_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    # Found by probing: a missing option printed a box of usage, where every other error is one
    # `contactpoint: …` line.
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("contactpoint: "), result.stderr
    assert said in result.stderr and "--help" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("up", "--data-dir", "/etc/passwd"),
        ("up", "--data-dir", "/proc/no/such/folder"),
        ("tls", "make-local-ca", "/etc/passwd"),
    ],
)
def test_a_path_that_cannot_be_used_is_one_line_not_a_traceback(args: tuple[str, ...]) -> None:
    # Found by probing: each printed a Python traceback.
    result = run(*args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://postgres@127.0.0.1:1/none", "sqlite:////proc/no/such/audit.db", "nonsense://"],
)
def test_audit_verify_of_a_log_it_cannot_read_says_not_checked(tmp_path: Path, url: str) -> None:
    # Found by probing: an unreachable database was "NOT intact" (exit 1), as if tampered with.
    load_or_create_signing_key(tmp_path / "keys" / "audit-signing.pem")
    env = {"CONTACTPOINT_AUDIT_DATABASE_URL": url, "CONTACTPOINT_AUDIT_WITNESS_TARGET": ""}
    result = run("audit", "verify", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "NOT intact" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_a_fault_in_a_command_is_one_line_without_its_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by probing: an entry edited by hand made `audit verify` stop with a traceback (and
    # typer's shows the frames' local variables, a record among them).
    import typer

    from contactpoint.cli import main

    broken = typer.Typer()

    @broken.command()
    def report() -> None:
        child = {"family_name": "Okonkwo-Whitfield"}
        raise TypeError(f"cannot read {child}")

    monkeypatch.setattr(main, "app", broken)
    monkeypatch.setattr(sys, "argv", ["contactpoint"])
    with pytest.raises(SystemExit) as exit_:
        main.run()
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("contactpoint: unexpected TypeError at test_commands.py:"), err
    assert "Okonkwo" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "service"),
    [
        (("admin", "suspend", "--username", "someone", "--reason", "r"), "IDENTITY"),
        (("records", "lifecycle", "--json"), "RECORDS"),
        (("audit", "report", "--child", "503352916258"), "AUDIT"),
    ],
)
def test_a_database_that_cannot_be_reached_is_said_so(
    tmp_path: Path, args: tuple[str, ...], service: str
) -> None:
    # Found by probing with PostgreSQL stopped: each said "unexpected OperationalError ... (a fault
    # in ContactPoint ...)", exit 1, as an unknown user is.
    env = {f"CONTACTPOINT_{service}_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    if service == "AUDIT":  # the log's key is looked for first
        load_or_create_signing_key(tmp_path / "keys" / "audit-signing.pem")
        env["CONTACTPOINT_AUDIT_WITNESS_TARGET"] = ""
    result = run(*args, "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert result.stderr.startswith("contactpoint: cannot use the database: OperationalError: "), (
        result.stderr
    )
    assert result.stderr.count("\n") == 1 and "fault in ContactPoint" not in result.stderr
