"""A rotation of the audit log's signing key (`audit rotate-key`), on SQLite and PostgreSQL: the
rotation is an entry signed under the old key; heads after it verify only under the new key;
`audit verify` follows the chain to the pinned key, and refuses a head the retired key signed
after its rotation, a chain that does not end at the pinned key, and a forged rotation."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.checkpoints import (
    ROTATION_ACTION,
    ROTATION_ACTOR,
    ROTATION_APPENDED_BY,
    KeyRotation,
    endorsement_message,
    parse_rotation,
)
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import domain, keychain, repository, state_repository
from services.audit.events import COMMAND_LINE
from services.audit.rotation import rotate_signing_key
from services.audit.settings import AuditSettings
from services.audit.verify_configured import verify_from_settings
from tests.services.audit.test_verify import audit_settings, write_log


def _append(settings: AuditSettings, key_path: Path, n: int = 2, **fields: str) -> None:
    signer = domain.Signer(load_or_create_signing_key(key_path), settings.origin)
    db = Database(settings.database_url)
    try:
        for i in range(n):
            values = {
                "actor": f"later{i}",
                "action": "GetChild",
                "outcome": "ALLOWED",
                "severity": "INFO",
                **fields,
            }
            event = pb.AuditEvent(**values)  # type: ignore[arg-type]
            db.run_sync(lambda c, e=event: domain.append(c, event=e, signer=signer, appended_by="gateway"))
    finally:
        db.dispose()


def _pinned(settings: AuditSettings, key: bytes) -> AuditSettings:
    return settings.model_copy(update={"public_key": base64.b64encode(key).decode()})


def test_the_rotation_is_logged_and_verify_follows_it(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    retired = tmp_path / "retired.pem"
    retired.write_bytes(settings.signing_key_file.read_bytes())
    old = raw_public_key(load_or_create_signing_key(retired))
    rotated = rotate_signing_key(settings)
    new = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    assert (rotated.old_key, rotated.new_key, rotated.leaf_index) == (old, new, 5)
    db = Database(database_url)
    try:
        data = db.run_sync(lambda c: repository.size_and_leaf(c, 5)[1])
        stated = parse_rotation(data) if data is not None else None
        assert stated is not None and (stated.old_key, stated.new_key, stated.size) == (old, new, 5)
        assert stated.valid_for(settings.origin)
        chain = db.run_sync(lambda c: keychain.key_chain(c, new, settings.origin))
        assert chain.keys == [old, new] and chain.boundaries == [6]
    finally:
        db.dispose()
    _append(settings, settings.signing_key_file)
    assert verify_from_settings(_pinned(settings, new)).ok
    # The retired key pinned: the chain does not end there.
    report = verify_from_settings(_pinned(settings, old))
    assert not report.ok and "rotation" in report.message
    # A head the retired key signed after its rotation is refused.
    _append(settings, retired, n=1)
    report = verify_from_settings(_pinned(settings, new))
    assert not report.ok and "bad signature" in report.message and report.first_bad_index == 8


def test_only_the_command_line_writes_a_rotation(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    key = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    # An account's AppendEvent is stamped with its own name: the same words are no rotation.
    _append(
        settings,
        settings.signing_key_file,
        n=1,
        actor=ROTATION_ACTOR,
        action=ROTATION_ACTION,
        detail=KeyRotation.endorsed(
            settings.origin, key, load_or_create_signing_key(tmp_path / "insider.pem"), 5, bytes(32)
        ).detail(),
    )
    assert verify_from_settings(_pinned(settings, key)).ok
    db = Database(database_url)
    try:
        assert db.run_sync(keychain.rotations) == []
    finally:
        db.dispose()
    assert COMMAND_LINE == "(audit command line)"  # the appended_by a rotation must carry


def test_a_rotation_needs_the_logs_current_key(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    retired = tmp_path / "retired.pem"
    retired.write_bytes(settings.signing_key_file.read_bytes())
    rotate_signing_key(settings)
    # Rotating again from the retired key file (say, a stale copy) is refused.
    stale = settings.model_copy(update={"signing_key_file": retired})
    with pytest.raises(FailedPrecondition) as refused:
        rotate_signing_key(stale)
    assert refused.value.reason == "NOT_THE_LOG_KEY"
    rotate_signing_key(settings)  # from the current key, again
    new = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    assert verify_from_settings(_pinned(settings, new)).ok


def test_a_rotation_the_pinned_key_did_not_endorse_fails(database_url: str, tmp_path: Path) -> None:
    """An insider with only the database makes a key of their own, rewrites the log under it, and
    adds a rotation entry (with the command line's labels) from their key to the pinned one:
    without the pinned key's endorsement of the tree it takes over, verify refuses the chain."""
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    pinned = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    insiders = tmp_path / "insider.pem"
    insider = load_or_create_signing_key(insiders)
    db = Database(database_url)
    try:
        wipe = ["DELETE FROM leaves", "DELETE FROM tree_heads", "DELETE FROM tree_nodes"]
        db.run_sync(lambda c: [c.execute(text(q)) for q in wipe])
        db.run_sync(lambda c: state_repository.save_state(c, 0, []))
    finally:
        db.dispose()
    _append(settings, insiders, n=4)
    message = endorsement_message(settings.origin, raw_public_key(insider), pinned, 4, bytes(32))
    forged = KeyRotation(raw_public_key(insider), pinned, 4, bytes(32), insider.sign(message))
    signer = domain.Signer(insider, settings.origin)
    event = pb.AuditEvent(actor=ROTATION_ACTOR, action=ROTATION_ACTION, outcome="ALLOWED", severity="HIGH")
    event.detail = forged.detail()
    db = Database(database_url)
    try:
        db.run_sync(lambda c: domain.append(c, event=event, signer=signer, appended_by=ROTATION_APPENDED_BY))
    finally:
        db.dispose()
    report = verify_from_settings(_pinned(settings, pinned))
    assert not report.ok and "did not endorse" in report.message, report
