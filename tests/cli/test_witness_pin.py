"""What `contactpoint up` tells the witness the audit log's key is (`launch.pin_witnessed_log`)."""

from __future__ import annotations

import base64
from pathlib import Path

from contactpoint.cli.witness_pin import pin_witnessed_log
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit.rotation import rotate_signing_key
from tests.services.audit.test_verify import audit_settings, write_log


def _env(database_url: str, key_file: Path) -> dict[str, str]:
    return {
        "CONTACTPOINT_AUDIT_DATABASE_URL": database_url,
        "CONTACTPOINT_AUDIT_SIGNING_KEY_FILE": str(key_file),
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_a_new_log_gets_a_key_and_the_witness_it(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "audit.pem"
    env = _env(f"sqlite:///{tmp_path / 'audit.db'}", key_file)
    pin_witnessed_log(env)
    assert env["CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY"] == _b64(
        raw_public_key(load_or_create_signing_key(key_file))
    )
    assert not (tmp_path / "audit.db").exists()  # nothing made beside it


def test_a_rotated_log_gives_the_witness_its_first_key(database_url: str, tmp_path: Path) -> None:
    # Found by probing: a new witness given the current key refused the log's early heads (signed
    # by the first key) and cosigned nothing.
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    first = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    rotate_signing_key(settings)
    env = _env(database_url, settings.signing_key_file)
    pin_witnessed_log(env)
    assert env["CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY"] == _b64(first)


def test_a_log_whose_key_file_is_missing_gets_no_new_key(database_url: str, tmp_path: Path) -> None:
    # Found by probing: `up` made a new key for a log that had entries; audit now refuses to start
    # without the log's own key, and `up` makes none in its place.
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    settings.signing_key_file.unlink()
    env = _env(database_url, settings.signing_key_file)
    pin_witnessed_log(env)
    assert not settings.signing_key_file.exists() and "CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY" not in env


def test_a_log_that_cannot_be_read_or_a_broken_key_gets_no_new_key(tmp_path: Path) -> None:
    # Found by re-probing: an unreachable database counted as an empty log, so `up` made a new
    # key for it; an empty key file was a traceback.
    key_file = tmp_path / "keys" / "audit.pem"
    env = _env("postgresql+psycopg://postgres@127.0.0.1:1/unreachable", key_file)
    pin_witnessed_log(env)
    assert not key_file.exists() and "CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY" not in env
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(b"")
    pin_witnessed_log(env)
    assert key_file.read_bytes() == b"" and "CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY" not in env
