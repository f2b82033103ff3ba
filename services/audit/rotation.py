"""`contactpoint audit rotate-key`: the log's signing key is replaced by a new one, and the
rotation is itself an entry of the log, signed under the old key, so that the log's witness and
`audit verify` follow it (`keychain`) and nothing else can move the log to another key.

Run it with the audit service stopped (a running one would keep signing with the old key; `up`'s
data dir lock is checked by the command). The new key is written beside the old one first, the
entry appended, and only then the new key moved into place: an interruption leaves either the old
key and no rotation, or the rotation and the new key (still in `<key file>.next`, moved into place
by running the command again)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform import merkle, migrate
from contactpoint.platform.checkpoints import (
    ROTATION_ACTION,
    ROTATION_ACTOR,
    ROTATION_APPENDED_BY,
    Checkpoint,
    KeyRotation,
)
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import domain, keychain, state_repository
from services.audit.log_key_check import writable_with
from services.audit.main import MIGRATIONS
from services.audit.settings import AuditSettings
from services.audit.witness_check import refuse_a_fork


@dataclass(frozen=True)
class Rotated:
    """A finished rotation: the keys (raw) and the log entry that records it."""

    old_key: bytes
    new_key: bytes
    leaf_index: int


def rotate_signing_key(settings: AuditSettings, *, witnessed: Checkpoint | None = None) -> Rotated:
    """Rotate the log's signing key (see the module's docstring); refused on a log that
    contradicts `witnessed`, its witness's newest checkpoint (`witness_check.refuse_a_fork`)."""
    path = settings.signing_key_file
    staged = path.with_name(path.name + ".next")
    if not path.exists():
        raise FailedPrecondition(f"there is no audit signing key at {path}", "NO_SIGNING_KEY")
    old = load_or_create_signing_key(path)
    migrate.upgrade("audit", MIGRATIONS, settings.database_url)
    db = Database(settings.database_url)
    try:
        found = db.run_sync(keychain.rotations, write=False)
        old_key = raw_public_key(old)
        if staged.exists():
            # An earlier run was interrupted: finish it if its entry is in the log, else start over.
            pending = raw_public_key(load_or_create_signing_key(staged))
            if found and (found[-1][1].old_key, found[-1][1].new_key) == (old_key, pending):
                os.replace(staged, path)
                return Rotated(old_key, pending, found[-1][0])
            staged.unlink()
        if found and found[-1][1].new_key != old_key:
            raise FailedPrecondition(
                f"{path} is not the key the log's last rotation (entry {found[-1][0]}) moved to",
                "NOT_THE_LOG_KEY",
            )
        new = load_or_create_signing_key(staged)  # a fresh key, written privately beside the old
        signer = domain.Signer(old, settings.origin)

        def rotate(conn: Connection) -> int:
            # The new key endorses the tree it takes over, read under the append's lock.
            size, peaks = state_repository.lock_state(conn)
            writable_with(conn, old_key, path, settings.origin)  # only the log's own key rotates
            refuse_a_fork(conn, witnessed)
            rotation = KeyRotation.endorsed(
                settings.origin, old_key, new, size, merkle.root_from_peaks(peaks)
            )
            event = pb.AuditEvent(
                actor=ROTATION_ACTOR,
                action=ROTATION_ACTION,
                outcome="ALLOWED",
                severity="HIGH",
                request_id=uuid.uuid4().hex,
                detail=rotation.detail(),
            )
            return domain.append(conn, event=event, signer=signer, appended_by=ROTATION_APPENDED_BY)

        try:
            index = db.run_sync(rotate)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        os.replace(staged, path)
        return Rotated(old_key, raw_public_key(new), index)
    finally:
        db.dispose()
