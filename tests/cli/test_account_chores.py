"""`contactpoint admin suspend|reinstate|set-password|rotate-secret|disable-service-account|
enable-service-account` on the embedded default (CONTRACT §1 v1.1): exit codes, one-line
messages, and what they change in identity's database; platform roles cannot be minted for just
any account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.db import Database
from contactpoint.platform.errors import Unauthenticated
from services.identity import domain
from services.identity.token_issuer import TokenIssuer
from tests.cli.test_commands import create_service_account, create_user, run, scalar

PASSWORD = "a long enough password"


def test_suspend_and_reinstate_a_person(tmp_path: Path) -> None:
    assert create_user(tmp_path, "sam.worker", "practitioner", password=PASSWORD).returncode == 0
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    done = run(
        "admin", "suspend", "--username", "sam.worker", "--reason", "left", "--data-dir", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert scalar(url, "SELECT suspended FROM accounts WHERE name = 'sam.worker'") in (1, True)
    assert scalar(url, "SELECT tokens_not_before IS NOT NULL FROM accounts WHERE name = 'sam.worker'") in (
        1,
        True,
    )
    back = run(
        "admin", "reinstate", "--username", "sam.worker", "--reason", "back", "--data-dir", str(tmp_path)
    )
    assert back.returncode == 0, back.stderr
    assert scalar(url, "SELECT suspended FROM accounts WHERE name = 'sam.worker'") in (0, False)


def test_unknown_user_or_missing_reason_is_a_one_line_error(tmp_path: Path) -> None:
    assert create_user(tmp_path, "sam.worker", "practitioner", password=PASSWORD).returncode == 0
    unknown = run(
        "admin", "suspend", "--username", "nobody.here", "--reason", "x", "--data-dir", str(tmp_path)
    )
    assert unknown.returncode != 0
    assert unknown.stderr.strip().count("\n") == 0 and "nobody.here" in unknown.stderr
    blank = run(
        "admin", "reinstate", "--username", "sam.worker", "--reason", " ", "--data-dir", str(tmp_path)
    )
    assert blank.returncode != 0 and "reason" in blank.stderr


def test_set_a_forgotten_password(tmp_path: Path) -> None:
    from services.identity import credentials

    assert create_user(tmp_path, "sam.worker", "practitioner", password=PASSWORD).returncode == 0
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    hashed = "SELECT secret_hash FROM accounts WHERE name = 'sam.worker'"
    args = ("admin", "set-password", "--username", "Sam.Worker", "--reason", "forgot it")
    no_stdin = run(*args, "--data-dir", str(tmp_path))
    assert no_stdin.returncode == 2 and "--password-stdin" in no_stdin.stderr
    weak = run(*args, "--password-stdin", "--data-dir", str(tmp_path), stdin="password1234\n")
    assert weak.returncode == 1 and "password" in weak.stderr and weak.stderr.strip().count("\n") == 0
    assert credentials.verify_secret(str(scalar(url, hashed)), PASSWORD)  # nothing changed
    done = run(*args, "--password-stdin", "--data-dir", str(tmp_path), stdin="mauve otter lantern quietly\n")
    assert done.returncode == 0, done.stderr
    assert credentials.verify_secret(str(scalar(url, hashed)), "mauve otter lantern quietly")
    ended = "SELECT tokens_not_before IS NOT NULL FROM accounts WHERE name = 'sam.worker'"
    assert scalar(url, ended) in (1, True)


def test_rotate_disable_and_enable_a_machine_account(tmp_path: Path) -> None:
    made = create_service_account(tmp_path, "council-a", "council-system")
    assert made.returncode == 0, made.stderr
    old = json.loads(made.stdout)
    rotated = run("admin", "rotate-secret", "--name", "council-a", "--json", "--data-dir", str(tmp_path))
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["client_id"] == old["client_id"] and new["client_secret"] != old["client_secret"]
    # A rotation ends the tokens issued before it (the secret may be known); a planned one need not.
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    ended = "SELECT tokens_not_before FROM accounts WHERE name = 'council-a'"
    first_end = scalar(url, ended)
    assert first_end is not None
    planned = run(
        "admin",
        "rotate-secret",
        "--name",
        "council-a",
        "--keep-tokens",
        "--json",
        "--data-dir",
        str(tmp_path),
    )
    assert planned.returncode == 0, planned.stderr
    assert scalar(url, ended) == first_end
    new = json.loads(planned.stdout)

    db = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), 900)

    def token(secret: str) -> object:
        return db.run_sync(
            lambda c: domain.issue_service_token(
                c, client_id=old["client_id"], client_secret=secret, issuer=issuer
            )
        )

    try:
        with pytest.raises(Unauthenticated):
            token(old["client_secret"])
        assert token(new["client_secret"])
        assert (
            run(
                "admin", "disable-service-account", "--name", "council-a", "--data-dir", str(tmp_path)
            ).returncode
            == 0
        )
        with pytest.raises(Unauthenticated):
            token(new["client_secret"])
        assert (
            run(
                "admin", "enable-service-account", "--name", "council-a", "--data-dir", str(tmp_path)
            ).returncode
            == 0
        )
        assert token(new["client_secret"])
    finally:
        db.dispose()
    missing = run("admin", "rotate-secret", "--name", "nope", "--data-dir", str(tmp_path))
    assert missing.returncode != 0 and "nope" in missing.stderr


def test_platform_roles_only_for_the_platforms_own_accounts(tmp_path: Path) -> None:
    # The gateway role reads any child on a person's behalf: nobody else may be given it.
    rogue = create_service_account(tmp_path, "my-gateway", "gateway")
    assert rogue.returncode != 0 and "platform" in rogue.stderr
    rogue_records = create_service_account(tmp_path, "records", "records-service")  # wrong organisation
    assert rogue_records.returncode != 0


def test_with_no_identity_running_a_change_waits_for_it_and_the_command_says_so(tmp_path: Path) -> None:
    # Nothing forwards command-line changes: the command does not wait for one, it says the record
    # waits in identity's database, and the change and its record are both there.
    assert create_user(tmp_path, "sam.worker", "practitioner", password=PASSWORD).returncode == 0
    done = run(
        "admin", "suspend", "--username", "sam.worker", "--reason", "left", "--data-dir", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "will reach the audit log when the identity service next runs" in done.stderr
    assert done.stdout.strip() == "suspended sam.worker"
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    assert scalar(url, "SELECT count(*) FROM operator_actions") == 2  # create-user, suspend
