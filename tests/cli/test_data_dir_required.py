"""Admin, audit and records commands run where there is no suite's data fail with one line naming
the path and suggesting --data-dir, and create nothing (before, they made an empty `./var` and a
new, empty registry in it). An explicit `CONTACTPOINT_<SERVICE>_DATABASE_URL` is used as it is."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.suite import run_in as run

ACCOUNT = ("--org", "E08000003", "--role", "council-system")
COMMANDS = {
    "identity": ("admin", "create-service-account", "--name", "council-x", *ACCOUNT),
    "records": ("records", "lifecycle", "--json"),
    "audit": ("audit", "verify", "--json"),
}


def everything_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def assert_refused(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "--data-dir" in lines[0]


@pytest.mark.parametrize("service", sorted(COMMANDS))
def test_no_data_dir_here(tmp_path: Path, service: str) -> None:
    result = run(tmp_path, *COMMANDS[service])
    assert_refused(result, tmp_path / "var")
    assert everything_under(tmp_path) == set()


def test_seed_without_a_data_dir(tmp_path: Path) -> None:
    result = run(tmp_path, "seed", "--children", "3")
    assert_refused(result, tmp_path / "var")
    assert everything_under(tmp_path) == set()


@pytest.mark.parametrize("service", sorted(COMMANDS))
def test_a_data_dir_without_the_services_database(tmp_path: Path, service: str) -> None:
    (tmp_path / "var").mkdir()
    result = run(tmp_path, *COMMANDS[service])
    assert_refused(result, tmp_path / "var" / f"{service}.db")
    assert everything_under(tmp_path) == {tmp_path / "var"}


def test_an_explicit_data_dir_must_exist(tmp_path: Path) -> None:
    result = run(tmp_path, *COMMANDS["identity"], "--data-dir", "elsewhere")
    assert_refused(result, tmp_path / "elsewhere")
    assert everything_under(tmp_path) == set()


def test_an_explicit_database_url_needs_no_data_dir(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'identity.db'}"
    result = run(tmp_path, *COMMANDS["identity"], "--json", CONTACTPOINT_IDENTITY_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db" / "identity.db").is_file()
    assert not (tmp_path / "var").exists()


def test_the_default_data_dir_is_used_once_it_holds_the_database(tmp_path: Path) -> None:
    # An explicit, existing --data-dir may be given its first database (accounts before `up`)...
    (tmp_path / "var").mkdir()
    first = run(tmp_path, *COMMANDS["identity"], "--data-dir", "var")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "var" / "identity.db").is_file()
    # ...and from then on ./var is found without it.
    second = run(tmp_path, "admin", "create-service-account", "--name", "council-y", *ACCOUNT)
    assert second.returncode == 0, second.stderr


@pytest.mark.parametrize(
    ("service", "args"),
    [
        ("records", ("records", "lifecycle", "--json")),
        ("records", ("records", "data-keys", "--json")),
        ("audit", ("audit", "verify", "--json")),
        ("audit", ("audit", "report", "--child", "503352916258", "--json")),
    ],
)
def test_a_command_on_the_registrys_data_never_starts_a_database(
    tmp_path: Path, service: str, args: tuple[str, ...]
) -> None:
    # Found by probing: `records lifecycle` on a mistyped path made a new, empty registry there
    # and reported nothing to archive; a subject-access report or `audit verify` would as well
    # say "no access" and "intact" of an empty log. Accounts may still start a database.
    (tmp_path / "var").mkdir()
    result = run(tmp_path, *args, "--data-dir", "var")
    assert_refused(result, tmp_path / "var" / f"{service}.db")
    assert everything_under(tmp_path) == {tmp_path / "var"}

    typo = tmp_path / "typo" / f"{service}.db"
    variable = f"CONTACTPOINT_{service.upper()}_DATABASE_URL"
    # Also as an SQLite URI (found by re-probing: it slipped past), and relative to here.
    for url in (
        f"sqlite:///{typo}",
        f"sqlite:///file:{typo}?mode=rw&uri=true",
        f"sqlite:///typo/{service}.db",
    ):
        result = run(tmp_path, *args, **{variable: url})
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.count("\n") == 1 and str(typo) in result.stderr and variable in result.stderr
        assert everything_under(tmp_path) == {tmp_path / "var"}
