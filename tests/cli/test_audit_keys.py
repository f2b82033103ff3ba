"""`audit keys` prints the keys to pin under the names the services read (found by probing: the
witness's key came out as CONTACTPOINT_WITNESS_PUBLIC_KEY, which nothing reads, so an operator
who exported what it printed left the witness unpinned)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from contactpoint.cli import auditlog
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.settings import load_settings, variable_names
from services.audit.settings import AuditSettings


def test_the_keys_printed_are_read_by_audit_under_those_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_key, witness_key = tmp_path / "audit.pem", tmp_path / "witness.pem"
    env = {
        "CONTACTPOINT_AUDIT_SIGNING_KEY_FILE": str(log_key),
        "CONTACTPOINT_WITNESS_SIGNING_KEY_FILE": str(witness_key),
    }
    for path in (log_key, witness_key):
        load_or_create_signing_key(path)
    auditlog.keys(env, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) <= variable_names(AuditSettings)
    required = {
        "CONTACTPOINT_AUDIT_DATABASE_URL": "sqlite://",
        "CONTACTPOINT_AUDIT_IDENTITY_TARGET": "127.0.0.1:1",
        "CONTACTPOINT_AUDIT_SIGNING_KEY_FILE": str(log_key),
    }
    settings = load_settings(AuditSettings, {**printed, **required})
    expected = {
        settings.public_key: log_key,
        settings.witness_public_key: witness_key,
    }
    for value, path in expected.items():
        assert value == base64.b64encode(raw_public_key(load_or_create_signing_key(path))).decode()
