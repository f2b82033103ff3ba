"""`audit verify` on SQLite and PostgreSQL: an intact log passes; every kind of tampering — an
altered, deleted, swapped or truncated entry, an edited filter column, an altered or missing tree
head — fails and names the first bad entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import domain, merkle
from services.audit.main import MIGRATIONS
from services.audit.settings import AuditSettings
from services.audit.verify import verify_from_settings, verify_log

CP = "123456789018"
SIZE = 5


def audit_settings(database_url: str, tmp_path: Path) -> AuditSettings:
    return AuditSettings.model_validate(
        {
            "database_url": database_url,
            "identity_target": "127.0.0.1:1",
            "signing_key_file": tmp_path / "keys" / "audit.pem",
        }
    )


def write_log(settings: AuditSettings, size: int = SIZE) -> None:
    """A migrated log with `size` events appended the way AppendEvent appends them."""
    migrate.upgrade("audit", MIGRATIONS, settings.database_url)
    signer = domain.Signer(load_or_create_signing_key(settings.signing_key_file), settings.origin)
    db = Database(settings.database_url)
    try:
        for i in range(size):
            event = pb.AuditEvent(
                actor=f"user{i}", action="GetChild", outcome="ALLOWED", severity="INFO", contactpoint_id=CP
            )
            db.run_sync(lambda c, e=event: domain.append(c, event=e, signer=signer))
    finally:
        db.dispose()


def tamper(database_url: str, *statements: str, **params: object) -> None:
    db = Database(database_url)
    try:
        db.run_sync(lambda c: [c.execute(text(s), params) for s in statements])
    finally:
        db.dispose()


def forged(database_url: str, index: int) -> bytes:
    """Entry `index`'s data with its outcome rewritten: still a well-formed event, columns intact."""
    db = Database(database_url)
    try:
        stored = db.run_sync(
            lambda c: c.execute(
                text("SELECT leaf_data FROM leaves WHERE leaf_index = :i"), {"i": index}
            ).scalar_one()
        )
    finally:
        db.dispose()
    body = {**json.loads(stored), "outcome": "DENIED"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


async def test_an_intact_log_verifies(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    report = verify_from_settings(settings)
    assert (report.ok, report.tree_size, report.heads_checked, report.first_bad_index) == (True, 5, 5, None)
    # Without a key the roots are still checked; with someone else's key every signature fails.
    unsigned = verify_log(database_url)
    assert unsigned.ok and "not checked" in unsigned.message
    other = raw_public_key(load_or_create_signing_key(tmp_path / "other.pem"))
    wrong_key = verify_log(database_url, other)
    assert not wrong_key.ok and wrong_key.first_bad_index == 0 and "signature" in wrong_key.message
    # The checkpoints name the configured origin.
    assert not verify_log(database_url, origin="someone.else").ok


async def test_an_empty_log_verifies(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings, size=0)
    report = verify_from_settings(settings)
    assert report.ok and report.tree_size == 0


# Each case: statements run against a log of five entries, the entry that must be named, and a
# word the message must contain.
TAMPERING = {
    "leaf data edited": (["UPDATE leaves SET leaf_data = :data WHERE leaf_index = 2"], 2, "altered"),
    "leaf data and hash edited together": (
        ["UPDATE leaves SET leaf_data = :data, leaf_hash = :data_hash WHERE leaf_index = 2"],
        2,
        "tree head 3",
    ),
    "leaf replaced by something that is not an event": (
        ["UPDATE leaves SET leaf_data = :junk, leaf_hash = :junk_hash WHERE leaf_index = 3"],
        3,
        "not a valid event",
    ),
    "entry deleted": (["DELETE FROM leaves WHERE leaf_index = 1"], 1, "missing"),
    "entries swapped": (
        [
            "UPDATE leaves SET leaf_index = leaf_index + 100 WHERE leaf_index IN (1, 2)",
            "UPDATE leaves SET leaf_index = 103 - leaf_index WHERE leaf_index >= 100",
        ],
        1,
        "tree head 2",
    ),
    "actor column edited": (["UPDATE leaves SET actor = 'someone else' WHERE leaf_index = 3"], 3, "columns"),
    "child column edited": (["UPDATE leaves SET contactpoint_id = '' WHERE leaf_index = 0"], 0, "columns"),
    "time column edited": (
        ["UPDATE leaves SET time = :when WHERE leaf_index = 4"],
        4,
        "columns",
    ),
    "tree head signature edited": (
        ["UPDATE tree_heads SET signature = :zeros WHERE tree_size = 3"],
        2,
        "signature",
    ),
    "tree head root edited": (
        ["UPDATE tree_heads SET root_hash = :zeros32 WHERE tree_size = 4"],
        3,
        "tree head 4",
    ),
    "tree head checkpoint edited": (
        ["UPDATE tree_heads SET checkpoint = 'elsewhere' WHERE tree_size = 2"],
        1,
        "tree head 2",
    ),
    "tree head deleted": (["DELETE FROM tree_heads WHERE tree_size = 3"], 2, "no signed tree head"),
    "last entry deleted": (["DELETE FROM leaves WHERE leaf_index = 4"], 4, "not stored"),
    "log truncated with its head": (
        ["DELETE FROM leaves WHERE leaf_index = 4", "DELETE FROM tree_heads WHERE tree_size = 5"],
        4,
        "tree state",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_tampering_names_the_first_bad_entry(database_url: str, tmp_path: Path, case: str) -> None:
    statements, first_bad, word = TAMPERING[case]
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    data, junk = forged(database_url, 2), b"\x00not json"
    tamper(
        database_url,
        *statements,
        data=data,
        data_hash=merkle.leaf_hash(data),
        junk=junk,
        junk_hash=merkle.leaf_hash(junk),
        when="2001-01-01 00:00:00",
        zeros=bytes(64),
        zeros32=bytes(32),
    )
    report = verify_from_settings(settings)
    assert not report.ok, report
    assert report.first_bad_index == first_bad, report
    assert word in report.message, report


async def test_missing_key_or_database_is_not_intact(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "audit.db"
    settings = audit_settings(f"sqlite:///{path}", tmp_path)
    assert not verify_from_settings(settings).ok
    report = verify_log(f"sqlite:///{path}")
    assert not report.ok and "no audit database" in report.message
    assert not path.exists()
